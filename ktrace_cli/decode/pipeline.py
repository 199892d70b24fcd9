"""Call filters and descriptor tracking between `select` and the renderers.

`filtered` keeps kdump's one-record-per-line order: the records of a call
wait, per thread, until the call can be judged (at its RET when the filters
look at the result, its paths or its descriptors), then pass or go together.
The records of other threads queue behind them, so the output stays in file
order; at most HOLD_LIMIT records wait, after which the oldest call still
running is judged on what is known of it so far (it has no result yet, so
`--failed`, `--successful` and `--errno` do not select it).

`calls` gives one Call per system call, in the order the calls end, and the
records that belong to no call (a signal delivered between calls, USER
records...) as they come.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ktrace_cli.decode.calls import Call, CallJoiner
from ktrace_cli.decode.events import Dropped, Shown
from ktrace_cli.decode.fdtable import FdTables
from ktrace_cli.decode.filters import CallFilter
from ktrace_cli.format import constants as K
from ktrace_cli.format.reader import TraceFormatError
from ktrace_cli.format.records import Record, Struct

HOLD_LIMIT = 65536


class Clock:
    """The time of the first record of the trace, for `+S.s` bounds (set by select)."""

    def __init__(self) -> None:
        self.first_ns: int | None = None


def shown_ns(shown: Shown) -> int:
    r = shown.record
    return r.sec * 1_000_000_000 + r.nsec


def snapshot_fdtable(shown: Shown, tables: FdTables) -> None:
    """Feed a STRU `fdtable` record (a process's descriptors at attach) to the tables."""
    if shown.record.type == K.KTR_STRUCT:
        p = shown.payload
        if isinstance(p, Struct) and p.name == b"fdtable":
            tables.snapshot(shown.record.pid, p.data)


def _judge(flt: CallFilter, call: Call) -> None:
    if call.selected is None:
        call.selected = flt.call_ok(call)


# The record types descriptor tracking and call joining read, whatever -t shows.
TRACKED_POINTS = (
    1 << K.KTR_SYSCALL | 1 << K.KTR_SYSRET | 1 << K.KTR_NAMEI | 1 << K.KTR_GENIO | 1 << K.KTR_STRUCT
    | 1 << K.KTR_PSIG
)  # fmt: skip


@dataclass(frozen=True)
class Shows:
    """What -t and -p let through, applied after the calls were tracked and judged."""

    points: int = K.ALL_POINTS
    pids: frozenset[int] | None = None

    def record(self, r: Record) -> bool:
        if not self.points & (1 << (r.type & 31)):
            return False
        return self.pids is None or r.pid in self.pids or r.tid in self.pids

    def call(self, c: Call) -> bool:
        return self.pids is None or c.pid in self.pids or c.tid in self.pids


def filtered(
    events: Iterable[Shown | Dropped],
    flt: CallFilter,
    tables: FdTables,
    clock: Clock | None = None,
    shows: Shows | None = None,
) -> Iterator[Shown | Dropped]:
    """The records of the calls `flt` selects (and selected records outside calls), in file order.

    `events` must hold every record the tracking reads (select with
    TRACKED_POINTS added and no pid); `shows` then applies -t and -p.
    """
    shows = shows or Shows()
    joiner = CallJoiner()
    queue: deque[tuple[Shown | Dropped, Call | None]] = deque()
    early = not flt.needs_end
    try:
        for event in events:
            if clock is not None and flt.first_ns is None:
                flt.first_ns = clock.first_ns
            if isinstance(event, Dropped):
                queue.append((event, None))
            else:
                snapshot_fdtable(event, tables)
                call, done = joiner.feed(event)
                if event.record.type == K.KTR_SYSCALL and call is not None:
                    tables.begin(call)
                    if early:
                        _judge(flt, call)
                for c in done:
                    tables.end(c)
                    _judge(flt, c)
                if not shows.record(event.record):
                    pass  # tracked, not shown
                elif call is None:
                    if flt.record_ok(event.record.comm_name, shown_ns(event)):
                        queue.append((event, None))
                elif call.selected is not False:
                    queue.append((event, call))
            while queue:
                head, owner = queue[0]
                if owner is not None and owner.selected is None:
                    if len(queue) <= HOLD_LIMIT:
                        break
                    _judge(flt, owner)  # held too long: judged on what is known now
                queue.popleft()
                if owner is None or owner.selected:
                    yield head
    except TraceFormatError:
        # kdump prints every record before the damage: so do the held ones.
        yield from _drain_filtered(joiner, queue, flt)
        raise
    yield from _drain_filtered(joiner, queue, flt)


def _drain_filtered(
    joiner: CallJoiner, queue: deque[tuple[Shown | Dropped, Call | None]], flt: CallFilter
) -> Iterator[Shown | Dropped]:
    for c in joiner.flush():
        _judge(flt, c)
    for head, owner in queue:
        if owner is None or owner.selected:
            yield head


def drain_calls(joiner: CallJoiner, flt: CallFilter, shows: Shows) -> Iterator[Call]:
    active = flt.active
    for c in joiner.flush():
        if shows.call(c) and (not active or flt.call_ok(c)):
            yield c

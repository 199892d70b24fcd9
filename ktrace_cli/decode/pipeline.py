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

from ktrace_cli.decode.calls import NO_RETURN, Call, CallJoiner
from ktrace_cli.decode.events import Dropped, Shown
from ktrace_cli.decode.fdtable import FdTables
from ktrace_cli.decode.filters import CallFilter
from ktrace_cli.format import constants as K
from ktrace_cli.format.reader import TraceFormatError
from ktrace_cli.format.records import Record, Struct, Syscall, Sysret

HOLD_LIMIT = 65536


class Clock:
    """The time of the first record of the trace, for `+S.s` bounds (set by select)."""

    def __init__(self) -> None:
        self.first_ns: int | None = None


def _ns(shown: Shown) -> int:
    r = shown.record
    return r.sec * 1_000_000_000 + r.nsec


def _snapshot(shown: Shown, tables: FdTables) -> None:
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
                _snapshot(event, tables)
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
                    if flt.record_ok(event.record.comm_name, _ns(event)):
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


def calls(
    events: Iterable[Shown | Dropped],
    flt: CallFilter,
    tables: FdTables,
    clock: Clock | None = None,
    shows: Shows | None = None,
) -> Iterator[Call | Shown | Dropped]:
    """One Call per system call as it ends; records outside calls and drops as they come.

    CallJoiner.feed, inlined: this loop runs once per record of the trace.
    """
    shows = shows or Shows()
    joiner = CallJoiner()
    open_calls = joiner.open
    new_call = joiner.new
    names = joiner.names
    begin, end = tables.begin, tables.end
    inert = tables.inert  # call names that change no descriptor: `end` would return at once
    active = flt.active
    judged = active or shows.pids is not None
    show_record = shows.record

    def wanted(c: Call) -> bool:
        return shows.call(c) and (not active or flt.call_ok(c))

    syscall, sysret, struct = K.KTR_SYSCALL, K.KTR_SYSRET, K.KTR_STRUCT
    unclocked = clock is not None
    try:
        for event in events:
            if isinstance(event, Dropped):
                yield event
                continue
            if unclocked:  # select set the clock before the first record came
                unclocked = False
                if flt.first_ns is None:
                    flt.first_ns = clock.first_ns  # type: ignore[union-attr]
            record = event.record
            rtype = record.type
            if rtype == sysret:
                pending = open_calls.pop(record.tid, None)
                p = event.payload
                if pending is not None and p.__class__ is Sysret and pending.code == p.code:
                    pending.end = event
                    if pending.name not in inert:
                        end(pending)
                    if not judged or wanted(pending):
                        yield pending
                    continue
                if pending is not None:
                    end(pending)
                    if not judged or wanted(pending):
                        yield pending
                orphan = new_call(event, False)
                end(orphan)
                if not judged or wanted(orphan):
                    yield orphan
                continue
            if rtype == syscall:
                previous = open_calls.pop(record.tid, None)
                p = event.payload
                if p.__class__ is Syscall:
                    sv_flags = event.sv_flags
                    named = names.get((sv_flags, p.code))
                    if named is None:
                        named = joiner.named(sv_flags, p.code)
                    # Positional: binding keywords costs more than the call's other work here.
                    call = Call(record.pid, record.tid, sv_flags, named[0], event, None, [], None, -1, None,
                                None, None, p.code, named[1])  # fmt: skip
                else:
                    call = new_call(event, True)
                begin(call)
                if previous is not None:  # its RET never came (lost, or the thread was killed)
                    end(previous)
                    if not judged or wanted(previous):
                        yield previous
                if call.name in NO_RETURN:
                    end(call)
                    if not judged or wanted(call):
                        yield call
                else:
                    open_calls[record.tid] = call
                continue
            if rtype == struct:
                _snapshot(event, tables)
            current = open_calls.get(record.tid)
            if current is not None:
                current.parts.append(event)
            elif show_record(record) and (not active or flt.record_ok(record.comm_name, _ns(event))):
                yield event
    except TraceFormatError:
        yield from _drain_calls(joiner, flt, shows)
        raise
    yield from _drain_calls(joiner, flt, shows)


def _drain_calls(joiner: CallJoiner, flt: CallFilter, shows: Shows) -> Iterator[Call]:
    active = flt.active
    for c in joiner.flush():
        if shows.call(c) and (not active or flt.call_ok(c)):
            yield c

"""The reference for decode/select_calls: the unfused join, `calls(select(...))`.

select_calls fuses select's loop and this join into one for speed; this
slower, separate form stays here as the oracle the tests hold it to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ktrace_cli.decode.calls import NO_RETURN, Call, CallJoiner
from ktrace_cli.decode.events import Dropped, Shown
from ktrace_cli.decode.fdtable import FdTables
from ktrace_cli.decode.filters import CallFilter
from ktrace_cli.decode.pipeline import Clock, Shows, drain_calls, shown_ns, snapshot_fdtable
from ktrace_cli.format import constants as K
from ktrace_cli.format.reader import TraceFormatError
from ktrace_cli.format.records import Syscall, Sysret


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
                snapshot_fdtable(event, tables)
            current = open_calls.get(record.tid)
            if current is not None:
                current.parts.append(event)
            elif show_record(record) and (not active or flt.record_ok(record.comm_name, shown_ns(event))):
                yield event
    except TraceFormatError:
        yield from drain_calls(joiner, flt, shows)
        raise
    yield from drain_calls(joiner, flt, shows)

"""`select` and the call join as one loop: --calls and the views that read every record.

--calls and the whole-trace views spend a large share of their time passing
each record from one generator to the next.  This loop's general path frames
nothing of its own: it unpacks each record as `select` does (with no -p, as the call views
always run it) and joins it as `calls` does, so it gives exactly the items
`calls(select(...))` gives, in the same order.  The unfused join is kept in
the tests (tests/unit/calls_reference.py) as the reference they hold this
loop to.

The quick path.  Most calls are a CALL, at most one NAMI or GIO record and
the RET, of one thread, one after the other.  Given a `quick` line builder
(--calls text), the loop frames such runs itself from the reader's buffer
and hands their fields to the builder: no Record, payload, Shown or Call is
built for them.  Anything else (other records in between, STRU, PSIG, a call
that changes descriptors other than an open, drops, a thread with a call in
flight, v0 headers, filters, -p) leaves the records to the loop's general
path.  tests/unit/test_select_calls_quick.py holds both paths' printed
output equal.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterable, Iterator

from ktrace_cli.decode.abi import ProcessTable
from ktrace_cli.decode.calls import NO_RETURN, Call, CallJoiner
from ktrace_cli.decode.events import Dropped, Shown, Unpacker, unpackers
from ktrace_cli.decode.fdtable import AT_FDCWD_BITS, FdTable, FdTables
from ktrace_cli.decode.filters import CallFilter
from ktrace_cli.decode.pipeline import Clock, Shows, drain_calls, shown_ns, snapshot_fdtable
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, PROCCTOR, Arch
from ktrace_cli.format.reader import TraceFormatError
from ktrace_cli.format.records import Genio, Namei, PayloadError, Record, Syscall, Sysret

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from typing import Any

    from ktrace_cli.decode.abi import Abi

    # (pid, tid, comm, sv_flags, code, abi, name, args, descriptor argument, its
    #  index, its path, NAMI path, GIO data, error, retval, path of the returned
    #  descriptor, start in ns, duration in ns) -> the call's line.
    QuickLine = Callable[
        [int, int, bytes, int, int, Abi, str, tuple[int, ...], int | None, int, str | None, bytes | None,
         bytes | None, int, int, str | None, int, int],
        str,
    ]

# The record types the quick path frames: it needs them all selected.
_QUICK_POINTS = 1 << K.KTR_SYSCALL | 1 << K.KTR_SYSRET | 1 << K.KTR_NAMEI | 1 << K.KTR_GENIO


def _plan(
    joiner: CallJoiner, tables: FdTables, sv_flags: int, code: int
) -> tuple[Any, str | None, int, int, bool, bool]:
    """(ABI, name, descriptor argument index, directory descriptor index, `begin` must run, never returns)."""
    abi, name = joiner.named(sv_flags, code)
    if name is None:
        return abi, name, -1, -1, False, False
    fd_i, dir_i, special = tables.arg_plan(abi, name)
    return abi, name, fd_i, dir_i, special, name in NO_RETURN


def _descriptor(
    args: tuple[int, ...], fd_i: int, dir_i: int, table: FdTable | None
) -> tuple[int | None, int, str | None]:
    """tables.begin for a call that is not special: (descriptor argument, its index, its path)."""
    index = -1
    if 0 <= fd_i < len(args):
        index = fd_i
    elif 0 <= dir_i < len(args) and args[dir_i] & 0xFFFFFFFF != AT_FDCWD_BITS:
        index = dir_i
    if index < 0:
        return None, -1, None
    fd = args[index] & 0xFFFFFFFF  # signed32, inlined
    if fd & 0x8000_0000:  # negative: no descriptor
        return None, -1, None
    if table is not None:
        e = table.fds.get(fd)
        if e is not None:
            return fd, index, e.path
    return fd, index, None


def select_calls(
    records: Iterable[Record],
    points: int,
    flt: CallFilter,
    tables: FdTables,
    clock: Clock | None = None,
    shows: Shows | None = None,
    procs: ProcessTable | None = None,
    arch: Arch | None = None,
    proc_sink: Callable[[Record], None] | None = None,
) -> Iterator[Call | Shown | Dropped]:
    """`calls(select(records, points, None, procs, arch, clock, proc_sink), flt, tables, clock, shows)`.

    `procs`, when given, is changed by this loop alone while it runs (it keeps
    the last process's sv_flags at hand).
    """
    # Without a quick line builder the loop gives no str.
    return select_call_lines(records, points, flt, tables, clock, shows, procs, arch, proc_sink, None)  # type: ignore[return-value]


def select_call_lines(
    records: Iterable[Record],
    points: int,
    flt: CallFilter,
    tables: FdTables,
    clock: Clock | None = None,
    shows: Shows | None = None,
    procs: ProcessTable | None = None,
    arch: Arch | None = None,
    proc_sink: Callable[[Record], None] | None = None,
    quick: Callable[[Arch], QuickLine] | None = None,
) -> Iterator[Call | Shown | Dropped | str]:
    """select_calls, with `quick`: when given, it is called once with the layout
    and gives the quick path's line builder (see the module's text); the lines
    it builds come as str, in their calls' places."""
    procs = procs if procs is not None else ProcessTable()
    shows = shows or Shows()
    joiner = CallJoiner()
    open_calls = joiner.open
    new_call = joiner.new
    begin, end = tables.begin, tables.end
    inert = tables.inert  # call names that change no descriptor: `end` would return at once
    active = flt.active
    judged = active or shows.pids is not None
    show_record = shows.record

    def wanted(c: Call) -> bool:
        return shows.call(c) and (not active or flt.call_ok(c))

    syscall, sysret, struct_type = K.KTR_SYSCALL, K.KTR_SYSRET, K.KTR_STRUCT
    namei, genio = K.KTR_NAMEI, K.KTR_GENIO
    procctor, procdtor = K.KTR_PROCCTOR, K.KTR_PROCDTOR
    sv_flags_of = procs.sv_flags.get
    shown = functools.partial(tuple.__new__, Shown)  # Shown without its Python __new__
    errors = (PayloadError, struct.error)
    drop_logged = False
    rest = iter(records)
    try:
        for head in rest:
            # The reader knows the layout once it has framed the first record.
            layout: Arch = arch or getattr(records, "arch", None) or AMD64
            table: dict[int, Unpacker] = unpackers(layout)
            if clock is not None:
                clock.first_ns = head.sec * 1_000_000_000 + head.nsec
                if flt.first_ns is None:
                    flt.first_ns = clock.first_ns
            break
        else:
            return
        get = table.get
        # unpackers' SYSCALL, SYSRET, NAMI and GIO closures, written out in the loop below.
        call_head, call_size = layout.syscall_fixed.unpack_from, layout.syscall_fixed.size
        ret_unpack = layout.sysret.unpack_from
        genio_head, genio_size = layout.genio_fixed.unpack_from, layout.genio_fixed.size
        args_unpackers: dict[int, Callable[[bytes, int], tuple[int, ...]]] = {}
        # (sv_flags, code) -> what a CALL needs: joiner.named, tables.arg_plan, NO_RETURN.
        plans: dict[tuple[int, int], tuple[Any, str | None, int, int, bool, bool]] = {}
        fd_tables = tables.tables
        last_pid: int | None = None
        sv_flags = 0
        # The quick path's framing: whole v1 records from the reader's buffer.
        line_of: QuickLine | None = None
        unread: Any = getattr(records, "unread", None)
        if quick is not None and unread is not None and not judged and points & _QUICK_POINTS == _QUICK_POINTS:
            line_of = quick(layout)
            skip_to = records.skip_to  # type: ignore[attr-defined]
        quick_args: tuple[int, ...]
        header = layout.header_v1.unpack_from
        hsize = layout.header_v1.size
        ret_size = layout.sysret.size
        word = layout.word
        q_call, q_ret = syscall | K.KTR_VERSIONED, sysret | K.KTR_VERSIONED  # no drop bit
        q_namei, q_genio = namei | K.KTR_VERSIONED, genio | K.KTR_VERSIONED
        open_name = tables.open_name
        opens: dict[str, str | None] = {}  # call name -> open_name(name)
        # The first record, then the others: each turn but the first fetches one.
        record = head
        fetch = False
        while True:
            if fetch:
                if line_of is not None:
                    # A run of plain calls, framed here; the first record that is not
                    # one goes to the general path below, through the reader.
                    buf, pos = unread()
                    n = len(buf)
                    while pos + hsize <= n:
                        length, rtype, version, pid, comm, sec, frac, tid, _ = header(buf, pos)
                        if rtype != q_call or not version or tid in open_calls:
                            break
                        start = pos + hsize
                        stop = start + length
                        if stop + hsize > n or length < call_size:
                            break
                        code, narg = call_head(buf, start)
                        unpack = args_unpackers.get(narg)
                        if unpack is None or call_size + narg * word > length:
                            break  # no arguments, a count not seen yet, or too short for it
                        quick_args = unpack(buf, start + call_size)
                        if pid != last_pid:
                            last_pid = pid
                            sv_flags = sv_flags_of(pid, 0)
                        plan = plans.get((sv_flags, code))
                        if plan is None:
                            break
                        abi, name, fd_i, dir_i, special, no_return = plan
                        if name is None or special or no_return:
                            break
                        opened = opens.get(name, "")
                        if opened == "":
                            opened = opens[name] = open_name(name)
                        if opened is None and name not in inert:
                            break  # a call that changes descriptors
                        # At most one NAMI or GIO record, then the RET.
                        path = data = None
                        length, rtype, version, _, _, end_sec, end_frac, part_tid, _ = header(buf, stop)
                        if part_tid != tid or not version:
                            break
                        if rtype == q_namei or rtype == q_genio:
                            start = stop + hsize
                            stop = start + length
                            if length < 0 or stop + hsize > n:
                                break
                            if rtype == q_namei:
                                path = buf[start:stop]
                            elif length >= genio_size:
                                data = buf[start + genio_size : stop]
                            else:
                                break
                            length, rtype, version, _, _, end_sec, end_frac, part_tid, _ = header(buf, stop)
                            if part_tid != tid or not version:
                                break
                        if rtype != q_ret or length < ret_size:
                            break
                        ret_start = stop + hsize
                        if ret_start + length > n:
                            break
                        ret_code, _, error, retval = ret_unpack(buf, ret_start)
                        if ret_code != code:
                            break
                        fd, index, fd_path = _descriptor(quick_args, fd_i, dir_i, fd_tables.get(pid))
                        ret_path = None
                        if opened is not None and error == 0 and retval >= 0:
                            if path is None:
                                break
                            ret_path = tables.open_path(pid, opened, quick_args, path)
                        ns = sec * 1_000_000_000 + frac
                        line = line_of(pid, tid, comm, sv_flags, code, abi, name, quick_args, fd, index, fd_path,
                                       path, data, error, retval, ret_path, ns,
                                       (end_sec - sec) * 1_000_000_000 + end_frac - frac)  # fmt: skip
                        if opened is not None:
                            tables.opened(pid, abi, opened, quick_args, error, retval, ret_path)
                        pos = ret_start + length
                        drop_logged = False
                        yield line  # the reader's offset is set when the run ends
                    skip_to(pos)
                following = next(rest, None)
                if following is None:
                    break
                record = following
            fetch = True
            # select's part: drops, the ABI records, -t, the payload; then
            # calls' part, the join, in the same branch of the record's type.
            if record.drop and not drop_logged:
                drop_logged = True
                yield Dropped(record)
            rtype = record.type
            if rtype == procctor or rtype == procdtor:
                last_pid = None  # its sv_flags may change
                if proc_sink is not None:
                    proc_sink(record)
                if rtype == procdtor:
                    procs.dtor(record.pid)
                elif len(record.payload) >= 4:
                    procs.ctor(record.pid, PROCCTOR.unpack_from(record.payload)[0])
                continue
            if not points & (1 << (rtype & 31)):
                continue
            drop_logged = False
            # Runs of one process's records are the rule: its sv_flags once per run.
            pid = record.pid
            if pid != last_pid:
                last_pid = pid
                sv_flags = sv_flags_of(pid, 0)
            payload: Any
            if rtype == sysret:
                try:
                    code, eosys, error, retval = ret_unpack(record.payload)
                    payload = Sysret(code, error, retval, eosys)
                except errors:
                    payload = None
                event: Any = shown((record, sv_flags, payload))
                pending = open_calls.pop(record.tid, None)
                if pending is not None and payload.__class__ is Sysret and pending.code == payload.code:
                    pending.end = event
                    if pending.name not in inert:
                        end(pending)
                    if not judged or wanted(pending):
                        yield pending
                else:
                    if pending is not None:
                        end(pending)
                        if not judged or wanted(pending):
                            yield pending
                    orphan = new_call(event, False)
                    end(orphan)
                    if not judged or wanted(orphan):
                        yield orphan
            elif rtype == syscall:
                try:
                    # kdump prints no arguments for a CALL whose count is zero or negative.
                    code, narg = call_head(record.payload)
                    if narg <= 0:
                        args: tuple[int, ...] = ()
                    else:
                        unpack = args_unpackers.get(narg)
                        if unpack is None:
                            unpack = layout.args_struct(narg).unpack_from
                            if narg <= 64:  # a damaged count gets no entry: the table stays small
                                args_unpackers[narg] = unpack
                        args = unpack(record.payload, call_size)
                    payload = Syscall(code, args)
                except errors:
                    payload = None
                event = shown((record, sv_flags, payload))
                previous = open_calls.pop(record.tid, None)
                if payload is not None:
                    plan = plans.get((sv_flags, code))
                    if plan is None:
                        plan = _plan(joiner, tables, sv_flags, code)
                        if len(plans) < 65536:  # bounded: a damaged trace may hold any numbers
                            plans[sv_flags, code] = plan
                    abi, name, fd_i, dir_i, special, no_return = plan
                    if special:
                        call = Call(pid, record.tid, sv_flags, abi, event, None, [], None, -1, None, None,
                                    None, code, name)  # fmt: skip
                        begin(call)
                    else:
                        # tables.begin, for the calls that only read their descriptor argument.
                        fd, index, fd_path = _descriptor(args, fd_i, dir_i, fd_tables.get(pid))
                        call = Call(pid, record.tid, sv_flags, abi, event, None, [], fd, index, fd_path, None,
                                    None, code, name)  # fmt: skip
                else:
                    call = new_call(event, True)
                    begin(call)
                    no_return = call.name in NO_RETURN
                if previous is not None:  # its RET never came (lost, or the thread was killed)
                    end(previous)
                    if not judged or wanted(previous):
                        yield previous
                if no_return:
                    end(call)
                    if not judged or wanted(call):
                        yield call
                else:
                    open_calls[record.tid] = call
            else:
                if rtype == namei:
                    payload = Namei(bytes(record.payload))
                elif rtype == genio:
                    try:
                        fd, rw = genio_head(record.payload)
                        payload = Genio(fd, rw, bytes(record.payload[genio_size:]))
                    except errors:
                        payload = None
                else:
                    fn = get(rtype)
                    if fn is None:
                        payload = None
                    else:
                        try:
                            payload = fn(record.payload)
                        except errors:
                            payload = None
                event = shown((record, sv_flags, payload))
                if rtype == struct_type:
                    snapshot_fdtable(event, tables)
                current = open_calls.get(record.tid)
                if current is not None:
                    current.parts.append(event)
                elif show_record(record) and (not active or flt.record_ok(record.comm_name, shown_ns(event))):
                    yield event
    except TraceFormatError as e:  # only the reader raises it in this loop
        # kdump notes a drop before it checks the record's length.
        if e.header is not None and e.header.drop and not drop_logged:
            yield Dropped(e.header)
        yield from drain_calls(joiner, flt, shows)
        raise
    yield from drain_calls(joiner, flt, shows)

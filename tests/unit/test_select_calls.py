"""select_calls gives exactly what calls(select(...)) gives: items, order, fields, and the error at the end."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from ktrace_cli.decode import stru
from ktrace_cli.decode.calls import Call
from ktrace_cli.decode.events import Dropped, select
from ktrace_cli.decode.fdtable import FdTables
from ktrace_cli.decode.filters import CallFilter
from ktrace_cli.decode.pipeline import TRACKED_POINTS, Clock, Shows
from ktrace_cli.decode.select_calls import select_calls
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.reader import TraceFormatError, TraceReader
from ktrace_cli.format.records import (
    Genio,
    Namei,
    Payload,
    ProcCtor,
    Record,
    Struct,
    Syscall,
    Sysret,
)
from tests.kdump_helpers import LINUX64, rec, trace_bytes
from tests.unit.calls_reference import calls

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"
A, B = 100001, 100002
OPENAT, READ, CLOSE, EXIT = 499, 3, 6, 1
ENOENT = 2
AT_FDCWD = (1 << 64) - 100


def _record(r: Record) -> tuple[Any, ...]:
    return (r.type, r.pid, r.tid, r.comm, r.sec, r.frac, bytes(r.payload), r.version, r.cpu, r.drop)


def _shown(s: Any) -> tuple[Any, ...] | None:
    return None if s is None else (_record(s.record), s.sv_flags, repr(s.payload))


def _item(item: Any) -> tuple[Any, ...]:
    """Everything a renderer or view reads of an item, as plain values."""
    if isinstance(item, Call):
        return ("call", item.pid, item.tid, item.sv_flags, item.abi, item.code, item.name, _shown(item.start),
                _shown(item.end), [_shown(p) for p in item.parts], item.fd, item.fd_index, item.fd_path,
                item.ret_path, item.selected, item.pair)  # fmt: skip
    if isinstance(item, Dropped):
        return ("dropped", _record(item.record))
    return ("shown", _shown(item))


def _run(data: bytes, fused: bool, flt: CallFilter, shows: Shows | None) -> tuple[list[Any], str | None, list[Any]]:
    """(the items, the error's class name or None, the PROCCTOR/PROCDTOR records the sink saw)."""
    reader = TraceReader(io.BytesIO(data))
    clock = Clock()
    seen: list[Any] = []

    def sink(r: Record) -> None:
        seen.append(_record(r))

    points = K.ALL_POINTS | TRACKED_POINTS
    if fused:
        stream = select_calls(reader, points, flt, FdTables(), clock, shows, proc_sink=sink)
    else:
        stream = calls(select(reader, points, None, clock=clock, proc_sink=sink), flt, FdTables(), clock, shows)
    items: list[Any] = []
    error = None
    try:
        for item in stream:
            items.append(_item(item))
    except TraceFormatError as e:
        error = type(e).__name__
    return items, error, seen


def _same(data: bytes, flt: CallFilter | None = None, shows: Shows | None = None) -> list[Any]:
    before = _run(data, False, flt or CallFilter(), shows)
    after = _run(data, True, flt or CallFilter(), shows)
    assert after == before
    return before[0]


def _linux_trace() -> list[Record]:
    """Two threads interleaved, a failed openat, a lost RET, an orphan RET, two drops, exit, a lone STRU."""
    return [
        rec(ProcCtor(LINUX64), tid=A),
        rec(Syscall(257, (AT_FDCWD, 0x1000, 0x80000)), tid=A),
        rec(Syscall(0, (3, 0x2000, 64)), tid=B),
        rec(Namei(b"/etc/hostname"), tid=A),
        rec(Sysret(257, 0, 3), tid=A),
        rec(Genio(3, K.UIO_READ, b"host\n"), tid=B),
        rec(Syscall(257, (AT_FDCWD, 0x1000, 0)), tid=A, drop=True),
        rec(Namei(b"/nonexistent"), tid=A),
        rec(Sysret(257, ENOENT, -1), tid=A),
        rec(Sysret(0, 0, 5), tid=B),
        rec(Syscall(3, (3,)), tid=A),  # close: its RET never comes
        rec(Syscall(0, (3, 0x2000, 64)), tid=A),
        rec(Sysret(1, 0, 7), tid=B, drop=True),  # a RET with no CALL, after more drops
        rec(Struct(b"sockaddr", b"\x01\x00/run/x\x00"), tid=B),
        rec(Syscall(231, (0,)), tid=B),  # exit_group: no RET
    ]


def test_linux_trace_items_match() -> None:
    items = _same(trace_bytes(_linux_trace()))
    # Calls come as they end (the close when A's next CALL comes, A's last
    # read at the end of the trace), the drop when its record is read.
    shape = [(i[0], i[6] if i[0] == "call" else None) for i in items]
    assert shape == [("call", "openat"), ("dropped", None), ("call", "openat"), ("call", "read"), ("call", "close"),
                     ("dropped", None), ("call", "write"), ("shown", None), ("call", "exit_group"), ("call", "read")]  # fmt: skip


def test_filters_and_shows_match() -> None:
    data = trace_bytes(_linux_trace())
    items = _same(data, CallFilter(failed=True))
    assert [i[6] for i in items if i[0] == "call"] == ["openat"]
    items = _same(data, shows=Shows(K.ALL_POINTS, frozenset((B,))))
    assert [i[6] for i in items if i[0] == "call"] == ["read", "write", "exit_group"]


def _damaged(payload: Payload, raw: bytes) -> Record:
    r = rec(payload, tid=A)
    r.payload = raw
    return r


def test_damaged_payloads_match() -> None:
    """CALLs and RETs whose bytes do not fit their layout: no payload, and the join copes."""
    records = [
        rec(ProcCtor(LINUX64), tid=A),
        _damaged(Syscall(0, ()), b"\x05\x00"),  # shorter than code and count
        _damaged(Syscall(0, ()), AMD64.syscall_fixed.pack(0, 1000) + b"\x00" * 16),  # a count past the end
        _damaged(Syscall(0, ()), AMD64.syscall_fixed.pack(39, -3)),  # a negative count: no arguments
        _damaged(Sysret(39, 0, 0), b"\x27\x00"),
        rec(Syscall(39, ()), tid=A),
        rec(Sysret(39, 0, 2035), tid=A),
    ]
    items = _same(trace_bytes(records))
    assert [(i[5], i[7] is None, i[8] is None) for i in items] == [
        (-1, False, True), (-1, False, True), (39, False, True), (-1, True, False), (39, False, False)
    ]


def test_damaged_tail_matches() -> None:
    data = trace_bytes(_linux_trace())
    before, error, _ = _run(data[:-7], False, CallFilter(), None)
    assert error == "DataTooShort" and before
    _same(data[:-7])


@pytest.mark.parametrize("name", sorted(p.name for p in REAL.iterdir() if (p / "ktrace.out").exists()))
def test_real_traces_match(name: str) -> None:
    data = (REAL / name / "ktrace.out").read_bytes()
    _same(data)


def test_descriptor_arguments_match() -> None:
    """The loop reads descriptor arguments itself for most calls: every kind of argument slot."""
    minus1 = (1 << 64) - 1
    records = [
        rec(ProcCtor(LINUX64), tid=A),
        rec(Syscall(257, (AT_FDCWD, 0x1000, 0)), tid=A),  # openat: a directory descriptor of AT_FDCWD
        rec(Namei(b"/etc"), tid=A),
        rec(Sysret(257, 0, 3), tid=A),
        rec(Syscall(257, (3, 0x1000, 0)), tid=A),  # openat relative to descriptor 3
        rec(Namei(b"hosts"), tid=A),
        rec(Sysret(257, 0, 4), tid=A),
        rec(Syscall(0, (4, 0x2000, 64)), tid=A),  # read(4): a known descriptor
        rec(Sysret(0, 0, 0), tid=A),
        rec(Syscall(0, (minus1, 0x2000, 64)), tid=A),  # read(-1): no descriptor
        rec(Sysret(0, 9, -1), tid=A),
        rec(Syscall(0, ()), tid=A),  # no argument slots at all
        rec(Sysret(0, 0, 0), tid=A),
        rec(Syscall(9, (0, 0x1000, 1, 2, 4, 0)), tid=A),  # mmap of descriptor 4
        rec(Sysret(9, 0, 0x7F0000000000), tid=A),
        rec(Syscall(9, (0, 0x1000, 3, 0x22, minus1, 0)), tid=A),  # anonymous mmap
        rec(Sysret(9, 0, 0x7F0000001000), tid=A),
        rec(Syscall(56, (0x11, 0, 0, 0, 0)), tid=A),  # clone, a fork: its child inherits the table
        rec(Sysret(56, 0, 7), tid=A),
        rec(ProcCtor(LINUX64), pid=7, tid=7),
        rec(Syscall(0, (4, 0x2000, 64)), pid=7, tid=7),
        rec(Sysret(0, 0, 0), pid=7, tid=7),
    ]
    items = _same(trace_bytes(records))
    fds = [(i[6], i[10], i[11], i[12], i[13]) for i in items if i[0] == "call"]
    assert fds == [
        ("openat", None, -1, None, "/etc"),
        ("openat", 3, 0, "/etc", "/etc/hosts"),
        ("read", 4, 0, "/etc/hosts", None),
        ("read", None, -1, None, None),
        ("read", None, -1, None, None),
        ("mmap", 4, 4, "/etc/hosts", None),
        ("mmap", None, -1, None, None),
        ("clone", None, -1, None, None),
        ("read", 4, 0, "/etc/hosts", None),
    ]


def test_fdpair_descriptors_match() -> None:
    """pipe2 and socketpair name their descriptors from pyktrace's STRU `fdpair`, in both loops."""
    records = [
        rec(ProcCtor(LINUX64), tid=A),
        rec(Syscall(293, (0x7FFC0000, 0)), tid=A),  # pipe2
        rec(Struct(b"fdpair", stru.FDPAIR.pack(3, 4, stru.FDPAIR_PIPE, 0, 4711, 4711)), tid=A),
        rec(Sysret(293, 0, 0), tid=A),
        rec(Syscall(53, (1, 1, 0, 0x7FFC0010)), tid=B),  # socketpair, its STRU interleaved with A's write
        rec(Syscall(1, (4, 0x2000, 4)), tid=A),
        rec(Struct(b"fdpair", stru.FDPAIR.pack(5, 6, stru.FDPAIR_SOCKET, 1, 81, 82)), tid=B),
        rec(Sysret(1, 0, 4), tid=A),
        rec(Sysret(53, 0, 0), tid=B),
        rec(Syscall(0, (6, 0x2000, 4)), tid=A),
        rec(Sysret(0, 0, 4), tid=A),
    ]
    items = _same(trace_bytes(records))
    assert [(i[6], i[10], i[12], i[15]) for i in items if i[0] == "call"] == [
        ("pipe2", None, None, ((3, "pipe:[4711]"), (4, "pipe:[4711]"))),
        ("write", 4, "pipe:[4711]", None),
        ("socketpair", None, None, ((5, "socket:[81]"), (6, "socket:[82]"))),
        ("read", 6, "socket:[82]", None),
    ]


def test_abi_change_mid_run_matches() -> None:
    """A PROCCTOR between two records of one process: the second gets the new ABI."""
    records = [
        rec(Syscall(3, (5, 0x2000, 64)), tid=A),  # before any PROCCTOR: FreeBSD numbering, read
        rec(Sysret(3, 0, 0), tid=A),
        rec(ProcCtor(LINUX64), tid=A),  # an exec into a Linux binary
        rec(Syscall(3, (5,)), tid=A),  # Linux numbering: close
        rec(Sysret(3, 0, 0), tid=A),
        rec(ProcCtor(0), tid=A),
        rec(Syscall(3, (5, 0x2000, 64)), tid=A),
        rec(Sysret(3, 0, 0), tid=A),
    ]
    items = _same(trace_bytes(records))
    assert [(i[3], i[6]) for i in items] == [(0, "read"), (LINUX64, "close"), (0, "read")]

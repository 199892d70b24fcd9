"""select_calls' quick path (--calls text) prints exactly what its general path prints.

The quick path frames plain calls from the reader's buffer and builds their
lines from fields; the general path builds Records, payloads, Shown tuples and
Calls and renders those.  Each trace here is printed both ways, whole, and
compared; each also checks that the quick path did print some of the lines,
so that a quick path never taken cannot pass for an equal one.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from ktrace_cli.decode.calls import Call
from ktrace_cli.decode.fdtable import FdTables
from ktrace_cli.decode.filters import CallFilter
from ktrace_cli.decode.pipeline import TRACKED_POINTS, Clock, Shows
from ktrace_cli.decode.select_calls import select_call_lines, select_calls
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, FDPAIR, FDPAIR_PIPE, I386, Arch
from ktrace_cli.format.reader import TraceFormatError, TraceReader
from ktrace_cli.format.records import Genio, Namei, ProcCtor, Psig, Record, Struct, Syscall, Sysret
from ktrace_cli.render.calls_text import CallsText
from ktrace_cli.render.options import KdumpOptions
from tests.kdump_helpers import FREEBSD64, LINUX64, rec, trace_bytes

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"
A, B = 100001, 100002
AT_FDCWD = (1 << 64) - 100
MINUS1 = (1 << 64) - 1
ENOENT, EBADF = 2, 9
# Linux x86-64 numbers
READ, WRITE, CLOSE, MMAP, OPENAT, EXIT_GROUP, DUP, PIPE2 = 0, 1, 3, 9, 257, 231, 32, 293
OPTIONS = {
    "plain": KdumpOptions(),
    "-H": KdumpOptions(tid=True),
    "-T": KdumpOptions(timestamps=True),
    "-n": KdumpOptions(fancy=False),
    "-H -T -n -d": KdumpOptions(tid=True, timestamps=True, fancy=False, decimal=True),
}


def _print(data: bytes, options: KdumpOptions, quick: bool) -> tuple[str, int, dict[int, dict[int, tuple[str, bool]]]]:
    """(the --calls text, the lines the quick path made, the descriptor tables at the end)."""
    reader = TraceReader(io.BytesIO(data))
    tables = FdTables()
    views: list[CallsText] = []

    def make(arch: Arch) -> object:
        views.append(CallsText(options, arch))
        return views[0].text.quick

    points = options.points | TRACKED_POINTS
    if quick:
        stream = select_call_lines(reader, points, CallFilter(), tables, Clock(), Shows(), quick=make)  # type: ignore[arg-type]
    else:
        stream = select_calls(reader, points, CallFilter(), tables, Clock(), Shows())
    out: list[str] = []
    made = 0
    try:
        for item in stream:
            if not views:
                views.append(CallsText(options, reader.arch or AMD64))
            if isinstance(item, str):
                made += 1
                out.append(item)
            else:
                out.append(views[0].line(item) if isinstance(item, Call) else views[0].render(item))
    except TraceFormatError as e:
        out.append(f"error: {e.message}\n")
    fds = {pid: {fd: (e.path, e.cloexec) for fd, e in t.fds.items()} for pid, t in tables.tables.items()}
    return "".join(out), made, fds


def _same(data: bytes) -> int:
    """Both paths' output under every option set; the quick path's line count under the first."""
    counts = []
    for options in OPTIONS.values():
        general, none, general_fds = _print(data, options, False)
        quick, made, quick_fds = _print(data, options, True)
        assert none == 0
        assert quick == general
        assert quick_fds == general_fds
        counts.append(made)
    return counts[0]


def _round(i: int, tid: int, pid: int = 2035) -> list[Record]:
    """An openat (failing one time in three), a read of what it opened, a write, a close."""
    fd = 3 + i % 2
    opened = i % 3 != 2
    common: dict[str, Any] = {"tid": tid, "pid": pid, "sec": 1700000000 + i, "frac": 1000 * i}
    later: dict[str, Any] = {"tid": tid, "pid": pid, "sec": 1700000000 + i, "frac": 1000 * i + 4_321_000 * (i % 2)}
    return [
        rec(Syscall(OPENAT, (AT_FDCWD, 0x1000 + i % 2, 0x80000 * (i % 2), 0)), **common),
        rec(Namei(b"/etc/hosts" if i % 2 else b"/etc/passwd"), **common),
        rec(Sysret(OPENAT, 0, fd) if opened else Sysret(OPENAT, ENOENT, -1), **later),
        rec(Syscall(READ, (fd, 0x2000, 4096)), **common),
        rec(Genio(fd, K.UIO_READ, b"root:x:0:0\n" * (1 + i % 4)), **common),
        rec(Sysret(READ, 0, 11) if opened else Sysret(READ, EBADF, -1), **later),
        rec(Syscall(WRITE, (1, 0x2000, 11)), **common),
        rec(Genio(1, K.UIO_WRITE, b"root:x:0:0\n"), **common),
        rec(Sysret(WRITE, 0, 11), **common),
        rec(Syscall(CLOSE, (fd,)), **common),
        rec(Sysret(CLOSE, 0, 0), **common),
    ]


def test_plain_rounds() -> None:
    records = [rec(ProcCtor(LINUX64), tid=A)]
    for i in range(12):
        records += _round(i, A)
    assert _same(trace_bytes(records)) > 12


def test_pipe_descriptors_from_fdpair() -> None:
    """pipe2's STRU fdpair takes it to the general path; the writes on its descriptors after
    it are quick and show the pipe's path as the general path does."""
    pair = FDPAIR.pack(5, 6, FDPAIR_PIPE, 0, 4711, 4711)
    records = [
        rec(ProcCtor(LINUX64), tid=A),
        rec(Syscall(PIPE2, (0x7FFC0000, 0x80000)), tid=A),
        rec(Struct(b"fdpair", pair), tid=A),
        rec(Sysret(PIPE2, 0, 0), tid=A),
    ]
    for _ in range(6):
        records += [rec(Syscall(WRITE, (6, 0x2000, 4)), tid=A), rec(Genio(6, K.UIO_WRITE, b"ping"), tid=A),
                    rec(Sysret(WRITE, 0, 4), tid=A)]  # fmt: skip
    assert _same(trace_bytes(records)) > 0  # some of the writes went the quick way
    quick, _made, fds = _print(trace_bytes(records), OPTIONS["plain"], True)
    assert fds == {2035: {5: ("pipe:[4711]", True), 6: ("pipe:[4711]", True)}}
    assert 'write(6<pipe:[4711]>,"ping",0x4) = 4' in quick


def test_every_way_out_of_the_quick_path() -> None:
    """Each record that the quick path leaves to the general one, between plain calls."""
    records = [rec(ProcCtor(LINUX64), tid=A), rec(ProcCtor(FREEBSD64), pid=7, tid=7)]
    for i in range(4):
        records += _round(i, A)
    odd = [
        # Two threads interleaved: B's CALL between A's CALL and its RET.
        rec(Syscall(READ, (3, 0x2000, 64)), tid=A),
        rec(Syscall(READ, (4, 0x2000, 64)), tid=B),
        rec(Sysret(READ, 0, 0), tid=A),
        rec(Sysret(READ, 0, 0), tid=B),
        # A drop bit on a CALL, then on a part, then on a RET.
        rec(Syscall(READ, (3, 0x2000, 64)), tid=A, drop=True),
        rec(Sysret(READ, 0, 0), tid=A),
        rec(Syscall(READ, (3, 0x2000, 64)), tid=A),
        rec(Genio(3, K.UIO_READ, b"x"), tid=A, drop=True),
        rec(Sysret(READ, 0, 1), tid=A),
        rec(Syscall(READ, (3, 0x2000, 64)), tid=A),
        rec(Sysret(READ, 0, 1), tid=A, drop=True),
        # v0 headers.
        rec(Syscall(READ, (3, 0x2000, 64)), tid=A, version=0),
        rec(Sysret(READ, 0, 0), tid=A, version=0),
        rec(Syscall(READ, (3, 0x2000, 64)), tid=A),
        rec(Sysret(READ, 0, 0), tid=A, version=0),
        # A RET of another call, and a RET with no CALL.
        rec(Syscall(READ, (3, 0x2000, 64)), tid=A),
        rec(Sysret(WRITE, 0, 0), tid=A),
        rec(Sysret(READ, 0, 0), tid=A),
        # Two parts, a STRU, a PSIG inside a call.
        rec(Syscall(READ, (3, 0x2000, 64)), tid=A),
        rec(Genio(3, K.UIO_READ, b"a" * 40), tid=A),
        rec(Genio(3, K.UIO_READ, b"b" * 40), tid=A),
        rec(Sysret(READ, 0, 80), tid=A),
        rec(Syscall(READ, (3, 0x2000, 64)), tid=A),
        rec(Struct(b"sockaddr", b"\x01\x00/run/x\x00"), tid=A),
        rec(Sysret(READ, 0, 0), tid=A),
        rec(Syscall(READ, (3, 0x2000, 64)), tid=A),
        rec(Psig(14, 0, 0), tid=A),
        rec(Sysret(READ, K.ERESTART, 0), tid=A),
        # An open with no NAMI, an open relative to a descriptor, dup (changes descriptors).
        rec(Syscall(OPENAT, (AT_FDCWD, 0x1000, 0, 0)), tid=A),
        rec(Sysret(OPENAT, 0, 5), tid=A),
        rec(Syscall(OPENAT, (AT_FDCWD, 0x1000, 0, 0)), tid=A),
        rec(Namei(b"/usr"), tid=A),
        rec(Sysret(OPENAT, 0, 6), tid=A),
        rec(Syscall(OPENAT, (6, 0x1000, 0, 0)), tid=A),
        rec(Namei(b"lib"), tid=A),
        rec(Sysret(OPENAT, 0, 7), tid=A),
        rec(Syscall(DUP, (7,)), tid=A),
        rec(Sysret(DUP, 0, 8), tid=A),
        rec(Syscall(READ, (8, 0x2000, 64)), tid=A),
        rec(Sysret(READ, 0, 0), tid=A),
        # No arguments, mmap (special), a short GIO, a zero and a negative duration.
        rec(Syscall(39, ()), tid=A),
        rec(Sysret(39, 0, 2035), tid=A),
        rec(Syscall(MMAP, (0, 0x1000, 1, 2, 7, 0)), tid=A),
        rec(Sysret(MMAP, 0, 0x7F0000000000), tid=A),
        rec(Syscall(READ, (7, 0x2000, 64)), tid=A),
        rec(Genio(7, K.UIO_READ, b""), tid=A),
        rec(Sysret(READ, 0, 0), tid=A, sec=1700000000, frac=123456789),
        rec(Syscall(READ, (7, 0x2000, 64)), tid=A, sec=1700000001, frac=0),
        rec(Sysret(READ, 0, 0), tid=A, sec=1700000000, frac=0),
        # Another process, a FreeBSD one, and large results (shown in hex for mmap).
        rec(Syscall(3, (5, 0x2000, 64)), pid=7, tid=7),
        rec(Sysret(3, 0, 1 << 40), pid=7, tid=7),
        rec(Syscall(MMAP, (0, 0x1000, 3, 0x22, MINUS1, 0)), tid=A),
        rec(Sysret(MMAP, 0, 0x7F0000001000), tid=A),
        # exit_group: no RET.
        rec(Syscall(EXIT_GROUP, (0,)), tid=B),
    ]
    # Each odd case twice: the second time the quick path's caches are warm.
    records += odd + _round(5, A) + odd + _round(6, A) + [rec(Syscall(READ, (3, 0x2000, 64)), tid=A)]
    data = trace_bytes(records)
    assert _same(data) > 8
    _same(data[:-7])  # a torn last record


def test_i386() -> None:
    records = [rec(ProcCtor(K.SV_ABI_FREEBSD | K.SV_ILP32), tid=A, arch=I386)]
    for i in range(6):
        records += [
            rec(Syscall(5, (0x1000, 0)), tid=A, arch=I386),  # open
            rec(Namei(b"/etc/hosts"), tid=A, arch=I386),
            rec(Sysret(5, 0, 3 + i % 2), tid=A, arch=I386),
            rec(Syscall(3, (3 + i % 2, 0x2000, 64)), tid=A, arch=I386),
            rec(Genio(3 + i % 2, K.UIO_READ, b"127.0.0.1 localhost\n"), tid=A, arch=I386),
            rec(Sysret(3, 0, 20), tid=A, arch=I386),
        ]
    assert _same(trace_bytes(records, I386)) > 6


@pytest.mark.parametrize("name", sorted(p.name for p in REAL.iterdir() if (p / "ktrace.out").exists()))
def test_real_traces(name: str) -> None:
    _same((REAL / name / "ktrace.out").read_bytes())

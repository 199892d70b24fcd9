"""The C loop's record packers and thread slots (trace/fastloop.c), against the Python writer."""

from __future__ import annotations

import ctypes
import os
import random
import shutil
from pathlib import Path

import pytest

from ktrace_cli.format import constants as K
from ktrace_cli.format.writer import TraceFile
from ktrace_cli.trace import convert, fastloop
from ktrace_cli.trace.rules import rules
from ktrace_cli.trace.tracee import comm_field

if fastloop.library_path() is None:
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler: the C loop is not built (the engine runs its Python loop)",
                    allow_module_level=True)  # fmt: skip
    pytest.fail("the C loop is not built: `make` (pip install -e) builds it with gcc", pytrace=False)


@pytest.fixture
def fast() -> fastloop.FastLoop:
    r = rules()
    loop = fastloop.FastLoop(ctypes.CDLL(fastloop.library_path()), r.narg, convert.errno_map(), r.plain_stops)
    lib = loop.lib
    lib.kt_put_syscall.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_int,
                                   ctypes.POINTER(ctypes.c_uint64)]  # fmt: skip
    lib.kt_put_sysret.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_int,
                                  ctypes.c_int64]  # fmt: skip
    return loop


def slot(fast: fastloop.FastLoop, tid: int, tgid: int, comm: bytes, fi: int) -> int:
    """A slot for `tid` writing to file `fi`; its address."""
    s = fast.lib.kt_slot(fast.st, tid)
    assert s >= 0
    off = s * fastloop.SLOT_SIZE
    fastloop.SLOT.pack_into(fast.slots, off, tid, tgid, fi, 0, K.KTRFAC_SYSCALL | K.KTRFAC_SYSRET, 24, 1, 0, 0, 0,
                            -1, 0, *fastloop.NO_ARGS, comm, 0, 0, 0)  # fmt: skip
    return fast.lib.kt_slots(fast.st) + off


NS = [0, 1_700_000_000_123_456_789, 1_999_999_999_999_999_999, 5_000_000_999]
COMMS = [b"", b"sh", b"a-nineteen-char-cmd", b"longer-than-nineteen-chars"]


@pytest.mark.parametrize("version", [K.KTR_VERSION0, K.KTR_VERSION1])
def test_c_records_are_the_python_packers_bytes(fast: fastloop.FastLoop, tmp_path: Path, version: int) -> None:
    """CALL with 0..6 arguments and RET with errors, FreeBSD's negative codes and negative returns,
    v0 headers (microseconds) and v1, full and truncated comms: byte for byte."""
    py = TraceFile(os.open(tmp_path / "py", os.O_WRONLY | os.O_CREAT), version)
    c = TraceFile(os.open(tmp_path / "c", os.O_WRONLY | os.O_CREAT), version)
    fi = fast._open(c)
    rnd = random.Random(8)
    for i, (ns, name) in enumerate((ns, name) for ns in NS for name in COMMS):
        comm = comm_field(name)
        tid, tgid = 1000 + i, 999 + (i % 3)
        addr = slot(fast, tid, tgid, comm, fi)
        for narg in range(7):
            args = tuple(rnd.getrandbits(64) for _ in range(6))
            nr = rnd.randrange(1024)
            py.syscall(tgid, tid, comm, ns, nr, narg, args)
            assert fast.lib.kt_put_syscall(fast.st, addr, ns, nr, narg, (ctypes.c_uint64 * 6)(*args)) == 0
        for error, rval in [(0, 0), (0, 5), (35, 0), (2, 0), (K.ERESTART, 0), (K.EJUSTRETURN, 0), (0, -5),
                            (0, (1 << 63) - 1), (0, -(1 << 63)), (4095, 0)]:  # fmt: skip
            nr = rnd.randrange(1024)
            py.sysret(tgid, tid, comm, ns, nr, error, rval)
            assert fast.lib.kt_put_sysret(fast.st, addr, ns, nr, error, rval) == 0
    assert fast.drain()
    assert len(c.buf) > 0 and bytes(c.buf) == bytes(py.buf)
    assert not fast.drain()  # drained once
    py.close()
    fast.forget_file(c)
    c.close()


def test_two_files_drain_into_their_own_buffers_in_order(fast: fastloop.FastLoop, tmp_path: Path) -> None:
    files = [TraceFile(os.open(tmp_path / f"f{i}", os.O_WRONLY | os.O_CREAT)) for i in range(2)]
    addrs = [slot(fast, 50 + i, 50 + i, comm_field(b"t"), fast._open(tf)) for i, tf in enumerate(files)]
    files[0].buf += b"python's record first"
    for n in range(3):
        for addr in addrs:
            assert fast.lib.kt_put_sysret(fast.st, addr, 10, n, 0, n) == 0
    fast.drain()
    for tf in files:
        rets = [bytes(tf.buf[i + 64 : i + 80]) for i in range(len(tf.buf) % 80, len(tf.buf), 80)]
        assert [int.from_bytes(r[8:], "little") for r in rets] == [0, 1, 2]
    assert files[0].buf.startswith(b"python's record first")
    for tf in files:
        fast.forget_file(tf)
        tf.close()


class _FlushMidCopy(bytearray):
    """A buffer whose first append runs a drain first, as the flush timer's handler
    (table.flush_all) does when SIGALRM lands in the middle of the loop's drain."""

    def __init__(self, fast: fastloop.FastLoop) -> None:
        super().__init__()
        self.fast = fast
        self.interrupted = False

    def __iadd__(self, data: object) -> _FlushMidCopy:
        if not self.interrupted:
            self.interrupted = True
            self.fast.drain()
        self.extend(data)  # type: ignore[arg-type]
        return self


def test_a_drain_interrupted_by_the_flush_timer_copies_each_record_once(fast: fastloop.FastLoop,
                                                                         tmp_path: Path) -> None:  # fmt: skip
    tf = TraceFile(os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT))
    addr = slot(fast, 70, 70, comm_field(b"t"), fast._open(tf))
    tf.buf = _FlushMidCopy(fast)
    for n in range(3):
        assert fast.lib.kt_put_sysret(fast.st, addr, 10, n, 0, n) == 0
    assert fast.drain()
    assert tf.buf.interrupted
    rets = [bytes(tf.buf[i + 64 : i + 80]) for i in range(0, len(tf.buf), 80)]
    assert [int.from_bytes(r[8:], "little") for r in rets] == [0, 1, 2]
    fast.forget_file(tf)
    tf.close()


def test_slots_survive_many_threads_coming_and_going(fast: fastloop.FastLoop) -> None:
    """Open addressing with backward-shift deletion: each live tid keeps its slot, a gone one is forgotten."""
    rnd = random.Random(3)
    live: dict[int, int] = {}
    for _ in range(20):
        for tid in rnd.sample(range(1, 1 << 22), 500):
            if tid not in live:
                live[tid] = fast.lib.kt_slot(fast.st, tid)
        for tid in rnd.sample(sorted(live), 400):
            fast.lib.kt_drop(fast.st, tid)
            del live[tid]
        for tid, s in live.items():
            assert fast.lib.kt_slot(fast.st, tid) == s
            assert int.from_bytes(fast.slots[s * fastloop.SLOT_SIZE : s * fastloop.SLOT_SIZE + 4], "little") == tid
    assert len(set(live.values())) == len(live)


def test_a_library_built_from_other_sources_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A .so left from older sources (an editable install not rebuilt) would misread the
    slots: the engine runs its Python loop instead."""
    r = rules()
    assert fastloop.load(r.narg, convert.errno_map(), r.plain_stops) is not None

    real = ctypes.CDLL

    class Stale:
        def __init__(self, path: str) -> None:
            self.lib = real(path)

        def __getattr__(self, name: str) -> object:
            return (lambda: fastloop.INTERFACE - 1) if name == "kt_interface" else getattr(self.lib, name)

    monkeypatch.setattr(fastloop.ctypes, "CDLL", Stale)
    assert fastloop.load(r.narg, convert.errno_map(), r.plain_stops) is None

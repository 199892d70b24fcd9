"""Records lost for lack of descriptors are never lost silently (security.md F5)."""

from __future__ import annotations

import errno
import logging
import os
import struct
from pathlib import Path

import pytest

from ktrace_cli.format import constants as K
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.writer import TraceFile
from ktrace_cli.trace import memory
from ktrace_cli.trace.memory import ProcMem

COMM = b"x".ljust(K.MAXCOMLEN + 1, b"\0")


@pytest.mark.parametrize("version", [0, 1])
def test_the_next_record_of_the_process_that_lost_one_carries_ktr_drop(tmp_path: Path, version: int) -> None:
    path = tmp_path / "t.out"
    tf = TraceFile(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND), version)
    tf.record(K.KTR_PROCDTOR, 5, 5, COMM, 1, b"")
    tf.mark_drop(7)
    tf.record(K.KTR_PROCDTOR, 5, 5, COMM, 2, b"")
    tf.flush()  # nothing of pid 7 yet: the mark waits for its next record
    tf.record(K.KTR_PROCDTOR, 7, 7, COMM, 3, b"")
    tf.record(K.KTR_PROCDTOR, 7, 7, COMM, 4, b"")
    tf.flush()
    tf.close()
    assert headers(path.read_bytes(), 64 if version else 56) == [
        (5, K.KTR_PROCDTOR), (5, K.KTR_PROCDTOR), (7, K.KTR_PROCDTOR | K.KTR_DROP), (7, K.KTR_PROCDTOR)]  # fmt: skip
    if version:
        with open(path, "rb") as f:
            assert [r.drop for r in iter_records(f)] == [False, False, True, False]


def headers(data: bytes, size: int) -> list[tuple[int, int]]:
    """(ktr_pid, ktr_type without KTR_VERSIONED) of every record."""
    out, off = [], 0
    while off < len(data):
        length, rtype, pid = struct.unpack_from("<ih2xi", data, off)
        out.append((pid, rtype & ~K.KTR_VERSIONED & 0xFFFF))
        off += size + length
    return out


def test_a_mem_descriptor_that_cannot_be_opened_is_reported_once_and_retried(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    real_open = os.open
    short = [True]

    def fake_open(path: str, flags: int, *args: object, **kw: object) -> int:
        if short[0] and str(path).endswith("/mem"):
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(memory.os, "open", fake_open)
    losses: list[int] = []
    pid = os.getpid()
    with caplog.at_level(logging.WARNING, logger="pyktrace.engine"):
        mem = ProcMem(pid, lambda: losses.append(1))
        assert mem.read(id(mem), 8) == b"" and mem.read_path(id(mem)) is None
        short[0] = False
        data = b"in memory\0"
        buf = __import__("ctypes").create_string_buffer(data)
        assert mem.read_path(__import__("ctypes").addressof(buf)) == b"in memory"
    mem.close()
    assert losses == [1, 1]  # each read that found no descriptor (it is opened at the first read)
    assert [r.getMessage() for r in caplog.records] == [
        f"pid {pid}: cannot open /proc/{pid}/mem: Too many open files; records needing its memory "
        "are lost (marked KTR_DROP)"]  # fmt: skip


def test_a_process_that_is_gone_is_not_a_loss() -> None:
    losses: list[int] = []
    mem = ProcMem(0x7FFFFFF0, lambda: losses.append(1))
    assert mem.read(0x1000, 8) == b""
    assert losses == []


def test_mem_is_opened_at_the_first_read_and_again_after_each_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    """No descriptor for a process whose memory is never read (a shell's child that only execs, `-t c`)."""
    real_open = os.open
    opened: list[str] = []

    def counting_open(path: str, flags: int, *args: object, **kw: object) -> int:
        opened.append(str(path))
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(memory.os, "open", counting_open)
    pid = os.getpid()
    buf = __import__("ctypes").create_string_buffer(b"here\0")
    addr = __import__("ctypes").addressof(buf)
    mem = ProcMem(pid)
    assert (opened, mem.fd) == ([], -1)
    mem.reopen(pid)  # an exec before any read: still nothing to open
    assert opened == []
    assert (mem.read_path(addr), mem.read(addr, 4)) == (b"here", b"here")
    assert opened == [f"/proc/{pid}/mem"]  # one open serves every later read
    mem.reopen(pid)
    assert mem.fd == -1 and mem.read(addr, 4) == b"here"
    assert opened == [f"/proc/{pid}/mem"] * 2
    mem.close()
    gone = ProcMem(0x7FFFFFF0)
    assert (gone.read(0x1000, 8), gone.read(0x1000, 8), gone.read_path(0x1000)) == (b"", b"", None)
    assert opened[2:] == ["/proc/2147483632/mem"]  # a process that is gone is not asked again


def test_a_status_file_that_cannot_be_opened_marks_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    from ktrace_cli.trace import tracee

    real_open = os.open

    def fake_open(path: str, flags: int, *args: object, **kw: object) -> int:
        if str(path).endswith("/status"):
            raise OSError(errno.ENFILE, os.strerror(errno.ENFILE))
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    tf = TraceFile(os.open(tmp_path / "t.out", os.O_WRONLY | os.O_CREAT | os.O_APPEND))
    pid = os.getpid()
    p = tracee.Proc(pid, K.KTRFAC_CSW, tf)
    t = tracee.Thread(pid, p)
    monkeypatch.setattr(tracee.os, "open", fake_open)
    with caplog.at_level(logging.WARNING, logger="pyktrace.engine"):
        assert (t.read_nvcsw(), t.read_nvcsw()) == (-1, -1)
    assert tf.dropped == {pid}
    assert [r.getMessage() for r in caplog.records] == [
        f"pid {pid}: cannot open /proc/{pid}/task/{pid}/status: Too many open files in system; its "
        "context-switch records are lost (marked KTR_DROP)"]  # fmt: skip
    p.mem.close()
    tf.close()

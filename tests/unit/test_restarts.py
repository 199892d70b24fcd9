"""trace/restarts.py: the RET of an interrupted call, and a call only the tracer saw interrupted.

A thread's waiting RET is driven through the stops that follow it, as the
engine meets them; the records written are read back from the trace file.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrace_cli.abi import linux, linux_i386
from ktrace_cli.format import constants as K
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.writer import TraceFile
from ktrace_cli.trace import restarts, tracee

READ = linux.syscall_number("read")
NANOSLEEP = linux.syscall_number("nanosleep")
HANDLER = 0x401000  # a caught signal's handler address


@pytest.fixture
def thread(tmp_path: Path) -> Iterator[tracee.Thread]:
    tf = TraceFile(os.open(tmp_path / "t.out", os.O_WRONLY | os.O_CREAT | os.O_APPEND))
    p = tracee.Proc(os.getpid(), K.KTRFAC_SYSCALL | K.KTRFAC_SYSRET, tf)
    t = tracee.Thread(os.getpid(), p, b"prog")
    yield t
    p.mem.close()
    tf.close()


def _interrupted(t: tracee.Thread, nr: int, code: int) -> None:
    """t's call `nr` came back with Linux's restart `code`: its RET waits."""
    t.nr, t.args, t.insys = nr, (3, 0x1000, 1, 0, 0, 0), False
    t.restart_ret = (nr, code, 123)


def _rets(t: tracee.Thread) -> list[tuple[int, int]]:
    """(call, FreeBSD error) of each RET written."""
    tf = t.proc.file
    assert tf is not None
    tf.flush()
    out = []
    for r in iter_records(os.readlink(f"/proc/self/fd/{tf.fd}")):
        assert r.type == K.KTR_SYSRET
        out.append((int.from_bytes(r.payload[:2], "little"), int.from_bytes(r.payload[4:8], "little", signed=True)))
    return out


@pytest.mark.parametrize("sig", [signal.SIGCHLD, signal.SIGWINCH, signal.SIGURG, signal.SIGCONT])
def test_an_ignored_signal_then_the_call_again_writes_nothing(thread: tracee.Thread, sig: int) -> None:
    _interrupted(thread, READ, restarts.ERESTARTSYS)
    assert restarts.delivered(thread, sig) is False
    assert restarts.reentered(thread, READ, restarts.NR_RESTART_SYSCALL) is True
    # Back in the first call: its exit writes its RET under its number.
    assert (thread.restart_ret, thread.insys, thread.nr, thread.args) == (None, True, READ, (3, 0x1000, 1, 0, 0, 0))
    assert _rets(thread) == []


def test_sig_ign_is_ignored_too(thread: tracee.Thread) -> None:
    thread.proc.handlers[signal.SIGUSR1] = tracee.SIG_IGN
    _interrupted(thread, READ, restarts.ERESTARTSYS)
    assert restarts.delivered(thread, signal.SIGUSR1) is False
    assert restarts.reentered(thread, READ, restarts.NR_RESTART_SYSCALL) is True
    assert _rets(thread) == []


def test_restart_syscall_continues_a_restartblock_call(thread: tracee.Thread) -> None:
    _interrupted(thread, NANOSLEEP, restarts.ERESTART_RESTARTBLOCK)
    restarts.delivered(thread, signal.SIGCHLD)
    assert restarts.reentered(thread, restarts.NR_RESTART_SYSCALL, restarts.NR_RESTART_SYSCALL) is True
    assert (thread.nr, _rets(thread)) == (NANOSLEEP, [])


def test_a_caught_signal_after_an_ignored_one_decides(thread: tracee.Thread) -> None:
    # Both delivered in one return to user mode: the handler's (no SA_RESTART) makes it EINTR.
    thread.proc.handlers[signal.SIGALRM] = HANDLER
    _interrupted(thread, READ, restarts.ERESTARTSYS)
    restarts.delivered(thread, signal.SIGCHLD)
    assert restarts.delivered(thread, signal.SIGALRM) is True
    assert (thread.restart_ret, thread.quiet_restart) == (None, False)
    assert _rets(thread) == [(READ, restarts.EINTR)]


def test_a_caught_signal_alone_still_writes_its_ret(thread: tracee.Thread) -> None:
    thread.proc.handlers[signal.SIGALRM] = HANDLER
    thread.proc.sa_restart.add(signal.SIGALRM)
    _interrupted(thread, READ, restarts.ERESTARTSYS)
    assert restarts.delivered(thread, signal.SIGALRM) is True
    assert _rets(thread) == [(READ, K.ERESTART)]


def test_another_call_after_an_ignored_signal_is_not_taken_for_it(thread: tracee.Thread) -> None:
    # (A call the seccomp filter lets run without a stop restarted unseen.)
    _interrupted(thread, READ, restarts.ERESTARTSYS)
    restarts.delivered(thread, signal.SIGCHLD)
    write = linux.syscall_number("write")
    assert restarts.reentered(thread, write, restarts.NR_RESTART_SYSCALL) is False
    assert (thread.restart_ret, thread.quiet_restart) == (None, False)
    assert _rets(thread) == [(READ, K.ERESTART)]


def test_no_signal_at_all_is_a_restart_as_before(thread: tracee.Thread) -> None:
    # Interrupted without a signal (the tracer's own attach, a freezer): RESTART, then the new CALL.
    _interrupted(thread, READ, restarts.ERESTARTSYS)
    assert restarts.reentered(thread, READ, restarts.NR_RESTART_SYSCALL) is False
    assert _rets(thread) == [(READ, K.ERESTART)]


def test_restart_syscall_numbers_are_linuxs() -> None:
    assert restarts.NR_RESTART_SYSCALL == linux.syscall_number("restart_syscall")
    assert restarts.NR32_RESTART_SYSCALL == linux_i386.syscall_number("restart_syscall")

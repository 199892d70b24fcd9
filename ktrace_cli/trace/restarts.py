"""The RET of a call a signal interrupted: EINTR or RESTART, as the program sees it.

At the syscall-exit stop Linux reports one of its internal restart codes; it
decides only while delivering the signal whether the program sees EINTR or
the call runs again. FreeBSD records what syscallret() returns: EINTR when
the call fails, ERESTART when the kernel restarts it. So the RET waits
(Thread.restart_ret) for the thread's next stop: a signal-delivery stop
decides from the handler and its SA_RESTART, the next syscall entry (the
call again, or restart_syscall) or the thread's end means it restarted.

A signal the program ignores (SIG_IGN, or a default action of nothing)
interrupts a call only because the process is ptraced: Linux discards such
a signal when it is sent to an untraced process, FreeBSD always does, and
the bpf engine's tracee never sees it. Its delivery stop decides nothing;
if the call then simply runs again, the program never knew: no RET, no
second CALL, the call goes on as the one first recorded.
"""

from __future__ import annotations

from ktrace_cli.format import constants as K
from ktrace_cli.format.writer import SYSRET
from ktrace_cli.trace.signals import DEFAULT_IGNORED
from ktrace_cli.trace.tracee import HANDLER_UNKNOWN, SIG_DFL, SIG_IGN, Thread

# Linux's restart codes (include/linux/errno.h), as -rax at syscall exit.
ERESTARTSYS = 512  # restart unless the handler lacks SA_RESTART
ERESTARTNOINTR = 513  # always restart
ERESTARTNOHAND = 514  # restart only when no handler runs
ERESTART_RESTARTBLOCK = 516  # like ERESTARTNOHAND, restarted through restart_syscall
RESTART_ERRNOS = frozenset({ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK})
EINTR = 4  # the same number under FreeBSD and Linux
# restart_syscall, which resumes an ERESTART_RESTARTBLOCK call (x86_64, i386 numbers).
NR_RESTART_SYSCALL = 219
NR32_RESTART_SYSCALL = 0
SA_RESTART = 0x10000000


def outcome(linux_errno: int, handler: int, sa_restart: bool) -> int:
    """The FreeBSD error of the RET when a signal with `handler` is delivered."""
    if handler in (SIG_DFL, SIG_IGN) or linux_errno == ERESTARTNOINTR:
        return K.ERESTART  # no handler runs: the kernel restarts every one of them
    if linux_errno == ERESTARTSYS and sa_restart:
        return K.ERESTART
    return EINTR


def ignored(t: Thread, sig: int) -> bool:
    """Whether the program ignores `sig`: only its tracer sees it delivered."""
    handler = t.proc.handlers.get(sig, SIG_DFL)
    return handler == SIG_IGN or (handler == SIG_DFL and sig in DEFAULT_IGNORED)


def delivered(t: Thread, sig: int) -> bool:
    """A signal-delivery stop of `t` while its RET waits. True if the RET was written."""
    if ignored(t, sig):
        t.quiet_restart = True  # the next stop decides (another signal, or the call again)
        return False
    return settle(t, sig)


def reentered(t: Thread, nr: int, restart_nr: int) -> bool:
    """A syscall entry of `t` (call `nr`) while its RET waits; `restart_nr` is
    restart_syscall's number under the entry's ABI.

    True if it is the call an ignored signal interrupted, run again: nothing
    is written, and `t` is back in that call (its number, arguments and
    entry time as recorded). Else the waiting RET is written (RESTART) and
    the entry is a call of its own.
    """
    pending = t.restart_ret
    if t.quiet_restart and pending is not None and (
        nr == pending[0] or (pending[1] == ERESTART_RESTARTBLOCK and nr == restart_nr)
    ):
        t.quiet_restart = False
        t.restart_ret = None
        t.insys = True
        return True
    settle(t, 0)
    return False


def settle(t: Thread, sig: int) -> bool:
    """Write `t`'s waiting RET; `sig` is the signal being delivered, 0 if none. True if written."""
    pending = t.restart_ret
    t.quiet_restart = False
    if pending is None:
        return False
    t.restart_ret = None
    nr, linux_errno, ns = pending
    p = t.proc
    tf = p.file
    if tf is None or not p.facs & K.KTRFAC_SYSRET:
        return False
    error = K.ERESTART
    if sig:
        handler = p.handlers.get(sig, SIG_DFL)
        # A handler installed before we attached: its flags are unknown, keep RESTART.
        restarts = handler == HANDLER_UNKNOWN or sig in p.sa_restart
        error = outcome(linux_errno, handler, restarts)
    tf.record(K.KTR_SYSRET, p.tgid, t.tid, t.comm, ns, SYSRET(nr, 0, error, 0))
    return True

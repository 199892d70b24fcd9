"""The RET of a call a signal interrupted: EINTR or RESTART, as the program sees it.

At the syscall-exit stop Linux reports one of its internal restart codes; it
decides only while delivering the signal whether the program sees EINTR or
the call runs again. FreeBSD records what syscallret() returns: EINTR when
the call fails, ERESTART when the kernel restarts it. So the RET waits
(Thread.restart_ret) for the thread's next stop: a signal-delivery stop
decides from the handler and its SA_RESTART, the next syscall entry (the
call again, or restart_syscall) or the thread's end means it restarted.
"""

from __future__ import annotations

from ktrace_cli.format import constants as K
from ktrace_cli.format.writer import SYSRET
from ktrace_cli.trace.tracee import HANDLER_UNKNOWN, SIG_DFL, SIG_IGN, Thread

# Linux's restart codes (include/linux/errno.h), as -rax at syscall exit.
ERESTARTSYS = 512  # restart unless the handler lacks SA_RESTART
ERESTARTNOINTR = 513  # always restart
ERESTARTNOHAND = 514  # restart only when no handler runs
ERESTART_RESTARTBLOCK = 516  # like ERESTARTNOHAND, restarted through restart_syscall
RESTART_ERRNOS = frozenset({ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK})
EINTR = 4  # the same number under FreeBSD and Linux
SA_RESTART = 0x10000000


def outcome(linux_errno: int, handler: int, sa_restart: bool) -> int:
    """The FreeBSD error of the RET when a signal with `handler` is delivered."""
    if handler in (SIG_DFL, SIG_IGN) or linux_errno == ERESTARTNOINTR:
        return K.ERESTART  # no handler runs: the kernel restarts every one of them
    if linux_errno == ERESTARTSYS and sa_restart:
        return K.ERESTART
    return EINTR


def settle(t: Thread, sig: int) -> bool:
    """Write `t`'s waiting RET; `sig` is the signal being delivered, 0 if none. True if written."""
    pending = t.restart_ret
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

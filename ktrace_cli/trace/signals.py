"""PSIG records: which delivered signals FreeBSD would log, and with which action."""

from __future__ import annotations

import _signal as signal  # signal.py's enum conversions cost the engine's start-up

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64
from ktrace_cli.trace import ptrace as P
from ktrace_cli.trace.tracee import HANDLER_UNKNOWN, SIG_DFL, SIG_IGN, Thread

STOP_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
# Signals whose default action is to do nothing: FreeBSD discards them
# before postsig(), so no PSIG is written for them when not caught.
DEFAULT_IGNORED = frozenset({signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH})
PSIG_PACK = AMD64.psig.pack


def wants_psig(handler: int, sig: int) -> bool:
    """Whether a delivered signal reaches postsig() (caught, or default that acts)."""
    if handler == SIG_IGN:
        return False
    if handler == SIG_DFL:
        return sig not in DEFAULT_IGNORED and sig not in STOP_SIGNALS
    return True


def psig_payload(t: Thread, sig: int, action: int, bufs: P.PtraceBuffers) -> bytes:
    """The PSIG payload for `sig` delivered to the stopped thread `t`."""
    from ktrace_cli.abi import linux as abi
    from ktrace_cli.abi.linuxulator import freebsd_sigcode

    info = P.get_siginfo(t.tid, bufs)
    code = freebsd_sigcode(sig, info[2]) if info else 0
    mask = abi.freebsd_sigmask_from_linux(P.get_sigmask(t.tid, bufs))
    return PSIG_PACK(abi.freebsd_signal_from_linux(sig), action, code, *mask)


def write_psig(t: Thread, sig: int, action: int, ns: int, bufs: P.PtraceBuffers) -> None:
    p = t.proc
    if p.file is None or not p.facs & K.KTRFAC_PSIG:
        return
    p.file.record(K.KTR_PSIG, p.tgid, t.tid, t.comm, ns, psig_payload(t, sig, action, bufs))


def handler_of(t: Thread, sig: int) -> int:
    return t.proc.handlers.get(sig, SIG_DFL)


__all__ = ["HANDLER_UNKNOWN", "wants_psig", "write_psig", "handler_of", "STOP_SIGNALS"]

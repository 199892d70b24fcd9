"""STRU l_sigset_t: the Linux signal masks FreeBSD's Linuxulator logs.

Its signal calls log the 8-byte Linux mask they are given, once copied in
(rt_sigaction's new action, rt_sigprocmask's new mask, rt_sigsuspend's and
rt_sigtimedwait's masks), and the masks they hand back on success
(rt_sigaction's old action, rt_sigprocmask's old mask, rt_sigpending). Each
call first refuses a sigsetsize other than 8, and rt_sigaction a signal
outside 1..64, so those log nothing.
"""

from __future__ import annotations

from ktrace_cli.trace.memory import ProcMem

NAME = b"l_sigset_t\0"
SIGSET_SIZE = 8  # Linux's kernel sigset_t, on x86_64 and i386 alike
# struct kernel_sigaction: handler, flags, restorer (each a word), then the
# mask: at 24 for x86_64, 12 for i386. SA_MASK stands for that offset below.
SA_MASK = -1
SIG_MAX = 64

# name -> (index of sigsetsize, entry (pointer index, offset), exit (pointer index, offset))
_CALLS: dict[str, tuple[int, tuple[int, int] | None, tuple[int, int] | None]] = {
    "rt_sigaction": (3, (1, SA_MASK), (2, SA_MASK)),
    "rt_sigprocmask": (3, (1, 0), (2, 0)),
    "rt_sigpending": (1, None, (0, 0)),
    "rt_sigsuspend": (1, (0, 0), None),
    "rt_sigtimedwait": (3, (0, 0), None),
}
CALLS = frozenset(_CALLS)


def _mask(name: str, args: tuple[int, ...], mem: ProcMem, at_exit: bool, word: int) -> bytes | None:
    size_arg, entry, exit_ = _CALLS[name]
    if args[size_arg] != SIGSET_SIZE:
        return None
    if name == "rt_sigaction" and not 1 <= args[0] <= SIG_MAX:
        return None
    where = exit_ if at_exit else entry
    if where is None or not args[where[0]]:
        return None
    offset = 3 * word if where[1] == SA_MASK else where[1]
    data = mem.read(args[where[0]] + offset, SIGSET_SIZE)
    return NAME + data if len(data) == SIGSET_SIZE else None


def entry_payload(name: str, args: tuple[int, ...], mem: ProcMem, word: int = 8) -> bytes | None:
    """The STRU payload a call logs once it has copied its mask in, or None; `word`: the ABI's word size."""
    return _mask(name, args, mem, False, word)


def exit_payload(name: str, args: tuple[int, ...], mem: ProcMem, word: int = 8) -> bytes | None:
    """The STRU payload a call that succeeded logs for the mask it handed back, or None."""
    return _mask(name, args, mem, True, word)


# descriptor(): the same places, packed in the bpf engine's syscall table
# (sysent.sig of trace/bpf/records.bpf.h, which reads these bits).
DESC_ENTRY_SHIFT, DESC_EXIT_SHIFT = 3, 7
DESC_ENTRY_SA, DESC_EXIT_SA, DESC_SIGNO = 0x40, 0x400, 0x800


def descriptor(name: str) -> int:
    """Where `name`'s masks are, for the bpf engine: 0 for a call that logs none.

    Bits 0-2: the sigsetsize argument; 3-5 and 7-9: the argument pointing to
    the mask copied in and to the mask handed back, plus one (0: none); bits
    6 and 10: that pointer is a struct sigaction's; bit 11: argument 0 must
    be a signal number.
    """
    row = _CALLS.get(name)
    if row is None:
        return 0
    size_arg, entry, exit_ = row
    desc = size_arg | (DESC_SIGNO if name == "rt_sigaction" else 0)
    for where, shift, sa in ((entry, DESC_ENTRY_SHIFT, DESC_ENTRY_SA), (exit_, DESC_EXIT_SHIFT, DESC_EXIT_SA)):
        if where is not None:
            desc |= (where[0] + 1) << shift | (sa if where[1] == SA_MASK else 0)
    return desc

"""What each Linux syscall can record: the capture rules, one row per syscall, indexed by number."""

from __future__ import annotations

from ktrace_cli.abi.freebsd import data_rows
from ktrace_cli.abi.linuxulator import JUSTRETURN_SYSCALLS
from ktrace_cli.format import constants as K
from ktrace_cli.value import Value

# GIO kinds: how the transferred bytes are found at syscall exit.
GIO_BUF = 1  # (fd, buf, ...) and the return value is the byte count
GIO_IOV = 2  # (fd, iov, iovcnt, ...)
GIO_MSG = 3  # (fd, msghdr, ...)
GIO_MMSG = 4  # (fd, mmsghdr[], vlen, ...), the return value is a message count

# STRU kinds.
STRU_STAT = 1  # struct stat * at the given argument, at exit
STRU_STATX = 2  # struct statx * at the given argument, at exit
STRU_SOCKADDR_IN = 3  # (addr, addrlen value) arguments, at entry
STRU_SOCKADDR_OUT = 4  # (addr, socklen_t *) arguments, at exit
STRU_ITIMERVAL = 5  # setitimer: new value at entry, old value at exit; getitimer at exit
STRU_SIGSET = 6  # l_sigset_t masks, as the Linuxulator logs them (trace/sigsets.py)
STRU_FDPAIR = 7  # the int[2] pipe*/socketpair filled, at exit: our `fdpair` (docs/FORMAT.md)

# Calls the engine must see whatever the trace points.
SPECIAL_NONE = 0
SPECIAL_SIGACTION = 1  # handler tracking for PSIG
SPECIAL_PRCTL = 2  # PR_SET_NAME (comm), the utrace convention, PR_SET_SECCOMP
SPECIAL_EXEC = 3  # set-id check before the exec
SPECIAL_OPEN = 4  # /proc/sys/... opens give SCTL
SPECIAL_SECCOMP = 5  # the command-mode filter going live

# Rules.plain_stops's values besides 0 (plain) and 1 (the full path): stops
# that need only their CALL or RET, written differently. The Python loop takes
# the full path for them; fastloop.c writes them itself.
PLAIN_UNLESS_SETID = 2  # entry: plain when no set-id check is made (root, or a filtered process)
PLAIN_JUSTRETURN = 2  # exit: the RET is EJUSTRETURN (sigreturn: the registers are restored)
PLAIN_EXEC_RET = 3  # exit: EJUSTRETURN on success (a new image), the errno otherwise

# (name, kind, argument index) tables: one row per syscall, as truss does.
GIO_RULES: dict[str, tuple[int, int]] = {
    "read": (GIO_BUF, K.UIO_READ), "pread64": (GIO_BUF, K.UIO_READ),
    "recvfrom": (GIO_BUF, K.UIO_READ),
    "write": (GIO_BUF, K.UIO_WRITE), "pwrite64": (GIO_BUF, K.UIO_WRITE),
    "sendto": (GIO_BUF, K.UIO_WRITE),
    "readv": (GIO_IOV, K.UIO_READ), "preadv": (GIO_IOV, K.UIO_READ),
    "preadv2": (GIO_IOV, K.UIO_READ),
    "writev": (GIO_IOV, K.UIO_WRITE), "pwritev": (GIO_IOV, K.UIO_WRITE),
    "pwritev2": (GIO_IOV, K.UIO_WRITE),
    "recvmsg": (GIO_MSG, K.UIO_READ), "sendmsg": (GIO_MSG, K.UIO_WRITE),
    "recvmmsg": (GIO_MMSG, K.UIO_READ), "sendmmsg": (GIO_MMSG, K.UIO_WRITE),
}  # fmt: skip

STRU_RULES: dict[str, tuple[int, int]] = {
    "stat": (STRU_STAT, 1), "lstat": (STRU_STAT, 1), "fstat": (STRU_STAT, 1),
    "newfstatat": (STRU_STAT, 2), "statx": (STRU_STATX, 4),
    "connect": (STRU_SOCKADDR_IN, 1), "bind": (STRU_SOCKADDR_IN, 1),
    "sendto": (STRU_SOCKADDR_IN, 4),
    "accept": (STRU_SOCKADDR_OUT, 1), "accept4": (STRU_SOCKADDR_OUT, 1),
    "getsockname": (STRU_SOCKADDR_OUT, 1), "getpeername": (STRU_SOCKADDR_OUT, 1),
    "recvfrom": (STRU_SOCKADDR_OUT, 4),
    "setitimer": (STRU_ITIMERVAL, 1), "getitimer": (STRU_ITIMERVAL, 1),
    "rt_sigaction": (STRU_SIGSET, 0), "rt_sigprocmask": (STRU_SIGSET, 0),
    "rt_sigpending": (STRU_SIGSET, 0), "rt_sigsuspend": (STRU_SIGSET, 0),
    "rt_sigtimedwait": (STRU_SIGSET, 0),
    "pipe": (STRU_FDPAIR, 0), "pipe2": (STRU_FDPAIR, 0), "socketpair": (STRU_FDPAIR, 3),
}  # fmt: skip

SPECIAL_RULES: dict[str, int] = {
    "rt_sigaction": SPECIAL_SIGACTION,
    "prctl": SPECIAL_PRCTL,
    "execve": SPECIAL_EXEC,
    "execveat": SPECIAL_EXEC,
    "open": SPECIAL_OPEN,
    "openat": SPECIAL_OPEN,
    "openat2": SPECIAL_OPEN,
    "seccomp": SPECIAL_SECCOMP,
}

NO_RETURN = frozenset({"exit", "exit_group"})
MAX_SYSCALL = 1024
X86_64_CALLS = "linux_syscall_args_x86_64.tsv"  # abi/data, made by tools/gen_syscall_args.py

# What an i386 (`int $0x80`) call may record: its structures (iovec, msghdr,
# stat64, the compat itimerval) are laid out with 32-bit pointers and longs,
# which the 64-bit readers would misread, so only flat buffers, sockaddrs
# signal masks (found with the rule's word size) and the int[2] of pipe and
# socketpair (32-bit ints on both) are captured.
I386_GIO_KINDS = frozenset({GIO_BUF})
I386_STRU_KINDS = frozenset({STRU_SOCKADDR_IN, STRU_SOCKADDR_OUT, STRU_SIGSET, STRU_FDPAIR})
SPECIAL_SIGACTION32 = 6  # rt_sigaction with the i386 struct: 32-bit handler and flags


class SyscallRule(Value):
    __slots__ = ("nr", "name", "narg", "paths", "gio", "gio_rw", "stru", "stru_arg", "special", "returns",
                 "ptr")  # fmt: skip
    nr: int
    name: str
    narg: int
    paths: tuple[int, ...]
    gio: int
    gio_rw: int
    stru: int
    stru_arg: int
    special: int
    returns: bool
    ptr: int  # the ABI's word: pointers in argv/envp, the words of struct sigaction

    def __init__(self, nr: int, name: str, narg: int, paths: tuple[int, ...], gio: int, gio_rw: int,
                 stru: int, stru_arg: int, special: int, returns: bool, ptr: int = 8) -> None:  # fmt: skip
        # One call per field, not Value._set(**fields): the engine builds one
        # rule per syscall at every start, and the keyword dicts cost 2 ms.
        init = object.__setattr__
        init(self, "nr", nr)
        init(self, "name", name)
        init(self, "narg", narg)
        init(self, "paths", paths)
        init(self, "gio", gio)
        init(self, "gio_rw", gio_rw)
        init(self, "stru", stru)
        init(self, "stru_arg", stru_arg)
        init(self, "special", special)
        init(self, "returns", returns)
        init(self, "ptr", ptr)


class Rules:
    """The rule table for x86_64 Linux (or, with i386=True, for i386 Linux), built once from the abi tables."""

    def __init__(self, i386: bool = False) -> None:
        self.by_nr: list[SyscallRule | None] = [None] * MAX_SYSCALL
        self.narg: list[int] = [6] * MAX_SYSCALL
        for nr, name, narg, paths in (_i386_calls() if i386 else _x86_64_calls()):
            gio, rw = GIO_RULES.get(name, (0, 0))
            stru, stru_arg = STRU_RULES.get(name, (0, 0))
            special = SPECIAL_RULES.get(name, SPECIAL_NONE)
            if i386:
                if gio not in I386_GIO_KINDS:
                    gio, rw = 0, 0
                if stru not in I386_STRU_KINDS:
                    stru, stru_arg = 0, 0
                if special == SPECIAL_SIGACTION:
                    special = SPECIAL_SIGACTION32
            rule = SyscallRule(
                nr, name, narg, paths, gio, rw, stru, stru_arg, special, name not in NO_RETURN,
                4 if i386 else 8,
            )  # fmt: skip
            self.by_nr[nr] = rule
            self.narg[nr] = narg
        self.nr_by_name = {r.name: r.nr for r in self.by_nr if r is not None}
        self._plain: dict[int, tuple[bytes, bytes]] = {}

    def name(self, nr: int) -> str:
        rule = self.by_nr[nr] if 0 <= nr < MAX_SYSCALL else None
        return rule.name if rule else f"#{nr}"

    def plain_stops(self, facs: int) -> tuple[bytes, bytes]:
        """For each call number, whether its entry stop and its exit stop need more than CALL and RET.

        Nonzero where the full path must run under `facs`: a call the engine
        must follow (signal handlers, the comm, a set-id exec, a seccomp
        filter, sigreturn's RET), a capture the facilities ask for, or CSW on
        every call. The engine's fast path writes the rest without looking at
        their rule (x86_64 stops only: sigreturn is numbered as x86_64's).
        An exec's entry that needs nothing but the set-id check, sigreturn's
        RET and an exec's RET that need nothing but EJUSTRETURN carry
        PLAIN_UNLESS_SETID, PLAIN_JUSTRETURN and PLAIN_EXEC_RET: the C loop
        writes them, the Python loop takes the full path.
        Cached per `facs`: it changes only with a ktrace(2) request.
        """
        tables = self._plain.get(facs)
        if tables is not None:
            return tables
        csw = bool(facs & K.KTRFAC_CSW)
        entry, exit_ = bytearray(MAX_SYSCALL), bytearray(MAX_SYSCALL)
        for rule in self.by_nr:
            if rule is None:
                continue
            followed = rule.special in (SPECIAL_SIGACTION, SPECIAL_SIGACTION32, SPECIAL_PRCTL)
            stru = bool(rule.stru and facs & K.KTRFAC_STRUCT)
            more_in = csw or followed or stru or bool(rule.paths and facs & (K.KTRFAC_NAMEI | K.KTRFAC_SYSCTL))
            more_out = csw or followed or stru or rule.special == SPECIAL_SECCOMP or bool(
                rule.gio and facs & K.KTRFAC_GENIO)
            if rule.special == SPECIAL_EXEC:
                more_in = more_in or bool(facs & (K.KTRFAC_ARGS | K.KTRFAC_ENVS))
                entry[rule.nr] = 1 if more_in else PLAIN_UNLESS_SETID
                exit_[rule.nr] = 1 if more_out else PLAIN_EXEC_RET
                continue
            entry[rule.nr] = more_in
            if rule.nr in JUSTRETURN_SYSCALLS:
                exit_[rule.nr] = 1 if more_out else PLAIN_JUSTRETURN
            else:
                exit_[rule.nr] = more_out
        tables = self._plain[facs] = (bytes(entry), bytes(exit_))
        return tables

    def filter_syscalls(self, facs: int, setid_check: bool) -> list[int] | None:
        """Syscall numbers that can produce a record for `facs`; None means every syscall."""
        if facs & (K.KTRFAC_SYSCALL | K.KTRFAC_SYSRET | K.KTRFAC_CSW):
            return None
        wanted: set[int] = set()
        for rule in self.by_nr:
            if rule is None:
                continue
            if rule.special in (SPECIAL_PRCTL, SPECIAL_EXEC):
                wanted.add(rule.nr)  # comm changes, utrace, set-id execs
            elif rule.special in (SPECIAL_SIGACTION, SPECIAL_SIGACTION32) and facs & K.KTRFAC_PSIG:
                wanted.add(rule.nr)
            elif rule.special == SPECIAL_OPEN and facs & K.KTRFAC_SYSCTL:
                wanted.add(rule.nr)
            if rule.paths and facs & K.KTRFAC_NAMEI:
                wanted.add(rule.nr)
            if rule.gio and facs & K.KTRFAC_GENIO:
                wanted.add(rule.nr)
            if rule.stru and facs & K.KTRFAC_STRUCT:
                wanted.add(rule.nr)
        return sorted(wanted)


Call = tuple[int, str, int, tuple[int, ...]]  # number, name, argument count, path argument indexes


def _x86_64_calls() -> list[Call]:
    """x86_64's calls, as tools/gen_syscall_args.py derives them from abi/linux.py's tables.

    Read from the generated file: deriving them here loads python-ptrace's
    prototypes and examines every argument, about as long as the rest of
    the engine's start.
    """
    calls: list[Call] = []
    for nr, name, narg, paths in data_rows(X86_64_CALLS):
        calls.append((int(nr), name, int(narg), tuple(map(int, paths.split(","))) if paths != "-" else ()))
    return calls


def _i386_calls() -> list[Call]:
    """i386's calls, derived from abi/linux_i386.py (built only once a process makes one)."""
    from ktrace_cli.abi import linux_i386

    calls: list[Call] = []
    for nr in range(MAX_SYSCALL):
        name = linux_i386.syscall_name(nr)
        if name:
            slots = linux_i386.arg_slots(name)
            calls.append((nr, name, 6 if slots is None else slots, linux_i386.path_arg_indexes(name)))
    return calls


_RULES: Rules | None = None
_RULES_I386: Rules | None = None


def rules() -> Rules:
    global _RULES
    if _RULES is None:
        _RULES = Rules()
    return _RULES


def rules_i386() -> Rules:
    """The rules of `int $0x80` calls, built the first time a process makes one."""
    global _RULES_I386
    if _RULES_I386 is None:
        _RULES_I386 = Rules(i386=True)
    return _RULES_I386

"""Linux-ABI CALL argument text: FreeBSD kdump's Linux decoder (docs/FORMAT.md, CALL text), and rows beyond it.

kdump decodes a few Linux syscalls in three passes over the argument slots
(usr.bin/kdump/linux.c): a leading directory fd, a per-syscall template, a
trailing *at() flags word; every slot left over is printed as a plain number.
The primitives are kdump's (docs/FORMAT.md, Number primitives): N is `%#jx` (`%jd` with -d), D is
always `%jd`, MASK is `%#x<NAMES>`, INT is a name or `<invalid=%#x>`, and so
on.  Syscalls are keyed by their plain Linux names ("openat", not
"linux_openat").

By default the decoding goes further than kdump, in kdump's syntax: the
rows of decode/linux_calls.py decode the arguments strace users read first
(mmap, socket, fcntl, ioctl, futex, ...), and an argument the prototype
declares `int` or `pid_t` prints signed (`kill(-472,SIGCONT)`).  Every
syscall printed differently from kdump is listed, with the reason, in
linux_calls.KDUMP_OVERRIDES; `kdump=True` prints exactly kdump's text.

Beyond kdump in both modes (documented divergences): faccessat2, fchmodat2
and renameat2 are decoded like their older forms; unlinkat prints 0x200 as
AT_REMOVEDIR (kdump says AT_EACCESS); clone's exit signal does not count as
a printed flag, so a bare `clone(SIGCHLD)` ends in `<invalid>0` as kdump's
code would with its flag initialised.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from ktrace_cli.abi import linux_flags as F
from ktrace_cli.abi import sysdecode
from ktrace_cli.abi.linux import signal_name, syscall_prototype
from ktrace_cli.abi.sysdecode import NameTable
from ktrace_cli.decode.cfmt import c_hex, c_int32, signal_text
from ktrace_cli.decode.kdump_args import (
    ATFD,
    FILEMODE,
    INT,
    MASK,
    MASK0,
    N64,
    SIG,
    VAL,
    Args,
    C,
    D,
    N,
    Op,
    P,
    S,
    filemode_text,
    run,
    settings,
)

_U32 = 0xFFFFFFFF


AT_FLAGS = NameTable(F.AT_FLAGS)
AT_UNLINKAT_FLAGS = NameTable(F.AT_UNLINKAT_FLAGS)
# kdump prints access modes and file modes with FreeBSD's tables; the values
# are the same on Linux (include/uapi/linux/stat.h, unistd.h).
ACCESS_MODES = sysdecode.table("accessmode")
CLOCK_FLAGS = NameTable(F.CLOCK_FLAGS)
OPEN_FLAGS = NameTable(F.OPEN_FLAGS)
CLONE_FLAGS = NameTable(F.CLONE_FLAGS)
_CLOCK_IDS = NameTable(F.CLOCK_IDS)
_CPUCLOCK_IDS = NameTable(F.CPUCLOCK_IDS)
_SIGPROCMASK_HOW = NameTable(F.SIGPROCMASK_HOW)
_ITIMER_WHICH = NameTable(F.ITIMER_WHICH)
_OPEN_ACCESS = NameTable(F.OPEN_ACCESS_MODES)


def linux_signal(signo: int) -> str:
    """kdump's print_linux_signal: the Linux name, or `SIG %d`."""
    return signal_text(signal_name(signo), signo)


filemode = filemode_text  # kdump's decode_filemode, the same on both systems


def open_flags(value: int) -> str:
    """MASK with sysdecode_linux_open_flags: the access mode first, then the flags."""
    value &= _U32
    mode = value & F.O_ACCMODE
    access = _OPEN_ACCESS.first.get(mode)
    names, rem = OPEN_FLAGS.names(value & ~F.O_ACCMODE)
    if access is not None:
        # Something was printed, so kdump drops any undecoded bits silently.
        return f"{c_hex(value)}<{access}|{names}>" if names else f"{c_hex(value)}<{access}>"
    if names:
        return f"{c_hex(value)}<{names}>"
    return f"{c_hex(value)}<><invalid>{rem | mode}"


def clone_flags(value: int) -> str:
    """MASK with sysdecode_linux_clone_flags: `(SIGNAME)` of the low byte, then the flags."""
    value &= _U32
    sig = value & F.CLONE_CSIGNAL
    # sysdecode prints a NULL name with %s, which FreeBSD's libc shows as (null).
    signame = f"({signal_name(sig) or '(null)'})" if sig else ""
    names, rem = CLONE_FLAGS.names(value & ~F.CLONE_CSIGNAL)
    if names:
        return f"{c_hex(value)}<{signame}{names}>"
    return f"{c_hex(value)}<{signame}><invalid>{rem}"


def clockid(value: int) -> str:
    """sysdecode_linux_clockid: a name, UNKNOWN(%d), or a CPU clock with its pid."""
    which = c_int32(value)
    if which >= 0:
        name = _CLOCK_IDS.lookup(which)
        return name if name is not None else f"UNKNOWN({which})"
    pid = c_int32(~(which >> 3))
    if which & F.CLOCKFD_MASK == F.CLOCKFD_MASK:
        return f"INVALID PERTHREAD|CLOCKFD({pid})"
    kind = "THREAD|" if which & F.CPUCLOCK_PERTHREAD_MASK else "PROCESS|"
    ci = which & F.CPUCLOCK_WHICH_MASK
    name = _CPUCLOCK_IDS.lookup(ci)
    if name is None:
        name = "CLOCKFD" if ci == F.CLOCKFD else f"UNKNOWN({which})"
    return f"{kind}{name}({pid})"


# Prototype types whose value is a signed C integer: "pid" prints in decimal
# (as kdump prints kill's pid), "int" and "long" print a negative value with
# a minus sign and any other in the N format.
_SIGNED_KINDS = {"pid_t": "pid", "int": "int", "off_t": "long", "loff_t": "long", "long": "long"}


@cache
def slot_kinds(name: str) -> tuple[str, ...]:
    """Per argument slot of syscall NAME: "pid", "int", "long" or "" (unsigned), from its prototype."""
    proto = syscall_prototype(name)
    if proto is None:
        return ()
    return tuple(_SIGNED_KINDS.get(" ".join(argtype.split()), "") for argtype, _name in proto[1])


_BEYOND = settings(beyond=True)


def cursor(args: Sequence[int], decimal: bool, ilp32: bool, kinds: tuple[str, ...] | None = None) -> Args:
    """A Linux call's cursor: 64-bit slots, stopping where they stop.

    `kinds` None is kdump's text: every slot printed as kdump prints it.
    """
    if kinds is None:
        return Args(args, decimal, ilp32)
    return _BEYOND(args, decimal, ilp32, kinds)


# -- ops for the templates that branch on an argument -------------------------------


def OPEN_FLAGS_MODE(a: Args) -> None:  # noqa: N802
    """open/openat: the flags; the mode only with O_CREAT, its slot consumed either way."""
    flags = a.take()
    if flags is None:
        return
    a.out.append("," + open_flags(flags))
    if flags & F.O_CREAT and a.pos < a.n:
        a.out.append(",")
        FILEMODE(a)
    elif a.pos < a.n:
        a.pos += 1  # kdump consumes the mode slot even when it does not print it


SIGNAL = SIG(signal_name)
CLOCKID = VAL(clockid)
_access = (N, C, MASK(ACCESS_MODES))
_filemode = (N, C, FILEMODE)
_link = (N, C, ATFD, N)
_clock = (P, CLOCKID, S)
_kill = (D, C, SIGNAL)
_sigaction = (P, SIGNAL, S)
_sigprocmask = (P, INT(_SIGPROCMASK_HOW.first.get), S)

# Pass A: syscalls whose first argument is a directory fd.
_DIRFD_FIRST = frozenset(
    {
        "faccessat", "faccessat2", "fchmodat", "fchmodat2", "fchownat", "newfstatat",
        "fstatat64", "futimesat", "linkat", "mkdirat", "mknodat", "openat",
        "readlinkat", "renameat", "renameat2", "unlinkat", "utimensat",
    }
)  # fmt: skip

# Pass B: the per-syscall template (usr.bin/kdump/linux.c).
_TEMPLATES: dict[str, tuple[Op, ...]] = {
    "access": _access,
    "faccessat": _access,
    "faccessat2": _access,
    "chmod": _filemode,
    "fchmodat": _filemode,
    "fchmodat2": _filemode,
    "mknodat": _filemode,
    "mkdir": _filemode,
    "mkdirat": _filemode,
    "linkat": _link,
    "renameat": _link,
    "renameat2": _link,
    "symlinkat": _link,
    "fchownat": (N, N, N),
    "newfstatat": (N, N),
    "fstatat64": (N, N),
    "utimensat": (N, N),
    "unlinkat": (N,),
    "clock_gettime": _clock,
    "clock_settime": _clock,
    "clock_getres": _clock,
    "timer_create": _clock,
    "clock_nanosleep": (*_clock, C, MASK0(CLOCK_FLAGS)),
    "clone": (P, VAL(clone_flags), S),
    "kill": _kill,
    "tkill": _kill,
    "rt_sigqueueinfo": _kill,
    "tgkill": (D, D, C, SIGNAL),
    "rt_tgsigqueueinfo": (D, D, C, SIGNAL),
    "open": (N, OPEN_FLAGS_MODE),
    "openat": (N, OPEN_FLAGS_MODE),
    "rt_sigaction": _sigaction,
    "truncate": (N, N64),
    "ftruncate": (N, N64),
    "getitimer": (P, INT(_ITIMER_WHICH.first.get), S),
    "setitimer": (P, INT(_ITIMER_WHICH.first.get), S),
    "rt_sigprocmask": _sigprocmask,
}

# linux32 (ILP32) has a few more entries in kdump's table.
_TEMPLATES_ILP32: dict[str, tuple[Op, ...]] = {
    **_TEMPLATES,
    "fchmod": _filemode,
    "clock_gettime64": _clock,
    "clock_settime64": _clock,
    "clock_getres_time64": _clock,
    "signal": _sigaction,
    "sigaction": _sigaction,
    "sigprocmask": _sigprocmask,
}

# Pass C: a trailing *at() flags word.
_AT_FLAGS_LAST: dict[str, NameTable] = {
    "fchownat": AT_FLAGS,
    "faccessat": AT_FLAGS,
    "faccessat2": AT_FLAGS,
    "fchmodat": AT_FLAGS,
    "fchmodat2": AT_FLAGS,
    "newfstatat": AT_FLAGS,
    "fstatat64": AT_FLAGS,
    "linkat": AT_FLAGS,
    "unlinkat": AT_UNLINKAT_FLAGS,
    "utimensat": AT_FLAGS,
}


def _rows(templates: dict[str, tuple[Op, ...]]) -> dict[str, tuple[Op, ...]]:
    """Each decoded syscall's three passes joined into one row, so a CALL costs one lookup."""
    rows = {}
    for name in sorted(_DIRFD_FIRST | templates.keys() | _AT_FLAGS_LAST.keys()):
        ops: tuple[Op, ...] = (P, ATFD, S) if name in _DIRFD_FIRST else ()
        ops += templates.get(name, ())
        at = _AT_FLAGS_LAST.get(name)
        if at is not None:
            ops += (C, MASK0(at))
        rows[name] = ops
    return rows


ROWS = _rows(_TEMPLATES)
ROWS_ILP32 = _rows(_TEMPLATES_ILP32)


def format_args(name: str, args: Sequence[int], *, decimal: bool, ilp32: bool,
                kinds: tuple[str, ...] | None = None) -> str:
    """The text after a Linux syscall's name as FreeBSD's kdump prints it: `(...)`, or '' with no slots.

    `kinds` (slot_kinds) prints signed slots as their C types say; the
    per-call rows over the same cursor are in linux_calls.
    """
    if not args:
        return ""
    return run((ROWS_ILP32 if ilp32 else ROWS).get(name, ()), cursor(args, decimal, ilp32, kinds))

"""Linux x86_64 ABI tables: syscall names, prototypes, path arguments, errno and signals, with FreeBSD twins."""

from __future__ import annotations

import errno as _errno
import os
import sys
from functools import cache
from types import ModuleType

from ktrace_cli.abi import freebsd
from ktrace_cli.abi.freebsd import data_rows

Prototype = tuple[str, tuple[tuple[str, str], ...]]

# x32 syscalls are numbered from __X32_SYSCALL_BIT upwards; python-ptrace's x86_64
# table mixes them in (520 is x32 execve), so they never count as x86_64 numbers.
X32_FIRST = 512

# Linux errnos the FreeBSD errno space has no value for travel as 0x10000 + errno
# (docs/FORMAT.md, Linux processes in FreeBSD records); the same offset marks Linux-only signals (SIGSTKFLT, SIGPWR).
LINUX_ONLY_BASE = 0x10000
# kdump prints this for an error that cannot be translated to the Linux ABI.
UNTRANSLATABLE_ERRNO = 2147483647
LINUX_ERRNO_MAX = 133

# Kernel numbering of realtime signals: SIGRTMIN 32 .. SIGRTMAX 64 (_NSIG).
SIGRTMIN = 32
SIGRTMAX = 64

# Types whose argument carries a path name when the argument is called like one.
# python-ptrace's FILENAME_ARGUMENTS supplies the usual names; the kernel also names
# path arguments new_root/put_old (pivot_root), specialfile (swapon), special
# (quotactl), library (uselib), dir_name (mount) and from_path/to_path (move_mount).
_EXTRA_PATH_NAMES = frozenset(
    {"new_root", "put_old", "specialfile", "special", "library", "dir_name", "from_path", "to_path"}
)
# A non-const char * is usually an output buffer (getcwd's "pathname"); only these
# names are input paths the kernel declares without const (mount, utime, utimes).
_MUTABLE_PATH_NAMES = frozenset({"filename", "dir_name"})
# Syscalls whose path argument the kernel calls plain "name", a word that elsewhere
# means an attribute, key or host name.
_PATH_CALLED_NAME = frozenset({"acct", "umount", "umount2", "name_to_handle_at"})


def _load_ptrace_table(module: str, filename: str) -> ModuleType:
    """Load a python-ptrace data module without running ptrace.syscall's package import.

    prototypes.py and linux/x86_64.py are plain dictionaries, but importing them
    the normal way first imports ptrace.syscall, which pulls in the ptrace
    binding and ctypes libc (~25 ms); pykdump only needs the dictionaries.
    """
    loaded = sys.modules.get(module)
    if loaded is not None:
        return loaded
    import importlib.util  # lazy: start-up (only when a python-ptrace table is first used)

    for entry in sys.path:
        candidate = os.path.join(entry or ".", "ptrace", "syscall", filename)
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location(f"_ktrace_cli_{module}", candidate)
            if spec is not None and spec.loader is not None:
                data = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(data)
                return data
    return importlib.import_module(module)


@cache
def _ptrace_names() -> dict[int, str]:
    table = _load_ptrace_table("ptrace.syscall.linux.x86_64", os.path.join("linux", "x86_64.py"))
    return {int(nr): str(name) for nr, name in table.SYSCALL_NAMES.items()}


@cache
def _ptrace_prototypes() -> dict[str, Prototype]:
    table = _load_ptrace_table("ptrace.syscall.prototypes", "prototypes.py")
    return dict(table.SYSCALL_PROTOTYPES)


@cache
def _ptrace_filename_arguments() -> frozenset[str]:
    table = _load_ptrace_table("ptrace.syscall.prototypes", "prototypes.py")
    return frozenset(table.FILENAME_ARGUMENTS)


@cache
def _kernel_names() -> dict[int, str]:
    return {int(row[0]): row[1] for row in data_rows("linux_syscalls_x86_64.tsv")}


@cache
def _syscall_names() -> dict[int, str]:
    """python-ptrace's x86_64 names, completed from the kernel table.

    Where both know a number but spell it differently the kernel table wins:
    python-ptrace still calls 283 "timerfd", the name it had before Linux 2.6.25
    renamed it timerfd_create.
    """
    kernel = _kernel_names()
    names = {nr: name for nr, name in _ptrace_names().items() if 0 <= nr < X32_FIRST}
    for nr, name in kernel.items():
        names[nr] = name
    return names


@cache
def _syscall_numbers() -> dict[str, int]:
    numbers: dict[str, int] = {}
    for nr, name in sorted(_syscall_names().items()):
        numbers.setdefault(name, nr)
    return numbers


def syscall_name(nr: int) -> str | None:
    """x86_64 syscall name for a number (257 -> 'openat', 452 -> 'fchmodat2'); None if unknown."""
    return _syscall_names().get(nr)


def syscall_names() -> frozenset[str]:
    """Every x86_64 syscall name known."""
    return frozenset(_syscall_names().values())


def syscall_number(name: str) -> int | None:
    """x86_64 syscall number of a name ('execve' -> 59, never the x32 520); None if unknown."""
    return _syscall_numbers().get(name)


@cache
def _extra_prototypes() -> dict[str, Prototype]:
    extra: dict[str, Prototype] = {}
    for row in data_rows("linux_prototypes_extra.tsv"):
        args: list[tuple[str, str]] = []
        for column in row[2:]:
            argtype, _sep, argname = column.rpartition(":")
            args.append((argtype, argname))
        extra[row[0]] = (row[1], tuple(args))
    return extra


def syscall_prototype(name: str) -> Prototype | None:
    """(return type, ((arg type, arg name), ...)) from python-ptrace, else the extra data rows."""
    proto = _ptrace_prototypes().get(name)
    if proto is not None:
        return proto
    return _extra_prototypes().get(name)


def syscall_arg_count(name: str) -> int | None:
    """Number of arguments the prototype declares, or None without a prototype."""
    proto = syscall_prototype(name)
    return None if proto is None else len(proto[1])


def _is_path_argument(syscall: str, argtype: str, argname: str) -> bool:
    compact = " ".join(argtype.split())
    if compact == "const char *":
        return (
            argname in _ptrace_filename_arguments()
            or argname in _EXTRA_PATH_NAMES
            or (argname == "name" and syscall in _PATH_CALLED_NAME)
        )
    if compact == "char *":
        return argname in _MUTABLE_PATH_NAMES or (argname == "name" and syscall in _PATH_CALLED_NAME)
    return False


@cache
def path_arg_indexes(name: str) -> tuple[int, ...]:
    """Indexes of the arguments of syscall NAME that are path names, derived from its prototype."""
    proto = syscall_prototype(name)
    if proto is None:
        return ()
    return tuple(i for i, (argtype, argname) in enumerate(proto[1]) if _is_path_argument(name, argtype, argname))


# --- errno -----------------------------------------------------------------


def errno_name(n: int) -> str | None:
    """Linux errno name (2 -> 'ENOENT') from Python's errno module; None if unknown."""
    return _errno.errorcode.get(n)


def strerror(n: int) -> str:
    """Linux strerror text (os.strerror)."""
    try:
        return os.strerror(n)
    except ValueError:
        return f"Unknown error {n}"


@cache
def _errtbl() -> dict[int, int]:
    """FreeBSD errno -> Linux errno, as the Linuxulator's linux_errtbl translates (1..97)."""
    return {int(row[0]): int(row[1]) for row in data_rows("linux_errtbl.tsv")}


@cache
def _freebsd_twins() -> dict[int, int]:
    """Linux errno -> the FreeBSD errno written for it.

    linux_errtbl is many-to-one, so the twin is the FreeBSD value of the same name
    when one maps there (EPERM, not ENOTCAPABLE), else the lowest value mapping
    there (ENOATTR for ENODATA). Either way linux_errtbl[twin] gives the Linux
    errno back, which is what pykdump relies on.
    """
    twins: dict[int, int] = {}
    for row in data_rows("linux_errtbl.tsv"):
        freebsd_errno, linux_errno, linux_name = int(row[0]), int(row[1]), row[2]
        if freebsd.errno_name(freebsd_errno) == linux_name:
            twins[linux_errno] = freebsd_errno
        else:
            twins.setdefault(linux_errno, freebsd_errno)
    return twins


def freebsd_errno_from_linux(linux_errno: int) -> int:
    """ktr_error for a Linux errno: its FreeBSD twin, or 0x10000 + errno when FreeBSD has none."""
    if linux_errno == 0:
        return 0
    twin = _freebsd_twins().get(linux_errno)
    if twin is not None:
        return twin
    return LINUX_ONLY_BASE + linux_errno


def linux_errno_from_freebsd(ktr_error: int) -> int:
    """Linux errno for a Linux-ABI ktr_error (positive; kdump prints it negated).

    0x10000 + n gives n back; FreeBSD values go through linux_errtbl; anything
    else is UNTRANSLATABLE_ERRNO, as kdump prints for values beyond ELAST.
    """
    if ktr_error == 0:
        return 0
    if ktr_error > LINUX_ONLY_BASE:
        return ktr_error - LINUX_ONLY_BASE
    return _errtbl().get(ktr_error, UNTRANSLATABLE_ERRNO)


# --- signals ---------------------------------------------------------------

# Linux signals whose FreeBSD signal has another number, as FreeBSD's Linux
# emulation translates them (its linux_to_bsd_signal()); every other Linux
# signal 1..31 has the same number on FreeBSD. FreeBSD lacks SIGSTKFLT, which
# the emulation delivers as SIGBUS, and SIGPWR, which takes FreeBSD's first
# realtime signal, so the Linux realtime signals start one further on.
_SIGNALS_RENUMBERED = {
    7: 10,   # SIGBUS
    10: 30,  # SIGUSR1
    12: 31,  # SIGUSR2
    16: 10,  # SIGSTKFLT -> SIGBUS (one way: SIGBUS maps back to SIGBUS)
    17: 20,  # SIGCHLD
    18: 19,  # SIGCONT
    19: 17,  # SIGSTOP
    20: 18,  # SIGTSTP
    23: 16,  # SIGURG
    29: 23,  # SIGIO
    30: freebsd.SIGRTMIN,  # SIGPWR
    31: 12,  # SIGSYS
}

# Linux signal names 1..31 (asm/signal.h); 6 is SIGABRT (alias SIGIOT), 29 SIGIO (SIGPOLL).
_LINUX_SIGNAL_NAMES = (
    None, "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
    "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
    "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
    "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
)


def signal_name(n: int) -> str | None:
    """Linux signal name as FreeBSD's kdump prints it (libsysdecode's linux_signames).

    Realtime signals use kernel numbering and FreeBSD's names for them: 32 is
    SIGCANCEL and 33 SIGSETXID (the two glibc keeps for itself), 34..63 SIGRT2..SIGRT31,
    64 SIGRTMAX.  None for 0 and numbers beyond 64 (callers print 'SIG %d').
    """
    if 1 <= n < SIGRTMIN:
        return _LINUX_SIGNAL_NAMES[n]
    if n == SIGRTMIN:
        return "SIGCANCEL"
    if n == SIGRTMIN + 1:
        return "SIGSETXID"
    if n == SIGRTMAX:
        return "SIGRTMAX"
    if SIGRTMIN < n < SIGRTMAX:
        return f"SIGRT{n - SIGRTMIN}"
    return None


def signal_number(name: str) -> int | None:
    """Inverse of signal_name ('SIGUSR1' -> 10, 'SIGRT2' -> 34); also accepts the
    glibc-style 'SIGRTMIN' and 'SIGRTMIN+N'.  None when unknown."""
    if name in _LINUX_SIGNAL_NAMES:
        return _LINUX_SIGNAL_NAMES.index(name)
    fixed = {"SIGCANCEL": SIGRTMIN, "SIGSETXID": SIGRTMIN + 1, "SIGRTMIN": SIGRTMIN,
             "SIGRTMAX": SIGRTMAX}
    if name in fixed:
        return fixed[name]
    for prefix in ("SIGRTMIN+", "SIGRT"):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            n = SIGRTMIN + int(name[len(prefix):])
            return n if n < SIGRTMAX else None
    return None


def freebsd_signal_from_linux(sig: int) -> int:
    """FreeBSD signal number for a Linux signal, as the Linuxulator stores it.

    SIGUSR1 10 -> 30, SIGPWR 30 -> 65, realtime 32+n -> 66+n, SIGSTKFLT -> SIGBUS;
    numbers outside 0..64 become 0x10000 + the Linux number.
    """
    if sig == 0:
        return 0
    if sig in _SIGNALS_RENUMBERED:
        return _SIGNALS_RENUMBERED[sig]
    if 1 <= sig < SIGRTMIN:
        return sig
    if SIGRTMIN <= sig <= SIGRTMAX:
        return freebsd.SIGRTMIN + 1 + (sig - SIGRTMIN)
    return LINUX_ONLY_BASE + sig


@cache
def _linux_signals_by_freebsd() -> dict[int, int]:
    # Lowest Linux number first wins: FreeBSD's SIGBUS is Linux's SIGBUS, not SIGSTKFLT.
    inverse: dict[int, int] = {}
    for sig in range(1, SIGRTMAX + 1):
        inverse.setdefault(freebsd_signal_from_linux(sig), sig)
    return inverse


def linux_signal_from_freebsd(n: int) -> int | None:
    """Linux signal for a FreeBSD signal number; None where Linux has no twin (SIGEMT, SIGINFO...)."""
    if n == 0:
        return 0
    if n >= LINUX_ONLY_BASE:
        return n - LINUX_ONLY_BASE
    return _linux_signals_by_freebsd().get(n)


def freebsd_sigmask_from_linux(mask: int) -> tuple[int, int, int, int]:
    """FreeBSD sigset_t words for a 64-bit Linux mask (bit n-1 = signal n); Linux-only signals drop."""
    words = [0, 0, 0, 0]
    for sig in range(1, SIGRTMAX + 1):
        if not mask >> (sig - 1) & 1:
            continue
        fsig = freebsd_signal_from_linux(sig)
        if fsig >= LINUX_ONLY_BASE:
            continue
        words[(fsig - 1) // 32] |= 1 << ((fsig - 1) % 32)
    return words[0], words[1], words[2], words[3]


def linux_sigmask_from_freebsd(words: tuple[int, ...]) -> int:
    """64-bit Linux mask for FreeBSD sigset_t words; FreeBSD-only signals drop."""
    mask = 0
    for index, word in enumerate(words[:4]):
        for bit in range(32):
            if not word >> bit & 1:
                continue
            lsig = linux_signal_from_freebsd(index * 32 + bit + 1)
            if lsig is not None and 1 <= lsig <= SIGRTMAX:
                mask |= 1 << (lsig - 1)
    return mask


@cache
def _sigcode_tables() -> tuple[dict[int, str], dict[int, dict[int, str]]]:
    generic: dict[int, str] = {}
    per_signal: dict[int, dict[int, str]] = {}
    for signal, code, name in data_rows("linux_sigcodes.tsv"):
        table = generic if signal == "*" else per_signal.setdefault(int(signal), {})
        table.setdefault(int(code, 0), name)
    return generic, per_signal


def sigcode_name(signo: int, code: int) -> str | None:
    """Linux si_code name for a Linux signal: the signal's own codes for positive codes, else SI_*."""
    generic, per_signal = _sigcode_tables()
    if code > 0:
        name = per_signal.get(signo, {}).get(code)
        if name is not None:
            return name
    return generic.get(code)

"""Linux i386 ABI tables: the `int $0x80` syscall numbers, and what each call's registers hold.

A 32-bit program (or 64-bit code issuing `int $0x80`) calls the kernel
with i386 numbers and one 32-bit register per argument slot: ebx, ecx,
edx, esi, edi, ebp. FreeBSD's linux32 ABI records those slots widened to
register_t, a 64-bit argument taking two (low word first), and its kdump
names them from the linux32 table. The names come from
data/linux_syscalls_i386.tsv (docs/TABLES.md); prototypes are the x86_64
ones of the same name, or of the call an i386-only name stands for.
"""

from __future__ import annotations

from functools import cache

from ktrace_cli.abi import linux
from ktrace_cli.abi.freebsd import data_rows

# i386-only names whose arguments are laid out as the x86_64 call named here
# (the 32-bit uid/stat/truncate variants of the same call).
PROTOTYPE_TWINS: dict[str, str] = {
    "oldstat": "stat", "oldlstat": "lstat", "oldfstat": "fstat",
    "stat64": "stat", "lstat64": "lstat", "fstat64": "fstat", "fstatat64": "newfstatat",
    "truncate64": "truncate", "ftruncate64": "ftruncate",
    "statfs64": "statfs", "fstatfs64": "fstatfs",
    "chown32": "chown", "lchown32": "lchown", "fchown32": "fchown",
    "fcntl64": "fcntl", "mmap2": "mmap", "ugetrlimit": "getrlimit",
    "getuid32": "getuid", "geteuid32": "geteuid", "getgid32": "getgid", "getegid32": "getegid",
    "setuid32": "setuid", "setgid32": "setgid", "setreuid32": "setreuid", "setregid32": "setregid",
    "setresuid32": "setresuid", "getresuid32": "getresuid",
    "setresgid32": "setresgid", "getresgid32": "getresgid",
    "setfsuid32": "setfsuid", "setfsgid32": "setfsgid",
    "getgroups32": "getgroups", "setgroups32": "setgroups",
    "sendfile64": "sendfile",
}  # fmt: skip

# Argument types 64 bits wide on i386: each takes two register slots.
_WIDE_TYPES = frozenset({"loff_t", "u64", "__u64", "off64_t", "unsigned long long", "long long"})

# Calls whose i386 entry splits a 64-bit value the twin prototype declares as
# one `long`, that have no prototype, or whose one argument points at the
# real ones (i386's old mmap and select): their register slot counts.
SLOT_COUNTS: dict[str, int] = {
    "mmap": 1, "select": 1,
    "truncate64": 3, "ftruncate64": 3, "_llseek": 5, "fadvise64": 5, "fadvise64_64": 6,
    "fallocate": 6, "sync_file_range": 6, "sigreturn": 0, "sgetmask": 0, "ssetmask": 1,
    "waitpid": 3, "sigaction": 3, "sigsuspend": 1, "sigpending": 1, "sigprocmask": 3,
}  # fmt: skip

# sigreturn and rt_sigreturn: FreeBSD records their return as EJUSTRETURN.
JUSTRETURN_SYSCALLS = frozenset({119, 173})


@cache
def _names() -> dict[int, str]:
    return {int(row[0]): row[1] for row in data_rows("linux_syscalls_i386.tsv")}


@cache
def _numbers() -> dict[str, int]:
    numbers: dict[str, int] = {}
    for nr, name in sorted(_names().items()):
        numbers.setdefault(name, nr)
    return numbers


def syscall_name(nr: int) -> str | None:
    """i386 syscall name for a number (20 -> 'getpid', 5 -> 'open'); None if unknown."""
    return _names().get(nr)


def syscall_number(name: str) -> int | None:
    """i386 syscall number of a name ('getpid' -> 20); None if unknown."""
    return _numbers().get(name)


def prototype(name: str) -> linux.Prototype | None:
    """The prototype whose arguments an i386 call's registers hold, in order."""
    return linux.syscall_prototype(PROTOTYPE_TWINS.get(name, name))


def arg_slots(name: str) -> int | None:
    """How many 32-bit register slots the call's arguments fill; None without a prototype."""
    if name in SLOT_COUNTS:
        return SLOT_COUNTS[name]
    proto = prototype(name)
    if proto is None:
        return None
    return sum(2 if " ".join(t.split()) in _WIDE_TYPES else 1 for t, _n in proto[1])


def path_arg_indexes(name: str) -> tuple[int, ...]:
    """Register slots of the call that hold path names (none follows a 64-bit argument)."""
    return linux.path_arg_indexes(PROTOTYPE_TWINS.get(name, name))

"""Linux flag and value tables for Linux-ABI CALL arguments, loaded from the generated data file.

Every value comes from ``data/linux_flags.tsv``, which tools/gen_linux_flags.py
generates from the kernel's UAPI headers and which names the repository, path
and commit of each header it read.  A table is a tuple of (value, name) pairs
in header order: a mask is printed by walking its table in that order, so the
order is part of the output.

The tables kdump's own Linux decoder prints (usr.bin/kdump/linux.c) are
selections from the generated ones, made here by name: the names and their
order are kdump's, the values Linux's.  Access and file modes come from
FreeBSD's tables (abi.sysdecode), as kdump prints them; the values are the
same on Linux.
"""

from __future__ import annotations

from functools import cache

from ktrace_cli.abi.freebsd import data_rows

Table = tuple[tuple[int, str], ...]


@cache
def _tables() -> dict[str, Table]:
    tables: dict[str, list[tuple[int, str]]] = {}
    for name, value, symbol in data_rows("linux_flags.tsv"):
        tables.setdefault(name, []).append((int(value, 0), symbol))
    return {name: tuple(rows) for name, rows in tables.items()}


def table(name: str) -> Table:
    """A generated table by name ("mmap_prot", "fcntl_cmd", ...); KeyError if there is none."""
    return _tables()[name]


def table_names() -> tuple[str, ...]:
    return tuple(_tables())


def pick(name: str, *symbols: str) -> Table:
    """The named entries of a generated table, in the order given (kdump's order)."""
    values = {symbol: value for value, symbol in table(name)}
    return tuple((values[symbol], symbol) for symbol in symbols)


def value(name: str, symbol: str) -> int:
    """One symbol's value from a generated table."""
    for v, s in table(name):
        if s == symbol:
            return v
    raise KeyError(f"{symbol} not in {name}")


# *at() flags as kdump prints them (FreeBSD compat/linux/linux_file.h order).
# 0x200 means AT_EACCESS for faccessat and AT_REMOVEDIR for unlinkat; kdump
# has one table with AT_EACCESS and prints it for both.
AT_FLAGS = pick("at_flags", "AT_SYMLINK_NOFOLLOW", "AT_EACCESS", "AT_SYMLINK_FOLLOW", "AT_NO_AUTOMOUNT",
                "AT_EMPTY_PATH")  # fmt: skip
AT_UNLINKAT_FLAGS = pick("at_flags", "AT_REMOVEDIR")
AT_FDCWD = value("at_fdcwd", "AT_FDCWD")

# open(2): the access mode (low two bits) is printed first, apart.
O_ACCMODE = 0o3
O_CREAT = value("open_flags", "O_CREAT")
OPEN_ACCESS_MODES = table("open_access")
OPEN_FLAGS = table("open_flags")

CLOCK_IDS = table("clock_id")
CLOCK_FLAGS = table("clock_flags")
SIGPROCMASK_HOW = table("sigprocmask_how")
ITIMER_WHICH = table("itimer_which")

# Dynamic CPU clocks (negative ids).  This is the encoding of
# kernel/time/posix-cpu-timers.c, not a UAPI table: low 2 bits = which
# clock, bit 2 = per-thread, ~(id >> 3) = pid/tid; which == 3 with the
# per-thread bit is a clock fd.
CPUCLOCK_IDS: Table = ((0, "CPUCLOCK_PROF"), (1, "CPUCLOCK_VIRT"), (2, "CPUCLOCK_SCHED"))
CPUCLOCK_WHICH_MASK = 3
CPUCLOCK_PERTHREAD_MASK = 4
CLOCKFD = 3
CLOCKFD_MASK = CPUCLOCK_PERTHREAD_MASK | CPUCLOCK_WHICH_MASK

# clone(2): the low byte (CSIGNAL) is the exit signal; the rest are flags.
CLONE_CSIGNAL = 0xFF
CLONE_FLAGS = table("clone_flags")

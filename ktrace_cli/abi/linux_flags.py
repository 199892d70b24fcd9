"""Linux flag and value tables that kdump's Linux decoder prints, with their provenance.

Each table is a tuple of (value, name) pairs in the order FreeBSD's
libsysdecode generates them (lib/libsysdecode/mklinuxtables greps
sys/compat/linux/*.h in header order); masks are printed by walking a table
in that order, so the order is part of the output.  Names are printed
without the LINUX_ prefix, as mklinuxtables strips it.  Values are those of
Linux x86_64 (include/uapi/asm-generic/*.h, include/uapi/linux/*.h), which
FreeBSD's compat/linux headers mirror.

Access and file modes come from FreeBSD's tables (abi.sysdecode), as kdump
prints them; the values are the same on Linux.  Where FreeBSD's table is
wrong or incomplete for Linux the table says so and follows Linux; each such
divergence is marked "DIVERGES".
"""

from __future__ import annotations

Table = tuple[tuple[int, str], ...]

# *at() flags: include/uapi/linux/fcntl.h (FreeBSD compat/linux/linux_file.h
# LINUX_AT_*).  0x200 means AT_EACCESS for faccessat and AT_REMOVEDIR for
# unlinkat; kdump has one table with AT_EACCESS first and so prints
# AT_EACCESS for both.  DIVERGES: unlinkat uses AT_UNLINKAT_FLAGS below.
AT_FLAGS: Table = (
    (0x100, "AT_SYMLINK_NOFOLLOW"),
    (0x200, "AT_EACCESS"),
    (0x400, "AT_SYMLINK_FOLLOW"),
    (0x800, "AT_NO_AUTOMOUNT"),
    (0x1000, "AT_EMPTY_PATH"),
)
AT_UNLINKAT_FLAGS: Table = ((0x200, "AT_REMOVEDIR"),)

AT_FDCWD = -100  # include/uapi/linux/fcntl.h, same as FreeBSD's

# open(2) flags other than the access mode: include/uapi/asm-generic/fcntl.h
# (octal; FreeBSD compat/linux/linux_file.h LINUX_O_*).  The access mode
# (O_RDONLY 0, O_WRONLY 1, O_RDWR 2; O_ACCMODE 3) is printed first, apart.
O_ACCMODE = 0o3
O_CREAT = 0o100
OPEN_ACCESS_MODES: Table = ((0o0, "O_RDONLY"), (0o1, "O_WRONLY"), (0o2, "O_RDWR"))
OPEN_FLAGS: Table = (
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    # DIVERGES: FreeBSD names 0o10000 LINUX_O_SYNC; in Linux it is O_DSYNC and
    # O_SYNC is __O_SYNC|O_DSYNC.  The composite comes first so a full O_SYNC
    # prints as one name.
    (0o4010000, "O_SYNC"),
    (0o10000, "O_DSYNC"),
    (0o20000, "O_ASYNC"),  # FASYNC in the uapi header, O_ASYNC in glibc and kdump
    (0o40000, "O_DIRECT"),
    (0o100000, "O_LARGEFILE"),
    # DIVERGES: O_TMPFILE (__O_TMPFILE|O_DIRECTORY) is missing from FreeBSD's table.
    (0o20200000, "O_TMPFILE"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o4000000, "__O_SYNC"),
    (0o10000000, "O_PATH"),
    (0o20000000, "__O_TMPFILE"),
)

# Clock ids: include/uapi/linux/time.h (FreeBSD compat/linux/linux_time.h).
CLOCK_IDS: Table = (
    (0, "CLOCK_REALTIME"),
    (1, "CLOCK_MONOTONIC"),
    (2, "CLOCK_PROCESS_CPUTIME_ID"),
    (3, "CLOCK_THREAD_CPUTIME_ID"),
    (4, "CLOCK_MONOTONIC_RAW"),
    (5, "CLOCK_REALTIME_COARSE"),
    (6, "CLOCK_MONOTONIC_COARSE"),
    (7, "CLOCK_BOOTTIME"),
    (8, "CLOCK_REALTIME_ALARM"),
    (9, "CLOCK_BOOTTIME_ALARM"),
    (10, "CLOCK_SGI_CYCLE"),
    (11, "CLOCK_TAI"),
)
# Dynamic CPU clocks (negative ids): kernel/time/posix-cpu-timers.c encoding,
# low 2 bits = which clock, bit 2 = per-thread, ~(id >> 3) = pid/tid;
# which == 3 with the per-thread bit is a clock fd (CLOCKFD_MASK 7).
CPUCLOCK_IDS: Table = ((0, "CPUCLOCK_PROF"), (1, "CPUCLOCK_VIRT"), (2, "CPUCLOCK_SCHED"))
CPUCLOCK_WHICH_MASK = 3
CPUCLOCK_PERTHREAD_MASK = 4
CLOCKFD = 3
CLOCKFD_MASK = CPUCLOCK_PERTHREAD_MASK | CPUCLOCK_WHICH_MASK

# clock_nanosleep/timer_settime flags: include/uapi/linux/time.h.
CLOCK_FLAGS: Table = ((0x01, "TIMER_ABSTIME"),)

# rt_sigprocmask how: include/uapi/asm-generic/signal-defs.h.
SIGPROCMASK_HOW: Table = ((0, "SIG_BLOCK"), (1, "SIG_UNBLOCK"), (2, "SIG_SETMASK"))

# getitimer/setitimer which: include/uapi/linux/time.h (same as FreeBSD's
# sys/sys/time.h, whose table kdump uses).
ITIMER_WHICH: Table = ((0, "ITIMER_REAL"), (1, "ITIMER_VIRTUAL"), (2, "ITIMER_PROF"))

# clone(2) flags: include/uapi/linux/sched.h (FreeBSD compat/linux/linux_fork.h,
# minus the clone3-only and legacy entries mklinuxtables excludes).  The low
# byte (CSIGNAL) is the exit signal, printed apart as (SIGNAME).
CLONE_CSIGNAL = 0xFF
CLONE_FLAGS: Table = (
    (0x00000100, "CLONE_VM"),
    (0x00000200, "CLONE_FS"),
    (0x00000400, "CLONE_FILES"),
    (0x00000800, "CLONE_SIGHAND"),
    (0x00001000, "CLONE_PIDFD"),
    (0x00002000, "CLONE_PTRACE"),
    (0x00004000, "CLONE_VFORK"),
    (0x00008000, "CLONE_PARENT"),
    (0x00010000, "CLONE_THREAD"),
    (0x00020000, "CLONE_NEWNS"),
    (0x00040000, "CLONE_SYSVSEM"),
    (0x00080000, "CLONE_SETTLS"),
    (0x00100000, "CLONE_PARENT_SETTID"),
    (0x00200000, "CLONE_CHILD_CLEARTID"),
    (0x00400000, "CLONE_DETACHED"),
    (0x00800000, "CLONE_UNTRACED"),
    (0x01000000, "CLONE_CHILD_SETTID"),
    (0x02000000, "CLONE_NEWCGROUP"),
    (0x04000000, "CLONE_NEWUTS"),
    (0x08000000, "CLONE_NEWIPC"),
    (0x10000000, "CLONE_NEWUSER"),
    (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"),
    (0x80000000, "CLONE_IO"),
)

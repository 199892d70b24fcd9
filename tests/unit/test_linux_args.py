"""Linux CALL argument text: kdump's linux.c templates with hand-written expectations."""

from __future__ import annotations

import pytest

from ktrace_cli.decode.linux_args import clockid, format_linux_args


def U(value: int) -> int:
    """A register slot holding a (possibly negative) C value."""
    return value & 0xFFFFFFFFFFFFFFFF


AT_FDCWD = U(-100)


def fmt(name: str, *args: int, decimal: bool = False, ilp32: bool = False) -> str:
    return format_linux_args(name, args, decimal=decimal, ilp32=ilp32)


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        # kdump's Linux openat example (docs/FORMAT.md, CALL text), without the linux_ prefix.
        ("openat", (AT_FDCWD, 0x4005D0, 0, 0), "(AT_FDCWD,0x4005d0,0<O_RDONLY>)"),
        # O_CREAT adds the mode; leftover slots print as numbers.
        (
            "openat",
            (AT_FDCWD, 0x10, 0o2101102, 0o644, 0, 7),
            "(AT_FDCWD,0x10,0x88242<O_RDWR|O_CREAT|O_TRUNC|O_LARGEFILE|O_CLOEXEC>,"
            "0644<S_IRUSR|S_IWUSR|S_IRGRP|S_IROTH>,0,0x7)",
        ),
        # Without O_CREAT the mode slot is consumed silently, as kdump does.
        ("open", (0x10, 0o200000, 0o777), "(0x10,0x10000<O_RDONLY|O_DIRECTORY>)"),
        # Linux O_SYNC is __O_SYNC|O_DSYNC and prints as one name.
        (
            "open",
            (0x10, 0o4010101, 0o600),
            "(0x10,0x101041<O_WRONLY|O_CREAT|O_SYNC>,0600<S_IRUSR|S_IWUSR>)",
        ),
        ("open", (0x10, 0o10002, 0), "(0x10,0x1002<O_RDWR|O_DSYNC>)"),
        # Access mode 3 is not a mode: nothing printed, so the bits are reported.
        ("open", (0x10, 3, 0), "(0x10,0x3<><invalid>3)"),
        ("access", (0x10, 6), "(0x10,0x6<W_OK|R_OK>)"),
        ("access", (0x10, 0), "(0x10,0<F_OK>)"),
        ("faccessat", (AT_FDCWD, 0x10, 4), "(AT_FDCWD,0x10,0x4<R_OK>)"),
        ("faccessat2", (AT_FDCWD, 0x10, 1, 0x200), "(AT_FDCWD,0x10,0x1<X_OK>,0x200<AT_EACCESS>)"),
        ("unlinkat", (U(3), 0x10, 0x200), "(0x3,0x10,0x200<AT_REMOVEDIR>)"),
        ("unlinkat", (AT_FDCWD, 0x10, 0), "(AT_FDCWD,0x10,0)"),
        (
            "newfstatat",
            (U(5), 0x10, 0x20, 0x1100),
            "(0x5,0x10,0x20,0x1100<AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH>)",
        ),
        ("fchownat", (AT_FDCWD, 0x10, 0, 0, 0), "(AT_FDCWD,0x10,0,0,0)"),
        (
            "linkat",
            (AT_FDCWD, 0x10, AT_FDCWD, 0x20, 0x400),
            "(AT_FDCWD,0x10,AT_FDCWD,0x20,0x400<AT_SYMLINK_FOLLOW>)",
        ),
        ("symlinkat", (0x10, U(4), 0x20), "(0x10,0x4,0x20)"),
        ("renameat2", (AT_FDCWD, 0x10, AT_FDCWD, 0x20, 1), "(AT_FDCWD,0x10,AT_FDCWD,0x20,0x1)"),
        (
            "mkdir",
            (0x10, 0o755),
            "(0x10,0755<S_IRUSR|S_IWUSR|S_IXUSR|S_IRGRP|S_IXGRP|S_IROTH|S_IXOTH>)",
        ),
        ("mkdirat", (AT_FDCWD, 0x10, 0), "(AT_FDCWD,0x10,0)"),
        ("chmod", (0x10, 0o4000), "(0x10,04000<S_ISUID>)"),
        (
            "mknodat",
            (AT_FDCWD, 0x10, 0o20600, 0x103),
            "(AT_FDCWD,0x10,020600<S_IRUSR|S_IWUSR|S_IFCHR>,0x103)",
        ),
        ("clock_gettime", (1, 0x7FF), "(CLOCK_MONOTONIC,0x7ff)"),
        ("clock_getres", (11, 0), "(CLOCK_TAI,0)"),
        ("clock_gettime", (12, 0), "(UNKNOWN(12),0)"),
        ("clock_nanosleep", (0, 1, 0x10, 0), "(CLOCK_REALTIME,0x1<TIMER_ABSTIME>,0x10,0)"),
        ("clock_nanosleep", (1, 0, 0x10, 0), "(CLOCK_MONOTONIC,0,0x10,0)"),
        # fork() as glibc does it: exit signal first, then the flags.
        (
            "clone",
            (0x1200011, 0, 0, 0x7F00, 0),
            "(0x1200011<(SIGCHLD)CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID>,0,0,0x7f00,0)",
        ),
        ("clone", (0x11, 0), "(0x11<(SIGCHLD)><invalid>0,0)"),
        ("kill", (1234, 15), "(1234,SIGTERM)"),
        ("kill", (U(-1), 9), "(-1,SIGKILL)"),
        ("tkill", (77, 0), "(77,SIG 0)"),
        ("tgkill", (10, 11, 2), "(10,11,SIGINT)"),
        ("rt_sigaction", (17, 0x10, 0, 8), "(SIGCHLD,0x10,0,0x8)"),
        ("rt_sigprocmask", (2, 0x10, 0, 8), "(SIG_SETMASK,0x10,0,0x8)"),
        ("rt_sigprocmask", (0, 0, 0, 8), "(SIG_BLOCK,0,0,0x8)"),
        ("rt_sigprocmask", (7, 0, 0, 8), "(<invalid=0x7>,0,0,0x8)"),
        ("setitimer", (0, 0x10, 0), "(ITIMER_REAL,0x10,0)"),
        ("getitimer", (2, 0x10), "(ITIMER_PROF,0x10)"),
        ("ftruncate", (3, 0x1000), "(0x3,0x1000)"),
        # Not decoded: every slot is a number; -1 prints as 64-bit hex.
        ("read", (3, 0x10, U(-1)), "(0x3,0x10,0xffffffffffffffff)"),
        ("getpid", (), ""),
        # An unknown name is decoded as plain numbers.
        ("no_such_call", (0, 1), "(0,0x1)"),
    ],
)
def test_templates(name: str, args: tuple[int, ...], expected: str) -> None:
    assert fmt(name, *args) == expected


def test_decimal_changes_numbers_and_invalid_values() -> None:
    assert fmt("read", 3, 0x10, U(-1), decimal=True) == "(3,16,-1)"
    assert fmt("rt_sigprocmask", 7, 0, 0, 8, decimal=True) == "(<invalid=7>,0,0,8)"
    assert fmt("unlinkat", 3, 16, 0, decimal=True) == "(3,16,0)"
    # Masks stay hexadecimal with -d, as in kdump.
    assert fmt("faccessat", AT_FDCWD, 16, 6, decimal=True) == "(AT_FDCWD,16,0x6<W_OK|R_OK>)"


def test_ilp32_joins_64_bit_arguments_and_knows_more_calls() -> None:
    # linux32: a 64-bit length takes two slots, low word first.
    assert fmt("ftruncate", 3, 0x1000, 1, ilp32=True) == "(0x3,0x100001000)"
    assert fmt("sigprocmask", 1, 0, 0, ilp32=True) == "(SIG_UNBLOCK,0,0)"
    assert fmt("sigprocmask", 1, 0, 0, ilp32=False) == "(0x1,0,0)"
    assert fmt("fchmod", 3, 0o644, ilp32=True) == "(0x3,0644<S_IRUSR|S_IWUSR|S_IRGRP|S_IROTH>)"


def test_short_argument_lists_do_not_fail() -> None:
    # kdump would read past the slots; we stop where the slots stop.
    assert fmt("openat", AT_FDCWD) == "(AT_FDCWD)"
    assert fmt("open", 0x10) == "(0x10)"
    assert fmt("clock_nanosleep", 1) == "(CLOCK_MONOTONIC)"
    assert fmt("faccessat", AT_FDCWD, 0x10, 4) == "(AT_FDCWD,0x10,0x4<R_OK>)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "CLOCK_REALTIME"),
        # CPU clock of the calling thread: which=2 (SCHED), per-thread, pid 0.
        (U(-2), "THREAD|CPUCLOCK_SCHED(0)"),
        # clock_getcpuclockid(1234): ((~1234) << 3) | CPUCLOCK_SCHED.
        (U((~1234 << 3) | 2), "PROCESS|CPUCLOCK_SCHED(1234)"),
        (U((~99 << 3) | 4 | 1), "THREAD|CPUCLOCK_VIRT(99)"),
        (U((~7 << 3) | 3), "PROCESS|CLOCKFD(7)"),
        (U((~7 << 3) | 7), "INVALID PERTHREAD|CLOCKFD(7)"),
    ],
)
def test_clockid(value: int, expected: str) -> None:
    assert clockid(value) == expected

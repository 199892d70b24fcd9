"""Linux CALL argument text: kdump's linux.c templates and the rows beyond them, with hand-written expectations."""

from __future__ import annotations

import pytest

from ktrace_cli.decode.linux_args import clockid
from ktrace_cli.decode.linux_calls import KDUMP_OVERRIDES, format_linux_args


def U(value: int) -> int:
    """A register slot holding a (possibly negative) C value."""
    return value & 0xFFFFFFFFFFFFFFFF


AT_FDCWD = U(-100)


def fmt(name: str, *args: int, decimal: bool = False, ilp32: bool = False, kdump: bool = False) -> str:
    return format_linux_args(name, args, decimal=decimal, ilp32=ilp32, kdump=kdump)


# What FreeBSD's kdump prints (kdump=True).
KDUMP_CASES = [
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
        # kdump prints the register: a pid_t of -472 zero-extended by the caller.
        ("kill", (0xFFFFFE28, 18), "(4294966824,SIGCONT)"),
        ("mmap", (0, 0x2000, 3, 0x22, U(-1), 0), "(0,0x2000,0x3,0x22,0xffffffffffffffff,0)"),
]


@pytest.mark.parametrize(("name", "args", "expected"), KDUMP_CASES)
def test_kdump_templates(name: str, args: tuple[int, ...], expected: str) -> None:
    assert fmt(name, *args, kdump=True) == expected


@pytest.mark.parametrize(("name", "args", "expected"), [c for c in KDUMP_CASES if c[0] not in KDUMP_OVERRIDES])
def test_default_text_is_kdumps_outside_the_overrides(name: str, args: tuple[int, ...], expected: str) -> None:
    assert fmt(name, *args) == expected


# The rows beyond kdump (the default), one case or more for every row.
DEFAULT_CASES = [
    # Issue: kill(4294966824,SIGCONT) is bash continuing process group 472.
    ("kill", (0xFFFFFE28, 18), "(-472,SIGCONT)"),
    ("kill", (U(-1), 9), "(-1,SIGKILL)"),
    ("tkill", (77, 0), "(77,SIG 0)"),
    ("tgkill", (10, U(-11), 2), "(10,-11,SIGINT)"),
    ("rt_sigqueueinfo", (5, 10, 0x10), "(5,SIGUSR1,0x10)"),
    ("rt_tgsigqueueinfo", (5, 6, 12, 0x10), "(5,6,SIGUSR2,0x10)"),
    ("clone", (0x1200011, 0, 0, 0x7F00, 0), "(0x1200011<CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD>,0,0,0x7f00,0)"),
    ("clone", (0x11, 0), "(0x11<SIGCHLD>,0)"),
    ("clone", (0x3D0F00, 0x7F00), "(0x3d0f00<CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM"
     "|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID>,0x7f00)"),
    # clone3's arguments are a pointer and a size: nothing to decode, as in kdump.
    ("clone3", (0x7FFC, 88), "(0x7ffc,0x58)"),
    ("unshare", (0x20000000 | 0x80,), "(0x20000080<CLONE_NEWPID|CLONE_NEWTIME>)"),
    ("setns", (3, 0x40000000), "(0x3,0x40000000<CLONE_NEWNET>)"),
    ("mmap", (0, 0x2000, 3, 0x22, U(-1), 0), "(0,0x2000,0x3<PROT_READ|PROT_WRITE>,0x22<MAP_PRIVATE|MAP_ANONYMOUS>,-1,0)"),
    ("mmap", (0, 0x1000, 0, 0x4032, U(-1), 0),
     "(0,0x1000,0<PROT_NONE>,0x4032<MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS|MAP_NORESERVE>,-1,0)"),
    # Unknown bits are kept beside the names.
    ("mmap", (0x7F00, 0x1000, 0x105, 0x100001, 3, 0x3000),
     "(0x7f00,0x1000,0x105<PROT_READ|PROT_EXEC|0x100>,0x100001<MAP_SHARED|MAP_FIXED_NOREPLACE>,0x3,0x3000)"),
    ("mmap", (0, 0x1000, 0x100, 0x0, 3, 0), "(0,0x1000,0x100<><invalid>256,0,0x3,0)"),
    # prot is an unsigned long: bits above 31 are shown, not dropped.
    ("mprotect", (0x7F00, 0x1000, 0x100000001), "(0x7f00,0x1000,0x100000001<PROT_READ|0x100000000>)"),
    ("mprotect", (0x7F00, 0x1000, 1), "(0x7f00,0x1000,0x1<PROT_READ>)"),
    ("pkey_mprotect", (0x7F00, 0x1000, 0x1000007, U(-1)),
     "(0x7f00,0x1000,0x1000007<PROT_READ|PROT_WRITE|PROT_EXEC|PROT_GROWSDOWN>,-1)"),
    ("mremap", (0x7F00, 0x1000, 0x2000, 1, 0), "(0x7f00,0x1000,0x2000,0x1<MREMAP_MAYMOVE>,0)"),
    ("madvise", (0x7F00, 0x1000, 4), "(0x7f00,0x1000,MADV_DONTNEED)"),
    ("madvise", (0x7F00, 0x1000, 99), "(0x7f00,0x1000,<invalid=0x63>)"),
    ("msync", (0x7F00, 0x1000, 4), "(0x7f00,0x1000,0x4<MS_SYNC>)"),
    ("mlockall", (3,), "(0x3<MCL_CURRENT|MCL_FUTURE>)"),
    ("socket", (2, 1, 6), "(AF_INET,0x1<SOCK_STREAM>,IPPROTO_TCP)"),
    ("socket", (1, 0x80801, 0), "(AF_UNIX,0x80801<SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK>,0)"),
    ("socket", (10, 0x80002, 0), "(AF_INET6,0x80002<SOCK_DGRAM|SOCK_CLOEXEC>,IPPROTO_IP)"),
    ("socket", (16, 3, 9), "(AF_NETLINK,0x3<SOCK_RAW>,0x9)"),
    ("socket", (99, 0xE, 0), "(<invalid=0x63>,0xe<><invalid>14,0)"),
    ("socketpair", (1, 5, 0, 0x7FF0), "(AF_UNIX,0x5<SOCK_SEQPACKET>,0,0x7ff0)"),
    ("setsockopt", (5, 6, 1, 0x7FF0, 4), "(0x5,SOL_TCP,TCP_NODELAY,0x7ff0,0x4)"),
    ("setsockopt", (5, 1, 2, 0x7FF0, 4), "(0x5,SOL_SOCKET,SO_REUSEADDR,0x7ff0,0x4)"),
    ("setsockopt", (5, 0, 1, 0x7FF0, 4), "(0x5,SOL_IP,IP_TOS,0x7ff0,0x4)"),
    ("setsockopt", (5, 41, 26, 0x7FF0, 4), "(0x5,SOL_IPV6,IPV6_V6ONLY,0x7ff0,0x4)"),
    ("getsockopt", (5, 1, 4, 0x7FF0, 0x7FE0), "(0x5,SOL_SOCKET,SO_ERROR,0x7ff0,0x7fe0)"),
    # A level without an option table leaves the option a number.
    ("getsockopt", (5, 263, 1, 0x7FF0, 0x7FE0), "(0x5,SOL_PACKET,0x1,0x7ff0,0x7fe0)"),
    ("sendto", (5, 0x10, 4, 0x4000, 0, 0), "(0x5,0x10,0x4,0x4000<MSG_NOSIGNAL>,0,0)"),
    ("recvfrom", (5, 0x10, 4, 0x42, 0, 0), "(0x5,0x10,0x4,0x42<MSG_PEEK|MSG_DONTWAIT>,0,0)"),
    ("sendmsg", (5, 0x10, 0), "(0x5,0x10,0)"),
    ("recvmsg", (5, 0x10, 0x40000000), "(0x5,0x10,0x40000000<MSG_CMSG_CLOEXEC>)"),
    ("sendmmsg", (5, 0x10, 2, 0x8000), "(0x5,0x10,0x2,0x8000<MSG_MORE>)"),
    ("recvmmsg", (5, 0x10, 2, 0x10000, 0), "(0x5,0x10,0x2,0x10000<MSG_WAITFORONE>,0)"),
    ("accept4", (3, 0, 0, 0x80800), "(0x3,0,0,0x80800<SOCK_CLOEXEC|SOCK_NONBLOCK>)"),
    ("fcntl", (3, 2, 1), "(0x3,F_SETFD,FD_CLOEXEC)"),
    ("fcntl", (3, 2, 0), "(0x3,F_SETFD,0)"),
    ("fcntl", (3, 4, 0o4002), "(0x3,F_SETFL,0x802<O_RDWR|O_NONBLOCK>)"),
    ("fcntl", (3, 1030, 10), "(0x3,F_DUPFD_CLOEXEC,0xa)"),
    ("fcntl", (3, 8, U(-472)), "(0x3,F_SETOWN,-472)"),
    ("fcntl", (3, 10, 29), "(0x3,F_SETSIG,SIGIO)"),
    ("fcntl", (3, 1033, 0xF), "(0x3,F_ADD_SEALS,0xf<F_SEAL_SEAL|F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE>)"),
    ("fcntl", (3, 1, 0), "(0x3,F_GETFD,0)"),
    ("fcntl", (3, 999, 0), "(0x3,<invalid=0x3e7>,0)"),
    ("ioctl", (0, 0x5401, 0x7FF0), "(0,TCGETS,0x7ff0)"),
    ("ioctl", (1, 0x5413, 0x7FF0), "(0x1,TIOCGWINSZ,0x7ff0)"),
    ("ioctl", (3, 0x541B, 0x7FF0), "(0x3,FIONREAD,0x7ff0)"),
    ("ioctl", (3, 0x5421, 0x7FF0), "(0x3,FIONBIO,0x7ff0)"),
    ("ioctl", (3, 0x80045430, 0x7FF0), "(0x3,TIOCGPTN,0x7ff0)"),
    ("ioctl", (3, 0x80081272, 0x7FF0), "(0x3,BLKGETSIZE64,0x7ff0)"),
    ("ioctl", (3, 0xC0106924, 0), "(0x3,0xc0106924,0)"),
    ("lseek", (3, U(-5), 2), "(0x3,-5,SEEK_END)"),
    ("lseek", (3, 0x100, 3), "(0x3,0x100,SEEK_DATA)"),
    ("statx", (U(-100), 0x10, 0x1000, 0x7FF, 0x7FE0), "(AT_FDCWD,0x10,0x1000<AT_EMPTY_PATH>,0x7ff<STATX_BASIC_STATS>,0x7fe0)"),
    ("statx", (3, 0x10, 0x100, 0x1800, 0x7FE0),
     "(0x3,0x10,0x100<AT_SYMLINK_NOFOLLOW>,0x1800<STATX_BTIME|STATX_MNT_ID>,0x7fe0)"),
    ("pipe2", (0x7FF0, 0x80800), "(0x7ff0,0x80800<O_NONBLOCK|O_CLOEXEC>)"),
    ("dup3", (3, 10, 0x80000), "(0x3,0xa,0x80000<O_CLOEXEC>)"),
    ("futex", (0x10, 0x81, 1, 0, 0, 0), "(0x10,FUTEX_WAKE_PRIVATE,0x1,0,0,0)"),
    ("futex", (0x10, 0, 2, 0, 0, 0), "(0x10,FUTEX_WAIT,0x2,0,0,0)"),
    ("futex", (0x10, 0x189, 0, 0x7FF0, 0, 0xFFFFFFFF),
     "(0x10,FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME,0,0x7ff0,0,0xffffffff)"),
    ("futex", (0x10, 0x7F, 0), "(0x10,<invalid=0x7f>,0)"),
    ("prctl", (15, 0x7FF0, 0, 0, 0), "(PR_SET_NAME,0x7ff0,0,0,0)"),
    ("prctl", (1, 9, 0, 0, 0), "(PR_SET_PDEATHSIG,SIGKILL,0,0,0)"),
    ("prctl", (0x53564D41, 0, 0x7F00, 0x1000, 0x10), "(PR_SET_VMA,0,0x7f00,0x1000,0x10)"),
    ("arch_prctl", (0x1002, 0x7F00), "(ARCH_SET_FS,0x7f00)"),
    ("arch_prctl", (0x3001, 0x7F00), "(<invalid=0x3001>,0x7f00)"),
    ("prlimit64", (0, 7, 0, 0x7FF0), "(0,RLIMIT_NOFILE,0,0x7ff0)"),
    ("prlimit64", (1234, 3, 0x7FF0, 0), "(1234,RLIMIT_STACK,0x7ff0,0)"),
    ("getrlimit", (3, 0x7FF0), "(RLIMIT_STACK,0x7ff0)"),
    ("setrlimit", (4, 0x7FF0), "(RLIMIT_CORE,0x7ff0)"),
    ("wait4", (U(-1), 0x7FF0, 0xA, 0), "(-1,0x7ff0,0xa<WUNTRACED|WCONTINUED>,0)"),
    ("wait4", (U(-472), 0x7FF0, 0, 0), "(-472,0x7ff0,0,0)"),
    ("wait4", (1234, 0, 0x40000001, 0), "(1234,0,0x40000001<WNOHANG|__WALL>,0)"),
    ("waitid", (1, 1234, 0x7FF0, 4, 0), "(P_PID,0x4d2,0x7ff0,0x4<WEXITED>,0)"),
    ("waitid", (0, 0, 0x7FF0, 0x1000004, 0), "(P_ALL,0,0x7ff0,0x1000004<WEXITED|WNOWAIT>,0)"),
    ("getrandom", (0x7FF0, 16, 1), "(0x7ff0,0x10,0x1<GRND_NONBLOCK>)"),
    ("getrandom", (0x7FF0, 16, 0), "(0x7ff0,0x10,0)"),
    ("epoll_create1", (0x80000,), "(0x80000<EPOLL_CLOEXEC>)"),
    ("epoll_ctl", (4, 1, 3, 0x7FF0), "(0x4,EPOLL_CTL_ADD,0x3,0x7ff0)"),
    ("epoll_ctl", (4, 2, 3, 0), "(0x4,EPOLL_CTL_DEL,0x3,0)"),
    ("memfd_create", (0x7FF0, 3), "(0x7ff0,0x3<MFD_CLOEXEC|MFD_ALLOW_SEALING>)"),
    # MFD_HUGETLB with a size encoded in bits 26-31: the size stays a number.
    ("memfd_create", (0x7FF0, 0x54000004), "(0x7ff0,0x54000004<MFD_HUGETLB|0x54000000>)"),
    ("eventfd2", (0, 0x80801), "(0,0x80801<EFD_SEMAPHORE|EFD_CLOEXEC|EFD_NONBLOCK>)"),
    ("timerfd_create", (1, 0x80800), "(CLOCK_MONOTONIC,0x80800<TFD_CLOEXEC|TFD_NONBLOCK>)"),
    ("timerfd_settime", (5, 1, 0x7FF0, 0), "(0x5,0x1<TFD_TIMER_ABSTIME>,0x7ff0,0)"),
    ("signalfd4", (U(-1), 0x7FF0, 8, 0x80000), "(-1,0x7ff0,0x8,0x80000<SFD_CLOEXEC>)"),
    ("inotify_init1", (0x800,), "(0x800<IN_NONBLOCK>)"),
    # Outside the rows, int, pid_t and off_t arguments print signed.
    ("exit_group", (U(-1),), "(-1)"),
    ("setpgid", (0, U(-1)), "(0,-1)"),
    ("getpgid", (1234,), "(1234)"),
    ("openat", (U(-2), 0x10, 0, 0), "(-2,0x10,0<O_RDONLY>)"),
    ("read", (3, 0x10, U(-1)), "(0x3,0x10,0xffffffffffffffff)"),
]


@pytest.mark.parametrize(("name", "args", "expected"), DEFAULT_CASES)
def test_rows_beyond_kdump(name: str, args: tuple[int, ...], expected: str) -> None:
    assert fmt(name, *args) == expected


def test_every_override_row_has_a_case_and_a_reason() -> None:
    tested = {name for name, _args, _expected in DEFAULT_CASES}
    assert sorted(set(KDUMP_OVERRIDES) - tested) == []
    assert all(why.strip() for _row, why in KDUMP_OVERRIDES.values())


def test_rows_decimal_and_short() -> None:
    # -d prints numbers in decimal; names and masks are unchanged.
    assert fmt("mmap", 0, 8192, 3, 0x22, U(-1), 4096, decimal=True) == (
        "(0,8192,0x3<PROT_READ|PROT_WRITE>,0x22<MAP_PRIVATE|MAP_ANONYMOUS>,-1,4096)"
    )
    assert fmt("waitid", 1, 1234, 0, 4, 0, decimal=True) == "(P_PID,1234,0,0x4<WEXITED>,0)"
    assert fmt("fcntl", 3, 999, 0, decimal=True) == "(3,<invalid=999>,0)"
    # On linux32 an off_t is 32 bits wide.
    assert fmt("lseek", 3, 0xFFFFFFFF, 1, ilp32=True) == "(0x3,-1,SEEK_CUR)"
    # A row stops where the slots stop.
    assert fmt("socket", 2) == "(AF_INET)"
    assert fmt("setsockopt", 5) == "(0x5)"
    assert fmt("fcntl", 3) == "(0x3)"
    assert fmt("prctl", 15) == "(PR_SET_NAME)"


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

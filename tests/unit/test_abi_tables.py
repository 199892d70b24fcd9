"""Exact-value tests for the FreeBSD and Linux ABI tables in ktrace_cli.abi."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ktrace_cli.abi import freebsd, linux

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "ktrace_cli" / "abi" / "data"


# --- FreeBSD syscall names ----------------------------------------------------

@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0, "syscall"),
        (1, "exit"),
        (5, "open"),
        (8, "compat.creat"),
        (11, "obs_execv"),
        (14, "compat11.mknod"),
        (59, "execve"),
        (91, "#91"),
        (188, "compat11.stat"),
        (199, "compat6.lseek"),
        (477, "mmap"),
        (478, "lseek"),
        (499, "openat"),
        (552, "fstatat"),
        (594, "inotify_rm_watch"),
    ],
)
def test_freebsd_syscall_name(code: int, name: str) -> None:
    assert freebsd.syscall_name(code) == name


def test_freebsd_syscall_name_out_of_range() -> None:
    assert freebsd.syscall_name(-1) is None
    assert freebsd.syscall_name(freebsd.syscall_count()) is None
    assert freebsd.syscall_count() == 595


def test_freebsd_syscall_number() -> None:
    assert freebsd.syscall_number("openat") == 499
    assert freebsd.syscall_number("lkmnosys") == 210
    assert freebsd.syscall_number("no_such_call") is None


def test_freebsd_syscall_table_names_provenance() -> None:
    head = (DATA / "freebsd_syscalls.tsv").read_text().splitlines()[:5]
    assert "# repository: freebsd/freebsd-src" in head
    assert "# path: sys/kern/syscalls.c" in head
    assert "# commit: e4452d45ec5ae661364f6a442ce1392a831bb9b5" in head


# --- FreeBSD errno ------------------------------------------------------------

@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "No error: 0"),
        (1, "Operation not permitted"),
        (2, "No such file or directory"),
        (6, "Device not configured"),
        (35, "Resource temporarily unavailable"),
        (49, "Can't assign requested address"),
        (59, "Too many references: can't splice"),
        (74, "RPC prog. not avail"),
        (93, "Capabilities insufficient"),
        (97, "Integrity check failed"),
        (98, "Unknown error: 98"),
        (-5, "Unknown error: -5"),
    ],
)
def test_freebsd_strerror(n: int, text: str) -> None:
    assert freebsd.strerror(n) == text


def test_freebsd_errno_max_and_names() -> None:
    assert freebsd.ERRNO_MAX == 97
    assert all(freebsd.errno_name(n) for n in range(1, freebsd.ERRNO_MAX + 1))
    assert freebsd.errno_name(0) is None
    assert freebsd.errno_name(98) is None
    assert freebsd.errno_name(35) == "EAGAIN"
    assert freebsd.errno_number("ENOATTR") == 87


# --- FreeBSD signals and si_codes ---------------------------------------------

@pytest.mark.parametrize(
    ("n", "name"),
    [
        (1, "SIGHUP"), (7, "SIGEMT"), (10, "SIGBUS"), (12, "SIGSYS"), (16, "SIGURG"),
        (17, "SIGSTOP"), (20, "SIGCHLD"), (29, "SIGINFO"), (30, "SIGUSR1"), (31, "SIGUSR2"),
        (32, "SIGTHR"), (33, "SIGLIBRT"), (65, "SIGRT0"), (126, "SIGRT61"),
        (0, None), (34, None), (64, None), (127, None),
    ],
)
def test_freebsd_signal_name(n: int, name: str | None) -> None:
    assert freebsd.signal_name(n) == name


@pytest.mark.parametrize(
    ("signo", "code", "name"),
    [
        (11, 0, "SI_NOINFO"),
        (2, 0x10001, "SI_USER"),
        (2, 0x10006, "SI_KERNEL"),
        (2, 0x10007, "SI_LWP"),
        (11, 1, "SEGV_MAPERR"),
        (11, 100, "SEGV_PKUERR"),
        (10, 100, "BUS_OOMERR"),
        (8, 1, "FPE_INTOVF"),
        (8, 2, "FPE_INTDIV"),
        (5, 4, "TRAP_CAP"),
        (20, 6, "CLD_CONTINUED"),
        (4, 8, "ILL_BADSTK"),
        (2, 1, None),
        (11, 3, None),
    ],
)
def test_freebsd_sigcode_name(signo: int, code: int, name: str | None) -> None:
    assert freebsd.sigcode_name(signo, code) == name


# --- FreeBSD capability rights ------------------------------------------------

@pytest.mark.parametrize(
    ("rights", "text"),
    [
        (("CAP_READ",), "CAP_READ"),
        (("CAP_WRITE",), "CAP_WRITE"),
        (("CAP_READ", "CAP_WRITE"), "CAP_READ,CAP_WRITE"),
        (("CAP_READ", "CAP_SEEK"), "CAP_PREAD"),
        (("CAP_MMAP_R", "CAP_MMAP_W", "CAP_MMAP_X"), "CAP_MMAP_RWX"),
        (("CAP_LOOKUP", "CAP_FSTAT"), "CAP_FSTATAT"),
        (("CAP_KQUEUE_EVENT", "CAP_KQUEUE_CHANGE"), "CAP_KQUEUE"),
        (("CAP_READ", "CAP_EVENT"), "CAP_READ,CAP_EVENT"),
        ((), "CAP_NONE"),
    ],
)
def test_cap_rights_text(rights: tuple[str, ...], text: str) -> None:
    assert freebsd.cap_rights_text(freebsd.cap_rights_words(*rights)) == text


def test_cap_rights_text_raw_words() -> None:
    # CAP_READ as a kernel writes it: index bits 57 (word 0) and 58 (word 1).
    assert freebsd.cap_rights_text((0x0200000000000001, 0x0400000000000000)) == "CAP_READ"
    assert freebsd.cap_rights_text((0x0200000000000000, 0x0400000000000000)) == "CAP_NONE"


def test_cap_rights_text_invalid_and_unknown() -> None:
    assert freebsd.cap_rights_text((0x1, 0x0)) == "invalid cap_rights_t"
    assert freebsd.cap_rights_text((0x0400000000000001, 0x0400000000000000)) == "invalid cap_rights_t"
    # version 1 would need a third word, which a 16-byte record does not have
    assert freebsd.cap_rights_text((0x4200000000000001, 0x0400000000000000)) == "invalid cap_rights_t"
    # bit 43 of word 0 is CAP_UNUSED0_44: no name covers it
    unnamed = 0x0000080000000000
    assert freebsd.cap_rights_text((0x0200000000000001 | unnamed, 0x0400000000000000)) == (
        "CAP_READ,unknown rights"
    )
    assert freebsd.cap_rights_text((0x0200000000000000 | unnamed, 0x0400000000000000)) == (
        "CAP_NONE,unknown rights"
    )


def test_cap_rights_ordering_puts_supersets_first() -> None:
    order = [name for name, _value in freebsd._caprights_ordered()]
    values = dict(freebsd._caprights_ordered())
    for i, name in enumerate(order):
        for later in order[i + 1:]:
            big, small = values[later], values[name]
            assert not (big & small == small and big != small), (name, later)


# --- Linux syscall names and numbers ------------------------------------------

@pytest.mark.parametrize(
    ("nr", "name"),
    [
        (0, "read"), (2, "open"), (59, "execve"), (166, "umount2"), (257, "openat"),
        (262, "newfstatat"), (283, "timerfd_create"), (322, "execveat"), (332, "statx"),
        (335, "uretprobe"), (435, "clone3"), (437, "openat2"), (439, "faccessat2"),
        (444, "landlock_create_ruleset"), (445, "landlock_add_rule"),
        (446, "landlock_restrict_self"), (449, "futex_waitv"), (451, "cachestat"),
        (452, "fchmodat2"), (457, "statmount"), (458, "listmount"), (462, "mseal"),
    ],
)
def test_linux_syscall_name(nr: int, name: str) -> None:
    assert linux.syscall_name(nr) == name


def test_linux_x32_numbers_are_not_x86_64() -> None:
    assert linux.syscall_name(520) is None
    assert linux.syscall_name(512) is None
    assert linux.syscall_name(400) is None
    assert linux.syscall_name(-1) is None
    assert linux.syscall_number("execve") == 59
    assert linux.syscall_number("rt_sigaction") == 13
    assert linux.syscall_number("fchmodat2") == 452
    assert linux.syscall_number("no_such_call") is None


def test_linux_table_covers_python_ptrace() -> None:
    from ptrace.syscall.linux.x86_64 import SYSCALL_NAMES

    for nr, name in SYSCALL_NAMES.items():
        if nr < linux.X32_FIRST and nr != 283:
            assert linux.syscall_name(nr) == name


def test_linux_number_name_round_trip() -> None:
    for nr in range(0, 600):
        name = linux.syscall_name(nr)
        if name is not None:
            assert linux.syscall_number(name) == nr


# --- Linux prototypes and path arguments --------------------------------------

def test_linux_prototypes() -> None:
    assert linux.syscall_prototype("openat") == (
        "long",
        (("int", "dirfd"), ("const char *", "filename"), ("int", "flags"), ("umode_t", "mode")),
    )
    assert linux.syscall_prototype("fchmodat2") == (
        "long",
        (("int", "dfd"), ("const char *", "filename"), ("umode_t", "mode"), ("unsigned int", "flags")),
    )
    assert linux.syscall_prototype("uretprobe") == ("long", ())
    assert linux.syscall_arg_count("mseal") == 3
    assert linux.syscall_prototype("no_such_call") is None


def test_every_x86_64_syscall_has_a_prototype_or_is_obsolete() -> None:
    unimplemented = {
        "uselib", "_sysctl", "create_module", "get_kernel_syms", "query_module", "nfsservctl",
        "getpmsg", "putpmsg", "afs_syscall", "tuxcall", "security", "set_thread_area",
        "get_thread_area", "lookup_dcookie", "epoll_ctl_old", "epoll_wait_old", "vserver",
        "modify_ldt", "iopl",
    }
    missing = [
        name for nr in range(linux.X32_FIRST)
        if (name := linux.syscall_name(nr)) is not None
        and linux.syscall_prototype(name) is None and name not in unimplemented
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("name", "indexes"),
    [
        ("open", (0,)), ("openat", (1,)), ("openat2", (1,)), ("creat", (0,)),
        ("stat", (0,)), ("lstat", (0,)), ("newfstatat", (1,)), ("statx", (1,)),
        ("execve", (0,)), ("execveat", (1,)), ("access", (0,)), ("faccessat", (1,)),
        ("faccessat2", (1,)), ("unlink", (0,)), ("unlinkat", (1,)), ("rename", (0, 1)),
        ("renameat", (1, 3)), ("renameat2", (1, 3)), ("link", (0, 1)), ("linkat", (1, 3)),
        ("symlink", (0, 1)), ("symlinkat", (0, 2)), ("mkdir", (0,)), ("mkdirat", (1,)),
        ("rmdir", (0,)), ("chdir", (0,)), ("chroot", (0,)), ("chmod", (0,)),
        ("fchmodat", (1,)), ("fchmodat2", (1,)), ("chown", (0,)), ("lchown", (0,)),
        ("fchownat", (1,)), ("readlink", (0,)), ("readlinkat", (1,)), ("truncate", (0,)),
        ("utimensat", (1,)), ("utime", (0,)), ("utimes", (0,)), ("mknod", (0,)),
        ("mknodat", (1,)), ("mount", (1,)), ("umount2", (0,)), ("setxattr", (0,)),
        ("lsetxattr", (0,)), ("getxattr", (0,)), ("lgetxattr", (0,)), ("listxattr", (0,)),
        ("llistxattr", (0,)), ("removexattr", (0,)), ("lremovexattr", (0,)),
        ("statfs", (0,)), ("acct", (0,)), ("swapon", (0,)), ("pivot_root", (0, 1)),
        ("inotify_add_watch", (1,)), ("move_mount", (1, 3)), ("open_tree", (1,)),
        ("mount_setattr", (1,)),
        # not paths: output buffers, attribute names, fds, mqueue names
        ("getcwd", ()), ("fgetxattr", ()), ("fsetxattr", ()), ("read", ()),
        ("write", ()), ("memfd_create", ()), ("mq_open", ()), ("sethostname", ()),
        ("no_such_call", ()),
    ],
)
def test_path_arg_indexes(name: str, indexes: tuple[int, ...]) -> None:
    assert linux.path_arg_indexes(name) == indexes


# --- Linux errno and its FreeBSD twin -----------------------------------------

def test_linux_errno_names_and_strings() -> None:
    assert linux.errno_name(2) == "ENOENT"
    assert linux.errno_name(11) == "EAGAIN"
    assert linux.errno_name(0) is None
    assert linux.strerror(2) == "No such file or directory"


def test_errno_round_trip_linux_freebsd_linux() -> None:
    for n in range(0, linux.LINUX_ERRNO_MAX + 1):
        assert linux.linux_errno_from_freebsd(linux.freebsd_errno_from_linux(n)) == n


@pytest.mark.parametrize(
    ("linux_errno", "freebsd_errno"),
    [
        (1, 1), (2, 2), (6, 6), (9, 9), (11, 35), (22, 22), (35, 11), (36, 63), (38, 78),
        (39, 66), (40, 62), (61, 87), (66, 71), (95, 45), (110, 60), (111, 61), (115, 36),
        (116, 70), (122, 69), (125, 85), (130, 96), (131, 95),
        # no FreeBSD twin: 0x10000 + the Linux errno
        (120, 0x10000 + 120), (133, 0x10000 + 133),
        (121, 0x10000 + 121), (60, 0x10000 + 60),
    ],
)
def test_freebsd_errno_from_linux(linux_errno: int, freebsd_errno: int) -> None:
    assert linux.freebsd_errno_from_linux(linux_errno) == freebsd_errno


@pytest.mark.parametrize(
    ("ktr_error", "linux_errno"),
    [
        (0, 0), (2, 2), (11, 35), (35, 11), (67, 11), (72, 6), (79, 9), (88, 22), (93, 1),
        (94, 1), (97, 22), (0x10000 + 120, 120), (98, 2147483647), (5000, 2147483647),
    ],
)
def test_linux_errno_from_freebsd(ktr_error: int, linux_errno: int) -> None:
    assert linux.linux_errno_from_freebsd(ktr_error) == linux_errno


def test_every_freebsd_errno_translates() -> None:
    for n in range(1, freebsd.ERRNO_MAX + 1):
        assert 1 <= linux.linux_errno_from_freebsd(n) <= linux.LINUX_ERRNO_MAX


# --- Linux signals and their FreeBSD twins ------------------------------------

@pytest.mark.parametrize(
    ("linux_sig", "freebsd_sig"),
    [
        (1, 1), (2, 2), (6, 6), (7, 10), (9, 9), (10, 30), (11, 11), (12, 31), (13, 13),
        (14, 14), (15, 15), (17, 20), (18, 19), (19, 17), (20, 18), (21, 21), (22, 22),
        (23, 16), (24, 24), (25, 25), (26, 26), (27, 27), (28, 28), (29, 23), (31, 12),
        # As the Linuxulator numbers them: SIGPWR takes FreeBSD's SIGRTMIN, so
        # the Linux realtime signals start at 66.
        (30, 65), (32, 66), (34, 68), (64, 98), (65, 0x10041), (0, 0),
    ],
)
def test_freebsd_signal_from_linux(linux_sig: int, freebsd_sig: int) -> None:
    assert linux.freebsd_signal_from_linux(linux_sig) == freebsd_sig
    assert linux.linux_signal_from_freebsd(freebsd_sig) == linux_sig


def test_sigstkflt_is_delivered_as_sigbus() -> None:
    assert linux.freebsd_signal_from_linux(16) == 10  # FreeBSD's SIGBUS
    assert linux.linux_signal_from_freebsd(10) == 7  # which reads back as Linux's SIGBUS


def test_freebsd_signals_without_linux_twin() -> None:
    for n in (7, 29, 32, 33, 99, 126):
        assert linux.linux_signal_from_freebsd(n) is None


def test_signal_names_agree_across_the_map() -> None:
    for sig in range(1, 32):
        if sig in (16, 30):  # SIGSTKFLT, SIGPWR: FreeBSD has no such signal
            continue
        assert freebsd.signal_name(linux.freebsd_signal_from_linux(sig)) == linux.signal_name(sig)
    assert freebsd.signal_name(linux.freebsd_signal_from_linux(16)) == "SIGBUS"


@pytest.mark.parametrize(
    ("n", "name"),
    [
        (1, "SIGHUP"), (6, "SIGABRT"), (7, "SIGBUS"), (10, "SIGUSR1"), (16, "SIGSTKFLT"),
        (29, "SIGIO"), (30, "SIGPWR"), (31, "SIGSYS"),
        # libsysdecode's linux_signames: FreeBSD's names for Linux realtime signals
        (32, "SIGCANCEL"), (33, "SIGSETXID"), (34, "SIGRT2"), (63, "SIGRT31"), (64, "SIGRTMAX"),
        (0, None), (65, None),
    ],
)
def test_linux_signal_name(n: int, name: str | None) -> None:
    assert linux.signal_name(n) == name
    if name is not None:
        assert linux.signal_number(name) == n


def test_linux_signal_number_accepts_glibc_spellings() -> None:
    assert linux.signal_number("SIGRTMIN") == 32
    assert linux.signal_number("SIGRTMIN+2") == 34
    assert linux.signal_number("SIGRT32") is None


def test_sigmask_maps() -> None:
    usr1, term, stkflt, pwr, rt2, rtmax = 10, 15, 16, 30, 34, 64
    mask = 0
    for sig in (usr1, term, stkflt, pwr, rt2, rtmax):
        mask |= 1 << (sig - 1)
    words = linux.freebsd_sigmask_from_linux(mask)
    # FreeBSD: SIGUSR1 30, SIGTERM 15 and SIGSTKFLT as SIGBUS 10 in word 0;
    # SIGPWR 65 and SIGRT2 (68) in word 2, SIGRTMAX (98) in word 3
    assert words == ((1 << 29) | (1 << 14) | (1 << 9), 0, (1 << 0) | (1 << 3), 1 << 1)
    bus = 7
    back = (mask & ~(1 << (stkflt - 1))) | (1 << (bus - 1))
    assert linux.linux_sigmask_from_freebsd(words) == back
    # FreeBSD-only signals (SIGINFO 29, SIGTHR 32) have no Linux bit
    assert linux.linux_sigmask_from_freebsd(((1 << 28) | (1 << 31), 0, 0, 0)) == 0


def test_sigmask_round_trip_all_mappable() -> None:
    full = (1 << 64) - 1
    stkflt = 1 << 15  # folded into SIGBUS, which is in the mask already
    assert linux.linux_sigmask_from_freebsd(linux.freebsd_sigmask_from_linux(full)) == full & ~stkflt


@pytest.mark.parametrize(
    ("signo", "code", "name"),
    [
        (11, 1, "SEGV_MAPERR"), (11, 2, "SEGV_ACCERR"), (11, 0x80, "SI_KERNEL"),
        (7, 2, "BUS_ADRERR"), (8, 1, "FPE_INTDIV"), (8, 2, "FPE_INTOVF"), (5, 1, "TRAP_BRKPT"),
        (17, 1, "CLD_EXITED"), (17, 6, "CLD_CONTINUED"), (29, 1, "POLL_IN"),
        (31, 1, "SYS_SECCOMP"), (4, 1, "ILL_ILLOPC"), (2, 0, "SI_USER"), (10, -1, "SI_QUEUE"),
        (14, -2, "SI_TIMER"), (2, -6, "SI_TKILL"), (2, 1, None), (11, 77, None),
    ],
)
def test_linux_sigcode_name(signo: int, code: int, name: str | None) -> None:
    assert linux.sigcode_name(signo, code) == name


# --- generators and import cost -----------------------------------------------

def test_generators_reproduce_data_files(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_freebsd_syscalls
        import gen_linux_syscalls
    finally:
        sys.path.pop(0)
    syscalls_c = '\t"syscall",\t\t\t/* 0 = syscall */\n\t"compat.creat",\t\t/* 1 = old creat */\n'
    assert gen_freebsd_syscalls.parse_syscall_names(syscalls_c) == [(0, "syscall"), (1, "compat.creat")]
    header = (
        "#define\tCAP_READ\t\tCAPRIGHT(0, 0x0000000000000001ULL)\n"
        "#define\tCAP_SEEK_TELL\t\tCAPRIGHT(0, 0x0000000000000004ULL)\n"
        "#define\tCAP_SEEK\t\t(CAP_SEEK_TELL | 0x0000000000000008ULL)\n"
        "#define\tCAP_RECV\t\tCAP_READ\n"
        "#define\tCAP_ALL0\t\tCAPRIGHT(0, 0x000007FFFFFFFFFFULL)\n"
        "#define\tCAP_PREAD\t\t(CAP_SEEK | CAP_READ)\n"
    )
    assert gen_freebsd_syscalls.parse_cap_rights(header) == [
        ("CAP_READ", 0x0200000000000001),
        ("CAP_SEEK_TELL", 0x0200000000000004),
        ("CAP_SEEK", 0x020000000000000C),
        ("CAP_PREAD", 0x020000000000000D),
    ]
    tbl = "0\tcommon\tread\t\t\tsys_read\n59\t64\texecve\tsys_execve\n520\tx32\texecve\tcompat_sys_execve\n"
    assert gen_linux_syscalls.parse_syscall_table(tbl) == [(0, "read", "sys_read"), (59, "execve", "sys_execve")]


def test_engine_call_table_is_what_abi_linux_derives() -> None:
    # The engine reads each call's argument count and path arguments from
    # this generated file instead of deriving them at start-up; it must say
    # exactly what abi/linux.py derives from the installed python-ptrace.
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_syscall_args
    finally:
        sys.path.pop(0)
    text = (DATA / "linux_syscall_args_x86_64.tsv").read_text(encoding="utf-8")
    assert text == gen_syscall_args.generate(), "run tools/gen_syscall_args.py again"
    rows = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    assert ["2", "open", "3", "0"] in rows and ["265", "linkat", "5", "1,3"] in rows
    assert ["59", "execve", "3", "0"] in rows and ["0", "read", "3", "-"] in rows
    assert len(rows) == len(linux.syscall_names())


def test_import_does_not_load_python_ptrace_runtime() -> None:
    code = (
        "import sys\n"
        "from ktrace_cli.abi import freebsd, linux\n"
        "linux.syscall_name(0); linux.path_arg_indexes('openat'); freebsd.syscall_name(0)\n"
        "print(sorted(m for m in sys.modules if m.startswith('ptrace')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- libsysdecode tables regenerated with FreeBSD 15 headers -------------------

def test_sysdecode_provenance_names_each_header() -> None:
    head = [line for line in (DATA / "sysdecode_freebsd.tsv").read_text().splitlines()
            if line.startswith("#")]
    assert "#   sys/x86/include/sysarch.h: 5BSD/5BSD (a FreeBSD 15 tree) @ " \
        "392999caf154e717986fc9e41698e9e194526408" in head
    assert any(line.startswith("#   sys/sys/socket.h: charles-cowart/freebsd-src") for line in head)
    assert not any(line.startswith("# tables not generated") for line in head)


def test_sockaddr_family_names_follow_freebsd15_socket_h() -> None:
    from ktrace_cli.decode.structs import format_sockaddr

    # AF_HYPERV (43) left sys/socket.h and 43 is no vendor slot, so kdump says invalid.
    assert format_sockaddr(bytes([16, 43]) + bytes(14)) == \
        "struct sockaddr { <invalid=43>, unknown address family }"
    assert format_sockaddr(bytes([16, 45]) + bytes(14)) == \
        "struct sockaddr { AF_VENDOR03, unknown address family }"
    assert format_sockaddr(bytes([16, 1]) + b"/tmp/s".ljust(14, b"\0")).startswith(
        "struct sockaddr { AF_LOCAL, ")


# ioctl numbers computed the way <sys/ioccom.h> encodes them (direction, amd64
# argument size, group, number), checked against values a compiler produced for
# FreeBSD amd64 (golang.org/x/sys's generated constants) and kdump's own output.
COMPILED_IOCTLS = {
    "BIOCGDLTLIST": 0xC0104279, "BIOCGRTIMEOUT": 0x4010426E, "BIOCROTZBUF": 0x40184280,
    "BIOCSETF": 0x80104267, "BIOCSETFNR": 0x80104282, "BIOCSETWF": 0x8010427B,
    "BIOCSETZBUF": 0x80184281, "BIOCSRTIMEOUT": 0x8010426D, "BIOCGETZMAX": 0x4008427F,
    "SIOCAIFGROUP": 0x80286987, "SIOCDIFGROUP": 0x80286989, "SIOCGDRVSPEC": 0xC028697B,
    "SIOCGETSGCNT": 0xC0207210, "SIOCGETVIFCNT": 0xC028720F, "SIOCGIFCONF": 0xC0106924,
    "SIOCGIFGMEMB": 0xC028698A, "SIOCGIFGROUP": 0xC0286988, "SIOCGIFMEDIA": 0xC0306938,
    "SIOCGIFXMEDIA": 0xC030698B, "SIOCIFGCLONERS": 0xC0106978, "SIOCSDRVSPEC": 0x8028697B,
    "TIOCTIMESTAMP": 0x40107459,
    # kdump-output-samples F6 (i386 and amd64 agree: struct termios has no pointer)
    "TIOCGETA": 0x402C7413,
    # the fidelity report's repro, named by FreeBSD's kdump
    "DIOCGMEDIASIZE": 0x40086481,
}


def test_ioctl_numbers_match_compiled_values() -> None:
    from ktrace_cli.abi import sysdecode

    by_name = {name: value for value, name in sysdecode.ioctl_table().rows}
    assert {name: by_name.get(name) for name in COMPILED_IOCTLS} == COMPILED_IOCTLS


def test_shared_ioctl_values_name_the_first_macro_in_byte_order() -> None:
    # clang's cpp -dM lists macros sorted by name, and mkioctls' if/else chain keeps
    # that order: TAPSVNETHDR and TIOCMSDTRWAIT are both _IOW('t', 91, int).
    from ktrace_cli.abi import sysdecode

    rows = sysdecode.ioctl_table().rows
    assert [name for _, name in rows] == sorted(name for _, name in rows)
    assert sysdecode.ioctlname(0x8004745B) == "TAPSVNETHDR"
    assert sysdecode.ioctlname(0x80047460) == "TIOCEXT"
    assert sysdecode.ioctlname(0x8088691B) == "SIOCAIFADDR_IN6"


def test_generator_follows_mktables_and_keeps_unfetched_tables(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_sysdecode as gen
    finally:
        sys.path.pop(0)
    (tmp_path / "sys/netinet").mkdir(parents=True)
    (tmp_path / "sys/sys").mkdir(parents=True)
    (tmp_path / "sys/netinet/tcp.h").write_text(
        "#define TCP_NODELAY 1 /* x */\n"
        "#define TCP_MAXSEG 2\n"
        "#define TCP_MAXBURST 4\n"  # TCP_MAX[^S]
        "#define TCP_FASTOPEN_MAX_COOKIE_LEN 16\n"  # TCP_[[:alnum:]_]+_MAX
        "#define TCP_KEEPINIT 128 /* see TCP_MSS */\n"  # egrep -v reads comments too
    )
    text = gen.generate(tmp_path, {"umtxop": [(0, "UMTX_OP_RESERVED0")]})
    rows = [line for line in text.splitlines() if not line.startswith("#")]
    assert [r for r in rows if r.startswith("sockopttcp")] == [
        "sockopttcp\t0x1\tTCP_NODELAY", "sockopttcp\t0x2\tTCP_MAXSEG"]
    assert "umtxop\t0x0\tUMTX_OP_RESERVED0" in rows
    assert "#   umtxop" in text.splitlines()  # listed among the kept tables
    assert not any(r.startswith("ioctlname") for r in rows)  # gen_ioctls.py's file


def test_sysdecode_tables_parsed_on_demand_hold_every_row() -> None:
    # Each table is parsed from its own block on first use; every row of the
    # data file, read here line by line, must come out of the table it names.
    from ktrace_cli.abi import sysdecode

    path = Path(sysdecode.__file__).with_name("data") / "sysdecode_freebsd.tsv"
    rows: dict[str, list[tuple[int, str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("%table\t"):
            rows.setdefault(line.split("\t")[1], [])
            continue
        table, value, name = line.split("\t")
        rows.setdefault(table, []).append((int(value, 16), name))
    assert len(rows) > 50
    assert sysdecode.table_names() == frozenset(rows)
    assert {t: list(sysdecode.table(t).rows) for t in rows} == rows
    assert sysdecode.table("no such table") is sysdecode.EMPTY

"""kdump's FreeBSD CALL argument text, checked against real kdump output and the spec."""

from __future__ import annotations

import pytest

from ktrace_cli.abi import sysdecode as sd
from ktrace_cli.decode.freebsd_args import PASS_B, ROWS, format_freebsd_args


def amd64(name: str, *args: int, decimal: bool = False) -> str:
    return format_freebsd_args(name, args, decimal=decimal, ilp32=False)


def i386(name: str, *args: int, decimal: bool = False) -> str:
    return format_freebsd_args(name, args, decimal=decimal, ilp32=True)


# Argument text printed by real FreeBSD kdumps, as published with their output
# (FreeBSD 8 to 14 on amd64 and i386, and the kdump(1) man page's writev line).
REAL = [
    ("mmap", (0, 0x8000, 3, 0x1002, 0xFFFFFFFF, 0),
     "(0,0x8000,0x3<PROT_READ|PROT_WRITE>,0x1002<MAP_PRIVATE|MAP_ANON>,0xffffffff,0)"),
    ("mmap", (0, 0x248000, 0, 0x21002, 0xFFFFFFFF, 0),
     "(0,0x248000,0<PROT_NONE>,0x21002<MAP_PRIVATE|MAP_ANON|MAP_NOCORE>,0xffffffff,0)"),
    ("mmap", (0x800647000, 0x10E000, 5, 0x20012, 3, 0),
     "(0x800647000,0x10e000,0x5<PROT_READ|PROT_EXEC>,0x20012<MAP_PRIVATE|MAP_FIXED|MAP_NOCORE>,0x3,0)"),
    ("access", (0x800535000, 0), "(0x800535000,0<F_OK>)"),
    ("lseek", (3, 0x80, 0), "(0x3,0x80,SEEK_SET)"),
    ("sigprocmask", (3, 0x8006394D0, 0), "(SIG_SETMASK,0x8006394d0,0)"),
    ("read", (3, 0x800534000, 0x42), "(0x3,0x800534000,0x42)"),
    ("pread", (3, 0x8006395C0, 0x1000, 0), "(0x3,0x8006395c0,0x1000,0)"),
    ("openat", (0xFFFFFF9C, 0x400877, 0, 0), "(AT_FDCWD,0x400877,0<O_RDONLY>)"),
    ("exit", (0,), "(0)"),
    ("writev", (1, 0x804B030, 2), "(0x1,0x804b030,0x2)"),
]


@pytest.mark.parametrize(("name", "args", "expected"), REAL)
def test_real_kdump_lines(name: str, args: tuple[int, ...], expected: str) -> None:
    assert amd64(name, *args) == expected


def test_ioctl_tiocgeta_on_i386() -> None:
    assert i386("ioctl", 1, 0x402C7413, 0xBFBFDEE0) == "(0x1,TIOCGETA,0xbfbfdee0)"


def test_ioctl_unknown_prints_hex_or_unsigned_decimal() -> None:
    assert amd64("ioctl", 1, 0xC0DE0001, 0) == "(0x1,0xc0de0001,0)"
    assert amd64("ioctl", 1, 0xC0DE0001, 0, decimal=True) == "(1,3235774465,0)"


def test_ioctl_names_computed_from_ioccom_encoding() -> None:
    assert sd.ioctlname(0x4004667F) == "FIONREAD"
    assert sd.ioctlname(0x40087468) == "TIOCGWINSZ"
    assert sd.ioctlname(0x2004745F) == "TIOCSIG"  # _IOWINT carries sizeof(int)
    assert sd.ioctlname(0xC0206911) == "SIOCGIFFLAGS"


def test_no_args_prints_nothing() -> None:
    assert amd64("getpid") == ""
    assert amd64("openat") == ""


def test_openat_from_the_spec() -> None:
    assert amd64("openat", 0xFFFFFF9C, 0x80104A00C, 0x100000, 0) == \
        "(AT_FDCWD,0x80104a00c,0x100000<O_RDONLY|O_CLOEXEC>)"


def test_open_without_o_creat_drops_the_mode_slot() -> None:
    # kdump steps over flags and mode together (ip += 2), printing the mode only
    # under O_CREAT; the FreeBSD 8 sample's "<unused>0x1b6" came from an older kdump.
    assert amd64("open", 0x80052CA92, 0, 0x1B6) == "(0x80052ca92,0<O_RDONLY>)"


def test_open_with_o_creat_prints_the_mode() -> None:
    assert amd64("open", 0x801, 0x601, 0o644) == \
        "(0x801,0x601<O_WRONLY|O_CREAT|O_TRUNC>,0644<S_IRUSR|S_IWUSR|S_IRGRP|S_IROTH>)"


def test_open_exec_rule() -> None:
    assert amd64("open", 1, 0x40000, 0) == "(0x1,0x40000<O_EXEC>)"


def test_chmod_0755_omits_the_rwx_masks() -> None:
    assert amd64("chmod", 0x800535000, 0o755) == \
        "(0x800535000,0755<S_IRUSR|S_IWUSR|S_IXUSR|S_IRGRP|S_IXGRP|S_IROTH|S_IXOTH>)"


def test_decimal_flag() -> None:
    assert amd64("lseek", 3, 0x80, 0, decimal=True) == "(3,128,SEEK_SET)"
    assert amd64("write", 1, 0x60023F, 4, decimal=True) == "(1,6292031,4)"
    assert amd64("read", 0xFFFFFFFFFFFFFFFF, 0, 0, decimal=True) == "(-1,0,0)"
    assert i386("read", 0xFFFFFFFF, 0, 0, decimal=True) == "(-1,0,0)"
    assert amd64("lseek", 3, 0, 9, decimal=True) == "(3,0,<invalid=9>)"


def test_ilp32_lseek_takes_two_slots_for_the_offset() -> None:
    assert i386("lseek", 5, 0x80, 0, 0) == "(0x5,0x80,SEEK_SET)"
    assert i386("lseek", 5, 0, 1, 2) == "(0x5,0x100000000,SEEK_END)"
    assert i386("freebsd6_lseek", 5, 0, 0, 0, 0) == "(0x5,0,0,SEEK_SET)"


def test_ilp32_mmap_prints_the_offset_halves_as_plain_slots() -> None:
    assert i386("mmap", 0, 0x1000, 3, 0x1002, 0xFFFFFFFF, 0, 0) == \
        "(0,0x1000,0x3<PROT_READ|PROT_WRITE>,0x1002<MAP_PRIVATE|MAP_ANON>,0xffffffff,0,0)"


def test_unknown_syscall_prints_every_slot() -> None:
    assert amd64("#999", 0, 1, 0xFFFFFFFFFFFFFFFF) == "(0,0x1,0xffffffffffffffff)"
    assert amd64("compat.creat", 0x1000, 0o644) == "(0x1000,0x1a4)"


def test_kill_and_wait4_print_pids_signed() -> None:
    assert amd64("kill", 1234, 9) == "(1234,SIGKILL)"
    assert amd64("kill", 0xFFFFFFFFFFFFFFFF, 15) == "(-1,SIGTERM)"
    assert amd64("kill", 1, 200) == "(1,SIG 200)"
    assert amd64("wait4", 0xFFFFFFFFFFFFFFFF, 0x7FFFFFFFE000, 0, 0) == \
        "(-1,0x7fffffffe000,0,0)"
    assert amd64("wait4", 42, 0, 3, 0) == "(42,0,0x3<WNOHANG|WUNTRACED>,0)"


def test_fcntl_commands() -> None:
    assert amd64("fcntl", 3, 3, 0) == "(0x3,F_GETFL)"
    assert amd64("fcntl", 3, 4, 0x4) == "(0x3,F_SETFL,0x4<O_RDONLY|O_NONBLOCK>)"
    assert amd64("fcntl", 3, 4, 0x200) == "(0x3,F_SETFL,0x200<O_RDONLY|FRDAHEAD>)"
    assert amd64("fcntl", 3, 2, 1) == "(0x3,F_SETFD,FD_CLOEXEC)"
    assert amd64("fcntl", 3, 2, 0) == "(0x3,F_SETFD,0)"
    assert amd64("fcntl", 3, 0, 10) == "(0x3,F_DUPFD,0xa)"
    assert amd64("fcntl", 3, 0, 10, decimal=True) == "(3,F_DUPFD,10)"
    assert amd64("fcntl", 3, 12, 0x7FFFFFFFE000) == "(0x3,F_SETLK,0x7fffffffe000)"
    # F_ADD_SEALS has no trailing comment, so mktables' regex never listed it.
    assert amd64("fcntl", 3, 19, 1) == "(0x3,<invalid=0x13>,0x1)"


def test_socket() -> None:
    # kdump prints the type with print_mask_arg, hence "0x1<SOCK_STREAM>".
    assert amd64("socket", 2, 1, 0) == "(PF_INET,0x1<SOCK_STREAM>,IPPROTO_IP)"
    assert amd64("socket", 1, 0x10000002, 0) == \
        "(PF_LOCAL,0x10000002<SOCK_DGRAM|SOCK_CLOEXEC>,0)"
    assert amd64("socket", 28, 2, 17) == "(PF_INET6,0x2<SOCK_DGRAM>,IPPROTO_UDP)"
    assert amd64("socketpair", 1, 1, 0, 0x7FFF) == "(PF_LOCAL,0x1<SOCK_STREAM>,0,0x7fff)"


def test_sockopt_name_consumes_its_slot_only_when_known() -> None:
    assert amd64("setsockopt", 3, 0xFFFF, 4, 0x7FF0, 4) == \
        "(0x3,SOL_SOCKET,SO_REUSEADDR,0x7ff0,0x4)"
    assert amd64("setsockopt", 3, 6, 0x7777, 0x7FF0, 4) == "(0x3,IPPROTO_TCP,0x7777,0x7ff0,0x4)"
    assert amd64("getsockopt", 3, 0x1234, 1, 0, 0) == "(0x3,0x1234,0x1,0,0)"


# sysdecode_sockopt_name() looks the option up in the table of its level.
SOCKOPT_LEVELS = [
    ((3, 6, 1, 0x7FFFFFFFE000, 4), "(0x3,IPPROTO_TCP,TCP_NODELAY,0x7fffffffe000,0x4)"),
    ((3, 41, 27, 0x7FFFFFFFE000, 4), "(0x3,IPPROTO_IPV6,IPV6_V6ONLY,0x7fffffffe000,0x4)"),
    ((3, 0, 2, 0x7FF0, 4), "(0x3,IPPROTO_IP,IP_HDRINCL,0x7ff0,0x4)"),
    ((3, 0, 80, 0x7FF0, 0x88), "(0x3,IPPROTO_IP,MCAST_JOIN_GROUP,0x7ff0,0x88)"),
    ((3, 17, 1, 0x7FF0, 4), "(0x3,IPPROTO_UDP,UDP_ENCAP,0x7ff0,0x4)"),
    ((3, 136, 2, 0x7FF0, 4), "(0x3,IPPROTO_UDPLITE,UDPLITE_SEND_CSCOV,0x7ff0,0x4)"),
    ((3, 6, 0x401, 0x7FF0, 4), "(0x3,IPPROTO_TCP,TCP_FASTOPEN,0x7ff0,0x4)"),
    ((3, 132, 4, 0x7FF0, 4), "(0x3,IPPROTO_SCTP,SCTP_NODELAY,0x7ff0,0x4)"),
    # Bluetooth levels come from the netgraph table before the IP protocols.
    ((3, 0x1609, 1, 0x7FF0, 2), "(0x3,SOL_L2CAP,0x1,0x7ff0,0x2)"),
]


@pytest.mark.parametrize(("args", "expected"), SOCKOPT_LEVELS)
def test_sockopt_names_at_every_level(args: tuple[int, ...], expected: str) -> None:
    assert amd64("setsockopt", *args) == expected


def test_sockopt_names_mktables_filters_out() -> None:
    # egrep -v drops IP_MINTTL (it contains IP_MIN) and the TCP_*_MAX limits.
    assert sd.sockopt_name(0, 66) is None
    assert sd.table("sockopttcp").lookup(0x10) == "TCP_MD5SIG"
    assert "TCP_FASTOPEN_MAX_COOKIE_LEN" not in {n for _, n in sd.table("sockopttcp").rows}
    # sctp.h's table is every numeric SCTP_ define: the first of a value wins.
    assert sd.sockopt_name(132, 1) == "SCTP_RTOINFO"
    assert sd.sockopt_name(132, 0x2A) is None
    assert sd.sockopt_name(132, 0x2000) == "SCTP_CC_OPT_RTCC_SETMODE"


def test_at_syscalls_pass_a_b_c() -> None:
    assert amd64("fstatat", 0xFFFFFF9C, 0x1000, 0x2000, 0x200) == \
        "(AT_FDCWD,0x1000,0x2000,0x200<AT_SYMLINK_NOFOLLOW>)"
    assert amd64("unlinkat", 4, 0x1000, 0) == "(0x4,0x1000,0)"
    assert amd64("linkat", 0xFFFFFF9C, 1, 0xFFFFFF9C, 2, 0x400) == \
        "(AT_FDCWD,0x1,AT_FDCWD,0x2,0x400<AT_SYMLINK_FOLLOW>)"
    assert amd64("faccessat", 0xFFFFFF9C, 0x1000, 6, 0x100) == \
        "(AT_FDCWD,0x1000,0x6<W_OK|R_OK>,0x100<AT_EACCESS>)"
    assert amd64("mkdirat", 3, 0x1000, 0o700) == "(0x3,0x1000,0700<S_IRUSR|S_IWUSR|S_IXUSR>)"


def test_mmap_prot_max_and_alignment() -> None:
    assert amd64("mmap", 0, 0x1000, 0x70003, 0x1002 | (1 << 24), 0xFFFFFFFF, 0) == \
        ("(0,0x1000,0x70003<PROT_MAX(PROT_READ|PROT_WRITE|PROT_EXEC)|PROT_READ|PROT_WRITE>,"
         "0x1001002<MAP_PRIVATE|MAP_ANON|MAP_ALIGNED_SUPER>,0xffffffff,0)")
    assert amd64("mmap", 0, 0x1000, 1, 0x15000002, 3, 0) == \
        "(0,0x1000,0x1<PROT_READ>,0x15000002<MAP_PRIVATE|MAP_ALIGNED(21)>,0x3,0)"
    assert amd64("mprotect", 0x1000, 0x1000, 0) == "(0x1000,0x1000,0<PROT_NONE>)"


def test_reboot_autoboot_rule_and_empty_masks() -> None:
    assert amd64("reboot", 4) == "(0x4<RB_AUTOBOOT|RB_NOSYNC>)"
    assert amd64("reboot", 8) == "(0x8<RB_HALT>)"
    assert amd64("mlockall", 0) == "(0<><invalid>0)"
    assert amd64("mlockall", 3) == "(0x3<MCL_CURRENT|MCL_FUTURE>)"


def test_umtx_op() -> None:
    assert amd64("_umtx_op", 0x800, 15, 0, 0, 0) == \
        "(0x800,0xf<UMTX_OP_WAIT_UINT_PRIVATE>,0,0,0)"
    assert amd64("_umtx_op", 0x800, 8, 3, 0, 0) == \
        "(0x800,0x8<UMTX_OP_CV_WAIT>,0x3<CVWAIT_CHECK_UNPARKING|CVWAIT_ABSTIME>,0,0)"
    assert amd64("_umtx_op", 0x800, 0x80000003, 1, 0, 0) == \
        "(0x800,0x80000003<UMTX_OP__32BIT|UMTX_OP_WAKE>,0x1,0,0)"


def test_single_name_decoders() -> None:
    assert amd64("sysarch", 0x81, 0x7FFFFFFFE3A0) == "(AMD64_SET_FSBASE,0x7fffffffe3a0)"
    assert amd64("getrlimit", 8, 0x1000) == "(RLIMIT_NOFILE,0x1000)"
    assert amd64("getrusage", 0xFFFFFFFFFFFFFFFF, 0x1000) == "(RUSAGE_CHILDREN,0x1000)"
    assert amd64("getpriority", 0, 0) == "(PRIO_PROCESS,0)"
    assert amd64("madvise", 0x1000, 0x1000, 5) == "(0x1000,0x1000,MADV_FREE)"
    assert amd64("madvise", 0x1000, 0x1000, 0) == "(0x1000,0x1000,_MADV_NORMAL)"
    assert amd64("ptrace", 10, 1234, 0, 0) == "(PT_ATTACH,0x4d2,0,0)"
    assert amd64("procctl", 0, 1234, 7, 0x7000) == "(P_PID,0x4d2,PROC_TRACE_CTL,0x7000)"
    assert i386("procctl", 0, 1234, 0, 7, 0x7000) == "(P_PID,0x4d2,PROC_TRACE_CTL,0x7000)"
    assert amd64("sigaction", 2, 0x1000, 0) == "(SIGINT,0x1000,0)"
    assert amd64("rfork", 0x14) == "(0x14<RFFDG|RFPROC>)"
    assert amd64("umask", 0o22) == "(022<S_IWGRP|S_IWOTH>)"
    assert amd64("flock", 3, 6) == "(0x3,0x6<LOCK_EX|LOCK_NB>)"
    assert amd64("sendto", 3, 0x1000, 10, 0, 0, 0) == "(0x3,0x1000,0xa,0,0,0)"
    assert amd64("recvmsg", 3, 0x1000, 0x42) == "(0x3,0x1000,0x42<MSG_PEEK|MSG_WAITALL>)"
    assert amd64("semget", 1, 1, 0x3B6) == \
        "(0x1,0x1,0x3b6<IPC_CREAT|SEM_R|SEM_A|(SEM_R>>3)|(SEM_A>>3)|(SEM_R>>6)|(SEM_A>>6)>)"
    assert amd64("wait6", 0, 99, 0, 0x14, 0, 0) == "(P_PID,99,0,0x14<WCONTINUED|WEXITED>,0,0)"
    assert amd64("shutdown", 3, 1) == "(0x3,<invalid=0x1>)"


def test_shm_open2_anon_as_kdump_prints_it() -> None:
    # kdump's SHM_ANON branch leaves the separator at '(' and the argument count one
    # too high: the name slot follows "(" and one slot past the record is printed.
    assert amd64("shm_open2", 1, 0x2, 0o600, 0, 0) == \
        "(SHM_ANON,0x2<O_RDWR>,0600<S_IRUSR|S_IWUSR>,0<0>(0,0)"
    assert amd64("shm_open2", 1, 0x2, 0o600, 0, 0x7FF0, decimal=True) == \
        "(SHM_ANON,0x2<O_RDWR>,0600<S_IRUSR|S_IWUSR>,0<0>(32752,0)"
    assert amd64("shm_open2", 0x800, 0x2, 0o600, 0, 0) == \
        "(0x800,0x2<O_RDWR>,0600<S_IRUSR|S_IWUSR>,0<0>,0)"


def test_compat12_shm_open_is_decoded_under_its_table_name() -> None:
    assert amd64("compat12.shm_open", 1, 0x202, 0o600) == \
        "(SHM_ANON,0x202<O_RDWR|O_CREAT>,0600<S_IRUSR|S_IWUSR>(0)"
    assert amd64("compat12.shm_open", 0x800, 0x202, 0o600) == \
        "(0x800,0x202<O_RDWR|O_CREAT>,0600<S_IRUSR|S_IWUSR>)"


# Names FreeBSD 15 added (sys/x86/include/sysarch.h, sys/sys/socket.h, sys/sys/fcntl.h)
# and mktables' newer MAP_ regex.
FREEBSD15 = [
    ("sysarch", (136, 0x8203F8B80), "(AMD64_SET_TLSBASE,0x8203f8b80)"),
    ("sysarch", (135, 0x7FF0), "(AMD64_GET_TLSBASE,0x7ff0)"),
    ("sysarch", (137, 0), "(AMD64_DISABLE_TLSBASE,0)"),
    ("socket", (2, 0x40000001, 6), "(PF_INET,0x40000001<SOCK_STREAM|SOCK_CLOFORK>,IPPROTO_TCP)"),
    ("setsockopt", (3, 0xFFFF, 0x1023, 0x7FFFFFFFE000, 16),
     "(0x3,SOL_SOCKET,SO_SPLICE,0x7fffffffe000,0x10)"),
    ("getsockopt", (3, 0xFFFF, 0x1014, 0x7FF0, 0x7FE0), "(0x3,SOL_SOCKET,SO_FIB,0x7ff0,0x7fe0)"),
    ("mmap", (0, 0x1000, 3, 0x80002, 0xFFFFFFFF, 0),
     "(0,0x1000,0x3<PROT_READ|PROT_WRITE>,0x80002<MAP_PRIVATE|MAP_32BIT>,0xffffffff,0)"),
    ("open", (0x1000, 0x08000002), "(0x1000,0x8000002<O_RDWR|O_CLOFORK>)"),
    ("fcntl", (3, 2, 4), "(0x3,F_SETFD,FD_CLOFORK)"),
    ("fcntl", (3, 23, 10), "(0x3,F_DUPFD_CLOFORK,0xa)"),
    ("recvmsg", (3, 0x1000, 0x400000), "(0x3,0x1000,0x400000<MSG_CMSG_CLOFORK>)"),
    ("socket", (38, 3, 0), "(PF_NETLINK,0x3<SOCK_RAW>,0)"),
]


@pytest.mark.parametrize(("name", "args", "expected"), FREEBSD15)
def test_freebsd15_names(name: str, args: tuple[int, ...], expected: str) -> None:
    assert amd64(name, *args) == expected


# The libsysdecode tables mktables builds from sys/acl.h, sys/extattr.h, aio.h,
# ufs/ufs/quota.h, sys/capsicum.h and sys/time.h.
SYSDECODE_TABLES = [
    ("setitimer", (0, 0x7FFFFFFFE000, 0), "(ITIMER_REAL,0x7fffffffe000,0)"),
    ("getitimer", (2, 0x7FF0), "(ITIMER_PROF,0x7ff0)"),
    ("getitimer", (7, 0x7FF0), "(<invalid=0x7>,0x7ff0)"),
    ("__acl_get_file", (0x800000, 3, 0x7FFFFFFFE000),
     "(0x800000,ACL_TYPE_DEFAULT,0x7fffffffe000)"),
    ("__acl_set_fd", (3, 4, 0x7FF0), "(0x3,ACL_TYPE_NFS4,0x7ff0)"),
    ("cap_fcntls_limit", (3, 0x18), "(0x3,0x18<CAP_FCNTL_GETFL|CAP_FCNTL_SETFL>)"),
    ("quotactl", (0x800000, 0x10000, 0, 0), "(0x800000,QCMD(Q_QUOTAON,USRQUOTA),0,0)"),
    ("quotactl", (0x800000, 0x70001, 1000, 0x7FF0), "(0x800000,QCMD(Q_GETQUOTA,GRPQUOTA),0x3e8,0x7ff0)"),
    ("lio_listio", (1, 0x7FF0, 2, 0), "(LIO_WAIT,0x7ff0,0x2,0)"),
    # kdump decodes extattrctl's second slot (the command) with the namespace table.
    ("extattrctl", (0x1000, 1, 0x2000, 1, 0x3000), "(0x1000,EXTATTR_NAMESPACE_USER,0x2000,0x1,0x3000)"),
]


@pytest.mark.parametrize(("name", "args", "expected"), SYSDECODE_TABLES)
def test_sysdecode_tables(name: str, args: tuple[int, ...], expected: str) -> None:
    assert amd64(name, *args) == expected


def test_every_pass_b_row_runs_on_short_and_long_args() -> None:
    for name in ROWS:
        for count in (1, 8):
            text = amd64(name, *([0x1] * count))
            assert text.startswith("(") and text.endswith(")")
            text = i386(name, *([0x1] * count), decimal=True)
            assert text.startswith("(") and text.endswith(")")
    assert "mmap" in PASS_B


def test_tables_follow_header_order_and_first_match() -> None:
    assert sd.table("sockdomain").lookup(1) == "PF_LOCAL"
    assert sd.table("openflags").lookup(0x80) == "O_FSYNC"
    names: list[str] = []
    assert sd.table("openflags").mask_part(0x80, names) == 0
    assert names == ["O_FSYNC"]
    # the 0-valued MAP_FILE prints only when the whole value is 0
    assert sd.mask_int("mmapflags", 0) == ("MAP_FILE", True, 0)
    assert sd.mask_int("mmapflags", 2) == ("MAP_PRIVATE", True, 0)


IOCTLS = [
    ((3, 0x40086481, 0x7FFFFFFFE000), "(0x3,DIOCGMEDIASIZE,0x7fffffffe000)"),
    ((3, 0xC0306938, 0x7FFFFFFFE000), "(0x3,SIOCGIFMEDIA,0x7fffffffe000)"),
    ((3, 0x8044692B, 0x7FF0), "(0x3,SIOCAIFADDR,0x7ff0)"),
    ((4, 0x8010426D, 0x7FF0), "(0x4,BIOCSRTIMEOUT,0x7ff0)"),
    ((5, 0x20006601, 0), "(0x5,FIOCLEX,0)"),
    ((0, 0x40087468, 0x7FF0), "(0,TIOCGWINSZ,0x7ff0)"),
    ((3, 0x41006489, 0x7FF0), "(0x3,DIOCGIDENT,0x7ff0)"),
]


@pytest.mark.parametrize(("args", "expected"), IOCTLS)
def test_ioctl_names_from_more_headers(args: tuple[int, ...], expected: str) -> None:
    assert amd64("ioctl", *args) == expected

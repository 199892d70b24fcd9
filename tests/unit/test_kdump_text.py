"""pykdump text, record type by record type, against lines written by hand from the spec."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from ktrace_cli.format import constants as K
from ktrace_cli.format.records import (
    CapFail,
    Csw,
    Fault,
    FaultEnd,
    Genio,
    Namei,
    ProcDtor,
    Psig,
    Strings,
    Syscall,
    Sysctl,
    Sysret,
    User,
)
from tests.kdump_helpers import FREEBSD64, LINUX64, ctor, rec, run_pykdump

NEG100 = 0xFFFFFF9C  # AT_FDCWD as the int argument the kernel fetched


def kdump(tmp_path: Path, records: list, *args: str) -> str:
    result = run_pykdump(tmp_path, records, *args)
    assert result.err == ""
    assert result.status == 0
    return result.text


# -- CALL -------------------------------------------------------------------


def test_call_decoded_freebsd(tmp_path: Path) -> None:
    out = kdump(tmp_path, [ctor(), rec(Syscall(499, (NEG100, 0x80104A00C, 0x100000)))])
    assert out == "  2035 cat      CALL  openat(AT_FDCWD,0x80104a00c,0x100000<O_RDONLY|O_CLOEXEC>)\n"


def test_call_without_procctor_has_names_but_raw_arguments(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Syscall(499, (NEG100, 0x80104A00C, 0x100000)))])
    assert out == "  2035 cat      CALL  openat(0xffffff9c,0x80104a00c,0x100000)\n"


def test_call_no_arguments_has_no_parentheses(tmp_path: Path) -> None:
    assert kdump(tmp_path, [ctor(), rec(Syscall(20, ()))]) == "  2035 cat      CALL  getpid\n"


def test_call_zero_prints_0_and_minus_one_is_hex(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Syscall(4, (1, 0, 0xFFFFFFFFFFFFFFFF)))])
    assert out == "  2035 cat      CALL  write(0x1,0,0xffffffffffffffff)\n"


def test_call_decimal_and_syscall_numbers(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Syscall(4, (1, 0, 0xFFFFFFFFFFFFFFFF)))], "-d", "-S")
    assert out == "  2035 cat      CALL  write[4](1,0,-1)\n"


def test_call_unknown_number_prints_bracketed(tmp_path: Path) -> None:
    assert kdump(tmp_path, [rec(Syscall(9999, (1,)))]) == "  2035 cat      CALL  [9999](0x1)\n"


def test_call_no_fancy(tmp_path: Path) -> None:
    out = kdump(tmp_path, [ctor(), rec(Syscall(499, (NEG100, 0x10, 0x100000)))], "-n")
    assert out == "  2035 cat      CALL  openat(0xffffff9c,0x10,0x100000)\n"


def test_long_comm_pushes_the_columns(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Syscall(20, ()), comm="cheriabitest")])
    assert out == "  2035 cheriabitest CALL  getpid\n"


def test_comm_is_cut_at_19_bytes(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Syscall(20, ()), comm="a" * 30)])
    assert out == "  2035 " + "a" * 19 + " CALL  getpid\n"


# -- RET --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ret", "args", "text"),
    [
        (Sysret(6, 0, 0), (), "close 0"),
        (Sysret(6, 0, 9), (), "close 9"),
        (Sysret(3, 0, 512), (), "read 512/0x200"),
        (Sysret(3, 0, -1), (), "read -1/0xffffffffffffffff"),
        (Sysret(5, 2, 0), (), "open -1 errno 2 No such file or directory"),
        (Sysret(5, 2, 0), ("-n",), "open -1 errno 2"),
        (Sysret(59, -2, 0), (), "execve JUSTRETURN"),
        (Sysret(3, -1, 0), (), "read RESTART"),
        (Sysret(3, 0, 512), ("-n",), "read 0x200"),
        (Sysret(3, 0, 512), ("-n", "-d"), "read 512"),
        (Sysret(3, 0, 0), ("-n",), "read 0"),
        (Sysret(3, 200, 0), (), "read -1 errno 200 Unknown error: 200"),
        (Sysret(20, 0, 2035), ("-S",), "getpid[20] 2035/0x7f3"),
    ],
)
def test_ret(tmp_path: Path, ret: Sysret, args: tuple[str, ...], text: str) -> None:
    assert kdump(tmp_path, [ctor(), rec(ret)], *args) == f"  2035 cat      RET   {text}\n"


def test_ret_unknown_abi_prints_int_max(tmp_path: Path) -> None:
    out = kdump(tmp_path, [ctor(sv_flags=0x11 | K.SV_LP64), rec(Sysret(5, 2, 0))])
    assert out == "  2035 cat      RET   [5] -1 errno 2147483647 No such file or directory\n"


# -- NAMI, SCTL --------------------------------------------------------------


def test_namei_and_sysctl(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Namei(b"/etc/libmap.conf")), rec(Sysctl(b"kern.ostype")), rec(Namei(b""))])
    assert out == (
        '  2035 cat      NAMI  "/etc/libmap.conf"\n'
        '  2035 cat      SCTL  "kern.ostype"\n'
        '  2035 cat      NAMI  ""\n'
    )


def test_namei_bytes_pass_through_unchanged(tmp_path: Path) -> None:
    result = run_pykdump(tmp_path, [rec(Namei("/tmp/é".encode()))])
    assert result.out == b'  2035 cat      NAMI  "/tmp/\xc3\xa9"\n'


# -- GIO --------------------------------------------------------------------


def test_gio_text_as_in_the_manual(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Genio(1, K.UIO_WRITE, b"ktrace\n"), pid=85045, comm="echo")])
    assert out == ' 85045 echo     GIO   fd 1 wrote 7 bytes\n       "ktrace\n       "\n'


def test_gio_one_byte_read(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Genio(0, K.UIO_READ, b"x"))])
    assert out == '  2035 cat      GIO   fd 0 read 1 byte\n       "x"\n'


def test_gio_escapes(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Genio(1, K.UIO_WRITE, b'a\\b\r\0x\x001"\n\tz'))])
    assert out == (
        "  2035 cat      GIO   fd 1 wrote 12 bytes\n"
        '       "a\\\\b\\r\\0x\\0001"\n'
        '\t\tz"\n'
    )


def test_gio_long_text_wraps_at_78_columns(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Genio(1, K.UIO_WRITE, b"x" * 100))])
    assert out == (
        "  2035 cat      GIO   fd 1 wrote 100 bytes\n"
        '       "' + "x" * 70 + "\\\n"
        "\t" + "x" * 30 + '"\n'
    )


def test_gio_binary_hexdump(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Genio(3, K.UIO_READ, b"\x01\x02abc"))])
    spec_line = "       0x0000 0102 6162 63                             |..abc|"
    assert spec_line == "       0x0000 0102 6162 63" + " " * 29 + "|..abc|"
    assert out == "  2035 cat      GIO   fd 3 read 5 bytes\n" + spec_line + "\n\n"


def test_gio_hexdump_full_lines_have_no_blank_line(tmp_path: Path) -> None:
    data = bytes(range(0x7F, 0x9F))  # 32 bytes, all non-text
    out = kdump(tmp_path, [rec(Genio(3, K.UIO_READ, data))])
    assert out == (
        "  2035 cat      GIO   fd 3 read 32 bytes\n"
        "       0x0000 7f80 8182 8384 8586 8788 898a 8b8c 8d8e  |................|\n"
        "       0x0010 8f90 9192 9394 9596 9798 999a 9b9c 9d9e  |................|\n"
    )


def test_gio_maxdata_and_suppress(tmp_path: Path) -> None:
    records = [rec(Genio(1, K.UIO_WRITE, b"hello world"))]
    assert kdump(tmp_path, records, "-m", "5") == (
        '  2035 cat      GIO   fd 1 wrote 11 bytes\n       "hello"\n'
    )
    assert kdump(tmp_path, records, "-s") == "  2035 cat      GIO   fd 1 wrote 11 bytes\n"


def test_gio_maxdata_keeps_octal_lookahead_of_the_cut_byte(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Genio(1, K.UIO_WRITE, b"a\x007"))], "-m", "2")
    assert out == '  2035 cat      GIO   fd 1 wrote 3 bytes\n       "a\\000"\n'


# -- PSIG, CSW, USER, CAP, PFLT, PRET ---------------------------------------


def test_psig(tmp_path: Path) -> None:
    out = kdump(
        tmp_path,
        [
            ctor(),
            rec(Psig(2, 0x401230, 0x10001)),
            rec(Psig(11, 0, 1)),
            rec(Psig(13, 0, 0x10006)),
            rec(Psig(50, 1, 77, (5, 0, 0, 0))),
        ],
    )
    assert out == (
        "  2035 cat      PSIG  SIGINT caught handler=0x401230 mask=0x0 code=SI_USER\n"
        "  2035 cat      PSIG  SIGSEGV SIG_DFL code=SEGV_MAPERR\n"
        "  2035 cat      PSIG  SIGPIPE SIG_DFL code=SI_KERNEL\n"
        "  2035 cat      PSIG  SIG 50 caught handler=0x1 mask=0x5 code=<invalid=0x4d>\n"
    )


def test_csw_both_layouts(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Csw(1, 0, b"select")), rec(Csw(0, 0, b"select")), rec(Csw(1, 1, None))], "-t", "w")
    assert out == (
        '  2035 cat      CSW   stop kernel "select"\n'
        '  2035 cat      CSW   resume kernel "select"\n'
        "  2035 cat      CSW   stop user\n"
    )


def test_user_hex_decimal_and_malloc(tmp_path: Path) -> None:
    records = [
        rec(User(b"\xde\xad\xbe\xef")),
        rec(User(struct.pack("<QQQ", 0, 16, 0x801000))),
        rec(User(struct.pack("<QQQ", 0x801000, 0, 0))),
        rec(User(struct.pack("<QQQ", 0x801000, 32, 0x802000))),
        rec(User(struct.pack("<QQQ", 2**64 - 1, 0, 0))),
    ]
    assert kdump(tmp_path, records) == (
        "  2035 cat      USER  4  de ad be ef\n"
        "  2035 cat      USER  0x801000 = malloc(16)\n"
        "  2035 cat      USER  free(0x801000)\n"
        "  2035 cat      USER  0x802000 = realloc(0x801000, 32)\n"
        "  2035 cat      USER  malloc_init()\n"
    )
    assert kdump(tmp_path, records[:1], "-d") == "  2035 cat      USER  4  222 173 190 239\n"


def test_user_rtld_events(tmp_path: Path) -> None:
    def rtld(event: int, handle: int, mapbase: int, mapsize: int, refcnt: int, name: bytes) -> User:
        return User(struct.pack("<4siQQQi1024s4x", b"RTLD", event, handle, mapbase, mapsize, refcnt, name))

    out = kdump(
        tmp_path,
        [
            rec(rtld(5, 0x800a00000, 0x801000000, 0x1000, 1, b"/lib/libc.so.7")),
            rec(rtld(1, 0, 0, 0, 0x102, b"libm.so")),
            rec(rtld(8, 0, 0, 0, 0, b"")),
        ],
    )
    assert out == (
        "  2035 cat      USER  RTLD: loaded   0x800a00000 @ 0x801000000 - 0x801000fff (/lib/libc.so.7)\n"
        "  2035 cat      USER  dlopen(libm.so, RTLD_NOW | RTLD_GLOBAL)\n"
        "  2035 cat      USER  RTLD: LD_PRELOAD finished\n"
    )


def test_cap_new_layout(tmp_path: Path) -> None:
    namei = CapFail(6, True, 499, FREEBSD64, b"AT_FDCWD")
    syscall = CapFail(2, True, 59, FREEBSD64, b"")
    cpuset = CapFail(7, True, 488, FREEBSD64, b"")
    out = kdump(tmp_path, [rec(syscall, comm="ktrace"), rec(namei, comm="foo"), rec(cpuset, comm="foo")])
    assert out == (
        "  2035 ktrace   CAP   system call not allowed: execve\n"
        "  2035 foo      CAP   openat: restricted VFS lookup: AT_FDCWD\n"
        "  2035 foo      CAP   cpuset_setaffinity: restricted cpuset operation\n"
    )


def test_cap_old_layout(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(CapFail(3, False)), rec(CapFail(2, False))])
    assert out == (
        "  2035 cat      CAP   restricted VFS lookup\n"
        "  2035 cat      CAP   disallowed system call\n"
    )


def test_fault_and_faultend(tmp_path: Path) -> None:
    out = kdump(tmp_path, [rec(Fault(0x8002A1000, 2)), rec(FaultEnd(0)), rec(FaultEnd(42)), rec(Fault(0, 0x10))])
    assert out == (
        "  2035 cat      PFLT  0x8002a1000 0x2<VM_PROT_WRITE>\n"
        "  2035 cat      PRET  KERN_SUCCESS\n"
        "  2035 cat      PRET  <invalid=42>\n"
        "  2035 cat      PFLT  0 0x10<><invalid>16\n"
    )


def test_args_and_envs_need_their_trace_points(tmp_path: Path) -> None:
    records = [rec(Strings([b"ls", b"-l"]), rtype=K.KTR_ARGS), rec(Strings([b"HOME=/"]), rtype=K.KTR_ENVS)]
    assert kdump(tmp_path, records) == ""
    assert kdump(tmp_path, records, "-t", "ae") == (
        '  2035 cat      ARGS  "ls", "-l"\n  2035 cat      ENVS  "HOME=/"\n'
    )


def test_unknown_type_prints_an_empty_body(tmp_path: Path) -> None:
    records = [rec(Namei(b"x"), rtype=48)]  # 48 & 31 == 16: the ARGS bit
    assert kdump(tmp_path, records, "-t", "a") == "  2035 cat      UNKNOWN(48)  \n"


# -- header options ----------------------------------------------------------


def test_all_columns_on_a_v1_record(tmp_path: Path) -> None:
    out = kdump(tmp_path, [ctor(), rec(Syscall(3, (3, 0x801C3C000, 0x1000)), cpu=3)], "-H", "-T", "-c", "-A")
    assert out == "  2035 100113 cat      1700000000.123456789   3 CALL  F64  read(0x3,0x801c3c000,0x1000)\n"


def test_v0_timestamps_and_no_cpu_column(tmp_path: Path) -> None:
    records = [
        rec(Syscall(20, ()), version=0, sec=100, frac=999999),
        rec(Syscall(20, ()), version=0, sec=101, frac=1),
        rec(Syscall(20, ()), version=0, sec=100, frac=500000),
    ]
    assert kdump(tmp_path, records, "-T", "-E", "-R", "-c") == (
        "  2035 cat      100.999999 0.000000 0.000000 CALL  getpid\n"
        "  2035 cat      101.000001 0.000002 0.000002 CALL  getpid\n"
        "  2035 cat      100.500000 -1.500001 -0.500001 CALL  getpid\n"
    )


def test_v0_and_v1_keep_separate_clocks(tmp_path: Path) -> None:
    records = [
        rec(Syscall(20, ()), version=0, sec=100, frac=0),
        rec(Syscall(20, ()), version=1, sec=200, frac=0),
        rec(Syscall(20, ()), version=1, sec=201, frac=5),
    ]
    assert kdump(tmp_path, records, "-R") == (
        "  2035 cat      0.000000 CALL  getpid\n"
        "  2035 cat      0.000000000 CALL  getpid\n"
        "  2035 cat      1.000000005 CALL  getpid\n"
    )


def test_abi_column_values(tmp_path: Path) -> None:
    records = [
        rec(Syscall(20, ()), pid=1),
        ctor(LINUX64, pid=2),
        rec(Syscall(39, ()), pid=2),
        ctor(K.SV_ABI_FREEBSD | K.SV_ILP32, pid=3),
        rec(Syscall(20, ()), pid=3),
    ]
    assert kdump(tmp_path, records, "-A") == (
        "     1 cat      CALL  U00  getpid\n"
        "     2 cat      CALL  L64  getpid\n"
        "     3 cat      CALL  F32  getpid\n"
    )


def test_pid_filter_matches_pid_or_tid(tmp_path: Path) -> None:
    records = [rec(Syscall(20, ()), pid=1, tid=7), rec(Syscall(20, ()), pid=2, tid=8), rec(Syscall(20, ()), pid=7, tid=9)]
    assert kdump(tmp_path, records, "-p", "7") == "     1 cat      CALL  getpid\n     7 cat      CALL  getpid\n"


def test_trace_point_filter(tmp_path: Path) -> None:
    records = [rec(Syscall(20, ())), rec(Namei(b"/x")), rec(Sysret(20, 0, 1))]
    assert kdump(tmp_path, records, "-t", "n") == '  2035 cat      NAMI  "/x"\n'
    assert kdump(tmp_path, records, "-t", "c") == "  2035 cat      CALL  getpid\n  2035 cat      RET   getpid 1\n"


def test_events_dropped_printed_once_before_filtering(tmp_path: Path) -> None:
    records = [
        rec(Namei(b"/a"), drop=True),
        rec(Syscall(20, ()), drop=True),
        rec(Namei(b"/b"), drop=True),
    ]
    assert kdump(tmp_path, records, "-t", "n") == (
        "  2035 cat      Events dropped.\n"
        '  2035 cat      NAMI  "/a"\n'
        "  2035 cat      Events dropped.\n"
        '  2035 cat      NAMI  "/b"\n'
    )
    assert kdump(tmp_path, records[:1], "-H") == (
        "  2035 100113 cat      Events dropped.\n  2035 100113 cat      NAMI  \"/a\"\n"
    )


def test_procdtor_forgets_the_abi(tmp_path: Path) -> None:
    records = [ctor(), rec(Syscall(499, (NEG100, 1, 0))), rec(ProcDtor()), rec(Syscall(499, (NEG100, 1, 0)))]
    assert kdump(tmp_path, records) == (
        "  2035 cat      CALL  openat(AT_FDCWD,0x1,0<O_RDONLY>)\n"
        "  2035 cat      CALL  openat(0xffffff9c,0x1,0)\n"
    )


# -- Linux processes ----------------------------------------------------------


def test_linux_call_and_ret(tmp_path: Path) -> None:
    records = [
        ctor(LINUX64, pid=4242, comm="bash"),
        rec(Syscall(257, (NEG100, 0x4005D0, 0)), pid=4242, comm="bash"),
        rec(Sysret(257, 2, 0), pid=4242, comm="bash"),
        rec(Sysret(0, 35, 0), pid=4242, comm="bash"),
        rec(Sysret(0, 0x10000 + 16 + 0, 0), pid=4242, comm="bash"),
        rec(Psig(30, 0, 0), pid=4242, comm="bash"),
    ]
    assert kdump(tmp_path, records) == (
        "  4242 bash     CALL  openat(AT_FDCWD,0x4005d0,0<O_RDONLY>)\n"
        "  4242 bash     RET   openat -1 errno 2 No such file or directory\n"
        "  4242 bash     RET   read -1 errno 11 Resource temporarily unavailable\n"
        "  4242 bash     RET   read -1 errno 16 Device or resource busy\n"
        "  4242 bash     PSIG  SIGUSR1 SIG_DFL code=SI_USER\n"
    )


# -- errors -------------------------------------------------------------------


def test_bogus_length_after_good_records(tmp_path: Path) -> None:
    from tests.kdump_helpers import trace_bytes

    good = trace_bytes([rec(Syscall(20, ()))])
    bad = bytearray(trace_bytes([rec(Namei(b"/x"))]))
    bad[0:4] = struct.pack("<i", -5)
    result = run_pykdump(tmp_path, good + bytes(bad))
    assert result.text == "  2035 cat      CALL  getpid\n"
    assert result.err == "pykdump: bogus length 0xfffffffb\n"
    assert result.status == 1


def test_data_too_short(tmp_path: Path) -> None:
    from tests.kdump_helpers import trace_bytes

    data = trace_bytes([rec(Syscall(20, ())), rec(Namei(b"/a/long/path"))])
    result = run_pykdump(tmp_path, data[:-3])
    assert result.text == "  2035 cat      CALL  getpid\n"
    assert result.err == "pykdump: data too short\n"
    assert result.status == 1


def test_missing_file_and_bad_options(tmp_path: Path) -> None:
    from tests.kdump_helpers import run_pykdump_args

    missing = tmp_path / "nope"
    result = run_pykdump_args("-f", str(missing))
    assert (result.status, result.err) == (1, f"pykdump: {missing}: No such file or directory\n")
    result = run_pykdump_args("-t", "cz")
    assert (result.status, result.err) == (1, "pykdump: unknown trace point in cz\n")
    usage = "usage: pykdump [-dEnlHRSsTA] [-f trfile] [-m maxdata] [-p pid] [-t trstr]\n"
    # kdump's usage line, after a line that says what was wrong.
    for args, problem in [
        (["-x"], "no such option '-x'"),
        (["extra"], "unexpected operand: extra"),
        (["-f"], "option '-f' requires an argument"),
        (["--json", "--summary"], "--json and --summary cannot be combined"),
        (["--color=sometimes"], "invalid value for '--color': 'sometimes' is not one of 'auto', 'always', 'never'"),
    ]:
        result = run_pykdump_args(*args)
        assert (result.status, result.err, result.out) == (1, f"pykdump: {problem}\n{usage}", b""), args

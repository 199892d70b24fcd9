"""pykdump lines that follow FreeBSD's kdump where they once differed (issue 12).

Each test builds records with the writer (or edits a real FreeBSD trace) and
compares whole output lines with what FreeBSD's kdump prints for them.
"""

from __future__ import annotations

import struct
from pathlib import Path

from ktrace_cli.format import constants as K
from ktrace_cli.format.records import Exterr, Syscall, User
from tests.kdump_helpers import FREEBSD64, LINUX64, ctor, rec, run_pykdump, run_pykdump_args

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
GOLDEN = Path(__file__).resolve().parents[1] / "golden"

# sv_flags of a freebsd32 process in an amd64 file: SV_ABI_FREEBSD | SV_ILP32 | SV_IA32.
FREEBSD32 = K.SV_ABI_FREEBSD | K.SV_ILP32 | 0x4000


def kdump(tmp_path: Path, records: list, *args: str) -> str:
    result = run_pykdump(tmp_path, records, *args)
    assert (result.status, result.err) == (0, "")
    return result.text


def test_decimal_freebsd32_arguments_are_amd64_registers(tmp_path: Path) -> None:
    # kdump's print_number prints the 64-bit register_t of the amd64 file, and
    # freebsd32 arguments arrive zero-extended: no negative numbers.
    records = [ctor(FREEBSD32), rec(Syscall(4, (1, 0xFFFFC000, 0xFFFFFFFF)))]
    assert kdump(tmp_path, records, "-d") == "  2035 cat      CALL  write(1,4294950912,4294967295)\n"
    assert kdump(tmp_path, records) == "  2035 cat      CALL  write(0x1,0xffffc000,0xffffffff)\n"


def test_decimal_freebsd64_arguments_stay_signed(tmp_path: Path) -> None:
    records = [ctor(FREEBSD64), rec(Syscall(4, (1, 0x7FF0, (1 << 64) - 1)))]
    assert kdump(tmp_path, records, "-d") == "  2035 cat      CALL  write(1,32752,-1)\n"


def _rtld(event: int, name: bytes) -> User:
    # struct utrace_rtld on amd64: sig[4], event, handle, mapbase, mapsize, refcnt, name[1024].
    return User(struct.pack("<4siQQQi1024s4x", b"RTLD", event, 0, 0, 0, 0, name))


def test_rtld_error_utrace(tmp_path: Path) -> None:
    # libsysdecode's format for UTRACE_RTLD_ERROR ends in a newline, and kdump's
    # ktruser() adds its own: an empty line follows.
    records = [ctor(), rec(_rtld(13, b"libx.so.1 not found"))]
    assert kdump(tmp_path, records) == "  2035 cat      USER  RTLD: error: libx.so.1 not found\n\n"


def test_rtld_unknown_event_stays_a_hex_dump(tmp_path: Path) -> None:
    out = kdump(tmp_path, [ctor(), rec(_rtld(14, b"x"))])
    assert out.startswith("  2035 cat      USER  1064  52 54 4c 44 0e 00 00 00 ")


def test_exterr_records_are_selected_by_x(tmp_path: Path) -> None:
    records = [ctor(), rec(Exterr(1, 22, 1, 123, 0, 0x1000, 0x2000, b"bad len %#jx"), rtype=K.KTR_EXTERR)]
    line = '  2035 cat      EERR  { errno 22 sys/unknown:123 "bad len 0x1000" (category 1 p1 0x1000 p2 0x2000) }\n'
    assert kdump(tmp_path, records) == ""
    assert kdump(tmp_path, records, "-t", "x") == line
    assert kdump(tmp_path, records, "-t", "cx") == line
    assert kdump(tmp_path, records, "-t", "c") == ""


def test_linux_realtime_signals_have_freebsds_names(tmp_path: Path) -> None:
    # rt_sigaction is 13 and kill 62 in Linux's x86_64 table.
    records = [
        ctor(LINUX64),
        rec(Syscall(13, (32, 0, 0, 8))),
        rec(Syscall(13, (33, 0, 0, 8))),
        rec(Syscall(13, (34, 0x7FF0, 0, 8))),
        rec(Syscall(62, (100, 64))),
    ]
    assert kdump(tmp_path, records) == (
        "  2035 cat      CALL  rt_sigaction(SIGCANCEL,0,0,0x8)\n"
        "  2035 cat      CALL  rt_sigaction(SIGSETXID,0,0,0x8)\n"
        "  2035 cat      CALL  rt_sigaction(SIGRT2,0x7ff0,0,0x8)\n"
        "  2035 cat      CALL  kill(100,SIGRTMAX)\n"
    )


def test_v0_headers_with_junk_padding(tmp_path: Path) -> None:
    # FreeBSD 6 to 13 never wrote the two bytes after a v0 ktr_type; an INVARIANTS
    # kernel leaves malloc's 0xdeadc0de trash there.  kdump does not read them.
    data = bytearray((REAL / "freebsd-i386-v0-nfsp" / "ktrace.out").read_bytes())
    pos = 0
    while pos + 44 <= len(data):
        data[pos + 6 : pos + 8] = b"\xde\xc0"
        pos += 44 + struct.unpack_from("<i", data, pos)[0]
    path = tmp_path / "junkpad.out"
    path.write_bytes(bytes(data))
    result = run_pykdump_args("-f", str(path))
    assert (result.status, result.err) == (0, "")
    golden = GOLDEN / ("freebsd-i386-v0-nfsp" + ".default.txt")  # the golden test's output
    assert result.out == golden.read_bytes()


def test_real_in6_ioctl_is_named(tmp_path: Path) -> None:
    # The i386 nfsp trace (FreeBSD 9) asks for SIOCGIFAFLAG_IN6; kdump names it from
    # netinet6/in6_var.h, and the value in the file confirms the 288-byte in6_ifreq.
    result = run_pykdump_args("-f", str(REAL / "freebsd-i386-v0-nfsp" / "ktrace.out"))
    lines = [line for line in result.text.splitlines() if "CALL  ioctl(" in line]
    assert " 17990 proxy.ganesha.nfsd CALL  ioctl(0x3,SIOCGIFAFLAG_IN6,0xbfbfe198)" in lines

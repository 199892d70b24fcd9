"""The one argument printer of both ABIs and the one STRU registry: what the ABIs share and where they differ."""

from __future__ import annotations

import pytest

from ktrace_cli.abi.sysdecode import NameTable
from ktrace_cli.decode import stru
from ktrace_cli.decode.freebsd_args import format_freebsd_args
from ktrace_cli.decode.kdump_args import ATFD, INT, MASK0, SINT, Args, C, N, P, S, run, settings
from ktrace_cli.decode.linux_calls import format_linux_args
from ktrace_cli.render.stru_text import TEXT, format_struct, struct_text

U32 = 0xFFFFFFFF


def U(value: int) -> int:  # noqa: N802 - a negative C value as the 64-bit register holds it
    return value & 0xFFFFFFFFFFFFFFFF


def test_one_row_prints_the_same_under_both_abis_settings() -> None:
    row = (P, ATFD, S, N, C, MASK0(NameTable(((0x100, "AT_SYMLINK_NOFOLLOW"),))))
    slots = (U(-100), 0x7F00, 0x100)
    freebsd = settings(bits=64, pad=True)(slots, False, False)
    linux = Args(slots, False, False)
    assert run(row, freebsd) == run(row, linux) == "(AT_FDCWD,0x7f00,0x100<AT_SYMLINK_NOFOLLOW>)"


def test_short_records_freebsd_reads_zeros_linux_stops() -> None:
    # kdump reads past a short FreeBSD record (zeros here); a Linux row stops where the slots stop.
    assert format_freebsd_args("kill", (5,), decimal=False, ilp32=False) == "(5,SIG 0)"
    assert format_linux_args("kill", (5,), decimal=False, ilp32=False, kdump=True) == "(5)"
    assert format_linux_args("kill", (5,), decimal=False, ilp32=False) == "(5)"


def test_slot_width_decides_decimal_sign() -> None:
    # -d: a 32-bit file's slot of all ones is -1; in a 64-bit file the zero-extended slot is not negative.
    assert format_freebsd_args("read", (U32,), decimal=True, ilp32=True) == "(-1)"
    assert format_freebsd_args("read", (U32,), decimal=True, ilp32=True, register_bits=64) == "(4294967295)"


def test_kinds_print_prototype_signed_slots_only_beyond_kdump() -> None:
    # exit_group(int): -1 beyond kdump, the register as kdump prints it otherwise.
    assert format_linux_args("exit_group", (U(-1),), decimal=False, ilp32=False) == "(-1)"
    assert format_linux_args("exit_group", (U(-1),), decimal=False, ilp32=False, kdump=True) == "(0xffffffffffffffff)"
    # A negative directory fd other than AT_FDCWD is signed beyond kdump only.
    assert format_linux_args("unlinkat", (U(-9), 0x10, 0), decimal=False, ilp32=False) == "(-9,0x10,0)"
    assert format_linux_args("unlinkat", (U(-9), 0x10, 0), decimal=False, ilp32=False, kdump=True) == (
        "(0xfffffff7,0x10,0)"
    )


def test_linux_signal_slot_is_a_c_int_as_kdump_prints_it() -> None:
    # print_linux_signal takes an int: the upper half of the register does not count.
    assert format_linux_args("rt_sigaction", (0x1_0000_0011, 0), decimal=False, ilp32=False, kdump=True) == (
        "(SIGCHLD,0)"
    )
    assert format_linux_args("tkill", (7, U32), decimal=False, ilp32=False, kdump=True) == "(7,SIG -1)"


def test_signed_and_named_primitives() -> None:
    a = Args((U(-2), 7, 3), True, False)
    assert run((SINT, C, INT(NameTable(((3, "THREE"),)).lookup)), a) == "(-2,<invalid=7>,3)"
    a = Args((U(-2), 3), False, False)
    assert run((SINT, C, INT(NameTable(((3, "THREE"),)).lookup)), a) == "(-2,THREE)"


def test_settings_classes_are_made_once() -> None:
    assert settings(bits=32, pad=True) is settings(bits=32, pad=True)
    cls = settings(bits=32, pad=True)
    assert (cls.bits, cls.mask, cls.pad, cls.beyond) == (32, U32, True, False)


def test_name_table_mask_walk() -> None:
    table = NameTable(((0, "PROT_NONE"), (1, "PROT_READ"), (2, "PROT_WRITE")))
    assert table.names(0) == ("PROT_NONE", 0)  # a zero row only for the value zero
    assert table.names(3) == ("PROT_READ|PROT_WRITE", 0)
    assert table.names(0x103) == ("PROT_READ|PROT_WRITE", 0x100)
    assert table.names(0x100) == ("", 0x100)


# -- STRU: one registry, fields for JSON, text from the same fields ---------------


def test_every_registered_struct_has_a_text() -> None:
    assert sorted(TEXT) == sorted(stru.STRUCTS)


@pytest.mark.parametrize(
    ("name", "data", "verdict"),
    [
        (b"st4t", b"x", stru.INVALID),  # kdump's name rule: letters and '_'
        (b"stat", b"", stru.INVALID),
        (b"stat", bytes(100), stru.INVALID),  # no stat layout of 100 bytes
        (b"l_sigset_t", bytes(12), stru.UNKNOWN),  # kdump knows 4 to 8 bytes only
        (b"no_such_struct", b"x", stru.UNKNOWN),
    ],
)
def test_verdicts_are_kdumps_words(name: bytes, data: bytes, verdict: stru.Verdict) -> None:
    assert stru.decode_struct(name, data, 8)[1] is verdict
    assert struct_text(name, data, word=8, resolve=False, linux=True) == verdict.value
    assert stru.struct_fields_of(name, data, word=8)[1] is None


def test_sockaddr_path_bytes_are_the_same_in_text_and_json() -> None:
    # A local socket path that is not UTF-8: JSON keeps it as surrogate escapes, the text as latin-1 bytes.
    data = bytes([14, stru.AF_UNIX]) + b"/tmp/s\xff\xfe.s" + b"\0\0"
    name, fields = stru.struct_fields_of(b"sockaddr", data, word=8)
    assert fields is not None
    assert fields["path"] == "/tmp/s\udcff\udcfe.s"
    assert format_struct(b"sockaddr\0" + data, word=8, resolve=False, linux=True) == (
        "struct sockaddr { AF_LOCAL, /tmp/s\xff\xfe.s }"
    )


def test_layout_sizes_name_every_fixed_layout() -> None:
    assert sorted(stru.layout_sizes(8)) == [16, 16, 32, 32, 32, 104, 120, 224]
    assert sorted(stru.layout_sizes(4)) == [16, 16, 16, 20, 32, 52, 96, 208]

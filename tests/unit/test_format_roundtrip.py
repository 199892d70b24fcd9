"""Writer and reader agree: every record type round-trips, and the bytes are FreeBSD's."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, I386, Arch
from ktrace_cli.format.reader import TraceReader
from ktrace_cli.format.records import (
    CapFail,
    Csw,
    Exterr,
    Fault,
    FaultEnd,
    Genio,
    Namei,
    Payload,
    ProcCtor,
    ProcDtor,
    Psig,
    Record,
    Strings,
    Struct,
    StructArray,
    Syscall,
    Sysctl,
    Sysret,
    User,
    comm_field,
    unpack_payload,
)
from ktrace_cli.format.writer import encode_header, encode_record, make_record

ARCHES = [AMD64, I386]

# ---------------------------------------------------------------------------
# Strategies: every value a field of the given arch can hold.


def sint(bits: int) -> st.SearchStrategy[int]:
    return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def uint(bits: int) -> st.SearchStrategy[int]:
    return st.integers(0, (1 << bits) - 1)


SHORT, INT, U32, U64 = sint(16), sint(32), uint(32), uint(64)
no_nul = st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"x"))


def payloads(arch: Arch) -> st.SearchStrategy[tuple[int, Payload]]:
    """(record type, payload) for every record type, with values that fit `arch`."""
    word_bits = arch.word * 8
    uword, sword = uint(word_bits), sint(word_bits)
    one = st.builds
    return st.one_of(
        one(lambda c, a: (K.KTR_SYSCALL, Syscall(c, tuple(a))), SHORT, st.lists(uword, max_size=10)),
        one(lambda c, e, r, o: (K.KTR_SYSRET, Sysret(c, e, r, o)), SHORT, INT, sword, SHORT),
        one(lambda p: (K.KTR_NAMEI, Namei(p)), st.binary(max_size=64)),
        one(lambda f, rw, d: (K.KTR_GENIO, Genio(f, rw, d)), INT, INT, st.binary(max_size=64)),
        one(
            lambda s, a, c, m: (K.KTR_PSIG, Psig(s, a, c, tuple(m))),
            INT, uword, INT, st.lists(U32, min_size=4, max_size=4),
        ),  # fmt: skip
        one(lambda o, u: (K.KTR_CSW, Csw(o, u, None)), INT, INT),
        one(lambda o, u, w: (K.KTR_CSW, Csw(o, u, w[:7])), INT, INT, no_nul),
        one(lambda d: (K.KTR_USER, User(d)), st.binary(max_size=K.KTR_USER_MAXLEN)),
        one(lambda n, d: (K.KTR_STRUCT, Struct(n, d)), no_nul, st.binary(max_size=64)),
        one(lambda n: (K.KTR_SYSCTL, Sysctl(n)), no_nul),
        one(lambda f: (K.KTR_PROCCTOR, ProcCtor(f)), U32),
        st.just((K.KTR_PROCDTOR, ProcDtor())),
        one(
            lambda t, c, f, d: (K.KTR_CAPFAIL, CapFail(t, True, c, f, d)),
            INT, SHORT, U32, st.binary(min_size=1024, max_size=1024),
        ),  # fmt: skip
        one(
            lambda t, d: (K.KTR_CAPFAIL, CapFail(t, False, 0, 0, d)),
            INT, st.binary(min_size=32, max_size=32),
        ),  # fmt: skip
        one(lambda v, t: (K.KTR_FAULT, Fault(v, t)), uword, INT),
        one(lambda r: (K.KTR_FAULTEND, FaultEnd(r)), INT),
        one(
            lambda s, n, d: (K.KTR_STRUCT_ARRAY, StructArray(s, n, d)),
            uword, no_nul, st.binary(max_size=64),
        ),  # fmt: skip
        one(lambda t, s: (t, Strings(s)), st.sampled_from([K.KTR_ARGS, K.KTR_ENVS]), st.lists(no_nul, max_size=5)),
        one(
            lambda a, b, c, d, e, p1, p2, m: (K.KTR_EXTERR, Exterr(a, b, c, d, e, p1, p2, m[:127])),
            U32, U32, U32, U32, U32, U64, U64, no_nul,
        ),  # fmt: skip
    )


def headers(arch: Arch) -> st.SearchStrategy[dict[str, object]]:
    word_bits = arch.word * 8
    return st.fixed_dictionaries(
        {
            "pid": INT,
            "tid": sint(word_bits),
            "comm": st.binary(max_size=25),
            "sec": sint(word_bits),
            "frac": sint(word_bits),
            "version": st.sampled_from([K.KTR_VERSION0, K.KTR_VERSION1]),
            "cpu": INT,
            "drop": st.booleans(),
        }
    )


def read_all(data: bytes, arch: Arch) -> list[Record]:
    return list(TraceReader(io.BytesIO(data), arch=arch))


def as_read(record: Record) -> Record:
    """What the reader gives back for `record`: v0 headers carry no cpu."""
    return record.replace(cpu=0) if record.version == K.KTR_VERSION0 else record


# A v1 SYSRET after the record under test: a v0 record shorter than 8 bytes at
# the very end of a file is dropped, as kdump does (tested in test_reader.py).
def trailer(arch: Arch) -> Record:
    return make_record(Sysret(1, 0, 0), pid=1, comm="t", sec=0, frac=0, arch=arch)


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_every_record_round_trips(arch: Arch, data: st.DataObject) -> None:
    rtype, payload = data.draw(payloads(arch), label="payload")
    header = data.draw(headers(arch), label="header")
    record = make_record(payload, rtype=rtype, arch=arch, **header)  # type: ignore[arg-type]
    assert record.type == rtype
    assert len(record.comm) == 20

    stream = encode_record(record, arch) + encode_record(trailer(arch), arch)
    hsize = arch.header_v1.size if header["version"] else arch.header_v0.size
    assert len(stream) == hsize + len(record.payload) + arch.header_v1.size + arch.sysret.size

    got = read_all(stream, arch)
    assert got == [as_read(record), trailer(arch)]
    assert unpack_payload(arch, got[0].type, got[0].payload) == payload


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_payload_pack_unpack_is_symmetric(arch: Arch, data: st.DataObject) -> None:
    rtype, payload = data.draw(payloads(arch))
    packed = payload.pack(arch)
    assert unpack_payload(arch, rtype, packed) == payload
    assert unpack_payload(arch, rtype, packed).pack(arch) == packed


# ---------------------------------------------------------------------------
# Exact bytes, written by hand from the spec's writer checklist (section 6).

COMM_LS = b"ls" + bytes(18)


def test_v1_amd64_sysret_bytes() -> None:
    record = make_record(
        Sysret(code=5, error=0, retval=3),
        pid=1234, tid=100113, comm="ls", sec=1700000000, frac=123456789, cpu=3,
    )  # fmt: skip
    expected = bytes.fromhex(
        "10000000"  # ktr_len 16
        "0240"  # ktr_type KTR_SYSRET | KTR_VERSIONED
        "0100"  # ktr_version 1
        "d2040000"  # ktr_pid 1234
    ) + COMM_LS + bytes.fromhex(
        "00f1536500000000"  # tv_sec 1700000000
        "15cd5b0700000000"  # tv_nsec 123456789
        "1187010000000000"  # ktr_tid 100113
        "03000000"  # ktr_cpu 3
        "00000000"  # tail padding
        "0500" "0000" "00000000"  # code 5, eosys 0, error 0
        "0300000000000000"  # retval 3
    )  # fmt: skip
    assert encode_record(record) == expected
    assert len(expected) == 64 + 16


def test_v1_amd64_sysret_error_and_drop_bytes() -> None:
    record = make_record(
        Sysret(code=5, error=K.EJUSTRETURN, retval=0),
        pid=7, tid=100001, comm="sh", sec=1, frac=2, cpu=0, drop=True,
    )  # fmt: skip
    raw = encode_record(record)
    assert raw[4:6] == bytes.fromhex("02c0")  # 0xC002: SYSRET | VERSIONED | DROP
    assert struct.unpack_from("<h", raw, 4) == (-16382,)
    assert raw[64:] == bytes.fromhex("0500" "0000" "feffffff" "0000000000000000")


def test_v0_amd64_namei_bytes() -> None:
    record = make_record(
        Namei(b"/etc"), version=K.KTR_VERSION0,
        pid=0x1234, tid=100002, comm="ls", sec=1462900000, frac=999999, cpu=5,
    )  # fmt: skip
    expected = bytes.fromhex(
        "04000000"  # ktr_len 4
        "0300"  # ktr_type KTR_NAMEI, not versioned
        "0000"  # padding at 6-7
        "34120000"  # ktr_pid
    ) + COMM_LS + bytes.fromhex(
        "2015325700000000"  # tv_sec 1462900000
        "3f420f0000000000"  # tv_usec 999999
        "a286010000000000"  # ktr_tid 100002 (no cpu in v0)
    ) + b"/etc"  # fmt: skip
    assert encode_record(record) == expected
    assert len(expected) - 4 == 56 == AMD64.header_v0.size


def test_v0_drop_makes_ktr_type_negative() -> None:
    raw = encode_header(AMD64, 0, K.KTR_SYSCALL, 8, 1, 1, comm_field("a"), 0, 0, drop=True)
    assert raw[4:8] == bytes.fromhex("01800000")
    assert struct.unpack_from("<h", raw, 4) == (-32767,)
    assert len(raw) == 56


def test_i386_v1_sysret_bytes() -> None:
    record = make_record(
        Sysret(code=3, error=2, retval=0), arch=I386,
        pid=99, tid=100050, comm="cat", sec=1344400000, frac=5, cpu=1,
    )  # fmt: skip
    expected = bytes.fromhex(
        "0c000000"  # ktr_len 12
        "0240" "0100"  # SYSRET | VERSIONED, version 1
        "63000000"  # pid 99
    ) + b"cat" + bytes(17) + bytes.fromhex(
        "80ea2150"  # tv_sec 1344400000 (32-bit time_t)
        "05000000"  # tv_nsec 5
        "d2860100"  # tid 100050
        "01000000"  # cpu 1
        "0300" "0000" "02000000" "00000000"  # code, eosys, error ENOENT, retval
    )  # fmt: skip
    assert encode_record(record, I386) == expected
    assert len(expected) == 48 + 12


def test_i386_v0_header_is_44_bytes() -> None:
    raw = encode_header(I386, 0, K.KTR_GENIO, 9, 42, 100123, comm_field("x"), 3, 4)
    assert raw == bytes.fromhex("09000000" "0400" "0000" "2a000000") + b"x" + bytes(19) + bytes.fromhex(
        "03000000" "04000000" "1b870100"
    )  # fmt: skip


def test_amd64_syscall_payload_bytes() -> None:
    payload = Syscall(code=5, args=(0x7FFFFFFFE000, 0, 0x1B6))
    assert payload.pack(AMD64) == bytes.fromhex(
        "0500" "0300" "00000000"  # code 5, narg 3, padding
        "00e0ffffff7f0000" "0000000000000000" "b601000000000000"
    )  # fmt: skip
    i386 = Syscall(code=5, args=(0xBFBFE000, 0, 0x1B6))
    assert i386.pack(I386) == bytes.fromhex("0500" "0300" "00e0bfbf" "00000000" "b6010000")


def test_amd64_psig_payload_bytes() -> None:
    payload = Psig(signo=2, action=1, code=0x10006, mask=(0x80000000, 0, 0, 1))
    assert payload.pack(AMD64) == bytes.fromhex(
        "02000000" "00000000"  # signo, pad
        "0100000000000000"  # action SIG_IGN
        "06000100"  # code SI_KERNEL
        "00000080" "00000000" "00000000" "01000000"  # mask
        "00000000"  # pad
    )  # fmt: skip
    assert len(payload.pack(I386)) == 28


def test_small_payload_bytes() -> None:
    assert Genio(3, K.UIO_WRITE, b"hi").pack(AMD64) == bytes.fromhex("03000000" "01000000") + b"hi"
    assert Csw(1, 0, b"select").pack(AMD64) == bytes.fromhex("01000000" "00000000") + b"select\0\0"
    assert Csw(0, 1, None).pack(AMD64) == bytes.fromhex("00000000" "01000000")
    assert ProcCtor(K.SV_ABI_FREEBSD | K.SV_LP64).pack(AMD64) == bytes.fromhex("09020000")
    assert ProcDtor().pack(AMD64) == b""
    assert Namei(b"/tmp").pack(AMD64) == b"/tmp"  # no trailing NUL
    assert Sysctl(b"kern.ostype").pack(AMD64) == b"kern.ostype\0"  # NUL included
    assert Struct(b"stat", b"\1\2").pack(AMD64) == b"stat\0\1\2"
    assert Fault(0x1000, 2).pack(AMD64) == bytes.fromhex("0010000000000000" "02000000" "00000000")
    assert FaultEnd(-1).pack(AMD64) == bytes.fromhex("ffffffff")
    assert StructArray(16, b"pollfd", b"").pack(AMD64) == bytes.fromhex("1000000000000000") + b"pollfd\0"
    assert Strings([b"ls", b"-l"]).pack(AMD64) == b"ls\0-l\0"


def test_capfail_sizes_and_layout() -> None:
    new = CapFail(cap_type=6, new=True, cap_code=5, cap_svflags=0x209, cap_data=b"AT_FDCWD")
    raw = new.pack(AMD64)
    assert len(raw) == 1040
    assert raw[:16] == bytes.fromhex("06000000" "0500" "0000" "09020000" "00000000")
    assert raw[16:25] == b"AT_FDCWD\0"
    old = CapFail(cap_type=1, new=False, cap_data=bytes(range(32)))
    raw = old.pack(AMD64)
    assert raw == bytes.fromhex("01000000" "00000000") + bytes(range(32))


def test_exterr_is_200_bytes() -> None:
    raw = Exterr(1, 22, 3, 140, 0, 7, 8, b"bad flags").pack(AMD64)
    assert len(raw) == 200
    assert raw[:24] == bytes.fromhex("01000000" "16000000" "03000000" "8c000000" "00000000" "00000000")
    assert raw[24:40] == bytes.fromhex("0700000000000000" "0800000000000000")
    assert raw[72:82] == b"bad flags\0"


def test_comm_is_truncated_to_maxcomlen_and_nul_padded() -> None:
    assert comm_field("abcdefghijklmnopqrstuvwxyz") == b"abcdefghijklmnopqrs\0"
    assert comm_field("sh") == b"sh" + bytes(18)
    record = make_record(ProcDtor(), pid=1, comm="a-very-long-thread-name", sec=0, frac=0)
    assert record.comm_name == b"a-very-long-thread-"


def test_ktr_len_counts_fixed_and_variable_parts() -> None:
    record = make_record(Syscall(1, (1, 2, 3, 4)), pid=1, sec=0, frac=0)
    raw = encode_record(record)
    assert struct.unpack_from("<i", raw, 0) == (8 + 8 * 4,)
    assert len(raw) == 64 + 40

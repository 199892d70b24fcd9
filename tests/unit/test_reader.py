"""The reader frames records as kdump does, detects the producer, and never trusts a length."""

from __future__ import annotations

import collections
import gzip
import io
import os
import queue
import struct
import threading
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, I386, Arch
from ktrace_cli.format.reader import (
    BogusLength,
    DataTooShort,
    NotFreeBSD,
    TraceFormatError,
    TraceReader,
    detect_arch,
    iter_records,
)
from ktrace_cli.format.records import (
    Genio,
    Namei,
    Payload,
    ProcCtor,
    ProcDtor,
    Psig,
    Record,
    Struct,
    Syscall,
    Sysret,
    unpack_payload,
)
from ktrace_cli.format.writer import encode_record, make_record

FREEBSD64 = K.SV_ABI_FREEBSD | K.SV_LP64


def rec(payload: Payload, version: int = 1, arch: Arch = AMD64, **kw: object) -> Record:
    kw.setdefault("pid", 4242)
    kw.setdefault("tid", 100200)
    kw.setdefault("comm", "sh")
    kw.setdefault("sec", 1700000000)
    kw.setdefault("frac", 5000 if version == 0 else 5000000)
    return make_record(payload, version=version, arch=arch, **kw)  # type: ignore[arg-type]


def encode(records: list[Record], arch: Arch = AMD64) -> bytes:
    return b"".join(encode_record(r, arch) for r in records)


def read(data: bytes, arch: Arch | None = None) -> list[Record]:
    return list(TraceReader(io.BytesIO(data), arch=arch))


def read_until_error(data: bytes, arch: Arch | None = None) -> tuple[list[Record], TraceFormatError | None]:
    got: list[Record] = []
    try:
        for record in TraceReader(io.BytesIO(data), arch=arch):
            got.append(record)
    except TraceFormatError as e:
        return got, e
    return got, None


def sample_records(version: int = 1, arch: Arch = AMD64) -> list[Record]:
    return [
        rec(ProcCtor(FREEBSD64), version, arch),
        rec(Syscall(5, (0x1000, 0, 0)), version, arch),
        rec(Namei(b"/etc/passwd"), version, arch),
        rec(Sysret(5, 0, 3), version, arch),
    ]


# ---------------------------------------------------------------------------
# kdump's header algorithm (spec section 1.3).


def test_v0_last_record_shorter_than_8_bytes_is_dropped() -> None:
    records = sample_records(version=0)
    assert read(encode([*records, rec(ProcDtor(), 0)])) == records
    seven = rec(Namei(b"/tmp/ab"), 0)
    assert read(encode([*records, seven])) == records
    eight = rec(Namei(b"/tmp/abc"), 0)
    assert read(encode([*records, eight])) == [*records, eight]


def test_v0_short_record_is_kept_when_not_last() -> None:
    records = [rec(ProcDtor(), 0), *sample_records(version=0)]
    assert read(encode(records)) == records


def test_v1_last_record_of_length_0_is_kept() -> None:
    records = [*sample_records(version=1), rec(ProcDtor(), 1)]
    assert read(encode(records)) == records


def test_versioned_with_version_0_is_read_as_v0() -> None:
    first = rec(Namei(b"/bin/sh"), 0, cpu=0)
    raw = bytearray(encode_record(first) + encode_record(rec(Sysret(5, 0, 3), 1)))
    struct.pack_into("<h", raw, 4, K.KTR_NAMEI | K.KTR_VERSIONED)  # version at 6-7 stays 0
    got = read(bytes(raw), AMD64)
    assert got == [first, rec(Sysret(5, 0, 3), 1)]
    assert got[0].version == 0 and got[0].type == K.KTR_NAMEI


def test_any_nonzero_version_is_read_as_v1() -> None:
    record = rec(Sysret(5, 0, 3), 7, cpu=2)
    assert read(encode_record(record), AMD64) == [record]


def test_mixed_v0_and_v1_records() -> None:
    records = [*sample_records(0), *sample_records(1), *sample_records(0)]
    assert read(encode(records)) == records


def test_drop_flag_is_stripped_from_the_type() -> None:
    records = [rec(Sysret(5, 0, 3), 1, drop=True), rec(Sysret(6, 0, 0), 0, drop=True)]
    got = read(encode(records) + encode_record(rec(Sysret(1, 0, 0))), AMD64)
    assert [(r.type, r.drop) for r in got] == [(2, True), (2, True), (2, False)]


@pytest.mark.parametrize(
    ("length", "message"),
    [(-5, "bogus length 0xfffffffb"), (-0x80000000, "bogus length 0x80000000"), (-1, "bogus length 0xffffffff")],
)
def test_negative_length_is_bogus_after_the_good_records(length: int, message: str) -> None:
    records = sample_records()
    bad = bytearray(encode_record(rec(Sysret(9, 0, 0), pid=77)))
    struct.pack_into("<i", bad, 0, length)
    got, error = read_until_error(encode(records) + bytes(bad))
    assert got == records
    assert isinstance(error, BogusLength)
    assert str(error) == error.message == message
    assert error.header is not None and error.header.pid == 77 and error.header.type == K.KTR_SYSRET


def test_short_payload_is_data_too_short() -> None:
    records = sample_records()
    cut = encode_record(rec(Genio(1, K.UIO_WRITE, b"x" * 100), pid=78))[:-50]
    got, error = read_until_error(encode(records) + cut)
    assert got == records
    assert isinstance(error, DataTooShort)
    assert error.message == "data too short"
    assert error.header is not None and error.header.pid == 78


def test_v0_short_payload_is_data_too_short() -> None:
    records = sample_records(0)
    cut = encode_record(rec(Genio(1, K.UIO_READ, b"y" * 100), 0))[:-1]
    got, error = read_until_error(encode(records) + cut)
    assert got == records
    assert isinstance(error, DataTooShort)


@pytest.mark.parametrize("tail", [1, 8, 55, 63])
def test_less_than_a_header_at_the_end_stops_silently(tail: int) -> None:
    records = sample_records()
    junk = encode_record(rec(Genio(1, K.UIO_WRITE, b"z" * 100)))[:tail]
    assert read_until_error(encode(records) + junk) == (records, None)


def test_empty_input_gives_no_records() -> None:
    assert read(b"") == []


# ---------------------------------------------------------------------------
# Real files: detection and counts.

FREEBSD_FIXTURES = {
    # name: (arch, record count, sv_flags of the first PROCCTOR or None, type counts)
    "freebsd-amd64-v0-denoble": (
        "amd64", 144, 0x10209,
        {K.KTR_SYSCALL: 58, K.KTR_SYSRET: 58, K.KTR_NAMEI: 14, K.KTR_STRUCT: 8, K.KTR_GENIO: 4, K.KTR_PROCCTOR: 2},
    ),
    "freebsd-amd64-v1-mcsh": (
        "amd64", 609, 0x9F0209,
        {K.KTR_SYSCALL: 303, K.KTR_SYSRET: 303, K.KTR_PROCCTOR: 2, K.KTR_PROCDTOR: 1},
    ),
    "freebsd-i386-v0-nfsp": (
        "i386", 1488, 0x4109,
        {
            K.KTR_SYSRET: 576, K.KTR_SYSCALL: 575, K.KTR_NAMEI: 192, K.KTR_GENIO: 85,
            K.KTR_STRUCT: 47, K.KTR_SYSCTL: 10, K.KTR_PROCCTOR: 2, K.KTR_PSIG: 1,
        },
    ),
    "freebsd-i386-v0-rkhack": (
        "i386", 263, None,
        {K.KTR_SYSCALL: 108, K.KTR_SYSRET: 108, K.KTR_NAMEI: 17, K.KTR_GENIO: 17, K.KTR_STRUCT: 7, K.KTR_SYSCTL: 6},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(FREEBSD_FIXTURES))
def test_real_freebsd_files(fixtures_dir: Path, name: str) -> None:
    arch_name, count, sv_flags, counts = FREEBSD_FIXTURES[name]
    path = fixtures_dir / name / "ktrace.out"
    with open(path, "rb", buffering=0) as stream:
        reader = TraceReader(stream)
        records = list(reader)
    assert reader.arch is not None and reader.arch.name == arch_name
    assert len(records) == count
    assert collections.Counter(r.type for r in records) == counts
    # The tracer's own SYSRET of ktrace(2) comes first or right after its PROCCTOR.
    first_call = next(r for r in records if r.type != K.KTR_PROCCTOR)
    assert first_call.type == K.KTR_SYSRET and first_call.comm_name == b"ktrace"
    arch = AMD64 if arch_name == "amd64" else I386
    assert unpack_payload(arch, first_call.type, first_call.payload).code == 45  # type: ignore[union-attr]
    ctors = [unpack_payload(arch, r.type, r.payload) for r in records if r.type == K.KTR_PROCCTOR]
    assert (ctors[0] if ctors else None) == (ProcCtor(sv_flags) if sv_flags is not None else None)
    assert {r.version for r in records} == {1 if "-v1-" in name else 0}
    # Every payload decodes with the detected layout.
    for r in records:
        unpack_payload(arch, r.type, r.payload)
    assert list(iter_records(str(path))) == records


def test_v0_files_lose_their_short_last_record(fixtures_dir: Path) -> None:
    # Both end in a PROCDTOR (ktr_len 0) that kdump's 64-byte header read misses.
    for name, header in (("freebsd-amd64-v0-denoble", 56), ("freebsd-i386-v0-nfsp", 44)):
        data = (fixtures_dir / name / "ktrace.out").read_bytes()
        assert struct.unpack_from("<ih", data, len(data) - header) == (0, K.KTR_PROCDTOR)
        records = read(data)
        assert len(records) == FREEBSD_FIXTURES[name][1]
        # With 8 more bytes the last header is complete, so the PROCDTOR appears.
        assert read(data + bytes(8))[-1].type == K.KTR_PROCDTOR


def test_damaged_i386_file_is_still_read_as_i386(fixtures_dir: Path) -> None:
    # Regression: one bad record made detection give up on i386 and read the
    # whole file as amd64, turning good records into garbage.
    data = (fixtures_dir / "freebsd-i386-v0-rkhack" / "ktrace.out").read_bytes()
    assert len(data) == 28806  # under 64 KiB: detection sees the damage
    whole = read(data)
    assert len(whole) == 263 and len(whole[-1].payload) == 8  # a 52-byte SYSCALL ends it

    assert read_until_error(data[:-10]) == (whole[:262], None)  # 42 bytes: no header
    got, error = read_until_error(data[:-1])
    assert got == whole[:262] and isinstance(error, DataTooShort)

    damaged = bytearray(data)
    assert struct.unpack_from("<i", damaged, 18652) == (8,)  # record 100's ktr_len
    struct.pack_into("<i", damaged, 18652, -1)
    got, error = read_until_error(bytes(damaged))
    assert got == whole[:100]
    assert isinstance(error, BogusLength) and error.message == "bogus length 0xffffffff"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("netbsd-amd64-v2-kayoko/ktrace.out", "not a FreeBSD trace file: looks like NetBSD ktrace"),
        ("netbsd-amd64-v2-kayoko/ld-ktrace.out", "not a FreeBSD trace file: looks like NetBSD ktrace"),
        ("netbsd-i386-v0-rc/ktrace.out", "not a FreeBSD trace file: looks like NetBSD ktrace"),
        ("openbsd-amd64-mad-open/ktrace.out", "not a FreeBSD trace file: looks like OpenBSD ktrace"),
        ("openbsd-amd64-pg/ktrace.out", "not a FreeBSD trace file: looks like OpenBSD ktrace"),
        ("openbsd-amd64-smallsoft/ktrace.out", "not a FreeBSD trace file: looks like OpenBSD ktrace"),
        (
            "darwin-ppc-php-interpreter/ktrace.out",
            "not a FreeBSD trace file: looks like big-endian Mac OS X ktrace",
        ),
    ],
)
def test_other_bsds_are_refused_by_name(fixtures_dir: Path, path: str, message: str) -> None:
    data = (fixtures_dir / path).read_bytes()
    got, error = read_until_error(data)
    assert got == []
    assert isinstance(error, NotFreeBSD)
    assert error.message == message
    with pytest.raises(NotFreeBSD):
        detect_arch(data[: 1 << 16])


def test_gzipped_openbsd_file_is_refused_after_gunzip(fixtures_dir: Path) -> None:
    data = gzip.decompress((fixtures_dir / "openbsd-amd64-blackgnezdo/ktrace.out.gz").read_bytes())
    assert len(data) == 7381946
    got, error = read_until_error(data)
    assert got == []
    assert isinstance(error, NotFreeBSD)
    assert error.message == "not a FreeBSD trace file: looks like OpenBSD ktrace"


# ---------------------------------------------------------------------------
# Pipes: kdump seeks back over a v0 header, so it cannot read v0 from a pipe; we can.


def _feed_pipe(data: bytes, chunk: int) -> tuple[int, threading.Thread]:
    r, w = os.pipe()

    def writer() -> None:
        with os.fdopen(w, "wb", buffering=0) as out:
            for i in range(0, len(data), chunk):
                out.write(data[i : i + chunk])

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return r, thread


@pytest.mark.parametrize("name", ["freebsd-amd64-v0-denoble", "freebsd-i386-v0-nfsp"])
def test_v0_file_through_a_pipe(fixtures_dir: Path, name: str) -> None:
    data = (fixtures_dir / name / "ktrace.out").read_bytes()
    r, thread = _feed_pipe(data, 997)  # odd chunks split headers and payloads
    with os.fdopen(r, "rb", buffering=0) as stream:
        got = list(TraceReader(stream))
    thread.join(timeout=10)
    assert got == read(data)
    assert len(got) == FREEBSD_FIXTURES[name][1]


def test_standard_input_as_dash() -> None:
    records = [*sample_records(0), rec(ProcDtor(), 0)]
    r, thread = _feed_pipe(encode(records), 13)
    saved = os.dup(0)
    try:
        os.dup2(r, 0)
        os.close(r)
        got = list(iter_records("-"))
    finally:
        os.dup2(saved, 0)
        os.close(saved)
    thread.join(timeout=10)
    assert got == records[:-1]


# ---------------------------------------------------------------------------
# Follow mode (kdump -l): records appended later are seen, even in pieces.


class _Stop(Exception):
    pass


class TappedFile:
    """A file whose reads are counted, so a test knows how far the reader has got."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb", buffering=0)
        self._cond = threading.Condition()
        self.offset = 0
        self.stop = threading.Event()

    def read(self, n: int = -1) -> bytes:
        if self.stop.is_set():
            raise _Stop
        data = self._file.read(n)
        with self._cond:
            self.offset += len(data)
            self._cond.notify_all()
        return data

    def wait_for_offset(self, offset: int, timeout: float = 10) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.offset >= offset, timeout)

    def close(self) -> None:
        self._file.close()


def test_follow_sees_appended_records_even_in_halves(tmp_path: Path) -> None:
    path = tmp_path / "ktrace.out"
    first = sample_records()
    path.write_bytes(encode(first))
    tapped = TappedFile(path)
    got: queue.Queue[Record | BaseException | None] = queue.Queue()

    def consume() -> None:
        try:
            for record in TraceReader(tapped, follow=True, poll_interval=0.01):  # type: ignore[arg-type]
                got.put(record)
        except _Stop:
            got.put(None)
        except BaseException as e:  # handed to the test thread
            got.put(e)

    def append(data: bytes) -> None:
        with open(path, "ab", buffering=0) as out:
            out.write(data)

    def take() -> Record | BaseException | None:
        return got.get(timeout=10)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        assert [take() for _ in first] == first
        assert got.empty()

        whole = rec(Genio(1, K.UIO_WRITE, b"hello\n"), tid=100201)
        append(encode_record(whole))
        assert take() == whole

        size = path.stat().st_size
        for split in (40, 64 + 3):  # inside the header, inside the payload
            later = rec(Namei(b"/usr/lib/libc.so.7"), sec=1700000000 + split)
            raw = encode_record(later)
            append(raw[:split])
            assert tapped.wait_for_offset(size + split)  # the reader has the first part
            assert got.empty()
            append(raw[split:])
            assert take() == later
            size += len(raw)

        v0 = rec(Sysret(3, 0, 12), 0)
        append(encode_record(v0) + encode_record(rec(Sysret(4, 0, 1))))
        assert take() == v0
        assert take() == rec(Sysret(4, 0, 1))
    finally:
        tapped.stop.set()
        thread.join(timeout=10)
        tapped.close()
    assert not thread.is_alive()
    assert take() is None


# ---------------------------------------------------------------------------
# Lengths are never trusted.


def test_huge_lying_length_does_not_allocate(tmp_path: Path) -> None:
    bad = bytearray(encode_record(rec(Genio(1, K.UIO_READ, b"q" * 32), pid=79)))
    struct.pack_into("<i", bad, 0, 0x7FFFFFFF)
    path = tmp_path / "lying.out"
    records = sample_records()
    path.write_bytes(encode(records) + bytes(bad))
    tracemalloc.start()
    try:
        got: list[Record] = []
        with pytest.raises(DataTooShort) as caught:
            for record in iter_records(str(path)):
                got.append(record)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == records
    assert caught.value.header is not None and caught.value.header.pid == 79
    assert peak < 4 << 20, f"peak {peak} bytes for a 0x7fffffff length"


# Hypothesis: streams of valid records, then truncated or corrupted.


def _payloads(arch: Arch) -> st.SearchStrategy[Payload]:
    word = st.integers(0, (1 << (8 * arch.word)) - 1)
    sword = st.integers(-(1 << (8 * arch.word - 1)), (1 << (8 * arch.word - 1)) - 1)
    short = st.integers(-(1 << 15), (1 << 15) - 1)
    i32 = st.integers(-(1 << 31), (1 << 31) - 1)
    return st.one_of(
        st.builds(Syscall, st.integers(0, 600), st.lists(word, max_size=8).map(tuple)),
        st.builds(Sysret, short, st.integers(-2, 100), sword),
        st.builds(Namei, st.binary(max_size=40)),
        st.builds(Genio, i32, st.integers(0, 1), st.binary(max_size=80)),
        st.builds(Psig, st.integers(1, 32), word, i32),
        st.builds(Struct, st.sampled_from([b"stat", b"sockaddr"]), st.binary(max_size=40)),
        st.builds(ProcDtor),
    )


@st.composite
def streams(draw: st.DrawFn) -> tuple[Arch, list[Record], list[int]]:
    """A file as ktrace(1) writes it: PROCCTOR first, then any records; with end offsets."""
    arch = draw(st.sampled_from([AMD64, I386]))
    version = draw(st.sampled_from([0, 1]))
    records = [rec(ProcCtor(FREEBSD64), version, arch)]
    for payload in draw(st.lists(_payloads(arch), min_size=1, max_size=10)):
        records.append(
            rec(
                payload, version, arch,
                pid=draw(st.integers(1, 99999)), tid=draw(st.integers(100000, 199999)),
                comm=draw(st.sampled_from(["sh", "ls", "a-long-thread-name-x"])),
                cpu=draw(st.integers(0, 63)), drop=draw(st.booleans()),
            )
        )  # fmt: skip
    ends = []
    pos = 0
    for r in records:
        pos += len(encode_record(r, arch))
        ends.append(pos)
    return arch, [_as_read(r) for r in records], ends


def _as_read(record: Record) -> Record:
    """v0 headers have no cpu field: the reader gives 0."""
    return record.replace(cpu=0) if record.version == 0 else record


def expected_after_truncation(arch: Arch, records: list[Record], ends: list[int], size: int) -> tuple[list[Record], type | None]:
    """What kdump's algorithm yields from the first `size` bytes."""
    out: list[Record] = []
    start = 0
    for r, end in zip(records, ends, strict=True):
        if start + arch.header_size > size:
            return out, None
        if end > size:
            return out, DataTooShort
        out.append(r)
        start = end
    return out, None


def _read_checked(data: bytes, arch: Arch | None) -> tuple[list[Record], TraceFormatError | None]:
    got: list[Record] = []
    try:
        for record in TraceReader(io.BytesIO(data), arch=arch):
            assert isinstance(record, Record)
            got.append(record)
    except TraceFormatError as e:
        return got, e
    return got, None


# Detection needs evidence: with one or two records a file can be a valid
# trace under both layouts (an amd64 PROCCTOR cut at 48 bytes *is* an i386
# PROCCTOR).  From three intact records on, the right layout must win.
EVIDENCE = 3


@settings(max_examples=300, deadline=None)
@given(stream=streams(), data=st.data())
def test_truncation_at_any_byte(stream: tuple[Arch, list[Record], list[int]], data: st.DataObject) -> None:
    arch, records, ends = stream
    raw = encode(records, arch)
    size = data.draw(st.integers(0, len(raw)), label="size")
    want, want_error = expected_after_truncation(arch, records, ends, size)
    for arch_given in (arch, None):
        got, error = _read_checked(raw[:size], arch_given)
        if arch_given is None and sum(1 for end in ends if end <= size) < EVIDENCE:
            continue
        assert got == want
        assert type(error) is want_error if want_error else error is None


@settings(max_examples=300, deadline=None)
@given(stream=streams(), data=st.data())
def test_corruption_anywhere_is_a_format_error_or_records(
    stream: tuple[Arch, list[Record], list[int]], data: st.DataObject
) -> None:
    arch, records, ends = stream
    raw = bytearray(encode(records, arch))
    width = data.draw(st.sampled_from([1, 4]), label="width")
    at = data.draw(st.integers(0, len(raw) - width), label="at")
    patch = data.draw(st.binary(min_size=width, max_size=width), label="patch")
    raw[at : at + width] = patch
    intact = sum(1 for end in ends if end <= at)
    # What the undamaged file gives, cut to the records wholly before the damage.
    want = expected_after_truncation(arch, records, ends, len(raw))[0][:intact]
    for arch_given in (arch, None):
        got, _ = _read_checked(bytes(raw), arch_given)
        if arch_given is None and intact < EVIDENCE:
            continue
        assert got[:intact] == want

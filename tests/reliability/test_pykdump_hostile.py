"""Hostile input to pykdump: corrupted traces through every renderer, and files that are not traces.

Valid records of every type are built with the writer, then damaged (bytes
flipped, inserted or deleted, lengths that lie, truncation, random narg,
struct names and sockaddr bytes).  Every renderer must then end with status
0 or 1, one `pykdump: ` line at most, whole lines, nothing after the error,
exactly the output of the good prefix before it, no hang, and memory that
does not grow with a lying length.  KTRACE_FUZZ_EXAMPLES scales the number
of examples (`make soak`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ktrace_cli.cli import pykdump
from ktrace_cli.decode import stru
from ktrace_cli.format import constants as K
from ktrace_cli.format import reader as reader_module
from ktrace_cli.format.layouts import AMD64, I386, Arch
from ktrace_cli.format.reader import SAMPLE, NotATrace, TraceFormatError, TraceReader, detect_arch
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
)
from ktrace_cli.format.writer import encode_record, make_record
from ktrace_cli.render import bodies
from tests.reliability import figures

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"
EXAMPLES = int(os.environ.get("KTRACE_FUZZ_EXAMPLES", "0")) or None
PER_RUN_TIMEOUT = 20.0  # seconds for one pykdump run on a few KiB: anything longer is a hang


def examples(ci: int) -> int:
    """`ci` examples in CI; KTRACE_FUZZ_EXAMPLES (make soak) overrides every test's count."""
    return EXAMPLES if EXAMPLES is not None else ci


FIGURES = {"inputs": 0, "runs": 0}

# What this suite found in pykdump and what fixed it (kind, input, fixing commit's subject);
# each has a regression test below.
BUGS_FIXED = [
    ("traceback", "AF_UNIX path / inotify name not latin-1", "structs: ... are bytes, not UTF-8"),
    ("traceback", "--color on a latin-1 or ASCII stdout", "pykdump --color: no traceback when stdout's encoding is not UTF-8"),
    ("hang", "/dev/zero", "reader: refuse a stream whose first record has type 0"),
    ("hang", "-l on a FIFO: nothing shown before 64 KiB", "reader: pykdump -l on a FIFO or pipe shows records as they arrive"),
    ("hang", "lying ktr_len before a long tail (quadratic)", "reader: a lying ktr_len no longer buffers the rest of the file quadratically"),
    ("output", "records before a format error lost", "pykdump: print the records read before a format error"),
    ("output", "--summary of a torn trace printed nothing", "pykdump --summary: print the table ... then the error"),
    ("output", "file truncated under -l: silence, then garbage", "reader: pykdump -l stops with 'FILE: file truncated'"),
    ("message", "gzip-compressed trace: 'data too short'", "reader: name gzip data"),
    ("message", "SIGINT: a blank line on stderr", "pykdump: SIGINT ends it with status 130 and nothing on stderr"),
]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _report_figures() -> Iterator[None]:
    yield
    figures.record(
        "pykdump-hostile-input",
        inputs=FIGURES["inputs"],
        pykdump_runs=FIGURES["runs"],
        crashes_found_and_fixed=sum(1 for kind, _, _ in BUGS_FIXED if kind in ("traceback", "hang")),
        bugs_found_and_fixed=len(BUGS_FIXED),
    )


# ---------------------------------------------------------------------------
# Running pykdump in-process with stdout and stderr in one ordered log.


class Hang(Exception):
    """A pykdump run outlived PER_RUN_TIMEOUT."""


class _OrderedSink(io.BufferedIOBase):
    def __init__(self, log: list[tuple[str, bytes]], name: str) -> None:
        self.log = log
        self.name = name

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.log.append((self.name, bytes(data)))
        return len(data)


@dataclasses.dataclass
class Outcome:
    status: int
    out: bytes
    err: str
    log: list[tuple[str, bytes]]


def _on_alarm(signum: int, frame: object) -> None:
    raise Hang(f"pykdump ran for more than {PER_RUN_TIMEOUT} s")


def run(*args: str, timeout: float = PER_RUN_TIMEOUT) -> Outcome:
    """pykdump.main(args) with stdout/stderr captured in write order; Hang after `timeout`."""
    log: list[tuple[str, bytes]] = []
    out = io.TextIOWrapper(_OrderedSink(log, "out"), encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(_OrderedSink(log, "err"), encoding="utf-8", write_through=True)
    saved = sys.stdout, sys.stderr
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    sys.stdout, sys.stderr = out, err
    try:
        status = pykdump.main(list(args))
        out.flush()
        err.flush()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.stdout, sys.stderr = saved
    FIGURES["runs"] += 1
    stdout = b"".join(data for name, data in log if name == "out")
    stderr = b"".join(data for name, data in log if name == "err").decode("utf-8")
    return Outcome(status, stdout, stderr, log)


def check_sane(result: Outcome, args: tuple[str, ...]) -> None:
    """The invariants every run keeps, whatever the input."""
    assert result.status in (0, 1), (args, result.status)
    if result.err:
        assert result.status == 1, (args, result.err)
        assert result.err.endswith("\n") and result.err.count("\n") == 1, (args, result.err)
        assert result.err.startswith("pykdump: "), (args, result.err)
        assert "Traceback" not in result.err
        first_err = next(i for i, (name, _) in enumerate(result.log) if name == "err")
        assert all(name == "err" for name, _ in result.log[first_err:]), f"output after the error: {args}"
    else:
        assert result.status == 0, args
    assert not result.out or result.out.endswith(b"\n"), (args, result.out[-80:])
    if "--json" in args:
        for line in result.out.splitlines():
            assert isinstance(json.loads(line), dict)


# ---------------------------------------------------------------------------
# Valid records of every type.

FREEBSD64 = K.SV_ABI_FREEBSD | K.SV_LP64
FREEBSD32 = K.SV_ABI_FREEBSD | K.SV_ILP32
LINUX64 = K.SV_ABI_LINUX | K.SV_LP64
LINUX32 = K.SV_ABI_LINUX | K.SV_ILP32
U32 = st.integers(0, 0xFFFFFFFF)
I32 = st.integers(-(1 << 31), (1 << 31) - 1)
SHORT = st.integers(-(1 << 15), (1 << 15) - 1)
U64 = st.integers(0, (1 << 64) - 1)
STRUCT_NAMES = [
    b"stat", b"sockaddr", b"caprights", b"inotify", b"itimerval", b"cpuset_t",
    b"splice", b"thrparam", b"l_sigset_t", b"unknownthing", b"",
]  # fmt: skip
ARRAY_NAMES = [b"pollfd", b"kevent", b"kevent32", b"kevent_freebsd11", b"kevent11", b"whatever"]
PRINTF_BITS = ["%d", "%x", "%#x", "%p", "%s", "%c", "%%", "%5d", "%-8x", "%lu", "%99999999d", "%.3d", "%", "%q"]


def _struct_sizes(word: int) -> list[int]:
    return stru.layout_sizes(word) + [0, 1, 8]


@st.composite
def sockaddrs(draw: st.DrawFn) -> bytes:
    """sockaddr bytes whose sa_len usually matches: families kdump knows and others."""
    family = draw(st.sampled_from([0, 1, 2, 28, 38, 17, 255]))
    body = draw(st.binary(max_size=140))
    length = len(body) + 2
    sa_len = draw(st.one_of(st.just(length & 0xFF), st.integers(0, 255)))
    return bytes([sa_len, family]) + body


@st.composite
def struct_payloads(draw: st.DrawFn, arch: Arch) -> Struct:
    name = draw(st.one_of(st.sampled_from(STRUCT_NAMES), st.binary(max_size=12).map(lambda b: b.replace(b"\0", b""))))
    if name == b"sockaddr":
        return Struct(name, draw(sockaddrs()))
    size = draw(st.one_of(st.sampled_from(_struct_sizes(arch.word)), st.integers(0, 300)))
    return Struct(name, draw(st.binary(min_size=size, max_size=size)))


@st.composite
def user_payloads(draw: st.DrawFn, arch: Arch) -> User:
    kind = draw(st.sampled_from(["raw", "rtld", "malloc"]))
    if kind == "rtld":
        layout = bodies._RTLD64 if arch.word == 8 and draw(st.booleans()) else bodies._RTLD32
        word = st.integers(0, (1 << (8 * (8 if layout is bodies._RTLD64 else 4))) - 1)
        return User(
            layout.pack(
                b"RTLD", draw(st.integers(-1, 14)), draw(word), draw(word), draw(word), draw(I32),
                draw(st.binary(max_size=1024)),
            )
        )  # fmt: skip
    if kind == "malloc":
        layout = bodies._MALLOC64 if arch.word == 8 and draw(st.booleans()) else bodies._MALLOC32
        word = st.integers(0, (1 << (8 * (layout.size // 3))) - 1)
        return User(layout.pack(draw(word), draw(word), draw(word)))
    return User(draw(st.binary(max_size=64)))


def payloads(arch: Arch) -> st.SearchStrategy[tuple[Payload, int | None]]:
    """(payload, record type or None for the payload's own) for every record type."""
    word = st.integers(0, (1 << (8 * arch.word)) - 1)
    sword = st.integers(-(1 << (8 * arch.word - 1)), (1 << (8 * arch.word - 1)) - 1)
    code = st.one_of(st.integers(0, 600), SHORT)
    none: st.SearchStrategy[int | None] = st.none()
    msg = st.lists(st.one_of(st.sampled_from(PRINTF_BITS), st.text(max_size=5)), max_size=5).map(
        lambda parts: "".join(parts).encode("utf-8")[:127].replace(b"\0", b"")
    )
    own = st.one_of(
        st.builds(Syscall, code, st.lists(word, max_size=10).map(tuple)),
        st.builds(Sysret, code, st.one_of(st.integers(-2, 120), I32), sword, SHORT),
        st.builds(Namei, st.binary(max_size=64)),
        st.builds(Genio, I32, st.one_of(st.integers(0, 1), I32), st.binary(max_size=200)),
        st.builds(Psig, st.one_of(st.integers(0, 130), I32), word, I32, st.tuples(U32, U32, U32, U32)),
        st.builds(Csw, I32, I32, st.one_of(st.none(), st.binary(max_size=7))),
        user_payloads(arch),
        struct_payloads(arch),
        st.builds(Sysctl, st.binary(max_size=40).map(lambda b: b.replace(b"\0", b""))),
        st.builds(ProcCtor, st.one_of(st.sampled_from([FREEBSD64, FREEBSD32, LINUX64, LINUX32, 0]), U32)),
        st.builds(ProcDtor),
        st.builds(
            CapFail, st.integers(-1, 9), st.booleans(), SHORT,
            st.one_of(st.sampled_from([FREEBSD64, LINUX64, 0]), U32), st.binary(max_size=1024),
        ),
        st.builds(Fault, word, I32),
        st.builds(FaultEnd, I32),
        st.builds(
            StructArray, st.one_of(st.sampled_from([0, 1, 8, 32, 48, 64, 72]), word),
            st.one_of(st.sampled_from(ARRAY_NAMES), st.binary(max_size=8).map(lambda b: b.replace(b"\0", b""))),
            st.binary(max_size=300),
        ),
        st.builds(Exterr, U32, U32, U32, U32, U32, U64, U64, msg),
    )  # fmt: skip
    strings = st.builds(Strings, st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\0", b"")), max_size=6))
    return st.one_of(
        st.tuples(own, none),
        st.tuples(strings, st.sampled_from([K.KTR_ARGS, K.KTR_ENVS])),
    )


@dataclasses.dataclass
class Trace:
    arch: Arch
    records: list[Record]
    data: bytes
    pids: list[int]


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    """A valid trace: amd64 or i386, v0 or v1 (or mixed), a PROCCTOR of some ABI first or not."""
    arch = draw(st.sampled_from([AMD64, I386]))
    versions = draw(st.sampled_from([[0], [1], [0, 1]]))
    pids = draw(st.lists(st.integers(1, 99999), min_size=1, max_size=3, unique=True))
    records: list[Record] = []

    def header(payload: Payload, rtype: int | None = None) -> Record:
        version = draw(st.sampled_from(versions))
        return make_record(
            payload, pid=draw(st.sampled_from(pids)), tid=draw(st.integers(100000, 199999)),
            comm=draw(st.sampled_from([b"sh", b"ls", b"a-long-thread-name-x", b"\xff\xfe\x80", b""])),
            sec=draw(st.integers(0, (1 << (8 * arch.word - 1)) - 1)), frac=draw(st.integers(0, 999_999_999 if version else 999_999)),
            version=version, cpu=draw(st.integers(0, 255)), drop=draw(st.booleans()),
            rtype=rtype, arch=arch,
        )  # fmt: skip

    ctor = draw(st.sampled_from([FREEBSD64, FREEBSD32, LINUX64, LINUX32, 0x12345, None]))
    if ctor is not None and draw(st.booleans()):
        records.append(header(ProcCtor(ctor)))
    for payload, rtype in draw(st.lists(payloads(arch), min_size=1, max_size=8)):
        records.append(header(payload, rtype))
    if ctor is not None and len(records) > 1 and draw(st.booleans()):
        records.insert(draw(st.integers(0, len(records))), header(ProcCtor(ctor)))
    data = b"".join(encode_record(r, arch) for r in records)
    return Trace(arch, records, data, pids)


# ---------------------------------------------------------------------------
# Damage.

LIES = [-1, -0x80000000, 0x7FFFFFFF, 0x10000000, 1 << 24, 0xFFFFF]


def _record_offsets(trace: Trace) -> list[tuple[int, int]]:
    """(start, header size) of each record."""
    offsets = []
    pos = 0
    for r in trace.records:
        hsize = trace.arch.header_v0.size if r.version == 0 else trace.arch.header_v1.size
        offsets.append((pos, hsize))
        pos += hsize + len(r.payload)
    return offsets


@st.composite
def damaged(draw: st.DrawFn, trace: Trace) -> tuple[bytes, list[str]]:
    """`trace` with a few kinds of damage; the list names what was done (for the failure report)."""
    raw = bytearray(trace.data)
    done: list[str] = []
    offsets = _record_offsets(trace)
    # Structural damage first, while the record offsets still hold.
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, len(offsets) - 1))
        start, hsize = offsets[i]
        kind = draw(st.sampled_from(["lie", "type", "narg", "version"]))
        if kind == "lie":
            value = draw(st.one_of(st.sampled_from(LIES), st.integers(0, 400)))
            struct.pack_into("<i", raw, start, value)
        elif kind == "type":
            value = draw(st.one_of(st.integers(0, 20), SHORT))
            struct.pack_into("<h", raw, start + 4, value)
        elif kind == "narg":
            if trace.records[i].type != K.KTR_SYSCALL:
                continue
            value = draw(st.one_of(st.integers(-2, 12), SHORT))
            struct.pack_into("<h", raw, start + hsize + 2, value)
        else:
            value = draw(st.one_of(st.integers(0, 3), SHORT))
            struct.pack_into("<h", raw, start + 6, value)
        done.append(f"{kind} record {i} = {value}")
    for _ in range(draw(st.integers(0, 3))):
        if not raw:
            break
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del raw[at : at + draw(st.integers(1, 16))]
        else:
            del raw[at:]
        done.append(f"{kind} at {at}")
    return bytes(raw), done


# ---------------------------------------------------------------------------
# The renderers, and what the good prefix prints.


def option_sets(pids: list[int]) -> st.SearchStrategy[list[tuple[str, ...]]]:
    letters = st.text(alphabet="cfinpstuwyae+", min_size=1, max_size=6)
    pid = st.one_of(st.sampled_from(pids).map(str), st.integers(-5, 200000).map(str))
    return st.tuples(letters, pid).map(
        lambda lp: [
            (), ("-n",), ("-d",), ("-H", "-T", "-E", "-R", "-c", "-A"), ("-r",), ("-S",), ("-s",),
            ("-m", "3"), ("--json",), ("--summary",), ("-t", lp[0]), ("-p", lp[1]), ("--color", "always"),
            ("-n", "-d", "-H", "-t", lp[0], "-p", lp[1]),
        ]
    )  # fmt: skip


def detected_arch(data: bytes) -> Arch | None:
    """The layout pykdump's reader picks for `data`; None when it refuses the file."""
    try:
        return detect_arch(data[:SAMPLE], complete=len(data) < SAMPLE)
    except TraceFormatError:
        return None


REFUSED = b"refused"


def good_prefix(data: bytes, arch: Arch) -> bytes | None:
    """The bytes before the first fatal error, padded so a short last v0 record still reads.

    None when the whole file reads without error; REFUSED when it is not a trace at all.
    """
    end = 0
    try:
        for r in TraceReader(io.BytesIO(data), arch=arch):
            end += (arch.header_v0.size if r.version == 0 else arch.header_v1.size) + len(r.payload)
    except NotATrace:
        return REFUSED
    except TraceFormatError:
        return data[:end] + bytes(8)
    return None


# kdump's drop note for the record whose header came before the error (its comm may hold any byte).
DROPPED = re.compile(rb"^.*Events dropped\.(\x1b\[0m)?\n$", re.DOTALL)


def check_all_renderers(path: Path, data: bytes, option_list: list[tuple[str, ...]]) -> None:
    path.write_bytes(data)
    FIGURES["inputs"] += 1
    arch = detected_arch(data)
    prefix = good_prefix(data, arch) if arch is not None else REFUSED
    prefix_path = path.with_suffix(".prefix")
    if prefix is not None:
        prefix_path.write_bytes(prefix)
    for options in option_list:
        result = run("-f", str(path), *options)
        check_sane(result, options)
        if prefix is REFUSED:
            assert result.out == b"" and result.status == 1, options
        elif prefix is None:
            assert result.status == 0, (options, result.err)
        else:
            assert result.status == 1, options
            with mock.patch.object(reader_module, "detect_arch", return_value=arch):
                good = run("-f", str(prefix_path), *options)
            assert good.status == 0 and good.err == "", (options, good.err)
            rest = result.out[len(good.out) :]
            assert result.out.startswith(good.out), options
            assert rest == b"" or DROPPED.match(rest), (options, rest)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@settings(
    max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_damaged_traces_through_every_renderer(workdir: Path, data: st.DataObject) -> None:
    trace = data.draw(traces(), label="trace")
    raw, done = data.draw(damaged(trace), label="damage")
    check_all_renderers(workdir / "fuzz.out", raw, data.draw(option_sets(trace.pids), label="options"))


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_valid_traces_print_without_error(workdir: Path, data: st.DataObject) -> None:
    trace = data.draw(traces(), label="trace")
    path = workdir / "valid.out"
    path.write_bytes(trace.data)
    FIGURES["inputs"] += 1
    for options in data.draw(option_sets(trace.pids), label="options"):
        result = run("-f", str(path), *options)
        check_sane(result, options)
        assert result.status == 0 and result.err == "", (options, result.err)


def _real_traces() -> list[str]:
    return sorted(str(p.relative_to(REAL)) for p in REAL.glob("*/ktrace.out"))


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_real_traces(workdir: Path, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(_real_traces()), label="fixture")
    raw = bytearray((REAL / name).read_bytes())
    for _ in range(data.draw(st.integers(1, 4), label="damages")):
        if not raw:
            break
        at = data.draw(st.integers(0, len(raw) - 1), label="at")
        kind = data.draw(st.sampled_from(["flip", "word", "insert", "delete", "truncate"]), label="kind")
        if kind == "flip":
            raw[at] ^= data.draw(st.integers(1, 255))
        elif kind == "word":
            raw[at : at + 4] = struct.pack("<i", data.draw(st.one_of(st.sampled_from(LIES), I32)))
        elif kind == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del raw[at : at + data.draw(st.integers(1, 64))]
        else:
            del raw[at:]
    pids = [0]
    options = data.draw(option_sets(pids), label="options")
    check_all_renderers(workdir / "real.out", bytes(raw), options[:10] + options[12:13])


# ---------------------------------------------------------------------------
# Lying lengths: memory stays flat.


@settings(max_examples=examples(10), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace=traces(), data=st.data())
def test_lying_length_does_not_grow_memory(workdir: Path, trace: Trace, data: st.DataObject) -> None:
    raw = bytearray(trace.data)
    offsets = _record_offsets(trace)
    start, _ = offsets[data.draw(st.integers(0, len(offsets) - 1), label="record")]
    struct.pack_into("<i", raw, start, data.draw(st.sampled_from([0x7FFFFFFF, 0x40000000, 0x10000000]), label="len"))
    path = workdir / "lying.out"
    path.write_bytes(bytes(raw))
    FIGURES["inputs"] += 1
    for options in [(), ("--json",), ("--summary",)]:
        tracemalloc.start()
        try:
            result = run("-f", str(path), *options)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        check_sane(result, options)
        assert peak < 8 << 20, f"peak {peak} bytes for a lying length with {options}"


def test_lying_length_before_a_long_tail(workdir: Path) -> None:
    # Regression: the reader appended 1 MiB chunks to its buffer until the
    # lying length was reached, copying the tail again each time: 41 s and
    # 430 MB for a 200 MB tail.  A regular file now knows it is short at once.
    bad = bytearray(encode_record(make_record(Genio(1, 0, b"x" * 32), pid=1, comm="sh", sec=1, frac=0)))
    struct.pack_into("<i", bad, 0, 0x7FFFFFFF)
    path = workdir / "long-tail.out"
    with open(path, "wb") as f:
        f.write(_trace((Namei(b"/a"), None)) + bytes(bad))
        f.write(b"\1" * (48 << 20))
    FIGURES["inputs"] += 1
    tracemalloc.start()
    try:
        result = run("-f", str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.status, result.out, result.err) == (
        1, b'     1 sh       NAMI  "/a"\n', "pykdump: data too short\n",
    )  # fmt: skip
    assert peak < 8 << 20, f"peak {peak} bytes"


# ---------------------------------------------------------------------------
# Regressions: inputs that crashed pykdump before their fix.


def _trace(*payloads: tuple[Payload, int | None], arch: Arch = AMD64) -> bytes:
    records = [make_record(ProcCtor(FREEBSD64), pid=1, comm="sh", sec=1, frac=0, arch=arch)]
    for payload, rtype in payloads:
        records.append(make_record(payload, pid=1, comm="sh", sec=1, frac=0, rtype=rtype, arch=arch))
    return b"".join(encode_record(r, arch) for r in records)


@dataclasses.dataclass(frozen=True)
class Regression:
    what: str
    data: Callable[[], bytes]
    args: tuple[str, ...]
    out: str
    err: str = ""


def _cut(data: bytes, n: int = 1) -> bytes:
    return data[:-n]


SUMMARY_OPEN = """\
process 1 (sh)
syscall                      calls    errors    total (s)     avg (us)
------------------------ --------- --------- ------------ ------------
open                             2         1     0.000000         0.00
------------------------ --------- --------- ------------ ------------
total                            2         1     0.000000         0.00

all processes
syscall                      calls    errors    total (s)     avg (us)
------------------------ --------- --------- ------------ ------------
open                             2         1     0.000000         0.00
------------------------ --------- --------- ------------ ------------
total                            2         1     0.000000         0.00
"""
OPEN_CALLS = (
    (Syscall(5, (0x1000, 0, 0)), None), (Sysret(5, 0, 3), None),
    (Syscall(5, (0x1000, 0, 0)), None), (Sysret(5, 2, -1), None), (Namei(b"/etc/x"), None),
)  # fmt: skip
SUN_EURO = bytes([2 + 9, 1]) + "/tmp/€".encode() + b"\0"

REGRESSION_CASES: list[Regression] = [
    Regression(
        "records before a torn last record were dropped with the output batch",
        lambda: _cut(_trace((Namei(b"/a"), None), (Namei(b"/b"), None), (Namei(b"/c"), None))),
        (),
        '     1 sh       NAMI  "/a"\n     1 sh       NAMI  "/b"\n',
        "pykdump: data too short\n",
    ),
    Regression(
        "--summary printed no table when the last record was torn",
        lambda: _cut(_trace(*OPEN_CALLS)),
        ("--summary",),
        SUMMARY_OPEN,
        "pykdump: data too short\n",
    ),
    Regression(
        "an AF_UNIX path outside latin-1 killed the text renderer (UnicodeEncodeError)",
        lambda: _trace((Struct(b"sockaddr", SUN_EURO), None)),
        (),
        "     1 sh       STRU  struct sockaddr { AF_LOCAL, " + "/tmp/€".encode().decode("latin-1") + " }\n",
    ),
    Regression(
        "an inotify name that is not UTF-8 killed the text renderer (UnicodeEncodeError)",
        lambda: _trace((Struct(b"inotify", struct.pack("<iIII", 1, 2, 0, 3) + b"a\x80\0"), None)),
        ("-d",),
        "     1 sh       STRU  inotify { .wd = 1, .mask = 0x2, .cookie = 0, .len = 3, .name = a\x80 }\n",
    ),
    Regression(
        "a CAP sockaddr with a non-UTF-8 AF_UNIX path killed the text renderer",
        lambda: _trace((CapFail(5, True, 98, FREEBSD64, bytes([6, 1]) + b"/\xff\xfe\0"), None)),
        ("-t", "p"),
        "     1 sh       CAP   connect: restricted address lookup: struct sockaddr { AF_LOCAL, /\xff\xfe }\n",
    ),
]


ANSI = re.compile(rb"\x1b\[[0-9;]*m")


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
def test_colour_on_a_terminal_that_is_not_utf8(workdir: Path, encoding: str) -> None:
    # Regression: rich's write of U+FFFD (for bytes that are not UTF-8) raised UnicodeEncodeError.
    # Colour output is for a terminal, so the names are vis(3)-escaped; what
    # is UTF-8 stays a character, and '?' where the terminal has none for it.
    path = workdir / "colour.out"
    path.write_bytes(
        b"".join(
            encode_record(make_record(p, pid=1, comm=b"a\xffb", sec=1, frac=0))
            for p in (ProcCtor(FREEBSD64), Namei(b"/tmp/\xff\x80x\xc3\xa9"))
        )
    )
    FIGURES["inputs"] += 1
    env = dict(os.environ, PYTHONIOENCODING=encoding)
    for args, want in [
        ((), b'     1 a\\M-^?b  NAMI  "/tmp/\\M-^?\\M-^@x' + "\u00e9".encode(encoding, "replace") + b'"\n'),
        (("--summary",), None),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "ktrace_cli.cli.pykdump", "--color", "always", "-f", str(path), *args],
            capture_output=True, env=env, timeout=60,
        )  # fmt: skip
        assert (done.returncode, done.stderr) == (0, b""), args
        if want is not None:
            assert ANSI.sub(b"", done.stdout) == want


@pytest.mark.parametrize("case", REGRESSION_CASES, ids=lambda c: c.what)
def test_regression(workdir: Path, case: Regression) -> None:
    path = workdir / "regression.out"
    path.write_bytes(case.data())
    FIGURES["inputs"] += 1
    result = run("-f", str(path), *case.args)
    check_sane(result, case.args)
    assert (result.out.decode("latin-1"), result.err) == (case.out, case.err)


# ---------------------------------------------------------------------------
# Inputs that are not trace files.


def test_empty_file_prints_nothing(workdir: Path) -> None:
    path = workdir / "empty.out"
    path.write_bytes(b"")
    for options in [(), ("--json",), ("-n", "-H", "-T")]:
        result = run("-f", str(path), *options)
        assert (result.status, result.out, result.err) == (0, b"", "")


def test_empty_file_summary_is_an_empty_table(workdir: Path) -> None:
    path = workdir / "empty.out"
    path.write_bytes(b"")
    result = run("-f", str(path), "--summary")
    assert (result.status, result.err) == (0, "")
    assert result.out == run("-f", "/dev/null", "--summary").out


def test_directory(workdir: Path) -> None:
    result = run("-f", str(workdir))
    assert (result.status, result.out, result.err) == (1, b"", f"pykdump: {workdir}: Is a directory\n")


def test_dev_null_prints_nothing() -> None:
    result = run("-f", "/dev/null")
    assert (result.status, result.out, result.err) == (0, b"", "")


@pytest.mark.parametrize("options", [(), ("--json",), ("--summary",), ("-l",)])
def test_dev_zero_is_refused_at_once(options: tuple[str, ...]) -> None:
    # Zeros frame as endless records of type 0, which kdump would skip forever.
    result = run("-f", "/dev/zero", *options, timeout=10)
    assert (result.status, result.out, result.err) == (1, b"", "pykdump: not a ktrace file: first record has type 0\n")


def test_missing_file_and_symlink_loop(workdir: Path) -> None:
    loop = workdir / "loop"
    with contextlib.suppress(FileNotFoundError):
        loop.unlink()
    loop.symlink_to("loop")
    result = run("-f", str(loop))
    assert (result.status, result.out, result.err) == (1, b"", f"pykdump: {loop}: Too many levels of symbolic links\n")
    result = run("-f", str(workdir / "absent.out"))
    assert (result.status, result.out, result.err) == (
        1, b"", f"pykdump: {workdir / 'absent.out'}: No such file or directory\n",
    )  # fmt: skip


def test_unreadable_file(workdir: Path) -> None:
    path = workdir / "secret.out"
    path.write_bytes(b"")
    path.chmod(0)
    try:
        result = run("-f", str(path))
    finally:
        path.chmod(0o600)
    if os.geteuid() == 0:
        assert (result.status, result.out, result.err) == (0, b"", "")  # root reads it anyway
    else:
        assert (result.status, result.out, result.err) == (1, b"", f"pykdump: {path}: Permission denied\n")


def test_gzipped_trace_gets_a_hint(workdir: Path) -> None:
    import gzip

    path = workdir / "ktrace.out.gz"
    path.write_bytes(gzip.compress(_trace((Namei(b"/etc/passwd"), None))))
    result = run("-f", str(path))
    assert (result.status, result.out, result.err) == (
        1, b"", "pykdump: not a ktrace file: looks like gzip data (gunzip it first)\n",
    )  # fmt: skip


TEXT = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


@pytest.mark.parametrize(
    ("what", "data", "message"),
    [
        # Regression: a text file or a program said "data too short", a short text file nothing.
        ("passwd", TEXT * 20, "looks like text"),
        ("notes", "these are my notes about ktrace, café\n".encode() * 4, "looks like text"),
        ("hostname", b"myhost\n", "looks like text"),
        ("utf8-first", "écrit\n".encode(), "looks like text"),  # a negative ktr_len
        ("elf", b"\x7fELF\x02\x01\x01" + bytes(57) + b"\x01\x02" * 200, "looks like an ELF executable"),
        ("binary", struct.pack("<ih", 5, 0x1234) + bytes(60), None),
    ],
)
def test_not_a_trace_file(workdir: Path, what: str, data: bytes, message: str | None) -> None:
    path = workdir / what
    path.write_bytes(data)
    FIGURES["inputs"] += 1
    expected = "pykdump: not a ktrace file" + (f": {message}" if message else "") + "\n"
    for options in [(), ("--json",), ("--summary",), ("-l",)]:
        result = run("-f", str(path), *options, timeout=10)
        assert (result.status, result.out, result.err) == (1, b"", expected), options
    with path.open("rb") as f:
        done = subprocess.run(
            [sys.executable, "-m", "ktrace_cli.cli.pykdump", "-f", "-"], stdin=f, capture_output=True, timeout=60
        )
    assert (done.returncode, done.stdout, done.stderr) == (1, b"", expected.encode())


def test_a_copy_of_a_real_program(workdir: Path) -> None:
    path = workdir / "python"
    with open(sys.executable, "rb") as f:
        path.write_bytes(f.read(1 << 16))
    result = run("-f", str(path))
    assert (result.status, result.out, result.err) == (
        1, b"", "pykdump: not a ktrace file: looks like an ELF executable\n",
    )  # fmt: skip


def test_too_short_to_judge_is_silent(workdir: Path) -> None:
    # Fewer bytes than a length field: kdump's loop ends at once, and so does pykdump.
    path = workdir / "vm"
    path.write_bytes(b"vm\n")
    result = run("-f", str(path))
    assert (result.status, result.out, result.err) == (0, b"", "")


@pytest.mark.parametrize(
    ("name", "flavour"),
    [
        ("netbsd-amd64-v2-kayoko", "NetBSD"),
        ("netbsd-i386-v0-rc", "NetBSD"),
        ("darwin-ppc-php-interpreter", "big-endian Mac OS X"),
    ],
)
def test_other_systems_are_named(name: str, flavour: str) -> None:
    for options in [(), ("--json",), ("--summary",)]:
        result = run("-f", str(REAL / name / "ktrace.out"), *options)
        assert (result.status, result.out, result.err) == (
            1, b"", f"pykdump: not a FreeBSD trace file: looks like {flavour} ktrace\n",
        )  # fmt: skip


def test_openbsd_magic_is_named(workdir: Path) -> None:
    path = workdir / "openbsd.out"
    path.write_bytes(b"KTR\0" + bytes(100))
    result = run("-f", str(path))
    assert (result.status, result.out, result.err) == (
        1, b"", "pykdump: not a FreeBSD trace file: looks like OpenBSD ktrace\n",
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Follow mode (-l) on FIFOs and on files that change: a real pykdump process.


def _record(pid: int, path: bytes) -> bytes:
    return encode_record(make_record(Namei(path), pid=pid, comm="sh", sec=1, frac=0))


def _nami_line(pid: int, path: bytes) -> bytes:
    return f'{pid:6d} sh       NAMI  "{path.decode()}"\n'.encode()


def _default_sigint() -> None:
    """SIGINT at its default in the child: a test runner started in the background by a
    non-interactive shell ignores it, and an ignored SIGINT stays ignored across exec,
    so the ^C the tests send would never reach pykdump."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Follower:
    """`pykdump -l -f PATH` in a subprocess; stdout collected by polling, never by sleeping."""

    def __init__(self, path: Path, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ktrace_cli.cli.pykdump", "-l", "-f", str(path), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=_default_sigint,
        )  # fmt: skip
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.out = b""

    def wait_for(self, expected: bytes, timeout: float = 15) -> bytes:
        """Read stdout until it is `expected` (or the deadline passes); return what was read."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while len(self.out) < len(expected) and time.monotonic() < deadline:
            try:
                chunk = self.proc.stdout.read()
            except BlockingIOError:
                chunk = None
            if chunk:
                self.out += chunk
            elif self.proc.poll() is not None:
                break
            else:
                import select

                select.select([self.proc.stdout], [], [], 0.05)
        return self.out

    def stop(self, signo: int = signal.SIGTERM) -> tuple[int, bytes, bytes]:
        if self.proc.poll() is None:
            self.proc.send_signal(signo)
        out, err = self.proc.communicate(timeout=15)
        self.out += out or b""
        return self.proc.returncode, self.out, err


@pytest.fixture
def cleanup() -> Iterator[list[Follower]]:
    followers: list[Follower] = []
    yield followers
    for f in followers:
        if f.proc.poll() is None:
            f.proc.kill()
            f.proc.wait()


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_fifo_followed_keeps_waiting_after_the_writer_closes(
    workdir: Path, cleanup: list[Follower], signo: int
) -> None:
    fifo = workdir / f"fifo-{signo}"
    with contextlib.suppress(FileNotFoundError):
        fifo.unlink()
    os.mkfifo(fifo)
    follower = Follower(fifo)
    cleanup.append(follower)
    FIGURES["inputs"] += 1
    with open(fifo, "wb", buffering=0) as writer:  # opens once pykdump has it open for reading
        writer.write(_record(7, b"/first"))
        assert follower.wait_for(_nami_line(7, b"/first")) == _nami_line(7, b"/first")
        whole = _record(7, b"/second")
        writer.write(whole[:30])
        writer.write(whole[30:])
        expected = _nami_line(7, b"/first") + _nami_line(7, b"/second")
        assert follower.wait_for(expected) == expected
    # The writer has gone: kdump -l keeps waiting (a new writer may come).
    assert follower.proc.poll() is None
    with open(fifo, "wb", buffering=0) as writer:
        writer.write(_record(8, b"/third"))
    expected += _nami_line(8, b"/third")
    assert follower.wait_for(expected) == expected
    status, out, err = follower.stop(signo)
    assert (out, err) == (expected, b"")
    assert status == (-signal.SIGTERM if signo == signal.SIGTERM else 130)


def test_file_appended_while_followed(workdir: Path, cleanup: list[Follower]) -> None:
    path = workdir / "growing.out"
    path.write_bytes(_record(1, b"/a"))
    follower = Follower(path)
    cleanup.append(follower)
    FIGURES["inputs"] += 1
    expected = _nami_line(1, b"/a")
    assert follower.wait_for(expected) == expected
    with open(path, "ab", buffering=0) as out:
        for i in range(5):
            whole = _record(1, f"/b{i}".encode())
            out.write(whole[: 10 + 11 * i])  # in pieces: the line appears once the record is whole
            assert follower.wait_for(expected + b"x", timeout=0.2) == expected
            out.write(whole[10 + 11 * i :])
            expected += _nami_line(1, f"/b{i}".encode())
            assert follower.wait_for(expected) == expected
    status, out_bytes, err = follower.stop()
    assert (status, out_bytes, err) == (-signal.SIGTERM, expected, b"")


def test_file_truncated_while_followed(workdir: Path, cleanup: list[Follower]) -> None:
    path = workdir / "truncated.out"
    path.write_bytes(_record(1, b"/a") + _record(1, b"/b"))
    follower = Follower(path)
    cleanup.append(follower)
    FIGURES["inputs"] += 1
    expected = _nami_line(1, b"/a") + _nami_line(1, b"/b")
    assert follower.wait_for(expected) == expected
    os.truncate(path, 0)
    status, out, err = _wait_exit(follower)
    assert (status, out, err) == (1, expected, f"pykdump: {path}: file truncated\n".encode())


def _wait_exit(follower: Follower, timeout: float = 15) -> tuple[int | None, bytes, bytes]:
    try:
        out, err = follower.proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, follower.out, b""
    follower.out += out or b""
    return follower.proc.returncode, follower.out, err


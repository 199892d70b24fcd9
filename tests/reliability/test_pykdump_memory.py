"""pykdump's memory is bounded whatever the file holds, and running out of it is one line.

Hostile files are built with the project's writer in temporary directories;
peak memory is that of a pykdump subprocess, read with
getrusage(RUSAGE_CHILDREN) in a small wrapper process of its own so that no
other child of the test run is counted.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.records import Genio, Namei, ProcCtor, Sysret
from ktrace_cli.format.writer import encode_record, make_record
from ktrace_cli.render import summary as summary_module
from ktrace_cli.render.summary import Summary
from tests.kdump_helpers import (
    FREEBSD64,
    LINUX64,
    ctor,
    rec,
    run_pykdump,
    run_pykdump_args,
    trace_bytes,
)

PYKDUMP = [sys.executable, "-m", "ktrace_cli.cli.pykdump"]
MB = 1 << 20

# Runs pykdump as its only child and reports the child's status, peak RSS and stderr.
_WRAPPER = """
import json, resource, subprocess, sys
limit = int(sys.argv[1])
def limit_memory():
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
stdin = open(sys.argv[2], "rb") if sys.argv[2] != "-" else None
done = subprocess.run(sys.argv[3:], stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                      preexec_fn=limit_memory)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"status": done.returncode, "peak": peak, "stderr": done.stderr.decode("latin-1")}))
"""


def measured(args: list[str], *, stdin: Path | None = None, address_space: int = 0) -> tuple[int, int, str]:
    """(exit status, peak RSS in bytes, stderr) of `pykdump args`, its stdin from a pipe fed by `stdin`."""
    wrapper = [sys.executable, "-c", _WRAPPER, str(address_space)]
    if stdin is None:
        done = subprocess.run([*wrapper, "-", *PYKDUMP, *args], capture_output=True, timeout=300, check=True)
    else:
        # `cat` makes standard input a pipe, not the regular file itself.
        feeder = subprocess.Popen(["cat", str(stdin)], stdout=subprocess.PIPE)
        try:
            assert feeder.stdout is not None
            done = subprocess.run(
                [*wrapper, "/dev/stdin", *PYKDUMP, *args], stdin=feeder.stdout, capture_output=True,
                timeout=300, check=True,
            )  # fmt: skip
        finally:
            feeder.kill()
            feeder.wait()
    report = json.loads(done.stdout)
    return report["status"], report["peak"], report["stderr"]


def distinct_pids(path: Path, count: int) -> None:
    """`count` SYSRET records, each of a new process (160 MB of these took 3.1 GB in --summary)."""
    template = encode_record(make_record(Sysret(20, 0, 1), pid=1, comm="x", sec=1, frac=0))
    pid_at = struct.calcsize("<ihh")  # ktr_pid follows ktr_len, ktr_type, ktr_version
    with path.open("wb") as f:
        buf = bytearray(template * 10_000)
        for start in range(0, count, 10_000):
            for i in range(10_000):
                struct.pack_into("<i", buf, i * len(template) + pid_at, start + i + 1)
            f.write(buf)


def test_summary_of_many_processes_stays_bounded(tmp_path: Path) -> None:
    peaks = {}
    for count in (50_000, 100_000):
        path = tmp_path / f"pids-{count}.out"
        distinct_pids(path, count)
        status, peak, err = measured(["--summary", "-f", str(path)])
        assert (status, err) == (0, ""), count
        peaks[count] = peak
    # Unbounded, each process cost about 1.5 KB: 75 MB more for the second 50,000.
    assert peaks[100_000] - peaks[50_000] < 8 * MB, peaks
    assert peaks[100_000] < 60 * MB, peaks


def test_summary_folds_processes_and_rows_into_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summary_module, "MAX_PROCESS_TABLES", 3)
    monkeypatch.setattr(summary_module, "MAX_ROWS", 2)
    from ktrace_cli.decode.events import Shown

    stats = Summary(AMD64)
    events = []
    # pid p makes p calls of getpid; pid 9 also makes one call each of five others.
    for pid in range(1, 10):
        events += [Shown(make_record(Sysret(20, 0, 0), pid=pid, comm="p", sec=1, frac=0), FREEBSD64)] * pid
    for code in (3, 4, 5, 6, 7):
        events.append(Shown(make_record(Sysret(code, 0, 0), pid=9, comm="p", sec=1, frac=0), FREEBSD64))
    stats.add(events)
    titles = [title for title, _ in stats.tables()]
    assert titles == ["process 7 (p)", "process 8 (p)", "process 9 (p)", "other processes", "all processes"]
    tables = dict(stats.tables())
    assert [(name, s.calls) for name, s in tables["other processes"]] == [("getpid", 21)]  # 1 + ... + 6
    # Two rows at most: the busiest, and the rest added up; totals stay exact.
    assert [(name, s.calls) for name, s in tables["process 9 (p)"]] == [("getpid", 9), ("(other)", 5)]
    assert [(name, s.calls) for name, s in tables["all processes"]] == [("getpid", 45), ("(other)", 5)]


def test_summary_of_calls_that_never_return_stays_bounded(tmp_path: Path) -> None:
    # Every thread enters a call and never leaves it (as exit does): the pairing table is capped.
    from ktrace_cli.format.records import Syscall

    stats = Summary(AMD64)
    from ktrace_cli.decode.events import Shown

    cap = summary_module.MAX_PENDING_CALLS
    stats.add(Shown(make_record(Syscall(1, (0,)), pid=1, tid=t, comm="p", sec=1, frac=0), FREEBSD64) for t in range(cap + 100))
    assert len(stats.pending) == cap
    assert 99 not in stats.pending and cap + 99 in stats.pending  # the oldest went first


def test_a_lying_length_on_a_pipe_is_refused_before_it_is_buffered(tmp_path: Path) -> None:
    records = [make_record(p, pid=1, comm="sh", sec=1, frac=0) for p in (ProcCtor(FREEBSD64), Namei(b"/a"))]
    lie = bytearray(encode_record(make_record(Genio(1, 0, b""), pid=1, comm="sh", sec=1, frac=0)))
    struct.pack_into("<i", lie, 0, 0x7FFFFFFF)
    path = tmp_path / "lie.out"
    with path.open("wb") as f:
        f.write(b"".join(encode_record(r) for r in records) + bytes(lie))
        f.write(bytes(64 * MB))  # a pipe full of zeros behind it, as the review's 1.5 GB
    status, peak, err = measured(["-f", "-"], stdin=path)
    assert (status, err) == (1, "pykdump: bogus length 0x7fffffff\n")
    assert peak < 60 * MB, peak  # before: the whole tail, then a joined copy of it
    # The same bytes as a regular file: the file is too short for the length, as kdump says.
    result = run_pykdump_args("-f", str(path))
    assert (result.status, result.out, result.err) == (1, b'     1 sh       NAMI  "/a"\n', "pykdump: data too short\n")


def test_a_record_up_to_the_cap_is_read_from_a_pipe(tmp_path: Path) -> None:
    path = tmp_path / "big.out"
    data = b"x" * (3 * MB)
    path.write_bytes(trace_bytes([ctor(), rec(Genio(1, 1, data))]))
    done = subprocess.run(PYKDUMP + ["-f", "-", "-s"], stdin=path.open("rb"), capture_output=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"  2035 cat      GIO   fd 1 wrote {3 * MB} bytes\n".encode(), b"")


def test_out_of_memory_is_one_line(tmp_path: Path) -> None:
    # A well-formed record larger than the memory allowed: a sparse file, so no disk is used.
    path = tmp_path / "huge.out"
    header = bytearray(encode_record(make_record(Genio(1, 0, b""), pid=1, comm="sh", sec=1, frac=0)))
    struct.pack_into("<i", header, 0, 1 << 30)
    with path.open("wb") as f:
        f.write(encode_record(make_record(ProcCtor(LINUX64), pid=1, comm="sh", sec=1, frac=0)) + bytes(header))
        f.truncate(f.tell() + (1 << 30))
    limit = 512 * MB
    status, _, err = measured(["-f", str(path)], address_space=limit)
    assert (status, err) == (1, "pykdump: out of memory\n")


def test_memory_error_anywhere_ends_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ktrace_cli.render.kdump_text import KdumpText

    def exhausted(*args: object) -> str:
        raise MemoryError

    records = [ctor(), rec(Namei(b"/a"))]
    monkeypatch.setattr(KdumpText, "header", exhausted)  # on both the plain and the colour path
    for options in [(), ("--color=always",)]:
        result = run_pykdump(tmp_path, records, *options)
        assert (result.status, result.out, result.err) == (1, b"", "pykdump: out of memory\n"), options
    monkeypatch.setattr(Summary, "add", exhausted)
    result = run_pykdump(tmp_path, records, "--summary")
    assert (result.status, result.out, result.err) == (1, b"", "pykdump: out of memory\n")


def test_resource_module_reports_children() -> None:
    # The wrapper's figure is of the child: a child that allocates 64 MB shows it.
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, "0", "-", sys.executable, "-c", "x = bytearray(64 << 20); x[::4096] = b'1' * (16384)"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert report["status"] == 0 and report["peak"] >= 64 * MB

"""--diff on traces built with the writer and on real FreeBSD files."""

from __future__ import annotations

import json
from pathlib import Path

from ktrace_cli.format.records import Namei
from ktrace_cli.views.diff import normal_path
from tests.kdump_helpers import run_pykdump_args, trace_bytes
from tests.unit.test_views_tree_errors import OPENAT, REAL, Clock, call, family


def _write(path: Path, records: list[object]) -> str:
    path.write_bytes(trace_bytes(records))  # type: ignore[arg-type]
    return str(path)


def test_pids_and_times_do_not_count(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.out", family(Clock()))
    later = Clock()
    later.ms = 5000  # the same run, five seconds later
    b = _write(tmp_path / "b.out", family(later))
    res = run_pykdump_args("--diff", a, b)
    assert res.text.splitlines() == [
        f"--- A {a}", f"+++ B {b}",
        "process make (A 100, B 100): same calls [exit 2]",
        "process make/sh (A 101, B 101): same calls [exit 1]",
        "process make/sh/sh (A 102, B 102): same calls [killed by SIGSEGV]",
    ]  # fmt: skip


def test_a_different_open(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.out", family(Clock()))
    t = Clock()
    records = family(t)
    # B's child 102 opens a file it may read, with another pid and descriptor.
    extra = call(t, 102, OPENAT, (0xFFFFFF9C, 1, 0), 0, retval=5, parts=(Namei(b"/proc/102/status"),))
    records[records.index(next(r for r in records if getattr(r, "pid", 0) == 102)) + 2:0] = extra  # type: ignore[attr-defined]
    b = _write(tmp_path / "b.out", records)
    doc = json.loads(run_pykdump_args("--diff", a, b, "--json").out)
    child = doc["processes"][2]
    assert child["key"] == "make/sh/sh" and (child["only_a"], child["only_b"]) == (0, 1)
    # An insertion: nothing of A's is replaced.
    assert child["first_divergence"] == {"index_a": 1, "index_b": 1, "before": ["clone - ok"], "a": [],
                                         "b": ["openat /proc/PID/status ok"]}  # fmt: skip
    assert (doc["paths_only_a"], doc["paths_only_b"]) == ([], ["/proc/PID/status"])
    assert doc["failures"] == []


def test_freebsd_files(tmp_path: Path) -> None:
    ls = str(REAL / "freebsd-i386-v0-rkhack" / "ktrace.out")
    nfs = str(REAL / "freebsd-i386-v0-nfsp" / "ktrace.out")
    assert run_pykdump_args("--diff", ls, ls).text.splitlines()[2:] == [
        "process ls (A 1077, B 1077): same calls [exit 0]"]  # fmt: skip
    lines = run_pykdump_args("--diff", ls, nfs).text.splitlines()
    assert lines[2:4] == ["process ls (A 1077, B -): only in A [exit 0]",
                          "process proxy.ganesha.nfsd (A -, B 17990): only in B [killed by SIGINT]"]  # fmt: skip


def test_normal_path_and_usage(tmp_path: Path) -> None:
    assert normal_path("/proc/4242/fd/3") == "/proc/PID/fd/3"
    assert normal_path("/proc/self/fd") == "/proc/self/fd"
    assert normal_path("/proc/12") == "/proc/PID"
    res = run_pykdump_args("--diff", str(tmp_path / "only-one"))
    assert res.status == 1
    assert res.err.splitlines()[0] == "pykdump: option '--diff' requires 2 arguments"
    assert res.err.splitlines()[1].startswith("usage: pykdump")

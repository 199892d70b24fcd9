"""--timeline on traces built with the writer and on real FreeBSD files, checked against the format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ktrace_cli.format.records import ProcCtor, Syscall, Sysret
from tests.kdump_helpers import LINUX64, run_pykdump, run_pykdump_args, trace_bytes
from tests.trace_events import check
from tests.unit.test_views_tree_errors import REAL, T0, Clock, family


def _timeline(tmp_path: Path, records: list[object] | bytes) -> tuple[int, dict[str, object], str]:
    out = tmp_path / "t.json"
    res = run_pykdump(tmp_path, records, "--timeline", str(out))  # type: ignore[arg-type]
    return res.status, json.loads(out.read_text()), res.err


def test_writer_trace(tmp_path: Path) -> None:
    status, doc, _err = _timeline(tmp_path, family(Clock()))
    assert status == 0 and check(doc) == []
    events = doc["traceEvents"]
    assert doc["otherData"] == {"first_ns": T0 * 10**9 + 1_000_000, "source": "pykdump --timeline", "drops": 0}  # type: ignore[index]
    [execve] = [e for e in events if e["ph"] == "X" and e["pid"] == 100 and e["name"] == "execve"]  # type: ignore[index]
    assert (execve["ts"], execve["dur"], execve["args"]) == (1000.0, 3000.0, {  # type: ignore[index]
        "args": ["0x1", "0x2", "0x3"], "paths": ["/usr/bin/make"], "ret": -1})  # fmt: skip
    failed = [(e["name"], e["ts"]) for e in events if e.get("cat") == "failed"]  # type: ignore[union-attr,index]
    assert failed == [("execve ENOENT", 11000.0), ("execve ENOENT", 14000.0), ("openat ENOENT", 21000.0),
                      ("ioctl ENOTTY", 23000.0), ("lgetxattr ENODATA", 26000.0), ("connect ENOENT", 29000.0),
                      ("openat EACCES", 36000.0), ("write EPIPE", 42000.0)]  # fmt: skip
    [sig] = [e for e in events if e.get("cat") == "signal"]  # type: ignore[union-attr]
    assert (sig["name"], sig["pid"], sig["ts"]) == ("SIGSEGV", 102, 37000.0)  # type: ignore[index]
    # Each flow's ends sit on the slices they join (same thread, time and category, as DevTools binds
    # them): fork 2's child returned before its parent, fork 4's after; exec 3 ends at sh's first call.
    flows = [(e["ph"], e["name"], e["id"], e["pid"], e["ts"]) for e in events if e["ph"] in ("s", "f")]  # type: ignore[index]
    assert sorted(flows, key=lambda f: (f[2], f[0] == "f")) == [
        ("s", "exec", 1, 100, 1000.0), ("f", "exec", 1, 100, 5000.0), ("s", "fork", 2, 100, 5000.0),
        ("f", "fork", 2, 101, 7000.0), ("s", "exec", 3, 101, 15000.0), ("f", "exec", 3, 101, 19000.0),
        ("s", "fork", 4, 101, 30000.0), ("f", "fork", 4, 102, 33000.0)]  # fmt: skip
    slices = {(e["pid"], e["tid"], e["ts"], e["cat"]) for e in events if e["ph"] == "X"}  # type: ignore[index]
    assert all((e["pid"], e["tid"], e["ts"], e["cat"]) in slices for e in events if e["ph"] in ("s", "f"))  # type: ignore[index]


def test_drops_and_unfinished_calls(tmp_path: Path) -> None:
    t = Clock()
    records = [t(ProcCtor(LINUX64), 7), t(Syscall(0, (3, 1, 2)), 7), t(Sysret(0, 0, 2), 7)]
    records.append(t(Syscall(1, (1, 2, 3)), 7))
    records[2] = records[2].replace(drop=True)  # records were lost before the RET
    status, doc, _err = _timeline(tmp_path, records)
    assert status == 0 and check(doc) == []
    events = doc["traceEvents"]
    assert [e["name"] for e in events if e["ph"] == "i"] == ["records dropped"]  # type: ignore[index]
    [unfinished] = [e for e in events if e["ph"] == "X" and e["args"].get("unfinished")]  # type: ignore[index,union-attr]
    assert (unfinished["name"], unfinished["dur"]) == ("write", 0.0)  # type: ignore[index]


@pytest.mark.parametrize("name", ["freebsd-amd64-v0-denoble", "freebsd-i386-v0-nfsp", "freebsd-i386-v0-rkhack",
                                  "freebsd-amd64-v1-mcsh"])  # fmt: skip
def test_freebsd_files(tmp_path: Path, name: str) -> None:
    out = tmp_path / "t.json"
    res = run_pykdump_args("-f", str(REAL / name / "ktrace.out"), "--timeline", str(out))
    assert res.status == 0, res.err
    doc = json.loads(out.read_text())
    assert check(doc) == []
    assert any(e["ph"] == "X" for e in doc["traceEvents"])


def test_damaged_trace_still_gives_a_whole_file(tmp_path: Path) -> None:
    data = trace_bytes(family(Clock()))  # type: ignore[arg-type]
    status, doc, err = _timeline(tmp_path, data[: -64 - 5])
    assert status == 1 and err.startswith("pykdump: ") and err.count("\n") == 1
    assert check(doc) == []
    bad = run_pykdump_args("-f", str(REAL / "freebsd-i386-v0-rkhack" / "ktrace.out"), "--timeline",
                           str(tmp_path / "no" / "such" / "dir.json"))  # fmt: skip
    assert (bad.status, bad.err) == (1, f"pykdump: {tmp_path / 'no' / 'such' / 'dir.json'}: No such file or directory\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json", "trace.out"]  # no temporary file left

"""pykdump's whole-trace views (--tree, --errors, --timeline, --diff) on real traces of progs/spawn.c."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ktrace_cli.abi import linux
from ktrace_cli.format import constants as K
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import Record
from tests import chromium
from tests.integration.conftest import PYKTRACE, TIMEOUT
from tests.kdump_helpers import run_pykdump_args
from tests.trace_events import check


@dataclass
class Run:
    path: Path
    prog: str
    returncode: int
    records: list[Record]

    def ns(self, r: Record) -> int:
        return r.sec * 1_000_000_000 + r.nsec

    @property
    def first_ns(self) -> int:
        return self.ns(self.records[0])

    def pids(self) -> list[int]:
        """Processes in PROCCTOR order (each pid once)."""
        out: list[int] = []
        for r in self.records:
            if r.type == K.KTR_PROCCTOR and r.pid not in out:
                out.append(r.pid)
        return out

    def life(self, pid: int) -> tuple[int, int]:
        """(ns of its first PROCCTOR, ns of its PROCDTOR)."""
        start = next(self.ns(r) for r in self.records if r.pid == pid and r.type == K.KTR_PROCCTOR)
        end = next(self.ns(r) for r in self.records if r.pid == pid and r.type == K.KTR_PROCDTOR)
        return start, end

    def calls(self, pid: int) -> int:
        """CALL records, plus RETs whose CALL is not in the trace (a child's return from fork)."""
        n = 0
        pending: dict[int, int] = {}
        for r in self.records:
            if r.pid != pid:
                continue
            if r.type == K.KTR_SYSCALL:
                n += 1
                pending[r.tid] = int.from_bytes(r.payload[:2], "little", signed=True)
            elif r.type == K.KTR_SYSRET:
                code = int.from_bytes(r.payload[:2], "little", signed=True)
                if pending.pop(r.tid, None) != code:
                    n += 1
        return n


def _trace(runtime_env: dict[str, str], out: Path, prog: Path, arg: str) -> Run:
    proc = subprocess.run([*PYKTRACE, "-i", "-f", str(out), str(prog), arg], env=runtime_env,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)  # fmt: skip
    return Run(out, str(prog), proc.returncode, list(iter_records(str(out))))


@pytest.fixture(scope="module")
def runs(session_env: dict[str, str], progs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """spawn traced twice: its child fails to open a missing file, then opens one that exists."""
    d = tmp_path_factory.mktemp("views")
    target = d / "present.txt"
    target.write_text("present\n")
    return {
        "missing": _trace(session_env, d / "missing.out", progs / "spawn", str(d / "absent.txt")),
        "present": _trace(session_env, d / "present.out", progs / "spawn", str(target)),
    }


def _row(run: Run, depth: int, pid: int, argv: str, status: str) -> str:
    start, end = run.life(pid)
    return (f"{'  ' * depth}{pid} {argv}  [{status}]  +{(start - run.first_ns) / 1e9:.6f}s"
            f"  wall {(end - start) / 1e9:.6f}s  {run.calls(pid)} calls")  # fmt: skip


def test_tree_lines(runs: dict[str, Run]) -> None:
    run = runs["missing"]
    assert run.returncode == 3
    parent, opener, killed = run.pids()
    absent = str(run.path.parent / "absent.txt")
    res = run_pykdump_args("-f", str(run.path), "--tree")
    assert res.status == 0, res.err
    # No ARGS records: argv is the exec's path; a child that did not exec runs its parent's.
    assert res.text.splitlines() == [
        _row(run, 0, parent, run.prog, "exit 3"),
        _row(run, 1, opener, run.prog, "exit 3"),
        _row(run, 1, killed, run.prog, "killed by SIGTERM"),
    ]
    assert absent  # the opener's argument is not in the tree without ARGS records


def test_tree_json_and_filters(runs: dict[str, Run]) -> None:
    run = runs["missing"]
    parent, opener, killed = run.pids()
    doc = json.loads(run_pykdump_args("-f", str(run.path), "--tree", "--json").out)
    assert doc["schema"] == 1 and doc["first_ns"] == run.first_ns
    [root] = doc["processes"]
    assert (root["pid"], root["ppid"], root["status"], root["exit_status"]) == (parent, None, "exit 3", 3)
    assert [(c["pid"], c["ppid"], c["status"], c["signal"]) for c in root["children"]] == [
        (opener, parent, "exit 3", None), (killed, parent, "killed by SIGTERM", "SIGTERM")]  # fmt: skip
    assert root["children"][0]["execs"][0]["path"] == run.prog
    assert root["wall_ns"] == run.life(parent)[1] - run.life(parent)[0]
    # A filter counts only the calls it selects and keeps the ancestors of what it shows.
    res = run_pykdump_args("-f", str(run.path), "--tree", "-e", "trace=openat", "--failed",
                           "--path", "*/absent.txt")  # fmt: skip
    lines = res.text.splitlines()
    assert [line.split()[0] for line in lines] == [str(parent), str(opener)]
    assert lines[1].endswith("  1 calls")
    assert lines[0].endswith("  0 calls")


def test_errors_digest(runs: dict[str, Run]) -> None:
    run = runs["missing"]
    parent, opener, killed = run.pids()
    absent = str(run.path.parent / "absent.txt")
    failed = next(r for r in run.records if r.pid == opener and r.type == K.KTR_NAMEI
                  and r.payload.rstrip(b"\0") == absent.encode())  # fmt: skip
    res = run_pykdump_args("-f", str(run.path), "--errors", "-p", str(opener), "-p", str(killed))
    assert res.status == 0, res.err
    assert res.text.splitlines() == [
        f"process {opener} {run.prog}  [exit 3]",
        "  last unexpected failures before its end:",
        f"    +{(run.ns(failed) - run.first_ns) / 1e9:.6f}s  openat ENOENT  {absent}",
        "  failed calls:",
        f"         1  openat ENOENT  {absent}",
        "  expected: 1 (dynamic loader search 1)",
        "",
        f"process {killed} {run.prog}  [killed by SIGTERM]",
    ]
    doc = json.loads(run_pykdump_args("-f", str(run.path), "--errors", "--json").out)
    by_pid = {p["pid"]: p for p in doc["processes"]}
    assert by_pid[opener]["groups"][0] == {"syscall": "openat", "errno": "ENOENT", "path": absent, "count": 1,
                                           "noise": None}  # fmt: skip
    assert by_pid[opener]["noise"] == {"dynamic loader search": 1}
    # The run that can open its file has nothing unexpected left but the SIGTERM.
    good = runs["present"]
    lines = run_pykdump_args("-f", str(good.path), "--errors").text.splitlines()
    assert [line for line in lines if line.startswith("process ")] == [
        f"process {good.pids()[0]} {good.prog}  [exit 0]",
        f"process {good.pids()[1]} {good.prog}  [exit 0]",
        f"process {good.pids()[2]} {good.prog}  [killed by SIGTERM]",
    ]
    assert not [line for line in lines if line.startswith("  failed calls:")]


def test_timeline_follows_the_format(runs: dict[str, Run], tmp_path: Path) -> None:
    run = runs["missing"]
    parent, opener, killed = run.pids()
    out = tmp_path / "timeline.json"
    res = run_pykdump_args("-f", str(run.path), "--timeline", str(out))
    assert (res.status, res.out, res.err) == (0, b"", "")
    doc = json.loads(out.read_text())
    assert check(doc) == []
    assert doc["displayTimeUnit"] == "ns" and doc["otherData"]["first_ns"] == run.first_ns
    events = doc["traceEvents"]
    # A slice per call, on its process's track, starting at its CALL to the nanosecond.
    for pid in (parent, opener, killed):
        assert len([e for e in events if e["ph"] == "X" and e["pid"] == pid]) == run.calls(pid)
    calls = [r for r in run.records if r.type == K.KTR_SYSCALL and r.pid == opener]
    slices = [e for e in events if e["ph"] == "X" and e["pid"] == opener and not e["args"].get("resumed")]
    assert [round(e["ts"] * 1000) for e in slices] == [run.ns(r) - run.first_ns for r in calls]
    absent = str(run.path.parent / "absent.txt")
    failed = [e for e in events if e["ph"] == "i" and e["cat"] == "failed" and e["pid"] == opener]
    assert [(e["name"], e["args"]["paths"]) for e in failed][-1] == ("openat ENOENT", [absent])
    [sig] = [e for e in events if e["ph"] == "i" and e["cat"] == "signal"]
    assert (sig["name"], sig["pid"]) == ("SIGTERM", killed)
    # fork: a flow from the parent's clone to each child; exec: from execve to the new image.
    flows = [e for e in events if e["ph"] in ("s", "f")]
    assert {e["cat"] for e in flows} == {"syscall"}  # the slices' category, or DevTools binds none
    pairs = sorted((e["pid"], f["pid"]) for e in flows if e["name"] == "fork" and e["ph"] == "s"
                   for f in [next(g for g in flows if g["ph"] == "f" and g["id"] == e["id"])])  # fmt: skip
    assert pairs == [(parent, opener), (parent, killed)]
    execs = [e for e in flows if e["name"] == "exec"]
    assert sorted((e["ph"], e["pid"]) for e in execs) == [("f", parent), ("f", opener), ("s", parent), ("s", opener)]
    names = {(e["name"], e["pid"], e["tid"]): e["args"]["name"] for e in events if e["ph"] == "M"}
    assert names[("process_name", opener, 0)] == f"spawn {opener}"
    assert names[("thread_name", killed, killed)] == f"spawn {killed}"


def _x_at(run: Run, r: Record) -> tuple[int, int, str | None, int]:
    """The slice a call record starts, as the loaded model reports it: (pid, tid, name, ns after the first record)."""
    return r.pid, r.tid, linux.syscall_name(int.from_bytes(r.payload[:2], "little")), run.ns(r) - run.first_ns


def test_timeline_loads_in_chromium(runs: dict[str, Run], tmp_path: Path) -> None:
    """The file as the trace engine of Chromium's own DevTools (its Performance panel) loads it.

    The model must hold the processes, threads, names and slices the trace
    holds, and bind each fork and exec flow to the slices it joins.
    """
    exe = chromium.find()
    if exe is None:
        pytest.skip("no Chromium is installed (.ci/run installs the chromium package)")
    run = runs["missing"]
    parent, opener, killed = run.pids()
    out = tmp_path / "timeline.json"
    res = run_pykdump_args("-f", str(run.path), "--timeline", str(out))
    assert (res.status, res.err) == (0, "")
    events = json.loads(out.read_text())["traceEvents"]
    loaded = chromium.load_timeline(exe, out, tmp_path / "profile")
    # Each process one thread, named by comm, holding exactly its calls' slices, in the file's order.
    model = {(t["tid"], t["name"]): [(s["name"], s["ts"]) for s in t["slices"]]
             for p in loaded["processes"] for t in p["threads"] if p["pid"] == t["tid"]}  # fmt: skip
    assert sorted(p["pid"] for p in loaded["processes"]) == sorted((parent, opener, killed))
    assert sum(len(p["threads"]) for p in loaded["processes"]) == 3
    for pid in (parent, opener, killed):
        slices = [(e["name"], e["ts"]) for e in events if e["ph"] == "X" and e["pid"] == pid]
        assert model[(pid, f"spawn {pid}")] == slices and len(slices) == run.calls(pid)
    # The flows, each from the slice that starts it to the one it ends on, to the nanosecond.
    flows = sorted(tuple(sorted(((e["pid"], e["tid"], e["name"], round(e["ts"] * 1000)) for e in flow),
                                key=lambda end: end[3])) for flow in loaded["flows"])  # fmt: skip
    calls = [r for r in run.records if r.type == K.KTR_SYSCALL]
    execs = [n for n, r in enumerate(calls) if _x_at(run, r)[2] == "execve" and r.pid in (parent, opener)]
    forks = [r for r in calls if r.pid == parent and _x_at(run, r)[2] in ("clone", "clone3", "fork", "vfork")]
    firsts = [next(r for r in run.records if r.pid == pid and r.type in (K.KTR_SYSCALL, K.KTR_SYSRET))
              for pid in (opener, killed)]  # a child's first call is its return from the fork
    expected = [(_x_at(run, calls[n]), _x_at(run, next(r for r in calls[n + 1 :] if r.pid == calls[n].pid)))
                for n in execs]  # fmt: skip
    expected += [(_x_at(run, fork), _x_at(run, first)) for fork, first in zip(forks, firsts, strict=True)]
    assert len(execs) == 2 and flows == sorted(expected)


def test_timeline_user_markers(runtime_env: dict[str, str], progs: Path, tmp_path: Path) -> None:
    out = tmp_path / "u.out"
    subprocess.run([*PYKTRACE, "-f", str(out), str(progs / "utrace")], env=runtime_env, check=True,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)  # fmt: skip
    res = run_pykdump_args("-f", str(out), "--timeline", "-")
    doc = json.loads(res.out)
    assert check(doc) == []
    [user] = [e for e in doc["traceEvents"] if e.get("cat") == "user"]
    assert (user["name"], user["s"], user["args"]) == ("USER", "t", {"len": 12, "data": "hello utrace"})


def test_diff_two_runs(runs: dict[str, Run]) -> None:
    good, bad = runs["present"], runs["missing"]
    present, absent = str(good.path.parent / "present.txt"), str(bad.path.parent / "absent.txt")
    res = run_pykdump_args("--diff", str(good.path), str(bad.path))
    assert res.status == 0, res.err
    lines = res.text.splitlines()
    g, b = good.pids(), bad.pids()
    cut = lines.index("syscalls (calls A -> B, errors A -> B, time A -> B):")
    # The opener's calls before its open are the same (same program, same loader), so the
    # first divergence is its open; the call numbers count its calls from the fork's return.
    codes = [int.from_bytes(r.payload[:2], "little") for r in good.records
             if r.pid == g[1] and r.type == K.KTR_SYSCALL]  # fmt: skip
    last_open = len(codes) - 1 - codes[::-1].index(257)
    index = last_open + 2  # one for the RET of its fork, one for counting from 1
    before = [linux.syscall_name(c) for c in codes[last_open - 2 : last_open]]
    assert [line.split()[0] for line in lines[5:7]] == before
    del lines[5:7]
    assert lines[:cut - 2] == [
        f"--- A {good.path}",
        f"+++ B {bad.path}",
        f"process spawn (A {g[0]}, B {b[0]}): [exit 0] -> [exit 3]",
        f"process spawn/spawn (A {g[1]}, B {b[1]}): [exit 0] -> [exit 3]",
        f"  first divergence at call {index} of A, {index} of B:",
        f"  - openat {present} ok",
        f"  - read {present} ok",
        f"  - close {present} ok",
        f"  + openat {absent} ENOENT",
        "  3 calls only in A, 1 only in B",
        f"process spawn/spawn#2 (A {g[2]}, B {b[2]}): same calls [killed by SIGTERM]",
        "failures (A -> B):",
        f"       0 -> 1      openat ENOENT  {absent}",
        "paths only in A:",
        f"  {present}",
        "paths only in B:",
        f"  {absent}",
    ]
    doc = json.loads(run_pykdump_args("--diff", str(good.path), str(bad.path), "--json").out)
    rows = {s["name"]: s for s in doc["syscalls"]}
    assert (rows["read"]["calls_a"] - rows["read"]["calls_b"], rows["close"]["calls_a"] - rows["close"]["calls_b"],
            rows["openat"]["errors_b"] - rows["openat"]["errors_a"]) == (1, 1, 1)  # fmt: skip
    assert [(p["key"], p["only_a"], p["only_b"]) for p in doc["processes"]] == [
        ("spawn", 0, 0), ("spawn/spawn", 3, 1), ("spawn/spawn#2", 0, 0)]  # fmt: skip
    same = run_pykdump_args("--diff", str(bad.path), str(bad.path)).text.splitlines()
    assert same == [f"--- A {bad.path}", f"+++ B {bad.path}",
                    f"process spawn (A {b[0]}, B {b[0]}): same calls [exit 3]",
                    f"process spawn/spawn (A {b[1]}, B {b[1]}): same calls [exit 3]",
                    f"process spawn/spawn#2 (A {b[2]}, B {b[2]}): same calls [killed by SIGTERM]"]  # fmt: skip


def test_summary_detail_threads_and_files(runtime_env: dict[str, str], progs: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.out"
    subprocess.run([*PYKTRACE, "-f", str(out), str(progs / "threads"), "3"], env=runtime_env, check=True,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)  # fmt: skip
    run = Run(out, str(progs / "threads"), 0, list(iter_records(str(out))))
    # Per thread: calls, errors and time, from the CALL/RET pairs of the records.
    per: dict[int, list[int]] = {}
    pending: dict[int, int] = {}
    for r in run.records:
        if r.type == K.KTR_SYSCALL:
            pending[r.tid] = run.ns(r)
            row = per.setdefault(r.tid, [0, 0, 0])
            row[0] += 1
        elif r.type == K.KTR_SYSRET:
            row = per.setdefault(r.tid, [0, 0, 0])
            start = pending.pop(r.tid, None)
            if start is None:
                row[0] += 1
            else:
                row[2] += run.ns(r) - start
            if int.from_bytes(r.payload[4:8], "little", signed=True) not in (0, -1, -2):  # not ERESTART, EJUSTRETURN
                row[1] += 1
    pid = run.records[0].pid
    text = run_pykdump_args("-f", str(out), "--summary", "--detail", "--sort=name").text
    threads = text[text.index("threads\n"):text.index("files\n")].splitlines()[3:-1]
    expected = []
    for tid in sorted(per, key=str):
        label = f"{tid}" if tid == pid else f"{tid} (pid {pid})"
        calls, errors, ns = per[tid]
        comm = "threads"
        expected.append((f"{label} {comm}", str(calls), str(errors), f"{ns / 1e9:.6f}"))
    assert [tuple(line.rsplit(None, 3)) for line in threads] == expected
    files = text[text.index("files\n"):].splitlines()
    assert [line.split()[:3] for line in files if line.startswith("/nonexistent/")] == [
        [f"/nonexistent/thread{i}", "1", "1"] for i in range(3)]  # fmt: skip


def test_tree_argv_from_args_records(runtime_env: dict[str, str], progs: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.out"
    target = tmp_path / "x.txt"
    target.write_text("x\n")
    subprocess.run([*PYKTRACE, "-i", "-t", "+a", "-f", str(out), str(progs / "spawn"), str(target)],
                   env=runtime_env, check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)  # fmt: skip
    run = Run(out, str(progs / "spawn"), 0, list(iter_records(str(out))))
    if not any(r.type == K.KTR_ARGS for r in run.records):
        pytest.skip("this pyktrace writes no ARGS records for -t a")
    parent, opener, killed = run.pids()
    prog = run.prog
    assert run_pykdump_args("-f", str(out), "--tree").text.splitlines() == [
        _row(run, 0, parent, f"{prog} {target}", "exit 0"),
        _row(run, 1, opener, f"{prog} open {target}", "exit 0"),
        _row(run, 1, killed, f"{prog} {target}", "killed by SIGTERM"),  # a fork runs its parent's argv
    ]

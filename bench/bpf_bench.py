"""The eBPF engine's own figures, each measured in one run against its baseline from the same run.

- start-up: `pyktrace --engine=bpf -f F /bin/true` with a warm engine
  against the bare interpreter (`python -I -S -c pass`), interleaved,
  median of N (goal: at most 3x);
- drainer CPU per record: the daemon's utime+stime over a traced record
  storm, divided by the records that reached the file (goal: 0.2 µs);
- drops by rate: a load generator of T threads calling getppid flat out
  (2 records a call), traced with `-t c`; the record rate it reached, and
  the records dropped (KTR_DROP marks in the file and the engine log's
  count) (goal: none below 1M records/s);
- idle cost: an untraced getppid loop with the engine idle (loaded,
  nothing attached) against no engine, interleaved (goal: within ±3%).

The machine may be shared: compare the ratios, not the absolute times.

    python bench/bpf_bench.py            # full sizes, median of 9
    python bench/bpf_bench.py --quick    # small sizes, median of 3
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from ktrace_cli.format.reader import iter_records  # noqa: E402
from ktrace_cli.trace.bpf.wire import why_unavailable  # noqa: E402
from tests.integration.conftest import _stop_engine  # noqa: E402

GOAL_STARTUP = 3.0
GOAL_DRAIN_US = 0.2
GOAL_RATE = 1_000_000
GOAL_IDLE_PCT = 3.0
SOURCES = ("sysloop", "ppidthreads")


def pyktrace() -> list[str]:
    """The installed entry point beside the interpreter (as startup_bench.py runs it), else `-m`."""
    script = Path(sys.executable).parent / "pyktrace"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ktrace_cli.cli.pyktrace"]


def build(out: Path) -> None:
    for name in SOURCES:
        subprocess.run(["gcc", "-O2", "-pthread", "-o", str(out / name), str(HERE / "src" / f"{name}.c")],
                       check=True)  # fmt: skip


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       env=env, check=False)  # fmt: skip
    took = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"bpf_bench: {' '.join(argv)} failed: {r.stderr.decode(errors='replace').strip()}")
    return took


def engine_dir(rt: Path) -> Path:
    return rt / "pyktrace" / "bpf"


def engine_cpu(rt: Path) -> float:
    """The bpf daemon's CPU time so far, in seconds (schedstat: nanoseconds, where stat has ticks)."""
    pid = int((engine_dir(rt) / "engine.pid").read_text())
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def sync(env: dict[str, str]) -> None:
    """Every record made so far is on disk (the engine's barrier)."""
    import json
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(engine_dir(Path(env["XDG_RUNTIME_DIR"])) / "engine.sock"))
        s.sendall(json.dumps({"op": "sync"}).encode() + b"\n")
        while not s.recv(4096).endswith(b"\n"):
            pass


def log_size(rt: Path) -> int:
    return (engine_dir(rt) / "engine.log").stat().st_size


def logged_drops(rt: Path, since: int) -> int:
    """The records the engine logged as dropped after byte `since` of its log."""
    with (engine_dir(rt) / "engine.log").open("rb") as f:
        f.seek(since)
        text = f.read().decode(errors="replace")
    return sum(int(n) for n in re.findall(r"ring buffer full: (\d+) records dropped", text))


def startup(env: dict[str, str], tmp: Path, runs: int) -> list[str]:
    bare = [sys.executable, "-I", "-S", "-c", "pass"]
    pyk = [*pyktrace(), "--engine=bpf", "-f", str(tmp / "true.out"), "/bin/true"]
    wall(pyk, env)  # starts the engine: every run below finds it warm
    b, p = [], []
    for _ in range(runs):
        b.append(wall(bare, env))
        p.append(wall(pyk, env))
    mb, mp = statistics.median(b), statistics.median(p)
    return [f"| start-up, warm engine (`/bin/true`) | {mp * 1e3:.1f} ms vs bare {mb * 1e3:.1f} ms "
            f"| {mp / mb:.1f}x | at most {GOAL_STARTUP:g}x |"]  # fmt: skip


def storm(env: dict[str, str], tmp: Path, bin_: Path, threads: int, calls: int) -> tuple[float, int, int, int, float]:
    """One traced storm: (records/s made, records in the file, KTR_DROP marks, dropped per the log,
    daemon CPU s)."""
    rt = Path(env["XDG_RUNTIME_DIR"])
    out = tmp / f"storm{threads}.out"
    # The engine exits after a short idle time: start it (again), then read its CPU.
    wall([*pyktrace(), "--engine=bpf", "-f", str(tmp / "warm.out"), "/bin/true"], env)
    since = log_size(rt)
    cpu0 = engine_cpu(rt)
    wall([*pyktrace(), "--engine=bpf", "-t", "c", "-f", str(out), str(bin_ / "ppidthreads"), str(threads),
          str(calls)], env)  # fmt: skip
    sync(env)
    cpu = engine_cpu(rt) - cpu0
    records = marks = 0
    first = last = 0
    for r in iter_records(str(out)):
        records += 1
        marks += r.drop
        if r.comm_name == b"ppidthreads":
            last = r.sec * 10**9 + r.nsec
            first = first or last
    dropped = logged_drops(rt, since)
    made = 2 * threads * calls
    # The rate the program made records at, by the records' own times (no start-up in it).
    return made / max((last - first) / 1e9, 1e-9), records, marks, dropped, cpu


def drains(env: dict[str, str], tmp: Path, bin_: Path, quick: bool) -> list[str]:
    calls = 200_000 if quick else 1_000_000
    rows = []
    for threads in (1, 2):
        rate, records, marks, dropped, cpu = storm(env, tmp, bin_, threads, calls // threads)
        per = cpu / max(records, 1) * 1e6
        rows.append(f"| storm, {threads} thread(s), {2 * calls:,} records | {rate / 1e6:.2f} M records/s made, "
                    f"{dropped} dropped ({marks} KTR_DROP marks) | drainer {per:.3f} µs/record "
                    f"({cpu * 1e3:.0f} ms CPU) | none dropped below {GOAL_RATE / 1e6:g}M/s; "
                    f"at most {GOAL_DRAIN_US} µs |")  # fmt: skip
    return rows


def idle(env: dict[str, str], tmp: Path, bin_: Path, runs: int, quick: bool) -> list[str]:
    """Interleaved: the loop with no engine, then with an idle one (started, nothing attached)."""
    rt = Path(env["XDG_RUNTIME_DIR"])
    loop = [str(bin_ / "sysloop"), str(500_000 if quick else 3_000_000)]
    grace = dict(env, PYKTRACE_BPF_DETACH_GRACE="0")  # idle at once, not after the grace
    none, busy = [], []
    wall(loop, env)
    for _ in range(runs):
        _stop_engine(engine_dir(rt))
        none.append(wall(loop, env))
        wall([*pyktrace(), "--engine=bpf", "-f", str(tmp / "idle.out"), "/bin/true"], grace)
        sync(env)  # detached now (grace 0); the engine stays loaded for its idle time
        busy.append(wall(loop, env))
    _stop_engine(engine_dir(rt))
    a, b = statistics.median(none), statistics.median(busy)
    return [f"| idle engine, untraced getppid loop | {b * 1e3:.1f} ms vs {a * 1e3:.1f} ms without an engine "
            f"| {(b / a - 1) * 100:+.1f}% | within ±{GOAL_IDLE_PCT:g}% |"]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, median of 3")
    ap.add_argument("--runs", type=int, default=0, help="runs per figure (default 9, quick 3)")
    ap.add_argument("--only", choices=["startup", "drain", "idle"], action="append", help="one part (repeatable)")
    ap.add_argument("--summary", type=Path, help="append the markdown table to this file")
    args = ap.parse_args()
    why = why_unavailable()
    if why:
        print(f"bpf_bench: skipped: {why}")
        return 0
    runs = args.runs or (3 if args.quick else 9)
    parts = args.only or ["startup", "drain", "idle"]
    table = ["| figure | measured | ratio / detail | goal |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="bpf-bench-") as d:
        tmp = Path(d)
        bin_ = tmp / "bin"
        bin_.mkdir()
        build(bin_)
        rt = tmp / "rt"
        rt.mkdir(mode=0o700)
        env = dict(os.environ, XDG_RUNTIME_DIR=str(rt), PYTHONPATH=str(ROOT))
        try:
            if "startup" in parts:
                table += startup(env, tmp, runs)
            if "drain" in parts:
                table += drains(env, tmp, bin_, args.quick)
            if "idle" in parts:
                table += idle(env, tmp, bin_, runs, args.quick)
        finally:
            _stop_engine(engine_dir(rt))
    print(f"# the eBPF engine ({os.uname().release}, {os.cpu_count()} CPUs, median of {runs})\n")
    print("\n".join(table))
    if args.summary:
        with args.summary.open("a") as f:
            f.write(f"\n**eBPF engine**, median of {runs}, baselines from the same run:\n\n" + "\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

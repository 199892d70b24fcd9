"""Benchmark pyktrace on the reliability loads: records written, records/s, tracer CPU, engine memory, wall ratios.

Each load of tests/reliability/loads.py runs untraced, under `strace -f -qq
-o /dev/null` and under `pyktrace -i -t +w` (every observable point). For
pyktrace it reports the records written, records per second of traced wall
time, the engine's CPU time (user + system, from /proc), and the ratio of
traced to untraced wall time next to strace's. The engine's peak RSS
(VmHWM) is then measured with a fresh engine on a short and a 4x longer
shell loop: it must stay flat with trace length.

    python bench/load_bench.py            # 3 runs each, larger sizes
    python bench/load_bench.py --quick    # CI sizes, 1 run
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.conftest import _stop_engine  # noqa: E402
from tests.reliability import loads  # noqa: E402


class Keeper:
    """A traced `cat` waiting on a pipe, so one engine lives through every run of a load."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.proc = subprocess.Popen(
            [*loads.PYKTRACE, "-t", "u", "-f", str(tmp / "keeper.out"), "/bin/sh", "-c",
             "echo up; exec cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # the shell runs only once the engine traces it
        self.engine = loads.engine_pid(env)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def workloads(progs: Path, quick: bool) -> list[loads.Workload]:
    if quick:
        return [loads.make_project(10), loads.compileall("email"), loads.forktree(200, progs),
                loads.iothreads(64, 16, progs), loads.shell_loop(100)]  # fmt: skip
    return [loads.make_project(40), loads.compileall("xml"), loads.forktree(1000, progs),
            loads.iothreads(64, 256, progs), loads.shell_loop(500)]  # fmt: skip


def bench_load(w: loads.Workload, env: dict[str, str], tmp: Path, runs: int) -> dict[str, float]:
    plain, strace, traced, cpu = [], [], [], []
    records = 0
    keeper = Keeper(env, tmp)
    try:
        for i in range(runs):
            plain.append(loads.run_untraced(w, tmp / f"{w.name}-u{i}", env).wall)
            strace.append(_strace_wall(w, tmp / f"{w.name}-s{i}", env))
            before = loads.cpu_seconds(keeper.engine)
            r = loads.run_pyktrace(w, tmp / f"{w.name}-p{i}", env, keep_records=False)
            cpu.append(loads.cpu_seconds(keeper.engine) - before)
            traced.append(r.wall)
            records = r.nrecords
            for d in tmp.glob(f"{w.name}-*"):
                shutil.rmtree(d) if d.is_dir() else d.unlink()
    finally:
        keeper.close()
    u, s, p = statistics.median(plain), statistics.median(strace), statistics.median(traced)
    return {"records": records, "rate": records / p, "cpu": statistics.median(cpu),
            "untraced": u, "strace": s, "pyktrace": p}  # fmt: skip


def _strace_wall(w: loads.Workload, root: Path, env: dict[str, str]) -> float:
    """Wall time under strace writing to /dev/null (no counting: the cost of tracing alone)."""
    import time

    root.mkdir()
    w.prepare(root)
    t0 = time.perf_counter()
    subprocess.run([*loads.NO_ASLR, "strace", "-f", "-qq", "-o", "/dev/null", *w.argv(root)],
                   env=dict(env, LC_ALL="C", **w.env), cwd=root, capture_output=True,
                   check=False)  # fmt: skip
    return time.perf_counter() - t0


def engine_peak(env: dict[str, str], tmp: Path, iterations: int) -> tuple[int, int, int]:
    """(records, VmRSS at start, VmHWM at end) in kB of a fresh engine tracing one shell loop."""
    _stop_engine(Path(env["XDG_RUNTIME_DIR"]) / "pyktrace")
    keeper = Keeper(env, tmp)
    try:
        start = loads.proc_status(keeper.engine, "VmRSS")
        w = loads.shell_loop(iterations)
        records = loads.run_pyktrace(w, tmp / f"peak-{iterations}", env, keep_records=False).nrecords
        peak = loads.proc_status(keeper.engine, "VmHWM")
    finally:
        keeper.close()
    return records, start, peak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI sizes and one run")
    ap.add_argument("--runs", type=int, default=0, help="runs per measurement (default 3, quick 1)")
    args = ap.parse_args()
    for tool in ("gcc", "strace", "make"):
        if shutil.which(tool) is None:
            print(f"load_bench: {tool} is required", file=sys.stderr)
            return 1
    runs = args.runs or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="load-bench-") as d:
        tmp = Path(d)
        rt = tmp / "rt"
        rt.mkdir(mode=0o700)
        env = dict(os.environ, XDG_RUNTIME_DIR=str(rt), PYTHONPATH=str(ROOT))
        progs = tmp / "bin"
        progs.mkdir()
        loads.build_progs(progs)
        print(f"# pyktrace -i -t {loads.ALL_OBSERVABLE} on the reliability loads "
              f"({os.uname().release}, {os.cpu_count()} CPUs, median of {runs} run(s))\n")  # fmt: skip
        print("| load | records | records/s | engine CPU s | untraced s | pyktrace/untraced "
              "| strace/untraced |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|")
        for w in workloads(progs, args.quick):
            f = bench_load(w, env, tmp, runs)
            print(f"| {w.name} | {f['records']:.0f} | {f['rate']:.0f} | {f['cpu']:.2f} "
                  f"| {f['untraced']:.3f} | {f['pyktrace'] / f['untraced']:.1f} "
                  f"| {f['strace'] / f['untraced']:.1f} |")  # fmt: skip
        short = 100 if args.quick else 500
        print("\nEngine memory, fresh engine per trace (kB):\n")
        print("| shell loop | records | RSS at start | peak RSS (VmHWM) |")
        print("|---|---:|---:|---:|")
        for n in (short, 4 * short):
            records, start, peak = engine_peak(env, tmp, n)
            print(f"| {n} iterations | {records} | {start} | {peak} |")
        _stop_engine(rt / "pyktrace")
    return 0


if __name__ == "__main__":
    sys.exit(main())

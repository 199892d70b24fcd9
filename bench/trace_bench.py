"""Benchmark pyktrace against strace on the same machine in the same run (ratios, never absolute goals).

Each workload runs untraced, under `strace -f -o /dev/null`, under
`strace -f --seccomp-bpf -e trace=%file -o /dev/null`, under `pyktrace -t c`
and under `pyktrace -t n` (command mode: seccomp filter), unpinned and pinned
to one CPU (`taskset -c 0` around the whole command, baseline included).
Reported: median wall time, overhead per syscall in µs (start-up corrected
with /bin/true), and pyktrace's overhead as a fraction of strace's.

    python bench/trace_bench.py            # full sizes, 3 runs (a few minutes)
    python bench/trace_bench.py --quick    # CI size, 1 run
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from ktrace_cli.format import constants as K  # noqa: E402
from ktrace_cli.format.reader import iter_records  # noqa: E402
from tests.integration.conftest import _stop_engine  # noqa: E402


def build(out: Path) -> None:
    for src in (HERE / "src").glob("*.c"):
        subprocess.run(["gcc", "-O2", "-pthread", "-o", str(out / src.stem), str(src)], check=True)


def workloads(bin_: Path, quick: bool) -> list[tuple[str, list[str], bool]]:
    """(name, argv, inherit) for each workload."""
    s = 20 if quick else 1
    children = 10 if quick else 50
    sh = f"i=0; while [ $i -lt {children} ]; do /bin/true; i=$((i+1)); done"
    tar_src = "/usr/include/linux" if quick else "/usr/include"
    return [
        ("true", ["/bin/true"], False),
        ("getppid", [str(bin_ / "sysloop"), str(100000 // s)], False),
        ("rw64", [str(bin_ / "ioloop"), str(50000 // s)], False),
        ("namei", [str(bin_ / "nameiloop"), str(6000 // s)], False),
        ("tar", ["tar", "cf", "/dev/null", tar_src], False),
        ("sh50", ["/bin/sh", "-c", sh], True),
        ("threads4", [str(bin_ / "threads"), "4", str(5000 // s)], False),
    ]


def tracers(tmp: Path, inherit: bool) -> dict[str, list[str]]:
    pyk = [sys.executable, "-m", "ktrace_cli.cli.pyktrace", "-f", str(tmp / "bench.out")]
    if inherit:
        pyk.append("-i")
    return {
        "untraced": [],
        "strace": ["strace", "-f", "-qq", "-o", "/dev/null"],
        "strace-bpf": ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=%file", "-o", "/dev/null"],
        "pyktrace-c": [*pyk, "-t", "c"],
        "pyktrace-n": [*pyk, "-t", "n"],
    }


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=env, check=False)  # fmt: skip
    return time.perf_counter() - start


def count_calls(path: Path) -> int:
    """Syscalls of the workload itself: CALL records after pyktrace's own."""
    n = 0
    started = False
    for r in iter_records(str(path)):
        if r.comm_name != b"pyktrace":
            started = True
        if started and r.type == K.KTR_SYSCALL:
            n += 1
    return n + 1  # the workload's execve, made by pyktrace


def run_mode(pinned: bool, quick: bool, runs: int, bin_: Path, tmp: Path) -> None:
    rt = tmp / ("rt-pinned" if pinned else "rt-unpinned")
    rt.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(rt), PYTHONPATH=str(ROOT))
    prefix = ["taskset", "-c", "0"] if pinned else []
    print(f"\n## {'pinned (taskset -c 0)' if pinned else 'unpinned'}: median of {runs} run(s)\n")
    results: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for name, argv, inherit in workloads(bin_, quick):
        results[name] = {}
        for tname, tr in tracers(tmp, inherit).items():
            cmd = prefix + tr + argv
            timed(cmd, env)  # warm-up (also starts the engine)
            results[name][tname] = statistics.median(timed(cmd, env) for _ in range(runs))
            if tname == "pyktrace-c":
                counts[name] = count_calls(tmp / "bench.out")
    names = list(tracers(tmp, False))
    print("| workload | syscalls | " + " | ".join(f"{n} ms" for n in names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for name, row in results.items():
        print(f"| {name} | {counts[name]} | " + " | ".join(f"{row[n] * 1e3:.1f}" for n in names) + " |")
    print("\nOverhead per syscall, µs (start-up corrected with /bin/true); last column: "
          "pyktrace -t c overhead / strace overhead\n")  # fmt: skip
    traced = names[1:]
    print("| workload | " + " | ".join(traced) + " | pyk-c/strace | pyk-n/strace-bpf |")
    print("|---|" + "---:|" * (len(traced) + 2))
    base = results["true"]
    for name, row in results.items():
        if name == "true":
            continue
        per = {}
        for t in traced:
            startup = base[t] - base["untraced"]
            per[t] = (row[t] - row["untraced"] - startup) / counts[name] * 1e6
        ratio_c = per["pyktrace-c"] / per["strace"] if per["strace"] > 0 else float("nan")
        ratio_n = (per["pyktrace-n"] / per["strace-bpf"]) if per["strace-bpf"] > 0.5 else float("nan")
        print(f"| {name} | " + " | ".join(f"{per[t]:.1f}" for t in traced)
              + f" | {ratio_c:.2f} | {ratio_n:.2f} |")  # fmt: skip
    print("\nStart-up (/bin/true minus untraced), ms: " + ", ".join(
        f"{t} {(base[t] - base['untraced']) * 1e3:.1f}" for t in traced))  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and one run (CI)")
    ap.add_argument("--runs", type=int, default=0, help="runs per measurement (default 3, quick 1)")
    ap.add_argument("--mode", choices=["both", "pinned", "unpinned"], default="both")
    args = ap.parse_args()
    for tool in ("gcc", "strace", "taskset", "tar"):
        if shutil.which(tool) is None:
            print(f"trace_bench: {tool} is required", file=sys.stderr)
            return 1
    runs = args.runs or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="trace-bench-") as d:
        tmp = Path(d)
        bin_ = tmp / "bin"
        bin_.mkdir()
        build(bin_)
        print(f"# pyktrace vs strace ({os.uname().release}, {os.cpu_count()} CPUs, "
              f"{'quick' if args.quick else 'full'} sizes)")  # fmt: skip
        modes = {"both": [False, True], "pinned": [True], "unpinned": [False]}[args.mode]
        for pinned in modes:
            run_mode(pinned, args.quick, runs, bin_, tmp)
            _stop_engine(tmp / ("rt-pinned" if pinned else "rt-unpinned") / "pyktrace")
    return 0


if __name__ == "__main__":
    sys.exit(main())

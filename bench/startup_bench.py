"""Start-up of pyktrace and pykdump against the bare interpreter, measured in the same run.

The baseline is `python -I -S -c pass` with the venv's own interpreter. Then
`pyktrace -f F /bin/true` with a warm engine (one already running) and with a
cold one (the engine stopped before every run, in a private
XDG_RUNTIME_DIR), and `pykdump -f` of a 500-record file. The figures are
measured in rounds (one run of each per round, so that the machine's load
weighs on all alike) from bytecode, as a user's installation runs; each is
the median of N runs, wall time and the command's own CPU time; the ratios
are printed next to the goals (3x warm, 5x cold, 4x pykdump). `--profile` adds the ten slowest imports of each command
(`python -X importtime`, cumulative microseconds).

    python bench/startup_bench.py              # median of 20
    python bench/startup_bench.py --quick      # median of 5
    python bench/startup_bench.py --profile    # and the import-time profiles
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from kdump_bench import build_trace  # noqa: E402

from tests.integration.conftest import _stop_engine  # noqa: E402

KDUMP_RECORDS = 500
BARE = "bare interpreter (`python -I -S -c pass`)"
GOALS = {"pyktrace, warm engine": 3.0, "pyktrace, cold engine": 5.0, "pykdump -f (500 records)": 4.0}
TOP_IMPORTS = 10
PROFILE_RUNS = 5


def command(name: str) -> list[str]:
    """The installed entry point beside the venv's interpreter, or `python -m` when there is none."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", f"ktrace_cli.cli.{name}"]


def once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds of one run, and the CPU seconds the command itself used (not a daemon it starts)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env, check=False)  # fmt: skip
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"startup_bench: {' '.join(argv)} failed: {r.stderr.decode(errors='replace').strip()}")
    return took, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def compile_package(env: dict[str, str]) -> None:
    """Write the package's bytecode (__pycache__, as the first run of an editable install does)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "ktrace_cli")], env=env,
                   stdout=subprocess.DEVNULL, check=True)  # fmt: skip


def import_profile(argv: list[str], env: dict[str, str], top: int = TOP_IMPORTS,
                   runs: int = PROFILE_RUNS) -> list[tuple[int, str]]:  # fmt: skip
    """The `top` imports with the largest cumulative time (µs) under -X importtime, each the
    smallest of `runs` runs (one run on a loaded machine is mostly noise)."""
    best: dict[str, int] = {}
    for _ in range(runs):
        r = subprocess.run(argv, env=dict(env, PYTHONPROFILEIMPORTTIME="1"), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)  # fmt: skip
        for line in r.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            _self, cumulative, name = line[len("import time:") :].split("|", 2)
            name = name.strip()
            best[name] = min(best.get(name, int(cumulative)), int(cumulative))
    return sorted(((micros, name) for name, micros in best.items()), reverse=True)[:top]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="median of 5 (smoke test)")
    ap.add_argument("--runs", type=int, default=0, help="runs per figure (default 20, quick 5)")
    ap.add_argument("--profile", action="store_true", help="print the top imports of each command")
    ap.add_argument("--summary", type=Path, help="append the compact markdown table to this file")
    args = ap.parse_args()
    runs = args.runs or (5 if args.quick else 20)
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as d:
        tmp = Path(d)
        rt = tmp / "rt"
        rt.mkdir(mode=0o700)
        env = dict(os.environ, XDG_RUNTIME_DIR=str(rt), PYTHONPATH=str(ROOT))
        # A user's interpreter loads the package from bytecode (pip compiles
        # it; an editable install writes it on the first run): without it
        # every run would compile every module, and measure that instead.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        compile_package(env)
        trace = tmp / "k500.out"
        build_trace(trace, KDUMP_RECORDS)
        bare = [sys.executable, "-I", "-S", "-c", "pass"]
        pyk = [*command("pyktrace"), "-f", str(tmp / "true.out"), "/bin/true"]
        kdump = [*command("pykdump"), "-f", str(trace)]

        def cold() -> tuple[float, float]:
            _stop_engine(rt / "pyktrace")
            return once(pyk, env)

        once(bare, env)
        once(kdump, env)
        # One round measures every figure once, so that a change in the
        # machine's load during the run weighs on all of them alike.
        measures: dict[str, Callable[[], tuple[float, float]]] = {
            BARE: lambda: once(bare, env),
            "pyktrace, cold engine": cold,
            "pyktrace, warm engine": lambda: once(pyk, env),  # the cold run left the engine running
            "pykdump -f (500 records)": lambda: once(kdump, env),
        }
        samples: dict[str, list[tuple[float, float]]] = {what: [] for what in measures}
        for _ in range(runs):
            for what, measure in measures.items():
                samples[what].append(measure())
        figures = {what: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
                   for what, got in samples.items()}  # fmt: skip
        base, base_cpu = figures[BARE]
        print(f"# start-up against the bare interpreter ({sys.executable}), median of {runs}\n")
        table = ["| command | ms | × bare | CPU ms | CPU × bare | goal |", "|---|---:|---:|---:|---:|---:|"]
        for what, (secs, cpu) in figures.items():
            goal = f"≤ {GOALS[what]:g}×" if what in GOALS else ""
            table.append(f"| {what} | {secs * 1e3:.1f} | {secs / base:.1f} | {cpu * 1e3:.1f} | "
                         f"{cpu / base_cpu:.1f} | {goal} |")  # fmt: skip
        print("\n".join(table))
        if args.profile:
            for label, argv in (("pyktrace (warm engine)", pyk), ("pykdump -f", kdump)):
                print(f"\n## import time, {label}: top {TOP_IMPORTS} by cumulative µs (least of {PROFILE_RUNS} runs)\n")
                for micros, name in import_profile(argv, env):
                    print(f"{micros:>9}  {name}")
        _stop_engine(rt / "pyktrace")
    if args.summary:
        with args.summary.open("a") as f:
            f.write(f"\n**Start-up**, median of {runs}, against the bare interpreter in the same run:\n\n")
            f.write("\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start-up of pyktrace and pykdump against the bare interpreter, measured in the same run.

The baseline is `python -I -S -c pass` with the venv's own interpreter. Then
`pyktrace -f F /bin/true` with a warm engine (one already running) and with a
cold one (the engine stopped before every run, in a private
XDG_RUNTIME_DIR), and `pykdump -f` of a 500-record file. Each figure is the
median of N runs; the ratios are printed next to the goals (3x warm, 5x
cold, 4x pykdump). `--profile` adds the ten slowest imports of each command
(`python -X importtime`, cumulative microseconds).

    python bench/startup_bench.py              # median of 20
    python bench/startup_bench.py --quick      # median of 5
    python bench/startup_bench.py --profile    # and the import-time profiles
"""

from __future__ import annotations

import argparse
import os
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
GOALS = {"pyktrace, warm engine": 3.0, "pyktrace, cold engine": 5.0, "pykdump -f (500 records)": 4.0}
TOP_IMPORTS = 10


def command(name: str) -> list[str]:
    """The installed entry point beside the venv's interpreter, or `python -m` when there is none."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", f"ktrace_cli.cli.{name}"]


def once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env, check=False)  # fmt: skip
    took = time.perf_counter() - start
    if r.returncode != 0:
        raise SystemExit(f"startup_bench: {' '.join(argv)} failed: {r.stderr.decode(errors='replace').strip()}")
    return took


def median(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def import_profile(argv: list[str], env: dict[str, str], top: int = TOP_IMPORTS) -> list[tuple[int, str]]:
    """The `top` imports with the largest cumulative time (µs) in one run under -X importtime."""
    r = subprocess.run(argv, env=dict(env, PYTHONPROFILEIMPORTTIME="1"), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)  # fmt: skip
    rows = []
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line[len("import time:") :].split("|", 2)
        rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


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
        trace = tmp / "k500.out"
        build_trace(trace, KDUMP_RECORDS)
        bare = [sys.executable, "-I", "-S", "-c", "pass"]
        pyk = [*command("pyktrace"), "-f", str(tmp / "true.out"), "/bin/true"]
        kdump = [*command("pykdump"), "-f", str(trace)]

        def cold() -> float:
            _stop_engine(rt / "pyktrace")
            return once(pyk, env)

        once(bare, env)
        once(kdump, env)
        figures = {"bare interpreter (`python -I -S -c pass`)": median(runs, lambda: once(bare, env))}
        figures["pyktrace, cold engine"] = median(runs, cold)
        once(pyk, env)  # leaves the engine running: every run below finds it warm
        figures["pyktrace, warm engine"] = median(runs, lambda: once(pyk, env))
        figures["pykdump -f (500 records)"] = median(runs, lambda: once(kdump, env))
        base = next(iter(figures.values()))
        print(f"# start-up against the bare interpreter ({sys.executable}), median of {runs}\n")
        table = ["| command | ms | × bare | goal |", "|---|---:|---:|---:|"]
        for what, secs in figures.items():
            goal = f"≤ {GOALS[what]:g}×" if what in GOALS else ""
            table.append(f"| {what} | {secs * 1e3:.1f} | {secs / base:.1f} | {goal} |")
        print("\n".join(table))
        if args.profile:
            for label, argv in (("pyktrace (warm engine)", pyk), ("pykdump -f", kdump)):
                print(f"\n## import time, {label}: top {TOP_IMPORTS} by cumulative µs\n")
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

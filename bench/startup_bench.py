"""Start-up of pyktrace and pykdump against the bare interpreter, measured in the same run.

The baseline is `python -I -S -c pass` with the venv's own interpreter. Then
`pyktrace -f F /bin/true` with a warm engine (one already running) and with a
cold one (the engine stopped before every run, in a private
XDG_RUNTIME_DIR), and `pykdump -f` of a 500-record file. The figures are
measured in rounds (one run of each per round, so that the machine's load
weighs on all alike) from bytecode, as a user's installation runs; each is
the median of N runs, wall time and the command's own CPU time; the ratios
are printed next to the goals (3x warm, 5x cold, 4x pykdump, 3x for the
eBPF engine warm). `--profile` adds the ten slowest imports of each command
(`python -X importtime`, cumulative microseconds). `--against CHECKOUT`
measures another checkout's commands in the same rounds (each checkout
with its own engine), for a before/after comparison on a loaded machine.

    python bench/startup_bench.py              # median of 20
    python bench/startup_bench.py --quick      # median of 5
    python bench/startup_bench.py --profile    # and the import-time profiles
    python bench/startup_bench.py --bpf        # and --engine=bpf with a warm engine (root)
    python bench/startup_bench.py --against ../main   # another checkout, interleaved
"""

from __future__ import annotations

import argparse
import functools
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
GOALS = {"pyktrace, warm engine": 3.0, "pyktrace, cold engine": 5.0, "pykdump -f (500 records)": 4.0,
         "pyktrace --engine=bpf, warm engine": 3.0}
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


class Tree:
    """One checkout measured: its commands, its own runtime directory (its own engine)."""

    def __init__(self, root: Path, tmp: Path, label: str, python: str) -> None:
        self.root, self.label, self.python = root, label, python
        self.rt = tmp / f"rt-{label or 'this'}"
        self.rt.mkdir(mode=0o700)
        self.env = dict(os.environ, XDG_RUNTIME_DIR=str(self.rt), PYTHONPATH=str(root))
        # A user's interpreter loads the package from bytecode (pip compiles
        # it; an editable install writes it on the first run): without it
        # every run would compile every module, and measure that instead.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([python, "-m", "compileall", "-q", str(root / "ktrace_cli")], env=self.env,
                       stdout=subprocess.DEVNULL, check=True)  # fmt: skip

    def command(self, name: str) -> list[str]:
        if self.root == ROOT:
            return command(name)
        return [str(Path(self.python).parent / name)]  # the other checkout's installed command

    def stop_engines(self) -> None:
        _stop_engine(self.rt / "pyktrace")
        _stop_engine(self.rt / "pyktrace" / "bpf")


def bpf_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    from ktrace_cli.trace.bpf import wire

    return wire.why_unavailable()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="median of 5 (smoke test)")
    ap.add_argument("--runs", type=int, default=0, help="runs per figure (default 20, quick 5)")
    ap.add_argument("--profile", action="store_true", help="print the top imports of each command")
    ap.add_argument("--summary", type=Path, help="append the compact markdown table to this file")
    ap.add_argument("--bpf", action="store_true", help="also `pyktrace --engine=bpf` with a warm engine (root)")
    ap.add_argument("--against", type=Path, metavar="CHECKOUT",
                    help="also measure another checkout (with its .venv, as make makes it), interleaved")  # fmt: skip
    args = ap.parse_args()
    runs = args.runs or (5 if args.quick else 20)
    why_no_bpf = bpf_unavailable() if args.bpf else None
    if why_no_bpf:
        print(f"startup_bench: --bpf skipped: {why_no_bpf}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as d:
        tmp = Path(d)
        trees = [Tree(ROOT, tmp, "", sys.executable)]
        if args.against:
            other = args.against.resolve()
            trees.append(Tree(other, tmp, other.name, str(other / ".venv" / "bin" / "python")))
        trace = tmp / "k500.out"
        build_trace(trace, KDUMP_RECORDS)
        bare = [sys.executable, "-I", "-S", "-c", "pass"]
        env = trees[0].env
        once(bare, env)
        # One round measures every figure once, so that a change in the
        # machine's load during the run weighs on all of them alike.
        measures: dict[str, Callable[[], tuple[float, float]]] = {BARE: lambda: once(bare, env)}
        for tree in trees:
            suffix = f" ({tree.label})" if tree.label else ""
            pyk = [*tree.command("pyktrace"), "-f", str(tmp / f"true{tree.label}.out"), "/bin/true"]
            kdump = [*tree.command("pykdump"), "-f", str(trace)]
            once(kdump, tree.env)

            def cold(tree: Tree = tree, pyk: list[str] = pyk) -> tuple[float, float]:
                _stop_engine(tree.rt / "pyktrace")
                return once(pyk, tree.env)

            measures["pyktrace, cold engine" + suffix] = cold
            # The cold run left the engine running.
            measures["pyktrace, warm engine" + suffix] = functools.partial(once, pyk, tree.env)
            measures["pykdump -f (500 records)" + suffix] = functools.partial(once, kdump, tree.env)
            if args.bpf and not why_no_bpf:
                bpk = [*tree.command("pyktrace"), "--engine=bpf", "-f", str(tmp / f"bpf{tree.label}.out"), "/bin/true"]
                once(bpk, tree.env)  # starts the bpf engine: every run finds it warm
                measures["pyktrace --engine=bpf, warm engine" + suffix] = functools.partial(once, bpk, tree.env)
        samples: dict[str, list[tuple[float, float]]] = {what: [] for what in measures}
        try:
            for _ in range(runs):
                for what, measure in measures.items():
                    samples[what].append(measure())
        finally:
            for tree in trees:
                tree.stop_engines()
        figures = {what: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
                   for what, got in samples.items()}  # fmt: skip
        base, base_cpu = figures[BARE]
        print(f"# start-up against the bare interpreter ({sys.executable}), median of {runs}\n")
        table = ["| command | ms | × bare | CPU ms | CPU × bare | goal |", "|---|---:|---:|---:|---:|---:|"]
        for what, (secs, cpu) in sorted(figures.items(), key=lambda kv: kv[0] != BARE):
            goal = next((g for name, g in GOALS.items() if what.startswith(name)), None)
            table.append(f"| {what} | {secs * 1e3:.1f} | {secs / base:.1f} | {cpu * 1e3:.1f} | "
                         f"{cpu / base_cpu:.1f} | {f'≤ {goal:g}×' if goal else ''} |")  # fmt: skip
        print("\n".join(table))
        if args.profile:
            pyk = [*command("pyktrace"), "-f", str(tmp / "true.out"), "/bin/true"]
            once(pyk, env)  # a warm engine for the profile
            kdump = [*command("pykdump"), "-f", str(trace)]
            for label, argv in (("pyktrace (warm engine)", pyk), ("pykdump -f", kdump)):
                print(f"\n## import time, {label}: top {TOP_IMPORTS} by cumulative µs (least of {PROFILE_RUNS} runs)\n")
                for micros, name in import_profile(argv, env):
                    print(f"{micros:>9}  {name}")
            trees[0].stop_engines()
    if args.summary:
        with args.summary.open("a") as f:
            f.write(f"\n**Start-up**, median of {runs}, against the bare interpreter in the same run:\n\n")
            f.write("\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

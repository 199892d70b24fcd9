"""Benchmark pyktrace against strace on the same machine in the same run (ratios, never absolute goals).

Each workload runs untraced, under `strace -f -o /dev/null`, under
`strace -f --seccomp-bpf -e trace=%file -o /dev/null`, under `pyktrace -t c`,
under `pyktrace -t n` (the default: no seccomp filter, every call stops) and
under `pyktrace -t n --seccomp=on` (the opt-in filter: only calls that can
make a record stop); and, where the eBPF engine exists and loads, under
`pyktrace --engine=bpf -t c`. Unpinned and pinned to one CPU (`taskset -c 0`
around the whole command, baseline included). Reported: median wall time,
overhead per syscall in µs (start-up corrected with /bin/true), ratios
against strace from the same run, and CPU per traced syscall: the engine's
(its threads' run time from /proc/PID/task/*/schedstat, before and after each run) next to
strace's (the rusage wait4 returns for the strace process, which covers
strace and its tracee, minus the untraced run's).

    python bench/trace_bench.py            # full sizes, median of 5
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
    """(name, argv, inherit) for each workload.

    Full sizes keep each traced run near a second, enough to bury start-up noise, while five runs
    of every tracer, pinned and unpinned, leave `make bench` well inside ten minutes.
    """
    s = 20 if quick else 1
    children = 10 if quick else 50
    sh = f"i=0; while [ $i -lt {children} ]; do /bin/true; i=$((i+1)); done"
    tar_src = ["/usr/include/linux"] if quick else ["/usr/include/linux", "/usr/include/x86_64-linux-gnu"]
    return [
        ("true", ["/bin/true"], False),
        ("getppid", [str(bin_ / "sysloop"), str(40000 // s)], False),
        ("rw64", [str(bin_ / "ioloop"), str(20000 // s)], False),
        ("namei", [str(bin_ / "nameiloop"), str(2500 // s)], False),
        ("tar", ["tar", "cf", "/dev/null", *[d for d in tar_src if Path(d).is_dir()]], False),
        ("sh50", ["/bin/sh", "-c", sh], True),
        ("threads4", [str(bin_ / "threads"), "4", str(2000 // s)], False),
    ]


TICK = os.sysconf("SC_CLK_TCK")
PY_LOOP = "PYKTRACE_FASTLOOP"  # 0: the engine's pure-Python loop


def pyktrace_argv() -> list[str]:
    return [sys.executable, "-m", "ktrace_cli.cli.pyktrace"]


def bpf_status(tmp: Path, env: dict[str, str]) -> str | None:
    """None when `pyktrace --engine=bpf` records here, else why it is skipped."""
    helptext = subprocess.run([*pyktrace_argv(), "--help"], capture_output=True, text=True, env=env).stdout
    if "--engine" not in helptext:
        return "this pyktrace has no --engine option (no eBPF engine)"
    r = subprocess.run([*pyktrace_argv(), "--engine=bpf", "-f", str(tmp / "probe.out"), "/bin/true"],
                       capture_output=True, text=True, env=env)  # fmt: skip
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        return "--engine=bpf cannot load: " + (lines[-1] if lines else f"exit {r.returncode}")
    return None


def tracers(tmp: Path, inherit: bool, bpf: bool, py_loop_rt: Path | None = None) -> dict[str, list[str]]:
    pyk = [*pyktrace_argv(), "-f", str(tmp / "bench.out")]
    if inherit:
        pyk.append("-i")
    out = {
        "untraced": [],
        "strace": ["strace", "-f", "-qq", "-o", "/dev/null"],
        "strace-bpf": ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=%file", "-o", "/dev/null"],
        "pyk-c": [*pyk, "-t", "c"],
        "pyk-n": [*pyk, "-t", "n"],
        "pyk-n-sec": [*pyk, "-t", "n", "--seccomp=on"],
    }
    if bpf:
        out["bpf-c"] = [*pyk, "--engine=bpf", "-t", "c"]
    if py_loop_rt is not None:
        # The engine's pure-Python loop (before the C loop), its own engine in its own runtime directory.
        out["pyk-c-py"] = ["env", f"{PY_LOOP}=0", f"XDG_RUNTIME_DIR={py_loop_rt}", *pyk, "-t", "c"]
    return out


def engine_cpu(rt: Path, argv: list[str]) -> float:
    """The CPU seconds the engine `argv` uses has run so far (0 if none runs).

    The sum of its threads' run time from /proc/PID/task/TID/schedstat, in
    nanoseconds: /proc/PID/stat's utime and stime come in clock ticks (10 ms),
    as coarse as a whole run of the shell loop's engine CPU. Ticks where
    schedstat is not compiled in.
    """
    own = [a.split("=", 1)[1] for a in argv if a.startswith("XDG_RUNTIME_DIR=")]
    where = (Path(own[0]) if own else rt) / "pyktrace" / ("bpf" if "--engine=bpf" in argv else "")
    try:
        pid = int((where / "engine.pid").read_text())
    except (OSError, ValueError):
        return 0.0
    try:
        return sum(int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
                   for tid in os.listdir(f"/proc/{pid}/task")) / 1e9  # fmt: skip
    except (OSError, ValueError, IndexError):
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the comm field: state is fields[0], so utime (14th) and stime (15th) are 11 and 12.
    return (int(fields[11]) + int(fields[12])) / TICK


def timed(argv: list[str], env: dict[str, str], rt: Path, engine: bool = True) -> tuple[float, float, float]:
    """(wall s, CPU s of the process and its waited-for children, engine CPU s) of one run.

    `engine`: the run is pyktrace's. Else its engine CPU is 0, not read: an
    engine left warm by the previous tracer may exit during an strace run,
    and its vanished CPU counted against strace (strace's pinned CPU read a
    quarter of its wall time)."""
    before = engine_cpu(rt, argv) if engine else 0.0
    start = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped above; keep Popen from waiting again
    if p.returncode != 0:
        # A run that failed measured nothing; a figure made from it would mislead.
        raise SystemExit(f"trace_bench: {' '.join(argv)} exited with {p.returncode}")
    return wall, ru.ru_utime + ru.ru_stime, (engine_cpu(rt, argv) - before) if engine else 0.0


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


def nan_ratio(a: float, b: float, floor: float = 0.0) -> str:
    return f"{a / b:.2f}" if b > floor else "–"


def run_mode(pinned: bool, quick: bool, runs: int, bin_: Path, tmp: Path, bpf_why: str | None,
             summary: list[str], py_loop: bool = False, only: frozenset[str] = frozenset()) -> None:  # fmt: skip
    rt = tmp / ("rt-pinned" if pinned else "rt-unpinned")
    rt.mkdir(mode=0o700, exist_ok=True)
    py_rt = rt.with_name(rt.name + "-py") if py_loop else None
    if py_rt is not None:
        py_rt.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(rt), PYTHONPATH=str(ROOT))
    prefix = ["taskset", "-c", "0"] if pinned else []
    mode = "pinned" if pinned else "unpinned"
    print(f"\n## {'pinned (taskset -c 0)' if pinned else 'unpinned'}: median of {runs} run(s)\n")
    wall: dict[str, dict[str, float]] = {}
    cpu: dict[str, dict[str, float]] = {}
    eng: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for name, argv, inherit in workloads(bin_, quick):
        if only and name != "true" and name not in only:
            continue
        wall[name], cpu[name], eng[name] = {}, {}, {}
        tracer_argvs = tracers(tmp, inherit, bpf_why is None, py_rt)
        cmds = {tname: prefix + tr + argv for tname, tr in tracer_argvs.items()}
        # An engine exits once nothing has been traced for a second, and a round of
        # the other tracers can take longer: each timed run of an engine's tracer
        # comes right after an untimed /bin/true under it, so no run pays the
        # engine's start (its wall time and, worse, its CPU were counted as the run's).
        warm = {tname: prefix + tr + ["/bin/true"] for tname, tr in tracer_argvs.items()
                if tname.startswith(("pyk", "bpf"))}  # fmt: skip
        # Interleaved: each run goes through every tracer, so a change in the machine's load
        # weighs on all of them alike.
        samples: dict[str, list[tuple[float, float, float]]] = {tname: [] for tname in cmds}
        for _ in range(runs):
            for tname, cmd in cmds.items():
                if tname in warm:
                    timed(warm[tname], env, rt)
                samples[tname].append(timed(cmd, env, rt, tname in warm))
                if tname == "pyk-c":
                    counts[name] = count_calls(tmp / "bench.out")
        for tname, got in samples.items():
            wall[name][tname] = statistics.median(s[0] for s in got)
            cpu[name][tname] = statistics.median(s[1] for s in got)
            eng[name][tname] = statistics.median(s[2] for s in got)
    names = list(tracers(tmp, False, bpf_why is None, py_rt))
    traced = names[1:]
    print("| workload | syscalls | " + " | ".join(f"{n} ms" for n in names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for name, row in wall.items():
        print(f"| {name} | {counts[name]} | " + " | ".join(f"{row[n] * 1e3:.1f}" for n in names) + " |")
    ratio_cols = ["pyk-c/strace", "pyk-n/strace", "pyk-n-sec/strace-bpf"]
    if bpf_why is None:
        ratio_cols.append("bpf-c/strace")
    if py_rt is not None:
        ratio_cols.append("pyk-c-py/strace")
    print("\nWall overhead per syscall, µs (start-up corrected with /bin/true), and ratios "
          "against strace from this run\n")  # fmt: skip
    print("| workload | " + " | ".join(traced) + " | " + " | ".join(ratio_cols) + " |")
    print("|---|" + "---:|" * (len(traced) + len(ratio_cols)))
    base = wall["true"]
    pyk = [t for t in traced if t.startswith(("pyk", "bpf"))]

    def spent(name: str, t: str) -> float:
        """CPU seconds of the run over the untraced one: tracer (and engine) plus the tracee's extra."""
        return cpu[name][t] + eng[name].get(t, 0.0) - cpu[name]["untraced"]

    cpu_lines = []
    for name, row in wall.items():
        if name == "true":
            continue
        n = counts[name]
        per = {t: (row[t] - row["untraced"] - (base[t] - base["untraced"])) / n * 1e6 for t in traced}
        # CPU is start-up corrected the same way: the /bin/true run's share is subtracted.
        extra = {t: (spent(name, t) - spent("true", t)) / n * 1e6 for t in traced}
        engine = {t: (eng[name][t] - eng["true"][t]) / n * 1e6 for t in pyk}
        ratios = [nan_ratio(per["pyk-c"], per["strace"]), nan_ratio(per["pyk-n"], per["strace"]),
                  nan_ratio(per["pyk-n-sec"], per["strace-bpf"], 0.5)]  # fmt: skip
        if bpf_why is None:
            ratios.append(nan_ratio(per["bpf-c"], per["strace"]))
        shown = ratios + ([nan_ratio(per["pyk-c-py"], per["strace"])] if py_rt is not None else [])
        cpu_ratios = [nan_ratio(engine["pyk-c"], extra["strace"]), nan_ratio(extra["pyk-c"], extra["strace"])]
        print(f"| {name} | " + " | ".join(f"{per[t]:.1f}" for t in traced) + " | " + " | ".join(shown) + " |")
        cpu_lines.append(f"| {name} | {extra['strace']:.1f} | {extra['strace-bpf']:.1f} | "
                         + " | ".join(f"{engine[t]:.1f} | {extra[t]:.1f}" for t in pyk)
                         + " | " + " | ".join(cpu_ratios) + " |")  # fmt: skip
        summary.append(f"| {mode}: {name} | {per['strace']:.1f} | {per['strace-bpf']:.1f} | {per['pyk-c']:.1f} | "
                       f"{per['pyk-n']:.1f} | {per['pyk-n-sec']:.1f} | " + " | ".join(ratios + cpu_ratios)
                       + " |")  # fmt: skip
    print("\nCPU per traced syscall, µs, start-up corrected: each pyktrace's engine alone (its threads' run time "
          "from /proc schedstat), and every run's extra CPU over the untraced run (strace: its wait4 rusage, which covers "
          "strace and its tracee; pyktrace: the engine plus the client and its tracee). Strace's figure "
          "includes the tracee's share of the stops, so `engine/strace` flatters the engine a little and "
          "`extra/strace` compares like with like. Goal: engine/strace at most 1.0.\n")  # fmt: skip
    print("| workload | strace extra | strace-bpf extra | " + " | ".join(f"{t} engine | {t} extra" for t in pyk)
          + " | pyk-c engine/strace | pyk-c extra/strace |")  # fmt: skip
    print("|---|---:|---:|" + "---:|---:|" * len(pyk) + "---:|---:|")
    print("\n".join(cpu_lines))
    print("\nStart-up (/bin/true minus untraced), ms: " + ", ".join(
        f"{t} {(base[t] - base['untraced']) * 1e3:.1f}" for t in traced))  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and one run (CI)")
    ap.add_argument("--runs", type=int, default=0, help="runs per measurement (default 5, quick 1)")
    ap.add_argument("--mode", choices=["both", "pinned", "unpinned"], default="both")
    ap.add_argument("--summary", type=Path, help="append the compact markdown table to this file")
    ap.add_argument("--only", metavar="W1,W2", help="only these workloads (and true, the start-up baseline)")
    ap.add_argument("--py-loop", action="store_true",
                    help=f"also run -t c on an engine with its pure-Python loop ({PY_LOOP}=0), interleaved")
    args = ap.parse_args()
    for tool in ("gcc", "strace", "taskset", "tar"):
        if shutil.which(tool) is None:
            print(f"trace_bench: {tool} is required", file=sys.stderr)
            return 1
    runs = args.runs or (1 if args.quick else 5)
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="trace-bench-") as d:
        tmp = Path(d)
        bin_ = tmp / "bin"
        bin_.mkdir()
        build(bin_)
        probe_rt = tmp / "rt-probe"
        probe_rt.mkdir(mode=0o700)
        bpf_why = bpf_status(tmp, dict(os.environ, XDG_RUNTIME_DIR=str(probe_rt), PYTHONPATH=str(ROOT)))
        _stop_engine(probe_rt / "pyktrace")
        print(f"# pyktrace vs strace ({os.uname().release}, {os.cpu_count()} CPUs, "
              f"{'quick' if args.quick else 'full'} sizes)")  # fmt: skip
        print("eBPF engine: " + ("measured (bpf-c)" if bpf_why is None else f"skipped: {bpf_why}"))
        bpf_head = " bpf-c/strace |" if bpf_why is None else ""
        summary += [f"\n**pyktrace**, overhead per system call in µs (start-up excluded, median of {runs}), "
                    "against `strace -f` and `strace -f --seccomp-bpf -e trace=%file`:\n",
                    "| workload | strace | strace-bpf | `-t c` | `-t n` | `-t n --seccomp=on` | c / strace | "
                    "n / strace | n+seccomp / strace-bpf |" + bpf_head + " c engine CPU / strace CPU | c CPU / strace CPU |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if bpf_why is None else "")
                    + "---:|---:|"]  # fmt: skip
        modes = {"both": [False, True], "pinned": [True], "unpinned": [False]}[args.mode]
        for pinned in modes:
            run_mode(pinned, args.quick, runs, bin_, tmp, bpf_why, summary, args.py_loop,
                     frozenset(args.only.split(",")) if args.only else frozenset())  # fmt: skip
            _stop_engine(tmp / ("rt-pinned" if pinned else "rt-unpinned") / "pyktrace")
            _stop_engine(tmp / ("rt-pinned-py" if pinned else "rt-unpinned-py") / "pyktrace")
        if bpf_why is not None:  # the idle-engine check is bpf_bench's (interleaved)
            summary.append(f"\neBPF engine rows skipped: {bpf_why}.")
    if args.summary:
        with args.summary.open("a") as f:
            f.write("\n".join(summary) + "\n")
    return 0

if __name__ == "__main__":
    sys.exit(main())

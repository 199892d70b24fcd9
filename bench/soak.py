"""The soak (`make soak`, not in CI): the reliability suite, larger loads and a long busy shell loop, then the figures table.

1. `pytest tests/reliability` with KTRACE_FIGURES set, so every test records
   its figures (loads, signal faults, hostile inputs to pykdump; the
   hostile-input tests take KTRACE_FUZZ_EXAMPLES examples each).
2. Larger loads, each untraced, under strace and under `pyktrace -i -t +w`:
   syscall counts, output bytes and lost records checked as in test_load.
3. A busy shell loop traced for --minutes (default 10): every line it wrote
   is in the trace's GIO records, nothing is lost, and the engine's memory
   at the end is compared with its memory at the start.

    python bench/soak.py [--minutes 10] [--fuzz-examples 500]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ktrace_cli.format import constants as K  # noqa: E402
from ktrace_cli.format.layouts import AMD64  # noqa: E402
from ktrace_cli.format.reader import iter_records  # noqa: E402
from tests.integration.conftest import _stop_engine  # noqa: E402
from tests.reliability import figures, loads  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from load_bench import Keeper  # noqa: E402


def run_suite(env: dict[str, str]) -> int:
    print("## tests/reliability with figures", flush=True)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(ROOT / "tests" / "reliability")], env=env, cwd=ROOT,
                          check=False).returncode  # fmt: skip


def big_load(w: loads.Workload, env: dict[str, str], tmp: Path, ignored: frozenset[int]) -> bool:
    plain = loads.run_untraced(w, tmp / f"{w.name}-u", env)
    theirs = loads.run_strace(w, tmp / f"{w.name}-s", env, ignored)
    ours = loads.run_pyktrace(w, tmp / f"{w.name}-p", env)
    lost = loads.losses(ours.records)
    counts_match = loads.comparable(ours.counts, w) == loads.comparable(theirs.counts, w)
    held = (plain.returncode == ours.returncode == 0 and ours.outputs == plain.outputs
            and counts_match and not lost)  # fmt: skip
    figures.record("load", workload=w.name, records=len(ours.records), lost=len(lost),
                   syscalls=sum(ours.counts.values()), held=int(held))  # fmt: skip
    if not held:
        print(f"{w.name}: NOT HELD (counts match {counts_match}, lost {lost[:5]}, "
              f"status {ours.returncode})")  # fmt: skip
    for d in tmp.glob(f"{w.name}-*"):
        shutil.rmtree(d) if d.is_dir() else d.unlink()
    return held


def shell_soak(minutes: float, env: dict[str, str], tmp: Path) -> bool:
    """A busy shell loop traced for `minutes`; engine RSS at start and end."""
    root = tmp / "soak"
    (root / "out").mkdir(parents=True)
    script = (f"end=$(( $(date +%s) + {int(minutes * 60)} )); i=0; "
              'while [ "$(date +%s)" -lt "$end" ]; do echo "line $i" >> out/log; /bin/true; '
              "i=$((i+1)); done; echo $i")  # fmt: skip
    trfile = tmp / "soak.ktrace"
    keeper = Keeper(env, tmp)
    try:
        rss_start = loads.proc_status(keeper.engine, "VmRSS")
        t0 = time.perf_counter()
        p = subprocess.run([*loads.PYKTRACE, "-i", "-t", loads.ALL_OBSERVABLE, "-f", str(trfile),
                            "/bin/sh", "-c", script], cwd=root, env=env, capture_output=True,
                           check=False)  # fmt: skip
        wall = time.perf_counter() - t0
        rss_end = loads.proc_status(keeper.engine, "VmRSS")
        hwm_end = loads.proc_status(keeper.engine, "VmHWM")
    finally:
        keeper.close()
    log = (root / "out" / "log").read_bytes()
    iterations = int(p.stdout or b"0")
    expected = b"".join(b"line %d\n" % i for i in range(iterations))
    records = list(iter_records(str(trfile)))
    written = b"".join(r.payload[AMD64.genio_fixed.size:] for r in records
                       if r.type == K.KTR_GENIO and r.payload[8:13] == b"line "
                       and AMD64.genio_fixed.unpack_from(r.payload)[1] == K.UIO_WRITE)  # fmt: skip
    lost = loads.losses(records)
    held = p.returncode == 0 and log == expected and written == log and not lost
    figures.record("load", workload=f"shell-soak-{minutes:g}min", records=len(records),
                   lost=len(lost), iterations=iterations, held=int(held))  # fmt: skip
    figures.record("engine-rss", start_kb=rss_start, end_kb=rss_end, peak_kb=hwm_end)
    print(f"shell soak: {iterations} iterations, {len(records)} records in {wall:.0f} s "
          f"({len(records) / wall:.0f}/s); engine RSS {rss_start} kB at start, {rss_end} kB "
          f"at end, peak {hwm_end} kB; held {held}", flush=True)  # fmt: skip
    trfile.unlink()
    return held


def table(path: Path, suite_status: int) -> str:
    figs = figures.load(path) if path.exists() else []
    load_figs = [f for f in figs if f["name"] == "load"]
    faults = [f for f in figs if f["name"] == "fault"]
    bad = sum(int(f.get("inputs", 0)) for f in figs if f["name"] == "pykdump-hostile-input")
    rss = [f for f in figs if f["name"] == "engine-rss"]
    lost = sum(int(f.get("lost", 0)) for f in load_figs + faults)
    held = sum(1 for f in load_figs if int(f.get("held", 1)) and not int(f.get("lost", 0)))
    rows = [
        ("loads held", f"{held} of {len(load_figs)}"),
        ("faults survived", f"{sum(1 for f in faults if not int(f['lost']))} of {len(faults)}"),
        ("bad inputs tried", str(bad) if bad else "none recorded"),
        ("records traced", str(sum(int(f.get("records", 0)) for f in load_figs + faults))),
        ("records lost", str(lost)),
        ("engine RSS start / end / peak",
         " / ".join(f"{rss[-1][k]} kB" for k in ("start_kb", "end_kb", "peak_kb")) if rss else "-"),
        ("tests/reliability", "passed" if suite_status == 0 else f"FAILED ({suite_status})"),
    ]  # fmt: skip
    return "| figure | value |\n|---|---:|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10, help="length of the shell-loop soak")
    ap.add_argument("--fuzz-examples", type=int, default=500,
                    help="KTRACE_FUZZ_EXAMPLES for the hostile-input tests")  # fmt: skip
    ap.add_argument("--no-suite", action="store_true", help="skip the pytest run")
    args = ap.parse_args()
    for tool in ("gcc", "strace", "make"):
        if shutil.which(tool) is None:
            print(f"soak: {tool} is required", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory(prefix="soak-") as d:
        tmp = Path(d)
        rt = tmp / "rt"
        rt.mkdir(mode=0o700)
        fig_path = tmp / "figures.jsonl"
        os.environ[figures.ENV] = str(fig_path)
        env = dict(os.environ, XDG_RUNTIME_DIR=str(rt), PYTHONPATH=str(ROOT))
        suite_env = dict(env)
        suite_env.setdefault("KTRACE_FUZZ_EXAMPLES", str(args.fuzz_examples))
        status = 0 if args.no_suite else run_suite(suite_env)
        progs = tmp / "bin"
        progs.mkdir()
        loads.build_progs(progs)
        ignored = loads.command_sigign(env, tmp)
        print("\n## larger loads", flush=True)
        ok = True
        for w in (loads.make_project(40), loads.compileall("email"), loads.compileall("xml"),
                  loads.forktree(1000, progs), loads.iothreads(64, 256, progs)):  # fmt: skip
            t0 = time.perf_counter()
            ok &= big_load(w, env, tmp, ignored)
            print(f"{w.name}: {time.perf_counter() - t0:.1f} s", flush=True)
        print(f"\n## busy shell loop, {args.minutes:g} min", flush=True)
        ok &= shell_soak(args.minutes, env, tmp)
        _stop_engine(rt / "pyktrace")
        print("\n## figures\n")
        print(table(fig_path, status))
    return 0 if ok and status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

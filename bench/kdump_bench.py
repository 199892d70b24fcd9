"""pykdump throughput and memory on a synthetic FreeBSD amd64 trace of mixed records.

Usage: .venv/bin/python bench/kdump_bench.py [--records N] [--quick] [--profile MODE]

Builds (or reuses) a trace of N records with the project's writer: a PROCCTOR
(FreeBSD amd64, so arguments are decoded), then openat/read/write CALLs with
realistic arguments, their RETs (one openat in four fails with ENOENT), NAMI
paths and 64-byte GIO text.  Each measurement runs in a fresh interpreter with
stdout on /dev/null and reports its own wall time and peak RSS
(VmHWM).  Ratios are against the bare framing loop
(TraceReader alone), the ceiling for anything written in Python on this reader.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ktrace_cli.format import constants as K  # noqa: E402
from ktrace_cli.format.records import (  # noqa: E402
    Genio,
    Namei,
    Payload,
    ProcCtor,
    Record,
    Syscall,
    Sysret,
)
from ktrace_cli.format.writer import TraceFile, encode_record, make_record  # noqa: E402

FORMAT_VERSION = 1  # bump when the generated trace changes, so old files are not reused
GOAL_TEXT_RPS = 200_000
GOAL_RSS_GROWTH = 0.10
GOAL_VIEW_RPS = 100_000  # each whole-trace view (issue 11)
GOAL_COLOR_RATIO = 1.5  # --color=always against default text, same run

PID, COMM = 48213, "cat"
TIDS = (100387, 100388)
AT_FDCWD = (1 << 64) - 100  # -100 as a register_t
O_RDONLY_CLOEXEC = 0x100000
SYS_READ, SYS_WRITE, SYS_OPENAT = 3, 4, 499
ENOENT = 2
PATHS = [
    b"/usr/share/misc/termcap.db",
    b"/etc/nsswitch.conf",
    b"/usr/local/lib/libintl.so.8",
    b"/home/alice/src/ktrace_cli/README.md",
]
TEXT = b"The quick brown fox jumps over the lazy dog; kdump prints this.\n"
assert len(TEXT) == 64

MODES = {
    # name: (label, pykdump arguments before -f)
    "bare": ("framing loop (TraceReader)", None),
    "text": ("pykdump (default text)", []),
    "plain": ("pykdump -n", ["-n"]),
    "json": ("pykdump --json", ["--json"]),
    "summary": ("pykdump --summary", ["--summary"]),
    "detail": ("--summary --detail --histogram", ["--summary", "--detail", "--histogram"]),
    "tree": ("pykdump --tree", ["--tree"]),
    "errors": ("pykdump --errors", ["--errors"]),
    "timeline": ("pykdump --timeline", ["--timeline", "{out}"]),
    "diff": ("pykdump --diff (file vs itself)", ["--diff", "{file}", "{file}"]),
    "color": ("pykdump --color=always", ["--color=always"]),
    "calls": ("pykdump --calls", ["--calls"]),
}
GOAL_CALLS_PER_S = 100_000
VIEWS = ("summary", "detail", "tree", "errors", "timeline", "diff")


# ---------------------------------------------------------------------------
# The trace.


def _group(i: int, sec: int, nsec: int) -> list[Record]:
    """One openat/read/write round: 9 records."""
    tid = TIDS[i & 1]
    fd = 3 + (i % 5)
    path = PATHS[i % len(PATHS)]
    buf = 0x7FFFFFFFD000 + 0x40 * (i % 64)
    fails = i % 4 == 3
    payloads: list[Payload] = [
        Syscall(SYS_OPENAT, (AT_FDCWD, 0x3A4E2C1B8000 + 0x20 * (i % 8), O_RDONLY_CLOEXEC, 0)),
        Namei(path),
        Sysret(SYS_OPENAT, ENOENT, 0) if fails else Sysret(SYS_OPENAT, 0, fd),
        Syscall(SYS_READ, (fd, buf, 4096)),
        Genio(fd, K.UIO_READ, TEXT),
        Sysret(SYS_READ, 0, len(TEXT)),
        Syscall(SYS_WRITE, (1, buf, len(TEXT))),
        Genio(1, K.UIO_WRITE, TEXT),
        Sysret(SYS_WRITE, 0, len(TEXT)),
    ]
    out = []
    for payload in payloads:
        nsec += 2_137
        if nsec >= 1_000_000_000:
            sec, nsec = sec + 1, nsec - 1_000_000_000
        out.append(make_record(payload, pid=PID, tid=tid, comm=COMM, sec=sec, frac=nsec, cpu=tid & 3))
    return out


def calls_in(count: int) -> int:
    """The system calls of a trace of `count` records (each CALL makes one --calls line)."""
    full, rest = divmod(count - 1, 9)  # after the PROCCTOR, groups of 9 records hold 3 calls
    return 3 * full + (rest > 0) + (rest > 3) + (rest > 6)


def build_trace(path: Path, count: int) -> None:
    """Write `count` records to `path` (atomically: a partial file never has the name)."""
    tmp = path.with_suffix(".partial")
    writer = TraceFile(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600))
    try:
        sec, nsec = 1_760_000_000, 0
        batch = [
            encode_record(
                make_record(
                    ProcCtor(K.SV_ABI_FREEBSD | K.SV_LP64), pid=PID, tid=TIDS[0], comm=COMM,
                    sec=sec, frac=nsec,
                )
            )
        ]  # fmt: skip
        written = 1
        i = 0
        while written < count:
            group = _group(i, sec, nsec)[: count - written]
            sec, nsec = group[-1].sec, group[-1].frac
            batch.extend(encode_record(r) for r in group)
            written += len(group)
            i += 1
            if len(batch) >= 90_000:
                writer.buf += b"".join(batch)
                batch.clear()
                if writer.flush():
                    raise OSError(writer.failed, os.strerror(writer.failed))
        writer.buf += b"".join(batch)
        if writer.flush():
            raise OSError(writer.failed, os.strerror(writer.failed))
    finally:
        writer.close()
    os.replace(tmp, path)


def trace_for(count: int) -> Path:
    path = Path(tempfile.gettempdir()) / f"ktrace_cli_bench_v{FORMAT_VERSION}_{count}.out"
    if not path.exists():
        started = time.perf_counter()
        build_trace(path, count)
        took = time.perf_counter() - started
        print(f"built {path} ({path.stat().st_size / 1e6:.0f} MB) in {took:.1f} s", file=sys.stderr)
    return path


# ---------------------------------------------------------------------------
# One measurement, in a fresh interpreter (the child side).


def run_mode(mode: str, path: str) -> int:
    """Run `mode` over `path` with stdout already on /dev/null; the record count for bare."""
    args = MODES[mode][1]
    if args is None:
        from ktrace_cli.format.reader import TraceReader, open_trace

        n = 0
        with open_trace(path) as stream:
            for _ in TraceReader(stream):
                n += 1
        return n
    from ktrace_cli.cli.pykdump import main

    if "{file}" in args:  # --diff names its files itself; each counts once in records/s
        return main([a.replace("{file}", path) for a in args])
    if "{out}" in args:
        with tempfile.TemporaryDirectory() as tmp:
            return main([a.replace("{out}", os.path.join(tmp, "t.json")) for a in args] + ["-f", path])
    return main([*args, "-f", path])


def peak_rss_kb() -> int:
    """This process's peak RSS since exec.

    VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across execve,
    so a child would report the bench parent's size at fork.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(mode: str, path: str, result: str) -> None:
    started = time.perf_counter()
    status = run_mode(mode, path)
    seconds = time.perf_counter() - started
    sys.stdout.flush()
    maxrss_kb = peak_rss_kb()
    Path(result).write_text(json.dumps({"seconds": seconds, "maxrss_kb": maxrss_kb, "status": status}))


def measure(mode: str, path: Path) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        # PYTHONUNBUFFERED would make sys.stdout.buffer a raw FileIO (one
        # write(2) per line); measure what a user gets by default.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        proc = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(path), result.name],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"{mode} failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
        data: dict[str, float] = json.loads(Path(result.name).read_text())
    if mode != "bare" and data["status"] != 0:
        raise SystemExit(f"pykdump exited {data['status']} in mode {mode}:\n{proc.stderr.strip()}")
    return data


# ---------------------------------------------------------------------------
# Report.


def profile(mode: str, path: Path, top: int = 25) -> None:
    """cProfile of one mode, stdout to /dev/null, the top costs by own time."""
    profiler = cProfile.Profile()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stdout.flush()
        os.dup2(devnull, 1)
        profiler.runcall(run_mode, mode, str(path))
        sys.stdout.flush()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(out.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in the trace (default 1M)")
    parser.add_argument("--quick", action="store_true", help="100k records (smoke test)")
    parser.add_argument("--profile", choices=sorted(MODES), help="print a cProfile of one mode and exit")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "RESULT"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        child(*opts.child)
        return 0
    count = 100_000 if opts.quick else opts.records
    path = trace_for(count)
    if opts.profile:
        profile(opts.profile, trace_for(min(count, 200_000)))
        return 0

    results = {mode: measure(mode, path) for mode in MODES}
    bare_rps = count / results["bare"]["seconds"]
    print(f"pykdump throughput, {count:,} records, {path.stat().st_size / 1e6:.0f} MB, Python {sys.version.split()[0]}")
    print()
    print(f"{'mode':<28} {'seconds':>8} {'records/s':>11} {'vs bare':>8} {'peak RSS':>9}")
    for mode, (label, _) in MODES.items():
        r = results[mode]
        rps = count / r["seconds"]
        print(
            f"{label:<28} {r['seconds']:8.2f} {rps:11,.0f} {rps / bare_rps:7.1%} {r['maxrss_kb'] / 1024:7.0f} MB"
        )
    text_rps = count / results["text"]["seconds"]
    verdict = "met" if text_rps >= GOAL_TEXT_RPS else "NOT met"
    print(f"\ngoal: default text >= {GOAL_TEXT_RPS:,} records/s: {verdict} ({text_rps:,.0f})")
    calls_ps = calls_in(count) / results["calls"]["seconds"]
    verdict = "met" if calls_ps >= GOAL_CALLS_PER_S else "NOT met"
    print(f"goal: --calls >= {GOAL_CALLS_PER_S:,} calls/s: {verdict} ({calls_ps:,.0f})")
    for mode in VIEWS:
        rps = count / results[mode]["seconds"] * (2 if mode == "diff" else 1)
        verdict = "met" if rps >= GOAL_VIEW_RPS else "NOT met"
        print(f"goal: {MODES[mode][0]} >= {GOAL_VIEW_RPS:,} records/s: {verdict} ({rps:,.0f})")
    color_ratio = results["color"]["seconds"] / results["text"]["seconds"]
    verdict = "met" if color_ratio <= GOAL_COLOR_RATIO else "NOT met"
    print(f"goal: colour costs <= {GOAL_COLOR_RATIO}x default text: {verdict} ({color_ratio:.2f}x)")

    big_count = 4 * count
    big = trace_for(big_count)
    big_result = measure("text", big)
    small_rss = results["text"]["maxrss_kb"]
    big_rss = big_result["maxrss_kb"]
    growth = big_rss / small_rss - 1
    print(f"\npeak RSS of pykdump (default text), {count:,} vs {big_count:,} records")
    print(f"{'records':>10} {'seconds':>8} {'records/s':>11} {'peak RSS':>9}")
    print(f"{count:>10,} {results['text']['seconds']:8.2f} {text_rps:11,.0f} {small_rss / 1024:7.0f} MB")
    print(
        f"{big_count:>10,} {big_result['seconds']:8.2f} {big_count / big_result['seconds']:11,.0f} "
        f"{big_rss / 1024:7.0f} MB"
    )
    verdict = "met" if growth <= GOAL_RSS_GROWTH else "NOT met"
    print(f"ratio {big_rss / small_rss:.2f}; goal: flat, within {GOAL_RSS_GROWTH:.0%}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

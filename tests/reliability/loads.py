"""Load workloads for the reliability suite and the soak: run untraced, under strace and under pyktrace, and compare.

Shared by tests/reliability/test_load.py, bench/load_bench.py and bench/soak.py.
A workload prepares its input tree in a fresh directory, runs one command in
it and names the files it writes; the three runs (untraced, `strace -f`,
`pyktrace -i -t +w`) each get their own directory.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ktrace_cli.abi import linux as abi
from ktrace_cli.format import constants as K
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import Record

PROGS = Path(__file__).parent / "progs"
PYKTRACE = [sys.executable, "-m", "ktrace_cli.cli.pyktrace"]
# Every trace point ptrace can observe: the default set (c n i s t u y) plus w.
ALL_OBSERVABLE = "+w"
# Every run without address-space randomisation (the personality is inherited
# through the tracer's fork and exec): cc1's brk calls follow where the
# randomised heap start falls, so two untraced strace runs differ otherwise.
NO_ASLR = ["setarch", "-R"] if shutil.which("setarch") else []
_SYSRET_ERROR = slice(4, 8)  # ktr_error in struct ktr_sysret (code, eosys, error, retval)

Counts = collections.Counter[tuple[str, str]]  # (program, syscall name) -> calls
# The program of the command's own execve: the tracer's child (strace) or pyktrace.
TRACER = "(tracer)"


def build_progs(out: Path) -> Path:
    """Compile progs/*.c into `out`; returns `out`."""
    for src in PROGS.glob("*.c"):
        subprocess.run(["gcc", "-O1", "-pthread", "-o", str(out / src.stem), str(src)], check=True)
    return out


# ---------------------------------------------------------------------------
# Workloads.


@dataclass(frozen=True)
class Workload:
    """One command run in a directory prepared for it, with the files it must write."""

    name: str
    prepare: Callable[[Path], None]
    argv: Callable[[Path], list[str]]
    outputs: Callable[[Path], Iterable[Path]]
    # Programs (comm) whose syscall counts depend on timing, and syscalls whose
    # counts are random, left out of the strace comparison: each workload
    # says why where it is defined.
    skip_programs: frozenset[str] = frozenset()
    skip_calls: frozenset[str] = frozenset()
    env: dict[str, str] = field(default_factory=dict)


def _files_under(root: Path, sub: str, suffixes: tuple[str, ...] = ("",)) -> list[Path]:
    return sorted(p for p in (root / sub).rglob("*") if p.is_file() and p.name.endswith(suffixes))


def make_project(nfiles: int) -> Workload:
    """`make -j2` of a generated C project: nfiles-1 modules, a header and main.c."""

    def prepare(root: Path) -> None:
        src = root / "proj"
        src.mkdir()
        decls = "".join(f"int f{i}(int);\n" for i in range(nfiles - 1))
        (src / "common.h").write_text(f"#define COMMON 7\n{decls}")
        for i in range(nfiles - 1):
            (src / f"f{i}.c").write_text(
                f'#include "common.h"\nint f{i}(int x) {{ return x * {i + 3} + COMMON; }}\n'
            )
        total = " + ".join(f"f{i}({i + 1})" for i in range(nfiles - 1))
        (src / "main.c").write_text(
            '#include <stdio.h>\n#include "common.h"\n'
            f'int main(void) {{ printf("%d\\n", {total}); return 0; }}\n'
        )
        objs = " ".join(["main.o", *(f"f{i}.o" for i in range(nfiles - 1))])
        (src / "Makefile").write_text(
            f"OBJS = {objs}\nprog: $(OBJS)\n\tgcc -o $@ $(OBJS)\n"
            "%.o: %.c common.h\n\tgcc -O1 -c -o $@ $<\n"
        )

    return Workload(
        name=f"make-j2-{nfiles}",
        prepare=prepare,
        argv=lambda root: [shutil.which("make") or "make", "-s", "-j2", "-C", str(root / "proj")],
        outputs=lambda root: _files_under(root, "proj", (".o", "prog")),
        # make's own processes (make and its children before they exec) are
        # left out: which job runs in which slot, how often make reads the
        # jobserver pipe, and whether it forks before or after a child exits
        # differ between two untraced strace runs of the same build.
        skip_programs=frozenset({"make"}),
        # glibc's mkstemp (gcc's and collect2's temporary files) draws from
        # getrandom with rejection sampling: about 1 name in 22 needs a
        # second draw, so the number of getrandom calls is random.
        skip_calls=frozenset({"getrandom"}),
    )


def compileall(package: str) -> Workload:
    """`python -m compileall` over a copy of a stdlib package, hash-based pycs (no mtimes)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])

    def prepare(root: Path) -> None:
        shutil.copytree(stdlib / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__", "test", "tests"))  # fmt: skip

    return Workload(
        name=f"compileall-{package}",
        prepare=prepare,
        # -d: the source path stored in each pyc is the same in every run's directory.
        argv=lambda root: [sys.executable, "-B", "-s", "-m", "compileall", "-q", "-f",
                           "--invalidation-mode", "checked-hash", "-d", f"/{package}",
                           str(root / package)],  # fmt: skip
        outputs=lambda root: _files_under(root, package, (".pyc",)),
        env={"PYTHONHASHSEED": "0"},  # the str hash seed would otherwise come from getrandom
    )


def forktree(n: int, progs: Path) -> Workload:
    """A binary tree of n processes, each writing one file and reaping its children."""
    return Workload(
        name=f"forktree-{n}",
        prepare=lambda root: (root / "tree").mkdir(),
        argv=lambda root: [str(progs / "forktree"), str(n), str(root / "tree")],
        outputs=lambda root: _files_under(root, "tree"),
    )


def iothreads(threads: int, blocks: int, progs: Path) -> Workload:
    """`threads` threads each writing and reading back `blocks` 4 KiB blocks of their own file."""
    return Workload(
        name=f"threads-{threads}x{blocks}",
        prepare=lambda root: (root / "io").mkdir(),
        argv=lambda root: [str(progs / "iothreads"), str(threads), str(blocks), str(root / "io")],
        outputs=lambda root: _files_under(root, "io"),
        # pthread_join waits on a futex only if the thread has not exited yet,
        # and glibc's lock on its stack cache is contended or not by chance:
        # the number of futex calls depends on scheduling.
        skip_calls=frozenset({"futex"}),
    )


def shell_loop(iterations: int) -> Workload:
    """A busy shell loop: builtins, forks of /bin/true and a file appended to."""
    script = (
        f'i=0; while [ $i -lt {iterations} ]; do echo "line $i" >> out/log; /bin/true; '
        "i=$((i+1)); done"
    )
    return Workload(
        name=f"shell-loop-{iterations}",
        prepare=lambda root: (root / "out").mkdir(),
        argv=lambda root: ["/bin/sh", "-c", f"cd {root} && {script}"],
        outputs=lambda root: _files_under(root, "out"),
    )


# ---------------------------------------------------------------------------
# Running.


@dataclass
class Run:
    """One finished run of a workload."""

    returncode: int
    stdout: bytes
    outputs: dict[str, bytes]
    wall: float
    counts: Counts = field(default_factory=collections.Counter)
    records: list[Record] = field(default_factory=list)
    nrecords: int = 0


def _env(base: dict[str, str], w: Workload) -> dict[str, str]:
    return dict(base, LC_ALL="C", **w.env)


def _outputs(w: Workload, root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in w.outputs(root)}


def _ignoring(sigs: frozenset[int]) -> Callable[[], None]:
    def setup() -> None:
        for s in sigs:
            try:
                signal.signal(s, signal.SIG_IGN)
            except (OSError, ValueError):
                pass  # not settable from Python (glibc's 32, 33): the command cannot differ there

    return setup


def at_one_path(tmp: Path, name: str, run: Callable[[Path], Run]) -> Run:
    """Call run(tmp/"run"), then move that tree aside to tmp/name.

    Runs that are compared call for call must see the same paths: a path's
    length changes the sizes the command allocates (python's compileall keeps
    every source path), so its malloc crosses a brk threshold in one run and
    not in the other. Two runs in "strace" and "pyktrace" directories made 48
    and 51 brk calls, or the same number, depending on the length of the
    temporary directory above them.
    """
    here = tmp / "run"
    result = run(here)
    here.rename(tmp / name)
    return result


def run_untraced(w: Workload, root: Path, env: dict[str, str]) -> Run:
    root.mkdir()
    w.prepare(root)
    t0 = time.perf_counter()
    p = subprocess.run([*NO_ASLR, *w.argv(root)], env=_env(env, w), cwd=root,
                       capture_output=True, check=False)  # fmt: skip
    return Run(p.returncode, p.stdout, _outputs(w, root), time.perf_counter() - t0)


def run_strace(w: Workload, root: Path, env: dict[str, str], ignored: frozenset[int],
               out: Path | None = None) -> Run:  # fmt: skip
    """Under `strace -f`; the command starts with `ignored` signals ignored, as pyktrace's does."""
    root.mkdir()
    w.prepare(root)
    log = out or root.with_suffix(".strace")
    t0 = time.perf_counter()
    p = subprocess.run([*NO_ASLR, "strace", "-f", "-qq", "-o", str(log), *w.argv(root)],
                       env=_env(env, w),
                       cwd=root, capture_output=True, check=False,
                       preexec_fn=_ignoring(ignored))  # fmt: skip
    wall = time.perf_counter() - t0
    r = Run(p.returncode, p.stdout, _outputs(w, root), wall, strace_counts(log.read_bytes()))
    log.unlink()
    return r


def run_pyktrace(w: Workload, root: Path, env: dict[str, str], trfile: Path | None = None,
                 points: str = ALL_OBSERVABLE, keep_records: bool = True) -> Run:  # fmt: skip
    root.mkdir()
    w.prepare(root)
    tf = trfile or root.with_suffix(".ktrace")
    t0 = time.perf_counter()
    p = subprocess.run([*NO_ASLR, *PYKTRACE, "-i", "-t", points, "-f", str(tf), *w.argv(root)],
                       env=_env(env, w), cwd=root, capture_output=True, check=False)  # fmt: skip
    wall = time.perf_counter() - t0
    records = list(iter_records(str(tf)))
    r = Run(p.returncode, p.stdout, _outputs(w, root), wall, trace_counts(records))
    r.nrecords = len(records)
    if keep_records:
        r.records = records
    return r


def command_sigign(env: dict[str, str], tmp: Path) -> frozenset[int]:
    """The signals a command started by pyktrace finds ignored (SigIgn of /proc/self/status)."""
    p = subprocess.run([*PYKTRACE, "-t", "u", "-f", str(tmp / "sigign.out"), "/bin/cat",
                        "/proc/self/status"], env=env, capture_output=True, check=True,
                       preexec_fn=_ignoring(frozenset()))  # fmt: skip
    (tmp / "sigign.out").unlink()
    mask = int(re.search(rb"^SigIgn:\s*([0-9a-f]+)", p.stdout, re.M).group(1), 16)  # type: ignore[union-attr]
    return frozenset(s for s in range(1, 65) if mask >> (s - 1) & 1)


# ---------------------------------------------------------------------------
# Counting.

_LINE = re.compile(rb"^(\d+) +(?:<\.\.\. )?([a-z0-9_]+)(\(| resumed>)")
_EXEC_OK = re.compile(rb'^(\d+) +execve\("([^"]*)".*\) += 0$|^(\d+) +<\.\.\. execve resumed>.*\) += 0$')
_EXEC_START = re.compile(rb'^(\d+) +execve\("([^"]*)"')
_NEW_TASK = re.compile(rb"^(\d+) +(?:<\.\.\. )?(?:clone3?|fork|vfork)(?:\(| resumed>).*\) += (\d+)$")


def comm_of(path: bytes) -> str:
    """The comm the kernel gives a process after exec of `path` (basename, 15 bytes)."""
    return path.rsplit(b"/", 1)[-1][: K.MAXCOMLEN].decode("utf-8", "replace")


def strace_counts(text: bytes) -> Counts:
    """Completed syscalls per (program, name) in `strace -f -qq` output.

    A call interrupted by a signal and restarted by the kernel (= ? ERESTART...)
    is entered twice; it is counted once, as in trace_counts. The program of
    a line is what its pid last exec'd, or what its parent ran when it forked
    (strace's own -Y comm is read late and misnames a child just after exec).
    """
    lines = text.splitlines()
    parent: dict[int, tuple[int, int]] = {}  # child -> (parent, line of the clone's return)
    execs: dict[int, list[tuple[int, str]]] = collections.defaultdict(list)
    pending_exec: dict[int, bytes] = {}
    for i, line in enumerate(lines):
        if m := _NEW_TASK.match(line):
            parent[int(m.group(2))] = (int(m.group(1)), i)
        if m := _EXEC_START.match(line):
            pending_exec[int(m.group(1))] = m.group(2)
        if m := _EXEC_OK.match(line):
            pid = int(m.group(1) or m.group(3))
            path = m.group(2) or pending_exec.get(pid, b"?")
            execs[pid].append((i, comm_of(path)))

    def program(pid: int, at: int) -> str:
        for i, comm in reversed(execs.get(pid, [])):
            if i < at:
                return comm
        if pid in parent:
            ppid, i = parent[pid]
            return program(ppid, i)
        return TRACER

    counts: Counts = collections.Counter()
    for i, line in enumerate(lines):
        m = _LINE.match(line)
        if m is None:
            continue
        pid, name, started = int(m.group(1)), m.group(2).decode(), m.group(3) == b"("
        if started:
            counts[(program(pid, i), name)] += 1
        if b"= ? ERESTART" in line:
            counts[(program(pid, i), name)] -= 1
    return +counts


def _code(r: Record) -> int:
    return int.from_bytes(r.payload[:2], "little", signed=True)


def _name(code: int) -> str:
    return abi.syscall_name(code) or f"#{code}"


def _error(r: Record) -> int:
    return int.from_bytes(r.payload[_SYSRET_ERROR], "little", signed=True)


def after_pyktrace(records: list[Record]) -> list[Record]:
    """The command's records: from the first one that is not pyktrace's own (its exec's RET)."""
    for i, r in enumerate(records):
        if r.comm_name != b"pyktrace" and r.type != K.KTR_PROCCTOR:
            return records[i:]
    return []


def trace_counts(records: list[Record]) -> Counts:
    """Completed syscalls per (comm, name): CALLs, less those whose RET is ERESTART.

    pyktrace's own calls before it execs the command are not the workload's;
    the command's execve itself is made by pyktrace, so it is counted here
    as strace (which shows the program's own execve) counts it.
    """
    counts: Counts = collections.Counter()
    rest = after_pyktrace(records)
    for r in rest:
        if r.type == K.KTR_SYSCALL:
            counts[(r.comm_name.decode(), _name(_code(r)))] += 1
        elif r.type == K.KTR_SYSRET and _error(r) == K.ERESTART:
            counts[(r.comm_name.decode(), _name(_code(r)))] -= 1
    if rest:
        counts[(TRACER, "execve")] += 1
    return +counts


def comparable(counts: Counts, w: Workload) -> Counts:
    """`counts` without the programs and calls the workload leaves out of the comparison."""
    return collections.Counter({k: v for k, v in counts.items()
                                if k[0] not in w.skip_programs and k[1] not in w.skip_calls})  # fmt: skip


# ---------------------------------------------------------------------------
# Records lost.

_NO_RETURN = frozenset({"exit", "exit_group"})


def losses(records: list[Record], allow_open: Callable[[int, str], bool] | None = None) -> list[str]:
    """Every way the trace shows a record missing; [] when nothing was lost.

    Each process has one PROCCTOR, its first record, and one PROCDTOR, its
    last; each thread's CALL is followed by its RET before its next CALL,
    except a call the thread never returns from (exit, exit_group, or what
    `allow_open(tid, name)` accepts, e.g. a call a signal killed it in).
    pyktrace's own first records may begin with the RET of the call it was
    in when the engine attached. A PROCDTOR ends a process's life: a long
    trace outlives pid_max, and a pid (and its tids) may then be reused by a
    new process, whose records are a new life, checked on their own.
    """
    found: list[str] = []
    life: dict[int, list[Record]] = collections.defaultdict(list)  # pid -> its current life
    tids_of: dict[int, set[int]] = collections.defaultdict(set)
    open_call: dict[int, int | None] = {}
    seen_call: set[int] = set()

    def close_calls(tids: set[int]) -> None:
        for tid in tids:
            code = open_call.pop(tid, None)
            seen_call.discard(tid)
            if code is None:
                continue
            name = _name(code)
            if name not in _NO_RETURN and not (allow_open and allow_open(tid, name)):
                found.append(f"tid {tid}: last CALL {name} has no RET")

    for r in records:
        life[r.pid].append(r)
        tids_of[r.pid].add(r.tid)
        if r.type == K.KTR_SYSCALL:
            prev = open_call.get(r.tid)
            if prev is not None and _name(prev) not in _NO_RETURN:
                found.append(f"tid {r.tid}: CALL {_name(prev)} has no RET")
            open_call[r.tid] = _code(r)
            seen_call.add(r.tid)
        elif r.type == K.KTR_SYSRET:
            prev = open_call.get(r.tid)
            if prev is None and r.tid in seen_call:
                found.append(f"tid {r.tid}: RET {_name(_code(r))} without its CALL")
            elif prev is not None and prev != _code(r):
                found.append(f"tid {r.tid}: CALL {_name(prev)} answered by RET "
                             f"{_name(_code(r))}")  # fmt: skip
            open_call[r.tid] = None
            seen_call.add(r.tid)
        elif r.type == K.KTR_PROCDTOR:
            _check_life(r.pid, life.pop(r.pid), found)
            close_calls(tids_of.pop(r.pid))
    close_calls(set(open_call))
    for pid, recs in life.items():
        _check_life(pid, recs, found)
    return found


def _check_life(pid: int, recs: list[Record], found: list[str]) -> None:
    # A successful exec starts a new image, announced by one more PROCCTOR
    # (written at the exec event, before the execve's EJUSTRETURN RET).
    execs = sum(r.type == K.KTR_SYSRET and _error(r) == K.EJUSTRETURN for r in recs)
    ctors = sum(r.type == K.KTR_PROCCTOR for r in recs)
    dtors = sum(r.type == K.KTR_PROCDTOR for r in recs)
    if ctors != 1 + execs or recs[0].type != K.KTR_PROCCTOR:
        found.append(f"pid {pid}: {ctors} PROCCTOR for {execs} exec(s), "
                     f"first record type {recs[0].type}")  # fmt: skip
    if dtors != 1 or recs[-1].type != K.KTR_PROCDTOR:
        found.append(f"pid {pid}: {dtors} PROCDTOR, last record type {recs[-1].type}")


def process_count(records: list[Record]) -> int:
    return sum(r.type == K.KTR_PROCCTOR for r in records)


def engine_pid(env: dict[str, str]) -> int:
    return int((Path(env["XDG_RUNTIME_DIR"]) / "pyktrace" / "engine.pid").read_text())


def proc_status(pid: int, key: str) -> int:
    """A kB figure from /proc/PID/status (VmRSS, VmHWM), 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (not its children), from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

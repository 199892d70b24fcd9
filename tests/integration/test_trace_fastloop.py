"""The engine's C loop (trace/fastloop.c) writes the records its pure-Python loop writes.

Each program runs twice, under an engine with the C loop and under one with
PYKTRACE_FASTLOOP=0, address randomisation off and the same environment
size, so pointers match; the records must be equal once pids and tids are
numbered in order of appearance and times left out. Threads' records are
compared thread by thread: their interleaving is the scheduler's.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrace_cli.abi import linux as abi
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, FDPAIR
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import Record, Syscall, Sysret
from tests.integration.conftest import PYKTRACE, TIMEOUT, _stop_engine

LOOPS = ("c", "python")
NR = abi.syscall_number
# Calls whose first N arguments, and calls whose return value, are pids or tids.
PID_ARGS = {NR("wait4"): 1, NR("kill"): 1, NR("tkill"): 1, NR("tgkill"): 2, NR("waitid"): 2}
PID_RETS = frozenset(NR(n) for n in ("clone", "clone3", "fork", "vfork", "wait4", "getpid", "gettid",
                                     "set_tid_address"))  # fmt: skip


@pytest.fixture(scope="session")
def loop_envs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, str]]]:
    """An engine per loop, each in its own runtime directory (names of equal length)."""
    if shutil.which("setarch") is None:
        pytest.skip("setarch (util-linux) is not installed")
    base = tmp_path_factory.mktemp("loops")
    envs = {}
    for loop in LOOPS:
        rt = base / f"xdg-{loop[0]}"
        rt.mkdir(mode=0o700)
        env = dict(os.environ, XDG_RUNTIME_DIR=str(rt), PYKTRACE_FASTLOOP="0" if loop == "python" else "1")
        env.pop("PYKTRACE_ENGINE", None)
        envs[loop] = env
    yield envs
    for env in envs.values():
        _stop_engine(Path(env["XDG_RUNTIME_DIR"]) / "pyktrace")


def run(env: dict[str, str], tmp: Path, command: list[str], options: list[str]) -> tuple[int, list[Record]]:
    """pyktrace's command mode with randomisation off; the return code and the program's records."""
    out = tmp / f"{env['PYKTRACE_FASTLOOP']}.out"
    proc = subprocess.run(["setarch", platform.machine(), "-R", *PYKTRACE, *options, "-f", str(out), *command],
                          stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=TIMEOUT)  # fmt: skip
    records = list(iter_records(str(out)))
    for i, r in enumerate(records):
        if r.comm_name != b"pyktrace" and i > 0:
            return proc.returncode, records[i:]
    return proc.returncode, []


def numbering(records: list[Record]) -> dict[int, int]:
    """Each pid and tid -> -1, -2, ... in order of first appearance."""
    ids: dict[int, int] = {}
    for r in records:
        ids.setdefault(r.pid, -1 - len(ids))
        ids.setdefault(r.tid, -1 - len(ids))
    return ids


def normalized(records: list[Record], ids: dict[int, int] | None = None) -> list[tuple[object, ...]]:
    """Records without their times, pids and tids numbered (also as the arguments and
    return values that are pids: fork's child, a wait4 pid; only there, as a flags
    value of 2050 is no pid even in the run whose pid is 2050)."""
    if ids is None:
        ids = numbering(records)
    out: list[tuple[object, ...]] = []
    for r in records:
        payload: object = r.payload
        if r.type == K.KTR_SYSCALL:
            c = Syscall.unpack(AMD64, r.payload)
            n = PID_ARGS.get(c.code, 0)
            payload = (c.code, tuple(ids.get(a, a) if i < n else a for i, a in enumerate(c.args)))
        elif r.type == K.KTR_SYSRET:
            s = Sysret.unpack(AMD64, r.payload)
            payload = (s.code, s.error, ids.get(s.retval, s.retval) if s.code in PID_RETS else s.retval)
        elif r.type == K.KTR_STRUCT and r.payload.startswith(b"fdpair\0"):
            # A pipe's inode number is each run's own: only whether it is known compares.
            fd0, fd1, kind, family, ino0, ino1 = FDPAIR.unpack(r.payload[len(b"fdpair\0") :])
            payload = ("fdpair", fd0, fd1, kind, family, ino0 > 0, ino1 > 0)
        out.append((r.type, r.drop, r.version, ids[r.pid], ids[r.tid], r.comm, payload))
    return out


def per_thread(records: list[Record]) -> list[list[tuple[object, ...]]]:
    """Each thread's records, normalized; the threads sorted (numbered by their first records,
    which the scheduler does not order)."""
    tids = dict.fromkeys(r.tid for r in records)
    ids = {tid: -1 for tid in tids}  # a thread's own id is told apart by its records' order
    return sorted((normalized([r for r in records if r.tid == tid], ids) for tid in tids), key=repr)


def until_wait(threads: list[list[tuple[object, ...]]]) -> list[list[tuple[object, ...]]]:
    out = []
    for recs in threads:
        calls = [i for i, r in enumerate(recs) if r[0] == K.KTR_SYSCALL and r[6][0] == NR("wait4")]  # type: ignore[index]
        out.append(recs[: calls[0]] if calls else recs)
    return out


def both(loop_envs: dict[str, dict[str, str]], tmp_path: Path, command: list[str],
         options: list[str]) -> dict[str, tuple[int, list[Record]]]:  # fmt: skip
    return {loop: run(env, tmp_path, command, options) for loop, env in loop_envs.items()}


def test_the_c_loop_is_built_and_used(loop_envs, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runs = both(loop_envs, tmp_path, [str(progs / "getppids"), "10"], ["-t", "c"])
    assert {loop: rc for loop, (rc, _) in runs.items()} == {"c": 0, "python": 0}
    logs = {loop: (Path(env["XDG_RUNTIME_DIR"]) / "pyktrace" / "engine.log").read_text()
            for loop, env in loop_envs.items()}  # fmt: skip
    assert "C loop loaded: _fastloop" in logs["c"]
    assert "C loop loaded" not in logs["python"] and "C loop turned off (PYKTRACE_FASTLOOP=0)" in logs["python"]


@pytest.mark.parametrize("version", ["0", "1"])
@pytest.mark.parametrize("facs", ["c", "cnis", "+"])
def test_same_records_from_both_loops(loop_envs, progs, tmp_path: Path, facs: str, version: str) -> None:  # type: ignore[no-untyped-def]
    """CALL/RET only (every stop plain), with NAMI/GIO/STRU (some stops Python's), and everything."""
    data = tmp_path / "data.txt"
    data.write_bytes(b"both loops\n")
    for prog in (["getppids", "300"], ["io"], ["basic", str(data)], ["forker"]):
        runs = both(loop_envs, tmp_path, [str(progs / prog[0]), *prog[1:]],
                    ["-i", "-t", facs, "--header-version", version])  # fmt: skip
        (rc_c, recs_c), (rc_py, recs_py) = runs["c"], runs["python"]
        assert rc_c == rc_py
        assert recs_py and all(r.version == int(version) for r in recs_c)
        if prog[0] == "forker":
            # Two processes: each one's own order is the program's. The parent's
            # wait4 is restarted by SIGCHLD or not, as the child ends before or
            # after it starts waiting: its records are compared up to that call.
            assert len(per_thread(recs_c)) == 2
            assert until_wait(per_thread(recs_c)) == until_wait(per_thread(recs_py))
        else:
            assert normalized(recs_c) == normalized(recs_py)


def test_same_records_from_both_loops_with_threads(loop_envs, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Thread by thread, futex calls left out: whether one waits (and for how long) is the scheduler's."""
    runs = both(loop_envs, tmp_path, [str(progs / "threads"), "4"], ["-t", "cn"])
    (rc_c, recs_c), (rc_py, recs_py) = runs["c"], runs["python"]
    assert rc_c == rc_py == 0

    def no_futex(threads: list[list[tuple[object, ...]]]) -> list[list[tuple[object, ...]]]:
        return [[r for r in recs if not (r[0] in (K.KTR_SYSCALL, K.KTR_SYSRET) and r[6][0] == NR("futex"))]  # type: ignore[index]
                for recs in threads]  # fmt: skip

    assert no_futex(per_thread(recs_c)) == no_futex(per_thread(recs_py))
    assert len({r.tid for r in recs_c}) == 5


def test_c_loop_errors_and_restarts(loop_envs, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The C loop's RETs: Linux errnos in FreeBSD numbering, the restart codes left to Python."""
    rc, recs = run(loop_envs["c"], tmp_path, [str(progs / "restart")], ["-t", "c"])
    assert rc == 0
    rets = [Sysret.unpack(AMD64, r.payload) for r in recs if r.type == K.KTR_SYSRET]
    reads = [(s.error, s.retval) for s in rets if s.code == NR("read")]
    assert (4, 0) in reads  # EINTR: the handler without SA_RESTART
    assert (K.ERESTART, 0) in reads and (0, 1) in reads  # restarted, then the byte the handler wrote
    rc, recs = run(loop_envs["c"], tmp_path, [str(progs / "io")], ["-t", "c"])
    rets = [Sysret.unpack(AMD64, r.payload) for r in recs if r.type == K.KTR_SYSRET]
    assert [(s.error, s.retval) for s in rets if s.code == NR("connect")] == [(2, 0)]  # ENOENT


# Not "+": whether a call slept (CSW) is the scheduler's.
@pytest.mark.parametrize("facs", ["c", "cnis"])
def test_same_records_from_both_loops_in_a_shell(loop_envs, tmp_path: Path, facs: str) -> None:  # type: ignore[no-untyped-def]
    """The stops the C loop resumes or writes beside the plain ones, against the Python loop's
    full path: vfork children's first stops, successful and failed execs (EJUSTRETURN, ENOENT),
    a handled signal's delivery stop and its sigreturn, SIGCHLD; under `cnis` the exec's entry
    (NAMI) and the deliveries (PSIG) are Python's again."""
    inner = 'trap "echo caught" USR1; kill -USR1 $$; exec /bin/true'
    script = f"/bin/true; /nonexistent/prog; /bin/sh -c '{inner}'; exit 0"
    runs = both(loop_envs, tmp_path, ["/bin/sh", "-c", script], ["-i", "-t", facs])
    (rc_c, recs_c), (rc_py, recs_py) = runs["c"], runs["python"]
    assert rc_c == rc_py == 0
    threads = per_thread(recs_c)
    assert len(threads) == 4  # the shell, /bin/true, the failed exec's child, the inner shell
    # The outer shell's wait4 may be interrupted by SIGCHLD or not: compared up to it.
    # Its getppid returns the pid of whoever ran pyktrace, not a traced one: left out.
    def no_ppid(threads: list[list[tuple[object, ...]]]) -> list[list[tuple[object, ...]]]:
        return [[r[:6] + ((NR("getppid"), 0, 0),) if r[0] == K.KTR_SYSRET and r[6][0] == NR("getppid") else r  # type: ignore[index]
                 for r in recs] for recs in threads]  # fmt: skip

    assert no_ppid(until_wait(threads)) == no_ppid(until_wait(per_thread(recs_py)))
    rets = [Sysret.unpack(AMD64, r.payload) for r in recs_c if r.type == K.KTR_SYSRET]
    execs = sorted((s.error, s.retval) for s in rets if s.code == NR("execve"))
    assert execs == sorted([(K.EJUSTRETURN, 0)] * 4 + [(2, 0)])  # pyktrace's, 3 images; ENOENT
    assert (K.EJUSTRETURN, 0) in [(s.error, s.retval) for s in rets if s.code == NR("rt_sigreturn")]

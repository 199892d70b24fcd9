"""Faults while tracing: the engine killed or stopped, tracees dying mid-syscall, the trace file and the control socket taken away, two sessions on one file.

Every test runs its own engine (a private runtime directory), so what the
engine still holds can be asked of it exactly (the "status" request) and
its exit, once it traces nothing, observed through a pidfd. Programs and
the test take turns through pipes and /proc; conditions that change
asynchronously (a flush, an engine exit) are polled with a deadline.
Each fault survived is recorded as a figure for the soak table.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ktrace_cli.abi import linux as abi
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.reader import DataTooShort, iter_records
from ktrace_cli.format.records import Genio, Namei, Psig, Record, unpack_payload
from tests.integration import conftest as integration
from tests.integration.conftest import PYKTRACE, Looper, _ptrace_allowed, _stop_engine, tracer
from tests.reliability import figures

pytestmark = pytest.mark.skipif(not _ptrace_allowed(), reason="ptrace is not permitted here")
progs = integration.progs  # the integration programs (looper), as a fixture here

TIMEOUT = 30
PYKDUMP = [*PYKTRACE[:-1], "ktrace_cli.cli.pykdump"]
NR_EXECVE = abi.syscall_number("execve")


# ---------------------------------------------------------------------------
# Helpers.


@pytest.fixture
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A runtime directory of this test's own: its engine is nobody else's."""
    rt = tmp_path_factory.mktemp("xdg")
    rt.chmod(0o700)
    yield dict(os.environ, XDG_RUNTIME_DIR=str(rt))
    _stop_engine(rt / "pyktrace")


def rundir(env: dict[str, str]) -> Path:
    return Path(env["XDG_RUNTIME_DIR"]) / "pyktrace"


def engine_pid(env: dict[str, str]) -> int:
    return int((rundir(env) / "engine.pid").read_text())


def ask(env: dict[str, str], op: str = "status") -> dict[str, object]:
    """One control request straight over the socket (never starts an engine)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        s.connect(str(rundir(env) / "engine.sock"))
        s.sendall(b'{"op": "%s"}\n' % op.encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            assert chunk, "the engine closed without answering"
            data += chunk
    import json

    return json.loads(data)  # type: ignore[no-any-return]


def poll(cond: Callable[[], object], what: str, timeout: float = TIMEOUT) -> object:
    """Wait for cond() to be true (polled, with a deadline); its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.002)


def wait_exit(pid: int, timeout: float = TIMEOUT) -> bool:
    """Whether process pid (not our child) is gone within timeout."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def kt(env: dict[str, str], *args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PYKTRACE, *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip


def kt_ok(env: dict[str, str], *args: object) -> None:
    r = kt(env, *args)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def tasks(pid: int) -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


def task_in_read(pid: int, tid: int) -> bool:
    """The task sleeps inside read(2): state S (not t, a tracing stop) and syscall 0."""
    try:
        state = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        call = Path(f"/proc/{pid}/task/{tid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    return state == "S" and call == "0"


def whole_records(path: Path | str) -> list[Record]:
    """Every record of the file, asserting they fill it exactly (none torn)."""
    records = list(iter_records(str(path)))
    assert sum(64 + len(r.payload) for r in records) == os.stat(path).st_size
    return records


def pids_so_far(path: Path) -> set[int]:
    """The pids of the whole records of a file being written (headers only: it grows fast)."""
    data = path.read_bytes() if path.exists() else b""
    pids, off = set(), 0
    while off + 64 <= len(data):
        end = off + 64 + int.from_bytes(data[off : off + 4], "little")
        if end > len(data):
            break
        pids.add(int.from_bytes(data[off + 8 : off + 12], "little"))  # ktr_pid
        off = end
    return pids


def pykdump_ok(path: Path) -> int:
    """pykdump prints the whole file without complaint; the number of lines it printed."""
    r = subprocess.run([*PYKDUMP, "-f", str(path)], capture_output=True, timeout=TIMEOUT)
    assert (r.returncode, r.stderr) == (0, b"")
    return r.stdout.count(b"\n")


def code(r: Record) -> int:
    return int.from_bytes(r.payload[:2], "little")


def name(nr: int) -> str:
    return abi.syscall_name(nr) or f"#{nr}"


def open_calls(records: list[Record]) -> dict[int, str]:
    """Per tid, the call it entered and never returned from; asserts every other CALL has its RET.

    The RET of an execve made by a non-leader thread comes under the
    leader's tid (Linux gives the exec'ing thread the thread-group id) and
    closes that thread's CALL; the leader's own unfinished call, if any, is
    reported under key -tid.
    """
    pending: dict[int, int] = {}
    done: dict[int, int] = {}
    for r in records:
        if r.type == K.KTR_SYSCALL:
            assert r.tid not in pending, f"tid {r.tid}: CALL {name(pending[r.tid])} has no RET, yet it called again"
            pending[r.tid] = code(r)
        elif r.type == K.KTR_SYSRET:
            nr = code(r)
            if pending.get(r.tid) == nr:
                del pending[r.tid]
                continue
            execer = [tid for tid, c in pending.items() if c == nr == NR_EXECVE and tid != r.tid]
            assert r.pid == r.tid and len(execer) == 1, f"tid {r.tid}: RET {name(nr)} without its CALL"
            if r.tid in pending:
                done[-r.tid] = pending.pop(r.tid)  # the leader, killed in its call by the exec
            del pending[execer[0]]
    return {tid: name(nr) for tid, nr in {**done, **pending}.items()}


def by_pid(records: list[Record]) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = {}
    for r in records:
        out.setdefault(r.pid, []).append(r)
    return out


def ends_cleanly(records: list[Record], pid: int) -> None:
    """One PROCDTOR for the process, its last record."""
    mine = [r.type for r in records if r.pid == pid]
    assert mine.count(K.KTR_PROCDTOR) == 1 and mine[-1] == K.KTR_PROCDTOR


def holding(pid: int, procs: list[int], threads: list[int], files: int) -> dict[str, object]:
    return {"error": 0, "pid": pid, "procs": procs, "threads": threads, "files": files,
            "awaiting": [], "pending": [], "held_replies": 0}  # fmt: skip


class Keeper:
    """A looper traced by the engine all along: the engine must hold exactly it, nothing stale."""

    def __init__(self, env: dict[str, str], progs: Path, tmp_path: Path) -> None:
        self.env = env
        self.lp = Looper(progs)
        kt_ok(env, "-t", "n", "-f", tmp_path / "keeper.out", "-p", self.lp.pid)
        self.engine = engine_pid(env)

    def check_alone(self) -> None:
        """The engine holds the keeper and nothing else (polled: the last exit may be in flight)."""
        want = holding(self.engine, [self.lp.pid], [self.lp.pid], 1)
        poll(lambda: ask(self.env) == want, f"the engine holds only the keeper: {ask(self.env)}")
        self.lp.ping()

    def release(self) -> None:
        """Clear the keeper; the engine, tracing nothing, exits."""
        kt_ok(self.env, "-c", "-p", self.lp.pid)
        assert tracer(self.lp.pid) == 0
        self.lp.ping()
        assert self.lp.close() == 0
        assert wait_exit(self.engine), "the engine did not exit with nothing traced"



# ---------------------------------------------------------------------------
# 1. The engine killed (SIGKILL) or stopped (SIGTERM) while its tracees are busy in system calls.

BUSY = ("3", "2")  # 3 processes of 2 worker threads, each main thread in read(0)


def run_busy(busy: Path, env: dict[str, str], trfile: Path | None,
             fault: Callable[[subprocess.Popen[bytes]], None]) -> tuple[int, list[bytes]]:  # fmt: skip
    """busy 3 2, untraced or under pyktrace -i; fault(proc) once every worker is warm; (status, sorted lines)."""
    cmd = [str(busy), *BUSY]
    if trfile is not None:
        cmd = [*PYKTRACE, "-i", "-f", str(trfile), *cmd]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stdin is not None
    ready = sorted(proc.stdout.readline() for _ in range(int(BUSY[0])))
    assert ready == [b"ready %d\n" % k for k in range(int(BUSY[0]))]
    fault(proc)
    out, _ = proc.communicate(b"", timeout=TIMEOUT)
    return proc.returncode, sorted(ready + out.splitlines(keepends=True))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_engine_dies_while_tracees_are_busy(rel_progs: Path, env: dict[str, str], tmp_path: Path,
                                            sig: int) -> None:  # fmt: skip
    busy = rel_progs / "busy"
    plain = run_busy(busy, env, None, lambda proc: None)
    assert plain[0] == 0 and len(plain[1]) == 3 + 3 * 2
    trfile = tmp_path / "k.out"
    seen: dict[str, object] = {}

    def kill_engine(proc: subprocess.Popen[bytes]) -> None:
        pids = poll(lambda: len(p := pids_so_far(trfile)) == 3 and p, "records of all three processes")
        engine = engine_pid(env)
        tids = {pid: tasks(pid) for pid in pids}  # type: ignore[union-attr]
        assert all(len(t) == 3 for t in tids.values())
        assert {tracer(t) for ts in tids.values() for t in ts} == {engine}
        os.kill(engine, sig)
        assert wait_exit(engine)
        # Every thread runs on, untraced: nothing killed, nothing left stopped.
        assert {tracer(t) for ts in tids.values() for t in ts} == {0}
        assert {pid: tasks(pid) for pid in tids} == tids
        seen["pids"], seen["size"] = pids, trfile.stat().st_size

    traced = run_busy(busy, env, trfile, kill_engine)
    assert traced == plain  # the same output and status as the untraced run
    assert trfile.stat().st_size == seen["size"]  # nobody wrote after the engine died
    records: list[Record] = []
    try:
        records.extend(iter_records(str(trfile)))
    except DataTooShort:
        pass
    size = int(seen["size"])
    whole = sum(64 + len(r.payload) for r in records)
    figures.record("fault", case=f"engine-{signal.Signals(sig).name}", records=len(records),
                   lost=0)  # fmt: skip
    if whole != size:
        # SIGKILL can end a write(2) between two pages of the file (the kernel
        # checks for a fatal signal before each page it copies), leaving the
        # last record of that write cut; every record before it is whole.
        assert sig == signal.SIGKILL and size % 4096 == 0, f"{size - whole} bytes torn at {size}"
        prefix = tmp_path / "whole.out"
        prefix.write_bytes(trfile.read_bytes()[:whole])
        assert pykdump_ok(prefix) > 0
    else:
        assert pykdump_ok(trfile) > 0
    mine = by_pid(records)
    assert set(mine) == seen["pids"]
    for recs in mine.values():  # announced, and never ended: the engine left before they exited
        assert recs[0].type == K.KTR_PROCCTOR and K.KTR_PROCDTOR not in {r.type for r in recs}
    # The next pyktrace starts a new engine and traces to the end.
    again = tmp_path / "again.out"
    r = subprocess.run([*PYKTRACE, "-f", str(again), str(busy), "1", "1"], capture_output=True,
                       env=env, timeout=TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    assert (r.returncode, r.stdout, r.stderr) == (0, b"ready 0\nproc 0 thread 0 ok\n", b"")
    recs = whole_records(again)
    assert {x.pid for x in recs} == {r_pid(recs)} and recs[-1].type == K.KTR_PROCDTOR
    worker = ({x.tid for x in recs} - {r_pid(recs)}).pop()
    assert open_calls(recs) == {r_pid(recs): "exit_group", worker: "exit"}


def r_pid(records: list[Record]) -> int:
    return records[0].pid


# ---------------------------------------------------------------------------
# 2. A tracee dying in the middle of system calls: SIGKILL, exit_group, exec from a thread.


def test_tracee_sigkilled_in_a_blocking_call(rel_progs: Path, progs: Path, env: dict[str, str],
                                            tmp_path: Path) -> None:  # fmt: skip
    keeper = Keeper(env, progs, tmp_path)
    trfile = tmp_path / "k.out"
    proc = subprocess.Popen([*PYKTRACE, "-f", str(trfile), str(rel_progs / "busy"), "1", "2"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready 0\n"
    pid = proc.pid
    workers = [t for t in tasks(pid) if t != pid]
    assert len(workers) == 2
    poll(lambda: task_in_read(pid, pid), "the main thread sleeps in read(2)")
    os.kill(pid, signal.SIGKILL)
    assert proc.wait(TIMEOUT) == -signal.SIGKILL
    records = whole_records(trfile)
    figures.record("fault", case="tracee-sigkill-in-read", records=len(records), lost=0)
    assert pykdump_ok(trfile) > 0
    ends_cleanly(records, pid)
    kills = [r for r in records if r.type == K.KTR_PSIG]
    assert [Psig.unpack(AMD64, r.payload).signo for r in kills] == [9]
    still = open_calls(records)
    # The kernel never returned from: the main thread's read; a worker's
    # call if the kill found it inside one (or stopped at its entry): one of
    # its loop's, or the futex of its warm-up count, just before "ready".
    assert still[pid] == "read"
    assert set(still) <= {pid, *workers}
    assert all(still[t] in ("write", "read", "getpid", "futex") for t in workers if t in still), still
    for t in workers:  # its open call, if any, is its last
        calls = [code(r) for r in records if r.tid == t and r.type == K.KTR_SYSCALL]
        assert t not in still or name(calls[-1]) == still[t]
    keeper.check_alone()
    keeper.release()


def test_exit_group_while_threads_are_in_calls(rel_progs: Path, progs: Path, env: dict[str, str],
                                              tmp_path: Path) -> None:  # fmt: skip
    keeper = Keeper(env, progs, tmp_path)
    trfile = tmp_path / "k.out"
    r = subprocess.run([*PYKTRACE, "-f", str(trfile), str(rel_progs / "midsys"), "exit"],
                       capture_output=True, env=env, timeout=TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    assert (r.returncode, r.stdout, r.stderr) == (3, b"exiting\n", b"")
    records = whole_records(trfile)
    figures.record("fault", case="exit-group-mid-calls", records=len(records), lost=0)
    assert pykdump_ok(trfile) > 0
    pid = records[0].pid
    ends_cleanly(records, pid)
    assert K.KTR_PSIG not in {x.type for x in records}  # killed by the group exit, not by a signal
    tids = sorted({x.tid for x in records} - {pid})
    assert len(tids) == 5  # 3 blocked in read, 2 busy in getppid
    still = open_calls(records)
    blocked = sorted(t for t, c in still.items() if c == "read")
    assert len(blocked) == 3 and still[pid] == "exit_group"
    assert set(still) - {pid, *blocked} <= set(tids) and all(
        still[t] == "getppid" for t in set(still) - {pid, *blocked})  # fmt: skip
    keeper.check_alone()
    keeper.release()


def test_exec_from_a_thread_while_others_are_in_calls(rel_progs: Path, progs: Path,
                                                      env: dict[str, str], tmp_path: Path) -> None:  # fmt: skip
    keeper = Keeper(env, progs, tmp_path)
    trfile = tmp_path / "k.out"
    r = subprocess.run([*PYKTRACE, "-f", str(trfile), str(rel_progs / "midsys"), "exec",
                        "/bin/echo", "done"],
                       capture_output=True, env=env, timeout=TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    assert (r.returncode, r.stdout, r.stderr) == (0, b"exec\ndone\n", b"")
    records = whole_records(trfile)
    figures.record("fault", case="exec-from-thread-mid-calls", records=len(records), lost=0)
    assert pykdump_ok(trfile) > 0
    pid = records[0].pid
    ends_cleanly(records, pid)
    assert records[-1].comm_name == b"echo"
    rets = [i for i, x in enumerate(records)
            if x.type == K.KTR_SYSRET and code(x) == NR_EXECVE and x.comm_name == b"echo"]  # fmt: skip
    assert len(rets) == 1
    # After the exec only the new image runs, under the leader's tid.
    assert {x.tid for x in records[rets[0]:]} == {pid}
    still = open_calls(records)
    # The kernel never returned from: the old leader's and the 3 threads'
    # reads (de_thread killed them in it), the echo's exit_group and, maybe,
    # a busy thread's getppid; the exec'ing thread's execve returned as the leader.
    assert (still[-pid], still[pid]) == ("read", "exit_group")
    blocked = [t for t, c in still.items() if c == "read" and t > 0]
    assert len(blocked) == 3
    rest = set(still) - {pid, -pid, *blocked}
    assert all(still[t] == "getppid" for t in rest)
    assert records[-2].type == K.KTR_SYSCALL and name(code(records[-2])) == "exit_group"
    keeper.check_alone()
    keeper.release()


# ---------------------------------------------------------------------------
# 3. The trace file renamed or removed while tracing: the engine keeps its open file (FreeBSD's vnode).


def looper_names(records: list[Record], pid: int) -> list[bytes]:
    return [Namei.unpack(AMD64, r.payload).path for r in records
            if r.type == K.KTR_NAMEI and r.pid == pid]  # fmt: skip


def engine_fds(engine: int) -> dict[str, int]:
    """The engine's open files: link target -> fd number."""
    out = {}
    for fd in os.listdir(f"/proc/{engine}/fd"):
        try:
            out[os.readlink(f"/proc/{engine}/fd/{fd}")] = int(fd)
        except OSError:
            pass
    return out


def test_trace_file_renamed_or_removed_while_tracing(progs: Path, env: dict[str, str],
                                                     tmp_path: Path) -> None:  # fmt: skip
    lp = Looper(progs)
    first, moved, gone = tmp_path / "first.out", tmp_path / "moved.out", tmp_path / "gone.out"
    kt_ok(env, "-t", "n", "-f", first, "-p", lp.pid)
    engine = engine_pid(env)
    lp.ping()
    first.rename(moved)
    assert str(moved) in engine_fds(engine)  # the engine's descriptor follows the file
    lp.ping()
    kt_ok(env, "-t", "n", "-f", gone, "-p", lp.pid)  # switch files, as ktrops() does
    assert str(moved) not in engine_fds(engine)  # the old one was let go
    lp.ping()
    gone.unlink()
    fd = engine_fds(engine)[f"{gone} (deleted)"]
    lp.ping()
    lp.ping()
    # The records keep going to the removed file, readable through the engine's descriptor.
    path = f"/proc/{engine}/fd/{fd}"
    poll(lambda: len(looper_names(list(iter_records(path)), lp.pid)) == 3, "records in the removed file")
    kt_ok(env, "-c", "-p", lp.pid)
    assert tracer(lp.pid) == 0
    assert f"{gone} (deleted)" not in engine_fds(engine)
    lp.ping()
    got = whole_records(moved)
    assert looper_names(got, lp.pid) == [b"/nonexistent/looper-0"] * 2
    assert not first.exists() and not gone.exists()
    # The engine is unharmed: the same one traces again, into a new file of the removed name.
    kt_ok(env, "-t", "n", "-f", gone, "-p", lp.pid)
    assert tracer(lp.pid) == engine
    lp.ping()
    kt_ok(env, "-c", "-p", lp.pid)
    assert looper_names(whole_records(gone), lp.pid) == [b"/nonexistent/looper-0"]
    figures.record("fault", case="trace-file-renamed-removed", records=len(got), lost=0)
    assert lp.close() == 0


# ---------------------------------------------------------------------------
# 4. Two pyktrace sessions appending to one file at once.

DD = {"a": ("4096", "300"), "b": ("1000", "700")}  # bs, count: GIO records of two sizes


def test_two_sessions_append_to_one_file(env: dict[str, str], tmp_path: Path) -> None:
    trfile = tmp_path / "shared.out"
    runs = {
        tag: subprocess.Popen([*PYKTRACE, "-a", "-t", "ci", "-f", str(trfile), "dd", "if=/dev/zero",
                               "of=/dev/null", f"bs={bs}", f"count={count}", "status=none"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)  # fmt: skip
        for tag, (bs, count) in DD.items()
    }
    for p in runs.values():
        assert p.communicate(timeout=TIMEOUT) == (b"", b"") and p.returncode == 0
    records = whole_records(trfile)  # interleaved, and not one torn
    figures.record("fault", case="two-sessions-append", records=len(records), lost=0)
    assert pykdump_ok(trfile) > 0
    mine = by_pid(records)
    assert set(mine) == {p.pid for p in runs.values()}
    for tag, p in runs.items():
        bs, count = map(int, DD[tag])
        recs = mine[p.pid]
        assert recs[0].type == K.KTR_PROCCTOR and recs[-1].type == K.KTR_PROCDTOR
        calls = [(code(r), int.from_bytes(r.payload[8:16], "little")) for r in recs
                 if r.type == K.KTR_SYSCALL]  # fmt: skip
        assert calls.count((abi.syscall_number("read"), 0)) == count
        assert calls.count((abi.syscall_number("write"), 1)) == count
        gio = [unpack_payload(AMD64, r.type, r.payload) for r in recs if r.type == K.KTR_GENIO]
        io = [(g.fd, g.rw, len(g.data)) for g in gio if isinstance(g, Genio) and g.fd in (0, 1)]
        assert io == [(0, 0, bs), (1, 1, bs)] * count
        assert open_calls(recs) == {p.pid: "exit_group"}


# ---------------------------------------------------------------------------
# 5. The engine's control socket removed while it traces.


@pytest.mark.parametrize("how", ["unlink", "rename"])
def test_control_socket_removed_while_tracing(progs: Path, env: dict[str, str], tmp_path: Path,
                                              how: str) -> None:  # fmt: skip
    a, b = Looper(progs), Looper(progs)
    kt_ok(env, "-t", "n", "-f", tmp_path / "a.out", "-p", a.pid)
    engine = engine_pid(env)
    sock = rundir(env) / "engine.sock"
    if how == "unlink":
        sock.unlink()
    else:
        sock.rename(tmp_path / "elsewhere.sock")
    a.ping()
    # The next pyktrace reaches the same engine (it puts its socket back):
    # no second engine that could not trace what the first one does. Not
    # timed: a client that found no socket would wait until it gave up
    # with "did not start", and kt_ok would see that.
    kt_ok(env, "-t", "n", "-f", tmp_path / "b.out", "-p", b.pid)
    log = rundir(env) / "engine.log"
    poll(lambda: "engine.sock was removed: bound again" in log.read_text(), "the engine's rebind")
    assert (tracer(a.pid), tracer(b.pid), engine_pid(env)) == (engine, engine, engine)
    assert ask(env) == holding(engine, [a.pid, b.pid], [a.pid, b.pid], 2)
    a.ping()
    b.ping()
    kt_ok(env, "-C")  # the running traces were never lost: -C reaches and clears them
    assert (tracer(a.pid), tracer(b.pid)) == (0, 0)
    a.ping()
    ra, rb = whole_records(tmp_path / "a.out"), whole_records(tmp_path / "b.out")
    assert looper_names(ra, a.pid) == [b"/nonexistent/looper-0"] * 2
    assert looper_names(rb, b.pid) == [b"/nonexistent/looper-0"]
    figures.record("fault", case=f"control-socket-{how}", records=len(ra) + len(rb), lost=0)
    assert wait_exit(engine)
    assert not sock.exists()  # the engine cleaned up after itself
    assert (a.close(), b.close()) == (0, 0)


# ---------------------------------------------------------------------------
# 6. The trace file's filesystem fills up (test_trace_privileges.py checks the
# log line and the whole records with dd; here a busy multithreaded program
# whose output is compared with an untraced run's).


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_filesystem_leaves_the_program_whole(rel_progs: Path, env: dict[str, str],
                                                  tmp_path: Path) -> None:  # fmt: skip
    busy = rel_progs / "busy"
    plain = run_busy(busy, env, None, lambda proc: None)
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        trfile = mnt / "full.out"
        pids: list[int] = []

        def filled(proc: subprocess.Popen[bytes]) -> None:
            pids.append(proc.pid)
            log = rundir(env) / "engine.log"
            poll(lambda: "ktrace write failed, errno 28" in log.read_text(), "the disk-full log line")

        traced = run_busy(busy, env, trfile, filled)
        assert traced == plain  # every process ran to its normal end, untraced after the failure
        records = whole_records(trfile)  # up to the last whole record, nothing torn
        figures.record("fault", case="full-filesystem", records=len(records), lost=0)
        assert 0 < trfile.stat().st_size <= 65536
        assert pykdump_ok(trfile) > 0
        assert records[0].pid == pids[0]
        assert f"tracing stopped for pid {pids[0]}\n" in (rundir(env) / "engine.log").read_text()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)

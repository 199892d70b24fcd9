"""The control plane under attack and under shortage, on the shapes of the security review's repros.

Every test runs its own engine in a private runtime directory. Where
root's own runtime directory is at stake the test runs in a private mount
namespace (`unshare -m`) with a tmpfs over /run (and /tmp); where another
user is needed it is `nobody` (65534) or uid 65533, through setpriv.
Programs and the test take turns through pipes; what changes
asynchronously (an engine's exit, a thread's state) is polled with a deadline.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ktrace_cli import __version__
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import Namei, unpack_payload
from ktrace_cli.trace import protocol
from ktrace_cli.trace.ktrops import DETACH_TIMEOUT
from ktrace_cli.trace.protocol import Identity, KtraceArgs, Reply, Request

from .conftest import PYKTRACE, TIMEOUT, _stop_engine, tracer

NOBODY, SQUATTER = 65534, 65533
OURS = Identity.ours()
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)


namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or not _have("unshare", "setpriv"), reason="needs root, unshare and setpriv"
)


# ---------------------------------------------------------------------------
# Helpers.


@pytest.fixture(autouse=True)
def no_sigpipe() -> Iterator[None]:
    """Writing to an engine that has just closed must fail with EPIPE, not kill the test run."""
    old = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGPIPE, old)


@pytest.fixture
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A runtime directory of this test's own."""
    rt = tmp_path_factory.mktemp("xdg")
    rt.chmod(0o700)
    yield dict(os.environ, XDG_RUNTIME_DIR=str(rt))
    _stop_engine(rt / "pyktrace")


@pytest.fixture
def work() -> Iterator[Path]:
    """A directory other users can reach (pytest's own temporary tree is root's alone)."""
    top = Path(tempfile.mkdtemp(prefix="pyktrace-control-"))
    top.chmod(0o755)
    yield top
    shutil.rmtree(top, ignore_errors=True)


def rundir(env: dict[str, str]) -> Path:
    return Path(env["XDG_RUNTIME_DIR"]) / "pyktrace"


def engine_pid(env: dict[str, str]) -> int:
    return int((rundir(env) / "engine.pid").read_text())


def pk(env: dict[str, str], *args: object, cwd: Path, prefix: list[str] | None = None,
       **kw: object) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([*(prefix or []), *PYKTRACE, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=TIMEOUT, stdin=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]  # fmt: skip


def connect(env: dict[str, str]) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(str(rundir(env) / "engine.sock"))
    return s


def read_line(s: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def ask(env: dict[str, str], data: bytes) -> dict[str, object]:
    """Send raw bytes, return the engine's JSON answer."""
    with connect(env) as s:
        try:
            s.sendall(data)
        except BrokenPipeError:
            pass  # answered without being read: the answer is still there
        return json.loads(read_line(s))  # type: ignore[no-any-return]


def status(env: dict[str, str]) -> dict[str, object]:
    return ask(env, b'{"op": "status"}\n')


def poll(cond: Callable[[], object], what: str) -> object:
    deadline = time.monotonic() + TIMEOUT
    while True:
        value = cond()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def wait_exit(pid: int) -> None:
    """Wait for a process (not our child) to end, through a pidfd."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        assert select.select([pidfd], [], [], TIMEOUT)[0], f"pid {pid} did not exit"
    finally:
        os.close(pidfd)


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def children_of(pid: int) -> list[tuple[int, str, str]]:
    """(pid, state, comm) of each child of `pid`."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        comm = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode()
        state, ppid = raw[raw.rindex(b")") + 2 :].split()[:2]
        if int(ppid) == pid:
            out.append((int(name), state.decode(), comm))
    return out


def traced_looper(env: dict[str, str], looper, tmp_path: Path, name: str = "lp.out"):  # type: ignore[no-untyped-def]
    lp = looper()
    r = pk(env, "-t", "n", "-f", tmp_path / name, "-p", lp.pid, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    return lp


# ---------------------------------------------------------------------------
# The engine, seen from outside (ux items 11 and 12).


def test_the_engine_shows_as_pyktrace_engine_in_ps(env, looper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    traced_looper(env, looper, tmp_path)
    pid = engine_pid(env)
    assert Path(f"/proc/{pid}/comm").read_bytes() == b"pyktrace-engine\n"
    assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"pyktrace-engine\0"
    ps = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True)
    assert ps.stdout == "pyktrace-engine\n"
    # Its only child wakes it (no fork per request).
    (waker, _state, comm), = children_of(pid)
    assert comm == "pyktrace-waker"
    assert Path(f"/proc/{waker}/cmdline").read_bytes() == b"pyktrace-waker\0"


def test_a_killed_waker_is_replaced(env, looper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lp = traced_looper(env, looper, tmp_path)
    engine = engine_pid(env)
    (waker, _state, _comm), = children_of(engine)
    os.kill(waker, signal.SIGHUP)  # ignored: a hang-up of the engine's session must not take it
    assert status(env)["procs"] == [lp.pid]
    lp.ping()
    assert [c[0] for c in children_of(engine)] == [waker]
    os.kill(waker, signal.SIGKILL)
    lp.ping()  # a traced event: the engine reaps the waker and makes another
    poll(lambda: [c for c in children_of(engine) if c[0] != waker], "a new waker")
    assert status(env)["procs"] == [lp.pid]
    r = pk(env, "-c", "-p", lp.pid, cwd=tmp_path)
    assert (r.returncode, r.stderr, tracer(lp.pid)) == (0, "", 0)
    log = (rundir(env) / "engine.log").read_text()
    assert log.count(f"the waker (pid {waker}) was killed: starting another\n") == 1


def stranger(release: str = "0.0.1", install: str = "/elsewhere/ktrace_cli") -> Identity:
    return Identity(protocol.PROTOCOL, release, install)


def test_a_client_of_another_installation_is_refused_and_the_engine_exits_once_idle(
        env, looper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    lp = traced_looper(env, looper, tmp_path)
    other = looper()
    pid = engine_pid(env)
    args = KtraceArgs(ops=K.KTROP_SET, facs=K.KTRFAC_NAMEI, pid=other.pid)
    reply = Reply.from_wire(_raw_reply(env, Request("ktrace", args, stranger()).to_wire()))
    assert reply == Reply(
        error=protocol.MISMATCH, identity=OURS, engine_pid=pid, busy=True,
        why=f"the trace engine (pid {pid}) is {OURS.describe()}, not this client's installation; "
            "it exits once it traces nothing",
    )  # fmt: skip
    # A client of protocol 1 is refused the same way, and nothing is done.
    old = json.dumps({"op": "ktrace", "ops": K.KTROP_SET, "facs": K.KTRFAC_NAMEI, "pid": other.pid})
    assert ask(env, old.encode() + b"\n")["error"] == protocol.MISMATCH
    assert tracer(other.pid) == 0 and tracer(lp.pid) == pid
    # Asked to exit once idle: it does, as soon as its last tracee is cleared.
    assert pk(env, "-c", "-p", lp.pid, cwd=tmp_path).returncode == 0
    wait_exit(pid)
    lp.ping()


def _raw_reply(env: dict[str, str], data: bytes) -> bytes:
    with connect(env) as s:
        s.sendall(data)
        return read_line(s)


class FakeEngine:
    """An engine of another installation, holding the runtime directory: it answers and maybe exits."""

    def __init__(self, env: dict[str, str], answer: Callable[[bytes], bytes], busy: bool) -> None:
        self.dir = rundir(env)
        self.dir.mkdir(mode=0o700)
        self.lock = os.open(self.dir / "engine.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.dir / "engine.sock"))
        self.listener.listen(8)
        self.answer, self.busy = answer, busy
        self.seen: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed by exit()
            with conn:
                line = read_line(conn)
                self.seen.append(line)
                conn.sendall(self.answer(line))
            if not self.busy:  # idle: it leaves after its first answer, as an idle engine does
                self.exit()
                return

    def exit(self) -> None:
        """As an idle engine does: socket removed, lock released."""
        os.unlink(self.dir / "engine.sock")
        self.listener.close()
        os.close(self.lock)


def legacy_answer(procs: list[int]) -> Callable[[bytes], bytes]:
    def answer(line: bytes) -> bytes:
        if b'"status"' in line:
            return json.dumps({"error": 0, "pid": 4242, "procs": procs, "threads": procs, "files": 1,
                               "awaiting": [], "pending": [], "held_replies": 0}).encode() + b"\n"  # fmt: skip
        return b'{"error": 22, "message": "malformed request"}\n'  # what protocol 1 says to "args"

    return answer


def test_a_busy_engine_of_protocol_1_is_named_not_used(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fake = FakeEngine(env, legacy_answer([4243]), busy=True)
    r = pk(env, "-f", tmp_path / "t.out", "true", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", (
        "pyktrace: trace engine: the running trace engine is an older pyktrace (protocol 1), not this "
        f"pyktrace {__version__} from {OURS.install}; it exits once it traces nothing (that "
        "installation's pyktrace -C clears its tracing)\n"))  # fmt: skip
    request = json.loads(fake.seen[0])
    assert (request["protocol"], request["op"], "ops" in request) == (protocol.PROTOCOL, "ktrace", False)
    assert fake.seen[1:] == [b'{"protocol":1,"release":"","install":"","op":"status"}\n']
    fake.exit()


def test_an_idle_engine_of_protocol_1_is_replaced(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    FakeEngine(env, legacy_answer([]), busy=False)
    out = tmp_path / "t.out"
    r = pk(env, "-f", out, "true", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert status(env)["pid"] == engine_pid(env) != 4242
    assert any(rec.type == K.KTR_PROCDTOR for rec in iter_records(str(out)))


def test_a_busy_engine_of_another_release_is_named(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    theirs = stranger("0.0.1", "/opt/old/ktrace_cli")
    fake = FakeEngine(env, lambda line: Reply(error=protocol.MISMATCH, why="not yours", identity=theirs,
                                              engine_pid=4242, busy=True).to_wire(), busy=True)  # fmt: skip
    r = pk(env, "-c", "-p", os.getpid(), cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", (
        "pyktrace: trace engine: the running trace engine (pid 4242) is pyktrace 0.0.1 from "
        f"/opt/old/ktrace_cli (protocol 2), not this pyktrace {__version__} from {OURS.install}; it exits "
        "once it traces nothing (that installation's pyktrace -C clears its tracing)\n"))  # fmt: skip
    fake.exit()


def test_an_idle_engine_of_another_release_is_replaced(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    theirs = stranger("0.0.1", "/opt/old/ktrace_cli")
    FakeEngine(env, lambda line: Reply(error=protocol.MISMATCH, identity=theirs, engine_pid=4242,
                                       busy=False).to_wire(), busy=False)  # fmt: skip
    r = pk(env, "-f", tmp_path / "t.out", "true", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert status(env)["pid"] == engine_pid(env) != 4242


# ---------------------------------------------------------------------------
# A control thread that cannot be wedged (F4, F9, F10).


@pytest.mark.parametrize("data, why", [
    (b"[" * 1000 + b"\n", "message nested too deeply"),
    (b"\xff\xfe garbage\n", "not JSON"),
    (b'{"op": "ktrace", "protocol": 2, "release": "%s", "install": "%s", "args": {"ops": "1"}}\n'
     % (OURS.release.encode(), OURS.install.encode()), "ops: not an integer"),
    (b"x" * (protocol.MAX_MESSAGE + 10), "request too long"),
])  # fmt: skip
def test_malformed_requests_are_answered_and_the_thread_goes_on(env, looper, tmp_path: Path,
                                                                data: bytes, why: str) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    lp = traced_looper(env, looper, tmp_path)
    pid = engine_pid(env)
    reply = ask(env, data)
    assert (reply["error"], str(reply["message"]).startswith(f"malformed request: {why}")) == (22, True)
    assert threads_of(pid) == 2
    assert status(env)["procs"] == [lp.pid]
    assert pk(env, "-C", cwd=tmp_path).returncode == 0


def test_a_silent_client_delays_nobody_and_is_dropped(env, looper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """F10: one client connects and says nothing, another sends half a request."""
    traced_looper(env, looper, tmp_path, "keeper.out")  # the engine stays
    lp = traced_looper(env, looper, tmp_path)
    silent, half = connect(env), connect(env)
    half.sendall(b'{"op": "status"')
    assert lp.pid in status(env)["procs"]  # type: ignore[operator]
    r = pk(env, "-c", "-p", lp.pid, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    assert tracer(lp.pid) == 0
    # Each is closed by the engine, unanswered.
    assert (silent.recv(1), half.recv(1)) == (b"", b"")
    silent.close()
    half.close()
    log = (rundir(env) / "engine.log").read_text()
    assert log.count(" sent no whole request in 2 s: connection closed\n") == 2


def test_waking_the_engine_leaves_no_zombie(env, looper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """F9: requests to an engine that traces nothing (it waits for one, not for its tracees)."""
    lp = traced_looper(env, looper, tmp_path)
    pid = engine_pid(env)
    assert pk(env, "-c", "-p", lp.pid, cwd=tmp_path).returncode == 0
    poll(lambda: status(env)["procs"] == [], "the engine holds nothing")
    for _ in range(100):
        assert status(env)["error"] == 0
    assert [(state, comm) for _pid, state, comm in children_of(pid)] in (
        [("S", "pyktrace-waker")], [("T", "pyktrace-waker")])  # fmt: skip


NPROC_SCRIPT = """
import json, os, resource, signal, socket, sys
resource.setrlimit(resource.RLIMIT_NPROC, (40, 40))
kids = []
while True:  # use up the process limit
    try:
        pid = os.fork()
    except BlockingIOError:
        break
    if pid == 0:
        signal.pause()
        os._exit(0)
    kids.append(pid)
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(sys.argv[1] + "/pyktrace/engine.sock")
s.sendall(b'{"op": "status"}\\n')
answer = b""
while not answer.endswith(b"\\n"):
    answer += s.recv(4096)
for k in kids:
    os.kill(k, 9)
    os.waitpid(k, 0)
print(json.dumps({"status": json.loads(answer), "forks": len(kids)}))
"""


@needs_root
def test_the_engine_is_woken_without_forking(work: Path) -> None:
    """F4b: a user at RLIMIT_NPROC still gets answers from their engine."""
    if not _have("setpriv", "sleep"):
        pytest.skip("needs setpriv")
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    nb, xdg = work / "nb", work / "xdg"
    nb.mkdir()
    xdg.mkdir(mode=0o700)
    for d in (nb, xdg):
        os.chown(d, NOBODY, NOBODY)
    script = work / "nproc.py"
    script.write_text(NPROC_SCRIPT)
    script.chmod(0o644)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(xdg))
    sleeper = subprocess.Popen([*as_nobody, "sleep", "300"])
    try:
        r = pk(env, "-t", "n", "-f", "np.out", "-p", sleeper.pid, cwd=nb, prefix=as_nobody)
        assert (r.returncode, r.stderr) == (0, "")
        engine = engine_pid(env)
        r = subprocess.run([*as_nobody, sys.executable, str(script), str(xdg)], capture_output=True,
                           text=True, cwd=nb, timeout=TIMEOUT)  # fmt: skip
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["forks"] > 0
        assert (out["status"]["error"], out["status"]["pid"], out["status"]["procs"]) == (0, engine, [sleeper.pid])
        assert tracer(sleeper.pid) == engine
        r = pk(env, "-c", "-p", sleeper.pid, cwd=nb, prefix=as_nobody)
        assert (r.returncode, r.stderr, tracer(sleeper.pid)) == (0, "", 0)
    finally:
        sleeper.kill()
        sleeper.wait()
        _stop_engine(xdg / "pyktrace")


KIDS_SCRIPT = """
import os, sys
go, done, end, ready = map(int, sys.argv[1:])
kids = []
for i in range(40):
    pid = os.fork()
    if pid == 0:
        os.read(go, 1)
        os.stat("/etc/hostname")
        os.write(done, b"x")
        os.read(end, 1)
        os._exit(0)
    kids.append(pid)
os.write(ready, " ".join(map(str, kids)).encode() + b"\\n")
for pid in kids:
    os.waitpid(pid, 0)
"""


def test_a_shortage_of_descriptors_is_answered_and_never_loses_records_silently(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """F4a and F5: an engine at its descriptor limit answers EMFILE and marks what it lost KTR_DROP."""
    limit = 24
    script = tmp_path / "kids.py"
    script.write_text(KIDS_SCRIPT)
    pipes = [os.pipe() for _ in range(4)]  # go, done, end, ready
    theirs = [pipes[0][0], pipes[1][1], pipes[2][0], pipes[3][1]]
    out = tmp_path / "nf.out"

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    proc = subprocess.Popen([*PYKTRACE, "-i", "-t", "n", "-f", str(out), sys.executable, str(script),
                             *map(str, theirs)], pass_fds=theirs, env=env, cwd=tmp_path,
                            preexec_fn=low_limit, stdin=subprocess.DEVNULL)  # fmt: skip
    for fd in theirs:
        os.close(fd)
    go, done, end, ready = pipes[0][1], pipes[1][0], pipes[2][1], pipes[3][0]
    try:
        kids = [int(k) for k in os.read(ready, 4096).split()]
        assert len(kids) == 40
        engine = engine_pid(env)
        # Each child's /proc/PID/mem is opened at its first read (the path
        # of its stat) and held while it lives: the first ones take every
        # descriptor the engine has left, the others find none.
        os.close(go)
        got = b""
        while len(got) < 40:
            got += os.read(done, 40)
        assert len(os.listdir(f"/proc/{engine}/fd")) == limit  # every descriptor in use
        assert ask(env, b'{"op": "status"}\n') == {"error": errno.EMFILE,
                                                    "why": f"the trace engine is out of descriptors (see {rundir(env)}/engine.log)",
                                                    "protocol": OURS.protocol, "release": OURS.release,
                                                    "install": OURS.install, "engine_pid": engine,
                                                    "busy": False}  # fmt: skip
        r = pk(env, "-C", cwd=tmp_path)
        assert (r.returncode, r.stderr) == (1, (
            "pyktrace: ktrace.out: Too many open files\n"
            f"pyktrace: the trace engine is out of descriptors (see {rundir(env)}/engine.log)\n"))  # fmt: skip
        os.close(end)
        assert proc.wait(TIMEOUT) == 0
    finally:
        for fd in (go, done, end, ready):
            try:
                os.close(fd)
            except OSError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert threads_of(engine) == 2 and status(env)["error"] == 0
    recs = list(iter_records(str(out)))
    by_pid = {k: [r for r in recs if r.pid == k] for k in kids}
    named = {k for k, rs in by_pid.items()
             if any(r.type == K.KTR_NAMEI and unpack_payload(AMD64, r.type, r.payload) == Namei(b"/etc/hostname")
                    for r in rs)}  # fmt: skip
    dropped = {k for k, rs in by_pid.items() if any(r.drop for r in rs)}
    log = (rundir(env) / "engine.log").read_text()
    lost = {k for k in kids if f"pid {k}: cannot open /proc/{k}/mem: Too many open files" in log}
    assert lost and named | dropped == set(kids)  # every child: its record, or the mark
    assert dropped == lost and not named & lost
    for k in lost:
        assert log.count(f"pid {k}: cannot open /proc/{k}/mem") == 1
    assert log.count("out of descriptors (Too many open files): refusing requests until some are free\n") == 1


@pytest.mark.parametrize("limit", [9, 10, 11, 12, 13])
def test_a_low_descriptor_limit_is_never_taken_for_a_missing_process(env, tmp_path: Path, limit: int) -> None:  # type: ignore[no-untyped-def]
    """F5: under `ulimit -n` the engine inherits, the user hears of descriptors, never of ESRCH."""

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    r = pk(env, "-f", "tiny.out", "/bin/echo", "hi", cwd=tmp_path, preexec_fn=low_limit)
    lines = r.stderr.splitlines()
    if r.returncode == 0:
        assert (r.stdout, r.stderr) == ("hi\n", "")
        return
    assert r.returncode == 1 and r.stdout == ""
    assert lines[0] in ("pyktrace: tiny.out: Too many open files",
                        "pyktrace: trace engine: the trace engine failed to start: Too many open files")  # fmt: skip
    assert lines[1:] in ([], [f"pyktrace: the trace engine is out of descriptors (see {rundir(env)}/engine.log)"],
                         ["pyktrace: the trace engine is short of resources: Too many open files"])  # fmt: skip


# ---------------------------------------------------------------------------
# One tracee that cannot be stopped (F6).

FREEZER = Path("/sys/fs/cgroup/freezer")


@pytest.fixture
def frozen_cgroup() -> Iterator[Path]:
    if os.geteuid() != 0 or not (FREEZER / "tasks").exists():
        pytest.skip("needs root and the cgroup v1 freezer")
    cg = FREEZER / f"pyktrace-test-{os.getpid()}"
    cg.mkdir()
    try:
        yield cg
    finally:
        (cg / "freezer.state").write_text("THAWED")
        for pid in (cg / "tasks").read_text().split():
            (FREEZER / "tasks").write_text(pid)
        cg.rmdir()


def test_a_frozen_tracee_does_not_block_requests_about_others(env, looper, tmp_path: Path,
                                                              frozen_cgroup: Path) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    a = traced_looper(env, looper, tmp_path, "a.out")
    b = looper()
    engine = engine_pid(env)
    (frozen_cgroup / "tasks").write_text(str(a.pid))
    (frozen_cgroup / "freezer.state").write_text("FROZEN")
    poll(lambda: (frozen_cgroup / "freezer.state").read_text() == "FROZEN\n", "the cgroup is frozen")
    clear = subprocess.Popen([*PYKTRACE, "-c", "-p", str(a.pid)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)  # fmt: skip
    poll(lambda: status(env)["held_replies"] == 1, "the clear waits for the frozen process")
    r = pk(env, "-t", "n", "-f", tmp_path / "b.out", "-p", b.pid, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    assert tracer(b.pid) == engine
    b.ping()
    # Tracing a stuck process again waits (and is refused in the end), clearing everything does not.
    again = subprocess.Popen([*PYKTRACE, "-f", "again.out", "-p", str(a.pid)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)  # fmt: skip
    r = pk(env, "-C", cwd=tmp_path)
    assert (r.returncode, r.stderr, tracer(b.pid), tracer(a.pid)) == (0, "", 0, engine)
    assert (clear.poll(), again.poll()) == (None, None)  # still waiting: the other requests did not
    b.ping()
    stuck = (f"pyktrace: pid {a.pid} did not stop within {DETACH_TIMEOUT:.0f} s (frozen, or asleep in the "
             "kernel); it is detached when it next stops\n")  # fmt: skip
    _out, err = again.communicate(timeout=TIMEOUT)
    assert (again.returncode, err) == (1, "pyktrace: again.out: Device or resource busy\n" + stuck)
    _out, err = clear.communicate(timeout=TIMEOUT)
    assert (clear.returncode, err) == (1, "pyktrace: ktrace.out: Device or resource busy\n" + stuck)
    log = (rundir(env) / "engine.log").read_text()
    assert log.count(f"pid {a.pid} did not stop within {DETACH_TIMEOUT:.0f} s") == 2  # each waiting request
    (frozen_cgroup / "freezer.state").write_text("THAWED")
    poll(lambda: tracer(a.pid) == 0, "the thawed process is detached")
    a.ping()


# ---------------------------------------------------------------------------
# The runtime directory (F1, F2).


def test_a_removed_runtime_directory_is_made_again_by_the_same_rules(env, looper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A tmp cleaner removes the whole directory: the engine, holding it open, makes a new one and moves in."""
    a = traced_looper(env, looper, tmp_path, "a.out")
    engine = engine_pid(env)
    shutil.rmtree(rundir(env))
    poll(lambda: (rundir(env) / "engine.sock").exists(), "the engine is reachable again")
    b = traced_looper(env, looper, tmp_path, "b.out")
    assert (tracer(a.pid), tracer(b.pid), engine_pid(env)) == (engine, engine, engine)
    assert sorted(os.listdir(rundir(env))) == ["engine.lock", "engine.log", "engine.pid", "engine.sock"]
    assert (rundir(env).stat().st_mode & 0o777, (rundir(env) / "engine.sock").stat().st_mode & 0o777) == (0o700, 0o600)
    r = pk(env, "-C", cwd=tmp_path)
    assert (r.returncode, r.stderr, tracer(a.pid), tracer(b.pid)) == (0, "", 0, 0)
    assert f"{rundir(env)}/engine.sock was removed: bound again" in (rundir(env) / "engine.log").read_text()


# ---------------------------------------------------------------------------
# Root's runtime directory, in a private mount namespace.


WORK = "/run/work"  # where the test's directory is seen inside the namespace


def _under_covered_dirs() -> list[str]:
    """The checkout and the interpreter's prefix where the fresh /tmp or /run would hide them.

    A clone under /tmp (as CI's may be) must still find its venv's python and its
    own package once a tmpfs covers /tmp: each such directory is held open before
    the mount and bound back at its own path through /proc/self/fd.
    """
    repo = Path(__file__).resolve().parents[2]
    kept: list[str] = []
    for p in sorted({str(repo), os.path.realpath(sys.prefix)}):
        if p.startswith(("/tmp/", "/run/")) and not any(p.startswith(k + "/") for k in kept):
            kept.append(p)
    assert len(kept) <= 7, kept  # sh opens descriptors 3 to 9 only
    return kept


def in_namespace(script: str, work: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a shell script as root in a private mount namespace: /run and /tmp fresh tmpfs.

    The test's directory (under the real /tmp) is bind-mounted at WORK first,
    so it stays in reach once /tmp is covered.
    """
    kept = _under_covered_dirs()
    held = "".join(f"exec {3 + i}<{p}\n" for i, p in enumerate(kept))
    rebound = "".join(f"mkdir -p {p}\nmount --no-canonicalize --bind /proc/self/fd/{3 + i} {p}\n" for i, p in enumerate(kept))
    head = (f"set -e\n{held}mount -t tmpfs -o mode=755 tmpfs /run\nmkdir {WORK}\n"
            f"mount --bind {work} {WORK}\nmount -t tmpfs -o mode=1777 tmpfs /tmp\n{rebound}cd {WORK}\n")  # fmt: skip
    e = dict(os.environ, PYKTRACE=" ".join(PYKTRACE))
    e.pop("XDG_RUNTIME_DIR", None)
    e.update(env)
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", head + textwrap.dedent(script)],
                          capture_output=True, text=True, cwd=work, env=e, timeout=TIMEOUT * 2)  # fmt: skip


def engine_from(out: str) -> int:
    """The engine pid a namespace script printed last; it exits by itself once idle."""
    pid = int(out.split()[-1])
    wait_exit(pid)
    return pid


@namespaces
def test_root_ignores_an_xdg_runtime_dir_it_does_not_own(work: Path) -> None:
    """F1: after `su`, root keeps the user's XDG_RUNTIME_DIR, whose owner planted symlinks in it."""
    atk = work / "atk-run"
    atk.mkdir(mode=0o700)
    config, append = work / "root-config", work / "root-append"
    config.write_text("ROOT ONLY\n")
    append.write_text("root log\n")
    for f in (config, append):
        f.chmod(0o600)
    os.chown(atk, NOBODY, NOBODY)
    plant = (f"cd {atk} && mkdir -m 755 pyktrace && ln -s {WORK}/root-config pyktrace/engine.pid && "
             f"ln -s {WORK}/root-append pyktrace/engine.log && ln -s {WORK}/root-config pyktrace/engine.lock")  # fmt: skip
    subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "sh", "-c", plant],
                   check=True)  # fmt: skip
    before = sorted(os.listdir(atk / "pyktrace"))
    r = in_namespace("""
        $PYKTRACE -f rt.out true
        stat -c '%U %a %F' /run/pyktrace /run/pyktrace/engine.sock
        cat /run/pyktrace/engine.pid
    """, work, XDG_RUNTIME_DIR=f"{WORK}/atk-run")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["root 700 directory", "root 600 socket"]
    engine_from(r.stdout)
    assert (config.read_text(), append.read_text()) == ("ROOT ONLY\n", "root log\n")
    assert sorted(os.listdir(atk / "pyktrace")) == before
    assert any(rec.type == K.KTR_PROCDTOR for rec in iter_records(str(work / "rt.out")))


@namespaces
def test_a_squatted_name_in_tmp_denies_root_nothing(work: Path) -> None:
    """F2 for root: nobody takes /tmp/pyktrace-0; root uses /run, or its home if /run is read-only."""
    squat = f"setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups mkdir -m 777 /tmp/pyktrace-0\n"
    r = in_namespace(squat + """
        $PYKTRACE -f a.out true
        $PYKTRACE -C
        ls /run/pyktrace
        cat /run/pyktrace/engine.pid
    """, work)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0:4] == ["engine.lock", "engine.log", "engine.pid", "engine.sock"]
    engine_from(r.stdout)
    (work / "home").mkdir(mode=0o700)
    r = in_namespace(squat + """
        mount -o remount,ro /run
        $PYKTRACE -f b.out true
        stat -c '%U %a' /tmp/pyktrace-0 "$HOME/.cache/pyktrace"
        cat "$HOME/.cache/pyktrace/engine.pid"
    """, work, HOME=f"{WORK}/home")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["nobody 777", "root 700"]
    engine_from(r.stdout)
    for name in ("a.out", "b.out"):
        assert any(rec.type == K.KTR_PROCDTOR for rec in iter_records(str(work / name)))


@namespaces
def test_a_squatted_name_in_tmp_denies_a_user_nothing(work: Path) -> None:
    """F2 for a user: uid 65533 takes /tmp/pyktrace-65534 first; nobody uses their home instead."""
    home = work / "home"
    home.mkdir(mode=0o755)
    os.chown(home, NOBODY, NOBODY)
    as_nobody = f"setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups"
    r = in_namespace(f"""
        setpriv --reuid={SQUATTER} --regid={SQUATTER} --clear-groups mkdir -m 777 /tmp/pyktrace-{NOBODY}
        cd "$HOME"
        {as_nobody} $PYKTRACE -f v.out true
        {as_nobody} $PYKTRACE -C
        stat -c '%u %a' /tmp/pyktrace-{NOBODY} "$HOME/.cache/pyktrace"
        cat "$HOME/.cache/pyktrace/engine.pid"
    """, work, HOME=f"{WORK}/home")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == [f"{SQUATTER} 777", f"{NOBODY} 700"]
    engine_from(r.stdout)
    assert any(rec.type == K.KTR_PROCDTOR for rec in iter_records(str(home / "v.out")))

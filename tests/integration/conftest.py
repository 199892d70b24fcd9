"""Integration fixtures: a private engine per test session, C programs built with gcc, a trace runner."""

from __future__ import annotations

import functools
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import Record, unpack_payload

PROGS = Path(__file__).parent / "progs"
TIMEOUT = 30


def _ptrace_allowed() -> bool:
    if sys.platform != "linux":
        return False
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            return f.read().strip() != "3"
    except OSError:
        return True


pytestmark = pytest.mark.skipif(not _ptrace_allowed(), reason="ptrace is not permitted here")


ENGINES = ("ptrace", "bpf")


@functools.cache
def bpf_unavailable() -> str | None:
    """None when the bpf engine's programs load here (loaded, never attached), else why not."""
    from ktrace_cli.trace.bpf import loader

    why = loader.why_unavailable()
    if why:
        return why
    try:
        loader.BpfObject(loader.RING_MIN).close()
    except OSError as e:
        return str(e)
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_engines: run each test on the ptrace and the bpf engine")
    config.addinivalue_line("markers", "ptrace_only(reason): a test of what only the ptrace engine does")
    config.addinivalue_line("markers", "bpf_xfail(reason): the bpf engine is known to fail this test (strict)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests of a module marked both_engines run once per engine, unless marked ptrace_only.

    The bpf run is skipped, with the loader's reason, only where BPF cannot load.
    """
    if "engine" not in metafunc.fixturenames or metafunc.definition.get_closest_marker("both_engines") is None:
        return
    if metafunc.definition.get_closest_marker("ptrace_only") is not None:
        return
    why = bpf_unavailable()
    marks = [pytest.mark.skipif(why is not None, reason=f"BPF cannot load here: {why}")]
    known = metafunc.definition.get_closest_marker("bpf_xfail")
    if known is not None:
        marks.append(pytest.mark.xfail(strict=True, reason=known.args[0]))
    metafunc.parametrize("engine", ["ptrace", pytest.param("bpf", marks=marks)], indirect=True)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    """The engine a test runs on: its parameter, or ptrace where the test is not parametrized."""
    return getattr(request, "param", "ptrace")


@pytest.fixture(scope="session")
def session_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private XDG_RUNTIME_DIR, so the session's engines are its own; both shut down at the end."""
    rt = tmp_path_factory.mktemp("xdg")
    rt.chmod(0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(rt))
    env.pop("PYKTRACE_ENGINE", None)
    yield env
    _stop_engine(rt / "pyktrace")
    _stop_engine(rt / "pyktrace" / "bpf")


@pytest.fixture
def runtime_env(session_env: dict[str, str], engine: str) -> dict[str, str]:
    """The session's environment, choosing the test's engine through $PYKTRACE_ENGINE."""
    return dict(session_env, PYKTRACE_ENGINE=engine)


def _stop_engine(rtdir: Path) -> None:
    """Ask the engine to shut down and wait (pidfd, no sleeping) until it is gone."""
    pidfile = rtdir / "engine.pid"
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(rtdir / "engine.sock"))
            s.sendall(b'{"op": "shutdown"}\n')
            s.recv(4096)
    except OSError:
        pass
    ready, _, _ = select.select([pidfd], [], [], 10)
    if not ready:
        os.kill(pid, 15)
        select.select([pidfd], [], [], 10)
    os.close(pidfd)


def settle(env: dict[str, str]) -> None:
    """On the bpf engine, wait until a finished command's last records are in its file.

    The bpf engine writes them just after the command exits (the man page
    says so); a reader asks it to sync first. The ptrace engine's file is
    complete when the command exits.
    """
    if env.get("PYKTRACE_ENGINE") != "bpf":
        return
    path = Path(env["XDG_RUNTIME_DIR"]) / "pyktrace" / "bpf" / "engine.sock"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(path))
            s.sendall(b'{"op": "sync"}\n')
            while not s.recv(4096).endswith(b"\n"):
                pass
    except OSError:
        pass  # no engine running: nothing is on its way


def requested_interpreter(program: Path) -> str:
    """PT_INTERP of `program`, as binutils' readelf reports it."""
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) is not installed")
    out = subprocess.run(["readelf", "-l", str(program)], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    m = re.search(r"\[Requesting program interpreter: ([^\]]+)\]", out)
    assert m is not None, "progs are built dynamically linked"
    return m.group(1)


@pytest.fixture(scope="session")
def progs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test programs of progs/: C by gcc, i386 assembly (*.s) by binutils, into a temporary directory."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("progs")
    for src in PROGS.glob("*.c"):
        subprocess.run(["gcc", "-O1", "-pthread", "-o", str(out / src.stem), str(src)],
                       check=True)  # fmt: skip
    for src in PROGS.glob("*.s"):
        # Static and without libc, so no 32-bit (multilib) libraries are needed.
        obj = out / f"{src.stem}.o"
        subprocess.run(["as", "--32", "-o", str(obj), str(src)], check=True)
        subprocess.run(["ld", "-m", "elf_i386", "-o", str(out / src.stem), str(obj)], check=True)
    return out


@dataclass
class Traced:
    """A finished traced run: the process, its output and its decoded records."""

    pid: int
    returncode: int
    stdout: bytes
    stderr: bytes
    records: list[Record]

    def payloads(self, rtype: int) -> list[tuple[Record, object]]:
        return [(r, unpack_payload(AMD64, r.type, r.payload)) for r in self.records
                if r.type == rtype]  # fmt: skip

    def after_exec(self) -> list[Record]:
        """Records of the traced program, from its first record after pyktrace's execve."""
        for i, r in enumerate(self.records):
            if r.comm_name != b"pyktrace" and i > 0:
                return self.records[i:]
        return []


PYKTRACE = [sys.executable, "-m", "ktrace_cli.cli.pyktrace"]
PYKDUMP = [sys.executable, "-m", "ktrace_cli.cli.pykdump"]


def kdump_lines(path: Path, *options: str) -> list[str]:
    """pykdump's output lines for a trace file."""
    out = subprocess.run([*PYKDUMP, *options, "-f", str(path)], capture_output=True, text=True,
                         timeout=TIMEOUT, check=True).stdout  # fmt: skip
    return out.splitlines()


def line_body(line: str) -> str:
    """A line without its pid and comm columns; GIO data lines stripped of their indent."""
    fields = line.split(None, 2)
    return fields[2] if len(fields) == 3 and fields[0].isdigit() else line.strip()


@pytest.fixture
def trace(runtime_env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run `pyktrace [options] command` and decode the trace file."""

    def run(command: list[str], options: list[str] = (), trfile: Path | None = None,  # type: ignore[assignment]
            stdin: int | None = subprocess.DEVNULL) -> Traced:  # fmt: skip
        path = trfile or tmp_path / "ktrace.out"
        proc = subprocess.Popen(
            [*PYKTRACE, *options, "-f", str(path), *command],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=runtime_env,
        )  # fmt: skip
        out, err = proc.communicate(timeout=TIMEOUT)
        settle(runtime_env)
        records = list(iter_records(str(path))) if path.exists() else []
        return Traced(proc.pid, proc.returncode, out, err, records)

    return run


@pytest.fixture
def pyktrace_cli(runtime_env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run pyktrace with raw arguments (for diagnostics), in tmp_path."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*PYKTRACE, *args], capture_output=True, text=True, cwd=tmp_path,
                           env=runtime_env, timeout=TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip
        settle(runtime_env)
        return r

    return run


class Looper:
    """A looper process tree: process 0 is the main one, 1.. its children."""

    def __init__(self, progs: Path, n: int = 1, prefix: tuple[str, ...] = (),
                 **popen: object) -> None:  # fmt: skip
        self.to: list[int] = []
        self.back: list[int] = []
        pairs, theirs = [], []
        for _ in range(n):
            r1, w1 = os.pipe()
            r2, w2 = os.pipe()
            pairs.append(f"{r1},{w2}")
            theirs += [r1, w2]
            self.to.append(w1)
            self.back.append(r2)
        self.proc = subprocess.Popen([*prefix, str(progs / "looper"), *pairs], pass_fds=theirs,
                                     **popen)  # type: ignore[call-overload]  # fmt: skip
        for fd in theirs:
            os.close(fd)
        self.pids = [int(self._read(k, 8)) for k in range(n)]

    @property
    def pid(self) -> int:
        return self.pids[0]

    def _read(self, k: int, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = os.read(self.back[k], n - len(data))
            assert chunk, f"looper {k} died"
            data += chunk
        return data

    def ping(self, k: int = 0, what: bytes = b"x") -> None:
        """One round trip: process k did its work and is still running."""
        os.write(self.to[k], what)
        assert self._read(k, 1) == what

    def close(self) -> int:
        for fd in self.to:
            os.close(fd)
        for fd in self.back:
            os.close(fd)
        return self.proc.wait(timeout=TIMEOUT)


@pytest.fixture
def looper(progs: Path) -> Iterator[object]:
    """Start Looper trees; each must end cleanly (exit 0) at teardown."""
    made: list[Looper] = []

    def make(n: int = 1, **popen: object) -> Looper:
        lp = Looper(progs, n, **popen)
        made.append(lp)
        return lp

    yield make
    for lp in made:
        if lp.proc.returncode is None:
            try:
                os.kill(lp.pid, signal.SIGCONT)
            except OSError:
                pass
            assert lp.close() == 0  # never killed, hung or left stopped


def assert_attached(pid: int, engine: str) -> None:
    """The process is traced: by a ptrace tracer on the ptrace engine, by none on the bpf engine."""
    if engine == "bpf":
        assert tracer(pid) == 0  # nothing stops or holds the process
    else:
        assert tracer(pid) != 0


def tracer(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("TracerPid:"):
            return int(line.split()[1])
    raise AssertionError("no TracerPid")


@pytest.fixture
def kt(runtime_env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run pyktrace in tmp_path; assert it succeeded quietly unless told otherwise."""

    def run(*args: object, ok: bool = True, env: dict[str, str] | None = None,
            prefix: tuple[str, ...] = (), cwd: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        r = subprocess.run([*prefix, *PYKTRACE, *map(str, args)], capture_output=True, text=True,
                           cwd=cwd or tmp_path, env=env or runtime_env, timeout=TIMEOUT,
                           stdin=subprocess.DEVNULL)  # fmt: skip
        settle(env or runtime_env)
        if ok:
            assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
        return r

    return run


NOBODY = 65534
AS_NOBODY = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")


@dataclass
class Nobody:
    env: dict[str, str]  # nobody's runtime directory and home; no engine named (ptrace, the default)
    work: Path  # nobody's writable working directory
    shared: Path  # root-owned, world-readable: programs nobody may run
    log: Path  # nobody's ptrace engine's log
    xdg: Path


@pytest.fixture(scope="module")
def nobody(progs: Path) -> Iterator[Nobody]:
    """Directories for pyktrace run as `nobody` (setpriv), with engines of its own, stopped at the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to nobody")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    top = Path(tempfile.mkdtemp(prefix="pyktrace-nobody-"))
    top.chmod(0o755)
    xdg, work, shared = top / "xdg", top / "work", top / "shared"
    for d, mode in ((xdg, 0o700), (work, 0o755), (shared, 0o755)):
        d.mkdir()
        d.chmod(mode)
    os.chown(xdg, NOBODY, NOBODY)
    os.chown(work, NOBODY, NOBODY)
    for prog in ("looper", "euid", "setid", "caps", "basic"):
        shutil.copy(progs / prog, shared / prog)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(xdg), HOME=str(work))
    env.pop("PYKTRACE_ENGINE", None)
    yield Nobody(env, work, shared, xdg / "pyktrace" / "engine.log", xdg)
    for rtdir in (xdg / "pyktrace", xdg / "pyktrace" / "bpf"):
        try:
            pid = int((rtdir / "engine.pid").read_text())
            pidfd = os.pidfd_open(pid)
            os.kill(pid, signal.SIGTERM)
            select.select([pidfd], [], [], TIMEOUT)
            os.close(pidfd)
        except (OSError, ValueError):
            pass
    shutil.rmtree(top, ignore_errors=True)

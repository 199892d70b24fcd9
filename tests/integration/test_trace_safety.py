"""pyktrace never destroys what the user did not mean, and says clearly what it refuses.

Every special file here is made inside the test's own temporary directory
(mknod, mkfifo, a bound socket), never a system path.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ktrace_cli.format import constants as K
from ktrace_cli.format.writer import GENIO_SIZE_MAX
from ktrace_cli.trace.protocol import MISMATCH, PROTOCOL, Identity, Reply

from .conftest import PYKTRACE, TIMEOUT, tracer

pytestmark = pytest.mark.both_engines

USAGE = (
    "usage: pyktrace [-aCcdi] [-f trfile] [-g pgrp | -p pid] [-t trstr]\n"
    "       pyktrace [-adi] [-f trfile] [-t trstr] command\n"
)
NO_SUCH_PID = 0x7FFFFFFF  # above any pid_max: never a process
OLD_TRACE = b"yesterday's trace\n" * 100


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))


def _dir(path: Path) -> None:
    path.mkdir()


def _char_device(path: Path) -> None:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a second "null" device node


def _block_device(path: Path) -> None:
    os.mknod(path, 0o600 | stat.S_IFBLK, os.makedev(7, 0))  # a loop device node, never opened


MAKERS: dict[str, Callable[[Path], None]] = {
    "fifo": _fifo, "socket": _socket, "directory": _dir,
    "char-device": _char_device, "block-device": _block_device,
}  # fmt: skip


def _make(kind: str, path: Path) -> None:
    if kind.endswith("device") and os.geteuid() != 0:
        pytest.skip("mknod of a device needs root")
    MAKERS[kind](path)


def _identity(path: Path) -> tuple[int, ...]:
    st = os.lstat(path)
    return (st.st_dev, st.st_ino, st.st_mode, st.st_rdev, st.st_uid, st.st_size, st.st_mtime_ns)


def _dir_state(d: Path) -> dict[str, tuple[int, ...]]:
    return {p.name: _identity(p) for p in d.iterdir()}


@pytest.mark.parametrize("kind", list(MAKERS))
@pytest.mark.parametrize("append", [False, True])
def test_special_files_are_refused_and_left_alone(kt, tmp_path: Path, kind: str, append: bool) -> None:  # type: ignore[no-untyped-def]
    _make(kind, tmp_path / "special")
    before = _dir_state(tmp_path)
    r = kt(*(["-a"] if append else []), "-f", "special", "true", ok=False)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "pyktrace: special not regular file\n")
    assert _dir_state(tmp_path) == before


def test_a_symlink_is_replaced_never_followed(kt, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    link = tmp_path / "link.out"
    link.symlink_to(target)
    kt("-t", "u", "-f", "link.out", "true")
    assert target.read_bytes() == b"keep"
    assert stat.S_ISREG(os.lstat(link).st_mode) and os.lstat(link).st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.out", "target"]


def _unreachable_env(runtime_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A runtime directory held by an engine that cannot be used: another installation's, still tracing.

    (A broken runtime directory is no longer enough: pyktrace falls back to
    another place, as a squatted name must not deny tracing.)
    """
    top = tmp_path / "xdg-foreign"
    rundir = top / "pyktrace"
    if runtime_env["PYKTRACE_ENGINE"] == "bpf":
        rundir /= "bpf"  # the bpf engine's daemon keeps its files apart
    rundir.mkdir(parents=True, mode=0o700)
    for d in (top, top / "pyktrace"):
        d.chmod(0o700)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(rundir / "engine.sock"))
    listener.listen(8)
    answer = Reply(error=MISMATCH, identity=Identity(PROTOCOL, "0.0.1", "/elsewhere/ktrace_cli"),
                   engine_pid=1, busy=True).to_wire()  # fmt: skip

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return dict(runtime_env, XDG_RUNTIME_DIR=str(top))


@pytest.mark.parametrize("why", ["no-such-process", "zombie", "engine-unreachable", "command-unreachable"])
def test_a_failed_request_leaves_the_old_trace_as_it_was(kt, runtime_env, tmp_path: Path, why: str,
                                                         engine: str) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    old = work / "ktrace.out"
    old.write_bytes(OLD_TRACE)
    before = _dir_state(work)
    env = runtime_env
    zombie = None
    if why == "no-such-process":
        args: tuple[object, ...] = ("-p", NO_SUCH_PID)
        message = "pyktrace: ktrace.out: No such process\n"
    elif why == "zombie":
        zombie = subprocess.Popen(["true"])
        os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        args = ("-p", zombie.pid)
        message = "pyktrace: ktrace.out: No such process\n"
    else:
        env = _unreachable_env(runtime_env, tmp_path)
        args = ("-p", os.getpid()) if why == "engine-unreachable" else ("touch", work / "ran")
        message = ""  # the control plane's own wording, checked below
    try:
        r = kt(*args, ok=False, env=env, cwd=work)
    finally:
        if zombie is not None:
            zombie.wait()
    if message:
        assert (r.returncode, r.stdout, r.stderr) == (1, "", message)
    else:
        assert (r.returncode, r.stdout) == (1, "")
        # The bpf engine's client does not tell a foreign engine apart: it
        # reports the answer it cannot read ("Protocol error"), in one line too.
        lead = "pyktrace: trace engine: " if engine == "ptrace" else "pyktrace: ktrace.out: "
        assert r.stderr.startswith(lead) and r.stderr.count("\n") == 1
    assert _dir_state(work) == before  # same inode, same bytes, no temporary file left
    assert old.read_bytes() == OLD_TRACE


def test_an_accepted_request_replaces_the_old_trace(kt, looper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old = tmp_path / "ktrace.out"
    old.write_bytes(OLD_TRACE)
    inode = old.stat().st_ino
    lp = looper()
    kt("-t", "n", "-p", lp.pid)
    lp.ping()
    kt("-c", "-p", lp.pid)
    assert old.stat().st_ino != inode and old.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ktrace.out"]
    assert old.read_bytes()[4:6] == (K.KTR_PROCCTOR | K.KTR_VERSIONED).to_bytes(2, "little")


def test_append_to_a_new_file_that_fails_leaves_nothing(kt, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = kt("-a", "-f", "new.out", "-p", NO_SUCH_PID, ok=False)
    assert (r.returncode, r.stderr) == (1, "pyktrace: new.out: No such process\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["fifo", "char-device", "socket", "directory"])
def test_clear_file_refuses_what_is_not_a_regular_file_at_once(kt, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    _make(kind, tmp_path / "special")
    before = _dir_state(tmp_path)
    r = kt("-c", "-f", "special", ok=False)  # a FIFO used to block here for ever
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "pyktrace: special: Permission denied\n")
    assert _dir_state(tmp_path) == before


def test_read_only_file_system_reports_the_open_error(runtime_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """In a private mount namespace, tmp_path is bound read-only over itself."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    ro = tmp_path / "ro"
    ro.mkdir()
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -m is not permitted here: {probe.stderr.decode().strip()}")
    script = ('mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && cd "$1" && shift && '
              'exec "$@"')  # fmt: skip
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                        str(ro), *PYKTRACE, "-f", "new.out", "true"],
                       capture_output=True, text=True, env=runtime_env, timeout=TIMEOUT)  # fmt: skip
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "pyktrace: new.out: Read-only file system\n")
    assert list(ro.iterdir()) == []


def _seccomp_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("Seccomp:"))


@pytest.mark.ptrace_only("the seccomp filter only speeds up ptrace stops; the bpf engine never uses one")
@pytest.mark.parametrize(("options", "mode"), [((), "0"), (("--seccomp=off",), "0"),
                                               (("--seccomp=on",), "2")])  # fmt: skip
def test_the_seccomp_filter_is_opt_in(kt, options: tuple[str, ...], mode: str) -> None:  # type: ignore[no-untyped-def]
    r = kt("-t", "n", *options, "grep", "^Seccomp:", "/proc/self/status", ok=False)
    assert (r.returncode, r.stderr) == (0, "")
    assert _seccomp_line(r.stdout) == f"Seccomp:\t{mode}"


def test_the_engine_itself_cannot_be_traced(kt, runtime_env, looper) -> None:  # type: ignore[no-untyped-def]
    lp = looper()
    kt("-t", "u", "-p", lp.pid)  # the engine runs (and stays) while it traces the looper
    try:
        if runtime_env["PYKTRACE_ENGINE"] == "bpf":
            pidfile = Path(runtime_env["XDG_RUNTIME_DIR"]) / "pyktrace" / "bpf" / "engine.pid"
            engine = int(pidfile.read_text())
        else:
            engine = tracer(lp.pid)
        threads = sorted(int(t) for t in os.listdir(f"/proc/{engine}/task"))
        if runtime_env["PYKTRACE_ENGINE"] == "ptrace":
            assert len(threads) >= 2  # the engine thread and the control thread
        for pid in threads:
            r = kt("-p", pid, ok=False)
            assert (r.returncode, r.stdout, r.stderr) == (
                1, "", f"pyktrace: pid {pid} is the trace engine; it cannot trace itself\n")  # fmt: skip
    finally:
        kt("-c", "-p", lp.pid)
    lp.ping()


@pytest.mark.parametrize(("value", "ok"), [(GENIO_SIZE_MAX, True), (GENIO_SIZE_MAX + 1, False),
                                           (200_000_000, False)])  # fmt: skip
def test_genio_size_is_bounded(kt, value: int, ok: bool) -> None:  # type: ignore[no-untyped-def]
    r = kt(f"--genio-size={value}", "-t", "u", "true", ok=ok)
    if not ok:
        message = f"pyktrace: invalid --genio-size: {value} (at most 1048576)\n"
        assert (r.returncode, r.stdout, r.stderr) == (1, "", message + USAGE)


def test_version(kt) -> None:  # type: ignore[no-untyped-def]
    from ktrace_cli import __version__

    r = kt("--version", ok=False)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"pyktrace {__version__}\n", "")

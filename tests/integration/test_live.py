"""pyktrace --live: records printed while tracing, from the engine's own stream (a pipe)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import PYKTRACE, TIMEOUT

PYKDUMP = [sys.executable, "-m", "ktrace_cli.cli.pykdump"]
PID_COLUMN = re.compile(r"^ *\d+ ", re.M)

ADDRESS = re.compile(r"0x[0-9a-f]{8,}")  # user-space addresses differ from run to run (ASLR)
# basic.c's own calls, after the dynamic loader, as kdump prints them.
BASIC_TAIL = """\
basic    CALL  openat(AT_FDCWD,ADDR,0<O_RDONLY>)
basic    NAMI  "in.txt"
basic    RET   openat 3
basic    CALL  read(0x3,ADDR,0x40)
basic    GIO   fd 3 read 6 bytes
       "hello
       "
basic    RET   read 6
basic    CALL  close(0x3)
basic    RET   close 0
basic    CALL  write(0x1,ADDR,0x6)
basic    GIO   fd 1 wrote 6 bytes
       "hello
       "
basic    RET   write 6
basic    CALL  openat(AT_FDCWD,ADDR,0<O_RDONLY>)
basic    NAMI  "/nonexistent/basic"
basic    RET   openat -1 errno 2 No such file or directory
basic    CALL  pipe2(ADDR,0x800<O_NONBLOCK>)
basic    STRU  unknown structure
basic    RET   pipe2 0
basic    CALL  read(0x3,ADDR,0x40)
basic    RET   read -1 errno 11 Resource temporarily unavailable
basic    CALL  exit_group(0x3)
"""

BASIC_CALLS_TAIL = """\
basic    openat(AT_FDCWD,"in.txt",0<O_RDONLY>) = 3<in.txt>
basic    read(3<in.txt>,"hello\\n",0x40) = 6
basic    close(3<in.txt>) = 0
basic    write(1,"hello\\n",0x6) = 6
basic    openat(AT_FDCWD,"/nonexistent/basic",0<O_RDONLY>) = -1 ENOENT (No such file or directory)
"""


def _tail(text: str, start: str) -> str:
    """From the CALL line before the line holding `start` on, without pid columns and addresses."""
    lines = ADDRESS.sub("ADDR", PID_COLUMN.sub("", text)).splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if start in line)
    return "".join(lines[first - 1 :])


def _live(env: dict[str, str], cwd: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*PYKTRACE, *args], capture_output=True, cwd=cwd, env=env, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]  # fmt: skip


@pytest.fixture
def basic_dir(tmp_path: Path) -> Path:
    (tmp_path / "in.txt").write_bytes(b"hello\n")
    return tmp_path


def test_live_text_is_pykdumps_text_of_the_same_run(runtime_env, progs: Path, basic_dir: Path) -> None:  # type: ignore[no-untyped-def]
    r = _live(runtime_env, basic_dir, "--live", "-f", "run.out", str(progs / "basic"), "in.txt")
    assert r.returncode == 3  # the command's status
    assert r.stdout == b"hello\n"
    kdump = subprocess.run([*PYKDUMP, "-f", "run.out"], capture_output=True, cwd=basic_dir, timeout=TIMEOUT)
    assert kdump.returncode == 0
    assert r.stderr == kdump.stdout  # byte for byte: the file is the stream that was printed
    text = r.stderr.decode("latin-1")
    assert _tail(text, 'NAMI  "in.txt"') == BASIC_TAIL
    assert "\x1b[" not in text  # a pipe gets no colour
    # The stream starts where a ktrace file of the command starts: pyktrace's exec.
    first = PID_COLUMN.sub("", text.splitlines()[0])
    assert first.startswith("pyktrace ")


def test_live_without_f_writes_no_file(runtime_env, progs: Path, basic_dir: Path) -> None:  # type: ignore[no-untyped-def]
    r = _live(runtime_env, basic_dir, "--live", str(progs / "basic"), "in.txt")
    assert r.returncode == 3
    assert _tail(r.stderr.decode("latin-1"), 'NAMI  "in.txt"') == BASIC_TAIL
    assert sorted(p.name for p in basic_dir.iterdir()) == ["in.txt"]


def test_live_calls_lines(runtime_env, progs: Path, basic_dir: Path) -> None:  # type: ignore[no-untyped-def]
    r = _live(runtime_env, basic_dir, "--live", "--calls", "-f", "run.out", str(progs / "basic"), "in.txt")
    assert r.returncode == 3
    kdump = subprocess.run([*PYKDUMP, "--calls", "-f", "run.out"], capture_output=True, cwd=basic_dir,
                           timeout=TIMEOUT)  # fmt: skip
    assert r.stderr == kdump.stdout
    lines = [re.sub(r" <[0-9.]+>$", "", line) for line in PID_COLUMN.sub("", r.stderr.decode("latin-1")).splitlines()]
    start = next(i for i, line in enumerate(lines) if '"in.txt"' in line)
    assert "".join(line + "\n" for line in lines[start : start + 5]) == BASIC_CALLS_TAIL
    assert lines[-1] == "basic    exit_group(0x3) = ?"


def test_live_to_a_file_and_to_a_descriptor(runtime_env, progs: Path, basic_dir: Path) -> None:  # type: ignore[no-untyped-def]
    r = _live(runtime_env, basic_dir, "--live-file", "live.txt", str(progs / "basic"), "in.txt")
    assert (r.returncode, r.stderr) == (3, b"")
    assert _tail((basic_dir / "live.txt").read_text("latin-1"), 'NAMI  "in.txt"') == BASIC_TAIL
    rfd, wfd = os.pipe()
    with os.fdopen(rfd, "rb") as reader:
        proc = subprocess.Popen([*PYKTRACE, "--live-fd", str(wfd), "-t", "n", str(progs / "basic"), "in.txt"],
                                cwd=basic_dir, env=runtime_env, pass_fds=[wfd], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)  # fmt: skip
        os.close(wfd)
        # The command inherits the descriptor too: read it to its end, then wait.
        text = reader.read().decode("latin-1")
        _, err = proc.communicate(timeout=TIMEOUT)
    assert (proc.returncode, err) == (3, b"")
    assert PID_COLUMN.sub("", text).splitlines()[-2:] == ['basic    NAMI  "in.txt"', 'basic    NAMI  "/nonexistent/basic"']


def test_the_commands_fatal_signal_is_raised_again(runtime_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = _live(runtime_env, tmp_path, "--live", "-t", "c", str(progs / "selfkill"))
    assert r.returncode == -signal.SIGKILL
    assert PID_COLUMN.sub("", r.stderr.decode("latin-1")).splitlines()[-1].startswith("selfkill CALL  kill(")


def _read_pty(master: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every slave descriptor is closed
            return out
        if not chunk:
            return out
        out += chunk


@pytest.mark.parametrize("no_color", [False, True])
def test_colour_on_a_terminal_unless_no_color(runtime_env, progs: Path, basic_dir: Path, no_color: bool) -> None:  # type: ignore[no-untyped-def]
    env = dict(runtime_env)
    env.pop("NO_COLOR", None)
    if no_color:
        env["NO_COLOR"] = "1"
    master, slave = pty.openpty()
    proc = subprocess.Popen([*PYKTRACE, "--live", "-t", "n", str(progs / "basic"), "in.txt"], cwd=basic_dir,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)  # fmt: skip
    os.close(slave)
    out = _read_pty(master)
    os.close(master)
    assert proc.wait(timeout=TIMEOUT) == 3
    text = out.decode("utf-8").replace("\r\n", "\n")
    assert ("\x1b[" in text) is not no_color
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert PID_COLUMN.sub("", plain).splitlines()[-2:] == ['basic    NAMI  "in.txt"', 'basic    NAMI  "/nonexistent/basic"']


def test_color_always_on_a_pipe(runtime_env, progs: Path, basic_dir: Path) -> None:  # type: ignore[no-untyped-def]
    r = _live(runtime_env, basic_dir, "--live", "--color=always", "-t", "n", str(progs / "basic"), "in.txt")
    assert r.returncode == 3
    assert b"\x1b[" in r.stderr


def _wait_for(stream: int, needle: bytes, looper: object) -> bytes:
    """Ping the looper until `needle` shows in the live output (the attach races the first pings)."""
    seen = b""
    for _ in range(200):
        looper.ping()  # type: ignore[attr-defined]
        while select.select([stream], [], [], 0.2)[0]:
            chunk = os.read(stream, 65536)
            assert chunk, seen
            seen += chunk
            if needle in seen:
                return seen
    raise AssertionError(seen)


@pytest.mark.parametrize("flag", ["-p", "-g"])
def test_attach_prints_live_and_sigint_clears(runtime_env, looper, tmp_path: Path, flag: str) -> None:  # type: ignore[no-untyped-def]
    lp = looper(start_new_session=True)  # its own process group, numbered by its pid
    proc = subprocess.Popen([*PYKTRACE, "--live", "-t", "n", "-f", "lp.out", flag, str(lp.pid)], cwd=tmp_path,
                            env=runtime_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stderr is not None
    needle = b'NAMI  "/nonexistent/looper-0"'
    seen = _wait_for(proc.stderr.fileno(), needle, lp)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130
    text = PID_COLUMN.sub("", (seen + rest).decode("latin-1"))
    assert set(text.splitlines()) == {'looper   NAMI  "/nonexistent/looper-0"'}
    # The clear let go of the looper: it runs on untraced, and the file holds what was printed.
    lp.ping()
    status = Path(f"/proc/{lp.pid}/status").read_text()
    assert "\nTracerPid:\t0\n" in status
    kdump = subprocess.run([*PYKDUMP, "-f", "lp.out"], capture_output=True, cwd=tmp_path, timeout=TIMEOUT)
    assert kdump.stdout == seen + rest
    assert lp.close() == 0


# Run in its own process: it becomes a subreaper, so the command orphaned by
# the reader's death is its child to wait for.
ORPHAN_SCRIPT = r"""
import ctypes, json, os, select, signal, subprocess, sys
PR_SET_CHILD_SUBREAPER = 36
ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
looper, pyktrace = sys.argv[1], json.loads(sys.argv[2])
to_r, to_w = os.pipe()
back_r, back_w = os.pipe()
proc = subprocess.Popen([*pyktrace, "--live", "-t", "n", looper, f"{to_r},{back_w}"],
                        pass_fds=[to_r, back_w], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
os.close(to_r)
os.close(back_w)
def ping():
    os.write(to_w, b"x")
    assert os.read(back_r, 1) == b"x"
pid = int(os.read(back_r, 8))
seen = b""
while b"/nonexistent/looper" not in seen:
    ping()
    while select.select([proc.stderr], [], [], 0.2)[0] and b"/nonexistent/looper" not in seen:
        seen += os.read(proc.stderr.fileno(), 65536)
proc.kill()  # the reader dies while the command is traced
reader = proc.wait()
for _ in range(3):
    ping()  # the engine's next write fails (EPIPE): tracing stops, the command runs on
os.close(to_w)
assert os.read(back_r, 1) == b""
got, status = os.waitpid(pid, 0)
print(json.dumps({"reader": reader, "exited": os.WIFEXITED(status), "code": os.waitstatus_to_exitcode(status)}))
"""


def test_a_dead_reader_leaves_the_command_running(runtime_env, progs: Path) -> None:  # type: ignore[no-untyped-def]
    r = subprocess.run([sys.executable, "-c", ORPHAN_SCRIPT, str(progs / "looper"), json.dumps(PYKTRACE)],
                       capture_output=True, env=runtime_env, timeout=TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"reader": -signal.SIGKILL, "exited": True, "code": 0}


@pytest.mark.parametrize(("args", "message"), [
    (["--calls", "true"], "pyktrace: --calls goes with --live\n"),
    (["--color=never", "true"], "pyktrace: --color goes with --live\n"),
    (["--live", "--color=sometimes", "true"], "pyktrace: invalid --color: sometimes (auto, always or never)\n"),
    (["--live-fd", "x", "true"], "pyktrace: invalid --live-fd: x\n"),
    (["--live-fd", "1", "--live-file", "f", "true"], "pyktrace: --live-file and --live-fd exclude each other\n"),
    (["--live-fd", "987", "true"], "pyktrace: --live-fd 987: Bad file descriptor\n"),
])  # fmt: skip
def test_live_option_errors(runtime_env, tmp_path: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    r = _live(runtime_env, tmp_path, *args)
    assert (r.returncode, r.stdout, r.stderr.decode()) == (1, b"", message)
    assert list(tmp_path.iterdir()) == []


def test_live_with_clear_is_a_usage_error(runtime_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = _live(runtime_env, tmp_path, "--live", "-C")
    assert r.returncode == 1
    assert r.stderr.decode().splitlines()[0] == "pyktrace: --live may not be combined with -C"


def test_attach_to_no_such_process(runtime_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = _live(runtime_env, tmp_path, "--live", "-f", "x.out", "-p", str(0x7FFFFFFF))
    assert (r.returncode, r.stderr.decode()) == (1, "pyktrace: x.out: No such process\n")
    assert list(tmp_path.iterdir()) == []

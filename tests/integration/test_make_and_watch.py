"""The Makefile's run and completions targets, and the documented way to watch a trace grow."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PYKTRACE, TIMEOUT

REPO = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent)
PYKDUMP = [sys.executable, "-m", "ktrace_cli.cli.pykdump"]
NO_SUCH_PID = 0x7FFFFFFF

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # -o: never (re)build the virtual environment from a test; this one runs it.
    return subprocess.run(["make", "-s", "-C", str(REPO), "-o", ".venv/.installed", f"BIN={BIN}",
                           *args], capture_output=True, text=True, env=env, timeout=TIMEOUT)  # fmt: skip


@needs_make
def test_make_run_prints_the_trace_of_a_failing_command(runtime_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data.txt"
    data.write_bytes(b"hello make\n")
    trfile = tmp_path / "run.out"
    r = _make(runtime_env, "run", f"TRACE={trfile}", f"ARGS={progs / 'basic'} {data}")
    # basic exits 3: the trace is printed all the same, then make reports
    # the command's status.
    dump = subprocess.run([*PYKDUMP, "-f", str(trfile)], capture_output=True, text=True,
                          timeout=TIMEOUT, check=True).stdout  # fmt: skip
    assert '"/nonexistent/basic"' in dump
    assert r.stdout == (f"{BIN}/pyktrace -f {trfile} {progs / 'basic'} {data}\nhello make\n"
                        f"{BIN}/pykdump -f {trfile}\n{dump}")  # fmt: skip
    assert r.returncode == 2 and r.stderr.endswith("Error 3\n")
    # pyktrace itself refusing: the previous trace is left and not shown as this one.
    again = _make(runtime_env, "run", f"TRACE={trfile}", f"ARGS=-p {NO_SUCH_PID}")
    assert again.stdout == f"{BIN}/pyktrace -f {trfile} -p {NO_SUCH_PID}\n"
    assert again.stderr.startswith(f"pyktrace: {trfile}: No such process\n")
    assert again.returncode == 2 and again.stderr.endswith("Error 1\n")


@needs_make
def test_make_completions_writes_the_three_shells_scripts(runtime_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = _make(runtime_env, "completions", f"DESTDIR={tmp_path}", "PREFIX=/usr", f"PYTHON={sys.executable}")
    assert r.returncode == 0, r.stderr
    share = tmp_path / "usr" / "share"
    want = {}
    for prog in ("pyktrace", "pykdump"):
        want[share / "bash-completion" / "completions" / prog] = f"_{prog}_completion()"
        want[share / "zsh" / "site-functions" / f"_{prog}"] = f"#compdef {prog}"
        want[share / "fish" / "vendor_completions.d" / f"{prog}.fish"] = f"_{prog.upper()}_COMPLETE=fish_complete"
    assert sorted(r.stdout.splitlines()) == sorted(map(str, want))
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(want)
    for path, mark in want.items():
        assert mark in path.read_text(), path
    # The scripts answer: what bash's completion function asks for.
    env = dict(runtime_env, COMP_WORDS="pyktrace --sec", COMP_CWORD="1", _PYKTRACE_COMPLETE="bash_complete")
    done = subprocess.run(PYKTRACE, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert (done.returncode, done.stdout) == (0, "plain,--seccomp\n")


def _read_lines(proc: subprocess.Popen[bytes], count: int) -> list[bytes]:
    """`count` lines of a follower's output; fails after TIMEOUT seconds without one."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    while buf.count(b"\n") < count:
        assert select.select([fd], [], [], TIMEOUT)[0], buf.decode(errors="replace")
        chunk = os.read(fd, 65536)
        assert chunk, buf.decode(errors="replace")
        buf += chunk
    return buf.splitlines()


@pytest.mark.parametrize("follower_first", [True, False])
def test_watching_a_growing_trace_as_documented(runtime_env, progs: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                follower_first: bool) -> None:  # fmt: skip
    """Create the file first, then pyktrace -a and pykdump -l: whichever starts first, every record."""
    data = tmp_path / "data.txt"
    data.write_bytes(b"watched\n")
    trfile = tmp_path / "build.out"
    trfile.write_bytes(b"")
    trfile.chmod(0o600)

    def start_pyktrace() -> subprocess.Popen[bytes]:
        return subprocess.Popen([*PYKTRACE, "-a", "-f", str(trfile), str(progs / "basic"), str(data)],
                                stdout=subprocess.DEVNULL, env=runtime_env)  # fmt: skip

    def start_follower() -> subprocess.Popen[bytes]:
        return subprocess.Popen([*PYKDUMP, "-l", "-f", str(trfile)], stdout=subprocess.PIPE)

    if follower_first:
        follower, tracer = start_follower(), start_pyktrace()
    else:
        tracer, follower = start_pyktrace(), start_follower()
    try:
        assert tracer.wait(timeout=TIMEOUT) == 3
        whole = subprocess.run([*PYKDUMP, "-f", str(trfile)], capture_output=True, timeout=TIMEOUT,
                               check=True).stdout.splitlines()  # fmt: skip
        assert any(b'"/nonexistent/basic"' in line for line in whole)
        assert _read_lines(follower, len(whole)) == whole
    finally:
        follower.kill()
        follower.wait()

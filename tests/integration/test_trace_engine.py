"""The engine's promises: a traced program is never killed, hung or left stopped by it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PYKTRACE, TIMEOUT

pytestmark = pytest.mark.both_engines

SNIPPET = (
    "import sys\nprint('ready', flush=True)\nline = sys.stdin.readline()\n"
    "try:\n    open('/nonexistent/after')\nexcept OSError:\n    pass\nprint('done', line.strip())"
)


def _engine_pid(env: dict[str, str]) -> int:
    rtdir = Path(env["XDG_RUNTIME_DIR"]) / "pyktrace"
    if env["PYKTRACE_ENGINE"] == "bpf":
        rtdir /= "bpf"  # the bpf engine's daemon keeps its files apart
    return int((rtdir / "engine.pid").read_text())


@pytest.mark.parametrize(
    ("options", "sig"),
    [
        (("-t", "+"), signal.SIGKILL),
        # By default no seccomp filter: a killed engine cannot make the
        # command's calls fail with ENOSYS.
        (("-t", "n"), signal.SIGKILL),
        (("-t", "n"), signal.SIGTERM),
        # With the filter a SIGTERMed engine serves its tracee to the end.
        (("-t", "n", "--seccomp=on"), signal.SIGTERM),
    ],
)
def test_tracee_survives_the_engine(runtime_env, tmp_path: Path, options: tuple[str, ...], sig: int) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [*PYKTRACE, *options, "-f", str(tmp_path / "k.out"), sys.executable, "-c", SNIPPET],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=runtime_env,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline() == b"ready\n"  # traced and running
    pid = _engine_pid(runtime_env)
    pidfd = os.pidfd_open(pid)
    os.kill(pid, sig)
    if sig == signal.SIGKILL:
        assert select.select([pidfd], [], [], TIMEOUT)[0]
    out, _ = proc.communicate(b"go\n", timeout=TIMEOUT)
    assert proc.returncode == 0 and out == b"done go\n"
    # The engine exited: at once, or once its filtered tracee had ended.
    assert select.select([pidfd], [], [], TIMEOUT)[0]
    os.close(pidfd)


def test_a_fresh_engine_replaces_a_killed_one(trace, progs, runtime_env) -> None:  # type: ignore[no-untyped-def]
    t = trace([str(progs / "utrace")], ["-t", "u"])
    pid = _engine_pid(runtime_env)
    pidfd = os.pidfd_open(pid)
    os.kill(pid, signal.SIGKILL)
    select.select([pidfd], [], [], TIMEOUT)
    os.close(pidfd)
    again = trace([str(progs / "utrace")], ["-t", "u"])  # stale socket, free lock
    assert again.returncode == 0 and len(again.records) == len(t.records)
    assert _engine_pid(runtime_env) != pid

"""The commands' plain runs load none of the modules their start-up was freed of.

Each command's script (bin/, what pip installs as the command) runs as a
user runs it, in a wrapper that writes sys.modules to stderr at the moment
the command would exec (pyktrace's command mode) or exit (pykdump). A
module in FORBIDDEN costs milliseconds each (README, Performance): re
alone was a fifth of a warm pyktrace, and click more than everything else.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import TIMEOUT, _stop_engine

pytestmark = pytest.mark.both_engines

BIN = Path(__file__).resolve().parents[2] / "bin"
# Imported by json, click, signal.py, socket.py, dataclasses, array (collections),
# the pip wrapper: none is needed by a plain run.
FORBIDDEN = frozenset({"re", "json", "enum", "click", "typing", "dataclasses", "inspect", "collections",
                       "socket", "signal", "ctypes", "struct", "array", "rich", "logging", "threading"})  # fmt: skip
# pykdump's records go through decode/ and render/, which need these (functools loads collections).
KDUMP_FORBIDDEN = FORBIDDEN - {"collections", "struct"}
MARK = "MODULES "
WRAPPER = f"""
import os, sys
def report():
    sys.stderr.write({MARK!r} + " ".join(sorted(sys.modules)) + "\\n")
    sys.stderr.flush()
execvp = os.execvp
def reported_execvp(file, args):
    report()
    execvp(file, args)
os.execvp = reported_execvp
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(script)
with open(script) as f:
    code = compile(f.read(), script, "exec")
try:
    exec(code, {{"__name__": "__main__", "__file__": script}})
except SystemExit:
    report()
    raise
"""


def loaded(command: str, args: list[str], env: dict[str, str]) -> set[str]:
    """The modules the command has loaded when it execs or exits."""
    r = subprocess.run([sys.executable, "-c", WRAPPER, str(BIN / command), *args], env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith(MARK)]
    assert len(lines) == 1, r.stderr
    return set(lines[0][len(MARK) :].split())


def test_pyktrace_s_command_mode_loads_only_its_client(runtime_env: dict[str, str], engine: str,
                                                      tmp_path: Path) -> None:  # fmt: skip
    args = [f"--engine={engine}", "-f", str(tmp_path / "true.out"), "/bin/true"]
    if engine == "ptrace":
        # The engine is started on demand by the client (cold start): its own
        # modules load in its own process, not in the client that execs.
        _stop_engine(Path(runtime_env["XDG_RUNTIME_DIR"]) / "pyktrace")
        assert loaded("pyktrace", args, runtime_env) & FORBIDDEN == set()
    # A warm engine (the usual case). The bpf client loads the daemon's
    # modules to start one (trace/bpf/client.py): this run makes sure one runs.
    subprocess.run([sys.executable, str(BIN / "pyktrace"), *args], env=runtime_env, stdin=subprocess.DEVNULL,
                   check=True, timeout=TIMEOUT)  # fmt: skip
    modules = loaded("pyktrace", args, runtime_env)
    assert modules & FORBIDDEN == set()
    assert "ktrace_cli.cli.pyktrace_click" not in modules
    assert (tmp_path / "true.out").stat().st_size > 0


def test_pykdump_s_plain_run_loads_no_regular_expressions(runtime_env: dict[str, str], engine: str,
                                                          tmp_path: Path) -> None:  # fmt: skip
    # System calls only, as the start-up bench's file: the decoders of STRU
    # and GIO records load with the first such record (decode/stru.py).
    trace = tmp_path / "true.out"
    subprocess.run([sys.executable, str(BIN / "pyktrace"), f"--engine={engine}", "-t", "c", "-f", str(trace),
                    "/bin/true"],
                   env=runtime_env, stdout=subprocess.DEVNULL, check=True, timeout=TIMEOUT)  # fmt: skip
    modules = loaded("pykdump", ["-f", str(trace)], runtime_env)
    assert modules & KDUMP_FORBIDDEN == set()
    assert "ktrace_cli.cli.pykdump_click" not in modules



# The ptrace engine's modules, loaded before a cold start's engine can answer:
# what its loop and tables need (ctypes, threading, struct, collections), not
# the modules a protocol or a helper module could drag back in unseen.
ENGINE_FORBIDDEN = frozenset({"re", "json", "enum", "click", "typing", "dataclasses", "inspect",
                              "socket", "signal", "selectors", "rich"})  # fmt: skip


@pytest.mark.ptrace_only("the bpf engine's service loads libbpf's loader, not this path")
def test_the_ptrace_engine_s_modules_load_none_of_the_slow_ones() -> None:
    r = subprocess.run([sys.executable, "-c", "import sys, ktrace_cli.trace.ptrace_daemon\n"
                        "print(' '.join(sorted(sys.modules)))"],
                       capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) & ENGINE_FORBIDDEN == set()

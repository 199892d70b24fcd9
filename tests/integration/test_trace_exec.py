"""Command mode's first records, and the ARGS/ENVS records of execve and execveat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ktrace_cli.abi import linux as abi
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import Namei, Record, Syscall, Sysret

from .conftest import PYKTRACE, TIMEOUT, Looper, _stop_engine, requested_interpreter, settle

pytestmark = pytest.mark.both_engines

PYKDUMP = [sys.executable, "-m", "ktrace_cli.cli.pykdump"]

# Where pyktrace waits for the engine's answer when the engine attaches:
# nothing (the answer was already in), a poll() the attach interrupted and
# the kernel restarts, or a poll() begun after the attach.
WAITING = (
    [],
    ["CALL restart_syscall", "RET restart_syscall"],
    ["CALL poll", "RET poll"],
)
# Then, as FreeBSD's ktrace(1) after ktrace(2): read the answer, restore
# the two signal dispositions Python changed (each logging the new and the
# old action's l_sigset_t, as the Linuxulator does), exec.
AFTER_ANSWER = [
    "CALL recvmsg", "GIO", "RET recvmsg", "CALL close", "RET close",
    "CALL rt_sigaction", "STRUCT", "STRUCT", "RET rt_sigaction",
    "CALL rt_sigaction", "STRUCT", "STRUCT", "RET rt_sigaction",
]  # fmt: skip


def _token(r: Record) -> str:
    if r.type == K.KTR_SYSCALL:
        return f"CALL {abi.syscall_name(Syscall.unpack(AMD64, r.payload).code)}"
    if r.type == K.KTR_SYSRET:
        ret = Sysret.unpack(AMD64, r.payload)
        return f"RET {abi.syscall_name(ret.code)}" + (f" error {ret.error}" if ret.error else "")
    if r.type == K.KTR_NAMEI:
        return f"NAMI {Namei.unpack(AMD64, r.payload).path.decode()}"
    return "GIO" if r.type == K.KTR_GENIO else K.KTR_TYPE_NAMES.get(r.type, str(r.type))


def _prologue(path: Path) -> list[str]:
    """pyktrace's own records, from the first to the command's first record."""
    out = []
    for r in iter_records(str(path)):
        if r.comm_name != b"pyktrace":
            break
        out.append(_token(r))
    return out


def _run(env: dict[str, str], cwd: Path, *args: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*PYKTRACE, *map(str, args)], capture_output=True, cwd=cwd, env=env,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip


def _check_prologue(tokens: list[str], exec_part: list[str]) -> None:
    assert tokens[0] == "PROCCTOR"
    rest = tokens[1:]
    wait = next((w for w in WAITING if rest[: len(w)] == w and rest[len(w)] == "CALL recvmsg"), None)
    assert wait is not None, rest[:4]
    assert rest[len(wait) :] == AFTER_ANSWER + exec_part


def test_trace_begins_at_the_engines_answer_cold_and_warm(progs: Path, tmp_path: Path) -> None:
    """No module loading, no pyc read between the answer and the exec, whoever started the engine."""
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    (tmp_path / "empty").mkdir()
    env = dict(os.environ, XDG_RUNTIME_DIR=str(xdg), PATH=f"{tmp_path / 'empty'}:{progs}")
    execer = str(progs / "execer")
    ld = requested_interpreter(progs / "execer")
    try:
        # Cold: this pyktrace starts the engine itself.
        cold = _run(env, tmp_path, "-f", "cold.out", execer)
        assert (cold.returncode, cold.stderr) == (0, b"")
        _check_prologue(_prologue(tmp_path / "cold.out"), ["CALL execve", f"NAMI {execer}", f"NAMI {ld}"])
        # Warm: the engine is already running (kept busy by a traced looper),
        # and the command is found by a PATH search.
        lp = Looper(progs)
        try:
            assert _run(env, tmp_path, "-t", "u", "-f", "busy.out", "-p", lp.pid).returncode == 0
            warm = _run(env, tmp_path, "-f", "warm.out", "execer")
            assert (warm.returncode, warm.stderr) == (0, b"")
            assert _run(env, tmp_path, "-c", "-p", lp.pid).returncode == 0
        finally:
            assert lp.close() == 0
        _check_prologue(_prologue(tmp_path / "warm.out"), [
            "CALL execve", f"NAMI {tmp_path / 'empty' / 'execer'}", "RET execve error 2",
            "CALL execve", f"NAMI {execer}", f"NAMI {ld}"])  # fmt: skip
    finally:
        _stop_engine(xdg / "pyktrace")


def test_args_and_envs_of_execve_and_execveat(progs: Path, runtime_env: dict[str, str], tmp_path: Path,
                                              engine: str) -> None:  # fmt: skip
    execer = str(progs / "execer")
    # A small, known environment (LC_ALL set: Python would otherwise coerce
    # a C locale by adding LC_CTYPE to it).
    env = {"XDG_RUNTIME_DIR": runtime_env["XDG_RUNTIME_DIR"], "PYKTRACE_ENGINE": runtime_env["PYKTRACE_ENGINE"],
           "LC_ALL": "C"}
    r = subprocess.run([*PYKTRACE, "-t", "cnae", "-f", "ae.out", execer], capture_output=True,
                       cwd=tmp_path, env=env, timeout=TIMEOUT)  # fmt: skip
    settle(env)
    assert (r.returncode, r.stderr) == (0, b"")
    recs = list(iter_records(str(tmp_path / "ae.out")))
    pid = recs[0].pid
    vectors = [(x.comm_name.decode(), x.type, x.payload) for x in recs
               if x.type in (K.KTR_ARGS, K.KTR_ENVS)]  # fmt: skip
    envs = b"".join(f"{k}={v}\0".encode() for k, v in env.items())
    # Both engines write them as kern_execve() logs them: right after the
    # exec's CALL, before its NAMI, under the old name.
    comms = ["pyktrace", "execer", "exe"]
    order = [K.KTR_ARGS, K.KTR_ENVS, K.KTR_NAMEI]
    assert vectors == [
        (comms[0], K.KTR_ARGS, execer.encode() + b"\0"),
        (comms[0], K.KTR_ENVS, envs),
        (comms[1], K.KTR_ARGS, b"step2\0one\0two words\0\0"),
        (comms[1], K.KTR_ENVS, b"A=1\0B=two words\0\0"),
        (comms[2], K.KTR_ARGS, b"step3\0x\0"),
        (comms[2], K.KTR_ENVS, b""),
    ]
    for i, x in enumerate(recs):
        if x.type == K.KTR_SYSCALL and Syscall.unpack(AMD64, x.payload).code in (
            abi.syscall_number("execve"), abi.syscall_number("execveat")):  # fmt: skip
            assert [y.type for y in recs[i + 1 : i + 1 + len(order)]] == order
    text = subprocess.run([*PYKDUMP, "-t", "ae", "-f", "ae.out"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=TIMEOUT, check=True).stdout  # fmt: skip
    env_text = ", ".join(f'"{k}={v}"' for k, v in env.items())
    assert text.splitlines() == [
        f'{pid:6d} {comms[0]:8} ARGS  "{execer}"',
        f"{pid:6d} {comms[0]:8} ENVS  {env_text}",
        f'{pid:6d} {comms[1]:8} ARGS  "step2", "one", "two words", ""',
        f'{pid:6d} {comms[1]:8} ENVS  "A=1", "B=two words", ""',
        f'{pid:6d} {comms[2]:8} ARGS  "step3", "x"',
        f"{pid:6d} {comms[2]:8} ENVS  ",
    ]
    lines = subprocess.run([*PYKDUMP, "--json", "-t", "ae", "-f", "ae.out"], capture_output=True,
                           text=True, cwd=tmp_path, timeout=TIMEOUT, check=True).stdout  # fmt: skip
    got = [(o["type"], o["strings"]) for o in map(json.loads, lines.splitlines())]
    assert got == [
        ("ARGS", [execer]), ("ENVS", [f"{k}={v}" for k, v in env.items()]),
        ("ARGS", ["step2", "one", "two words", ""]), ("ENVS", ["A=1", "B=two words", ""]),
        ("ARGS", ["step3", "x"]), ("ENVS", []),
    ]  # fmt: skip


def test_args_are_bounded_whole_strings(progs: Path, runtime_env: dict[str, str], tmp_path: Path) -> None:
    """A vector larger than the bound keeps its leading strings whole, and no more."""
    from ktrace_cli.trace.capture import EXEC_VECTOR_MAX

    arg = "a" * 100_000  # three fit in 256 KiB, the fourth does not
    r = subprocess.run([*PYKTRACE, "-t", "a", "-f", "big.out", str(progs / "execer"), arg, arg,
                        arg, arg], capture_output=True, cwd=tmp_path, env=runtime_env,
                       timeout=TIMEOUT)  # fmt: skip
    settle(runtime_env)
    assert (r.returncode, r.stderr) == (0, b"")
    first = next(x for x in iter_records(str(tmp_path / "big.out")) if x.type == K.KTR_ARGS)
    assert first.payload == (str(progs / "execer") + "\0" + (arg + "\0") * 2).encode()
    assert len(first.payload) <= EXEC_VECTOR_MAX < len(first.payload) + len(arg) + 1


@pytest.mark.parametrize("letters", ["+", "c"])
def test_no_args_records_unless_asked(progs: Path, runtime_env: dict[str, str], tmp_path: Path,
                                      letters: str) -> None:  # fmt: skip
    r = subprocess.run([*PYKTRACE, "-t", letters, "-f", "k.out", str(progs / "execer")],
                       capture_output=True, cwd=tmp_path, env=runtime_env, timeout=TIMEOUT)  # fmt: skip
    settle(runtime_env)
    assert r.returncode == 0
    assert not [x for x in iter_records(str(tmp_path / "k.out")) if x.type in (K.KTR_ARGS, K.KTR_ENVS)]

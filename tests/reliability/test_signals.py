"""Signals at every point while tracing: nothing lost, duplicated or reordered relative to an untraced run.

Each program logs what it handled to a file; the traced run's log must equal
the untraced run's byte for byte, and the trace's PSIG records must show the
same signals in the same order. The test and the program take turns through
pipes (acks on the program's stdout, go-ahead lines on its stdin), never
through sleeps.
"""

from __future__ import annotations

import collections
import ctypes
import os
import select
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from ktrace_cli.abi import linux as abi
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import Record
from tests.integration.conftest import _ptrace_allowed
from tests.reliability import figures, loads

pytestmark = pytest.mark.skipif(not _ptrace_allowed(), reason="ptrace is not permitted here")

TIMEOUT = 60
_libc = ctypes.CDLL(None, use_errno=True)
SI_USER, SI_QUEUE = 0, -1


def sigqueue(pid: int, sig: int, value: int) -> None:
    """sigqueue(3): union sigval is one register on x86-64, so a long carries sival_int."""
    if _libc.sigqueue(ctypes.c_int(pid), ctypes.c_int(sig), ctypes.c_long(value)) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


class Program:
    """A running program with a pipe on each side; lines are read without sleeping."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.buf = b""

    def line(self) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            ready, _, _ = select.select([fd], [], [], TIMEOUT)
            assert ready, f"no line from the program in {TIMEOUT}s"
            chunk = os.read(fd, 4096)
            assert chunk, f"the program closed stdout (status {self.proc.poll()})"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def has_line(self) -> bool:
        """A whole line is waiting (select with a zero timeout: a poll, not a wait)."""
        assert self.proc.stdout is not None
        if b"\n" in self.buf:
            return True
        fd = self.proc.stdout.fileno()
        if select.select([fd], [], [], 0)[0]:
            self.buf += os.read(fd, 4096)
        return b"\n" in self.buf

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send_eof(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def finish(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(TIMEOUT)


@contextmanager
def started(argv: list[str], env: dict[str, str], trfile: Path | None) -> Iterator[Program]:
    """Run argv untraced, or under `pyktrace -i -t +w -f trfile` (which execs it: same pid)."""
    cmd = argv if trfile is None else [*loads.PYKTRACE, "-i", "-t", loads.ALL_OBSERVABLE,
                                       "-f", str(trfile), *argv]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        yield Program(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def psigs(records: list[Record]) -> dict[int, list[int]]:
    """PSIG signal numbers (FreeBSD numbering, as written) per pid, in file order."""
    out: dict[int, list[int]] = collections.defaultdict(list)
    for r in records:
        if r.type == K.KTR_PSIG:
            out[r.pid].append(AMD64.psig.unpack(r.payload)[0])
    return dict(out)


def nothing_lost(case: str, records: list[Record]) -> list[str]:
    """The trace's losses (see loads.losses), recorded as a survived fault for the soak table."""
    lost = loads.losses(records)
    figures.record("fault", case=case, records=len(records), lost=len(lost))
    return lost


def fb(*sigs: int) -> list[int]:
    return [abi.freebsd_signal_from_linux(s) for s in sigs]


Result = TypeVar("Result")

def both_runs(tmp_path: Path, run: Callable[[Path, Path | None], Result]
              ) -> tuple[Result, Result, list[Record]]:  # fmt: skip
    """Run `run(dir, trfile)` untraced and traced; the results and the traced run's records."""
    (tmp_path / "plain").mkdir()
    (tmp_path / "traced").mkdir()
    plain = run(tmp_path / "plain", None)
    trfile = tmp_path / "ktrace.out"
    traced = run(tmp_path / "traced", trfile)
    return plain, traced, list(iter_records(str(trfile)))


# ---------------------------------------------------------------------------
# SIGHUP, SIGINT and SIGTERM to the command and to its children, by pid.

CHILDREN = 3


def _sigtree(progs: Path, env: dict[str, str]
             ) -> Callable[[Path, Path | None], tuple[int, dict[str, bytes], dict[int, int]]]:  # fmt: skip
    def run(d: Path, trfile: Path | None) -> tuple[int, dict[str, bytes], dict[int, int]]:
        with started([str(progs / "sigtree"), str(CHILDREN), str(d)], env, trfile) as p:
            pids: dict[int, int] = {}
            while len(pids) < CHILDREN + 1:
                word, who, pid = p.line().split()
                assert word == "ready"
                pids[int(who)] = int(pid)
            # Children first, then the command itself; each signal is acked
            # before the next is sent, so none can merge with another.
            for idx in [*range(1, CHILDREN + 1), 0]:
                for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGHUP):
                    os.kill(pids[idx], sig)
                    assert p.line() == f"ack {idx} {int(sig)}"
            for idx in range(1, CHILDREN + 1):
                os.kill(pids[idx], signal.SIGTERM)  # default action: the parent reaps them
            os.kill(pids[0], signal.SIGTERM)
            assert p.line() == f"ack 0 {int(signal.SIGTERM)}"
            assert p.line() == "done"
            rc = p.finish()
        logs = {f.name: f.read_bytes() for f in sorted(d.glob("*.log"))}
        return rc, logs, pids

    return run


def test_hup_int_term_to_the_command_and_its_children(rel_progs: Path, runtime_env: dict[str, str],
                                                      tmp_path: Path) -> None:  # fmt: skip
    plain, traced, records = both_runs(tmp_path, _sigtree(rel_progs, runtime_env))
    rc, logs, _ = plain
    trc, tlogs, pids = traced
    assert (rc, trc) == (0, 0)
    caught = "".join(f"{{i}} caught {s} code {SI_USER}\n" for s in (1, 2, 1))
    assert logs == {
        f"{i}.log": (caught.format(i=i)
                     + ("" if i else f"{i} caught 15 code {SI_USER}\n")
                     + ("" if i else "".join(f"child {c} killed by 15\n"
                                             for c in range(1, CHILDREN + 1)))).encode()
        for i in range(CHILDREN + 1)
    }  # fmt: skip
    assert tlogs == logs
    # Every caught signal once, in order, then the children's fatal SIGTERM;
    # the parent's SIGCHLDs (default action: nothing) are not logged, as on FreeBSD.
    assert psigs(records) == {pid: fb(1, 2, 1, 15) for pid in pids.values()}
    assert nothing_lost("hup-int-term", records) == []


# ---------------------------------------------------------------------------
# SIGSTOP/SIGCONT storms while the command works.

STEPS = 300


def _stopwork(progs: Path, env: dict[str, str]
              ) -> Callable[[Path, Path | None], tuple[int, bytes, int]]:  # fmt: skip
    def run(d: Path, trfile: Path | None) -> tuple[int, bytes, int]:
        with started([str(progs / "stopwork"), str(d / "out")], env, trfile) as p:
            assert p.line() == "ready"
            storms = 0
            for i in range(STEPS):
                # One stop/continue pair before each byte, three more while it works on it.
                for _ in range(1 if i % 2 else 4):
                    os.kill(p.pid, signal.SIGSTOP)
                    os.kill(p.pid, signal.SIGCONT)
                    storms += 1
                p.send(bytes([ord("a") + i % 26]))
            p.send_eof()
            while not p.has_line():  # keep storming until it says it is done
                os.kill(p.pid, signal.SIGSTOP)
                os.kill(p.pid, signal.SIGCONT)
                storms += 1
            assert p.line() == "done"
            rc = p.proc.wait(TIMEOUT)
        return rc, (d / "out").read_bytes(), storms

    return run


def test_stop_cont_storm(rel_progs: Path, runtime_env: dict[str, str], tmp_path: Path) -> None:
    plain, traced, records = both_runs(tmp_path, _stopwork(rel_progs, runtime_env))
    rc, out, _ = plain
    trc, tout, storms = traced
    assert (rc, trc) == (0, 0)
    assert out.count(b"\n") == STEPS
    assert tout == out
    assert storms >= STEPS * 5 // 2
    # Stop and continue with their default actions never reach postsig(): no PSIG.
    assert psigs(records) == {}
    assert nothing_lost("stop-cont-storm", records) == []
    # Every line the program wrote is in the trace, once, in order.
    writes = [r.payload[8:] for r in records if r.type == K.KTR_GENIO
              and AMD64.genio_fixed.unpack_from(r.payload) == (3, K.UIO_WRITE)]  # fmt: skip
    assert b"".join(writes) == tout


# ---------------------------------------------------------------------------
# A command that ignores, or blocks, every signal it can.

# Every signal but SIGKILL and SIGSTOP (which cannot be caught, blocked or
# ignored) and glibc's internal 32 and 33 (which it refuses to let a program
# touch, so their default action would kill it).
CATCHABLE = [s for s in range(1, 65) if s not in (9, 19, 32, 33)]
RT_VALUES = 3


def _sigsink(progs: Path, env: dict[str, str], mode: str
             ) -> Callable[[Path, Path | None], tuple[int, bytes]]:  # fmt: skip
    def run(d: Path, trfile: Path | None) -> tuple[int, bytes]:
        with started([str(progs / "sigsink"), mode, str(d / "log")], env, trfile) as p:
            assert p.line() == "ready"
            for sig in CATCHABLE:
                os.kill(p.pid, sig)
                if sig >= 34:
                    for k in range(RT_VALUES):
                        sigqueue(p.pid, sig, sig * 100 + k)
            p.send(b"go\n")
            assert p.line() == "done"
            rc = p.finish()
        return rc, (d / "log").read_bytes()

    return run


def test_a_command_that_ignores_everything(rel_progs: Path, runtime_env: dict[str, str],
                                           tmp_path: Path) -> None:  # fmt: skip
    plain, traced, records = both_runs(tmp_path, _sigsink(rel_progs, runtime_env, "ignore"))
    assert plain == (0, b"ignore: 0 pending\n")
    assert traced == plain
    assert psigs(records) == {}  # ignored signals are discarded before postsig()
    assert nothing_lost("ignore-all", records) == []


def test_a_command_that_blocks_everything(rel_progs: Path, runtime_env: dict[str, str],
                                          tmp_path: Path) -> None:  # fmt: skip
    plain, traced, records = both_runs(tmp_path, _sigsink(rel_progs, runtime_env, "block"))
    rc, log = plain
    lines = log.decode().splitlines()
    # Standard signals are pending once, except SIGCONT, which the stop
    # signals sent after it (SIGTSTP, SIGTTIN, SIGTTOU) take off the queue;
    # each real-time one is pending once per sending.
    assert len(lines) == len(CATCHABLE) - 1 + RT_VALUES * len([s for s in CATCHABLE if s >= 34]) + 1
    assert not any(line.startswith("18 ") for line in lines)
    assert lines[-1] == f"block: {len(lines) - 1} pending"
    assert "34 code -1 value 3400" in lines and "64 code -1 value 6402" in lines
    assert traced == plain
    assert psigs(records) == {}  # taken by sigtimedwait, never delivered
    assert nothing_lost("block-all", records) == []


# ---------------------------------------------------------------------------
# Real-time signal floods, with values.

FLOOD = 2000


def _rtflood(progs: Path, env: dict[str, str], mode: str, nsigs: int
             ) -> Callable[[Path, Path | None], tuple[int, bytes, int]]:  # fmt: skip
    def run(d: Path, trfile: Path | None) -> tuple[int, bytes, int]:
        with started([str(progs / "rtflood"), mode, str(nsigs), str(d / "log")], env,
                     trfile) as p:  # fmt: skip
            word, rtmin = p.line().split()
            assert word == "ready"
            for i in range(FLOOD):
                sigqueue(p.pid, int(rtmin) + i % nsigs, i)
            p.send(b"go\n")
            assert p.line() == "done"
            rc = p.finish()
        return rc, (d / "log").read_bytes(), int(rtmin)

    return run


@pytest.mark.parametrize(("mode", "nsigs"), [("live", 1), ("held", 4)])
def test_real_time_flood(rel_progs: Path, runtime_env: dict[str, str], tmp_path: Path,
                         mode: str, nsigs: int) -> None:  # fmt: skip
    plain, traced, records = both_runs(tmp_path, _rtflood(rel_progs, runtime_env, mode, nsigs))
    rc, log, rtmin = plain
    # Queued signals are delivered lowest number first, each number in order sent.
    order = sorted(range(FLOOD), key=lambda i: (i % nsigs, i))
    assert log == ("".join(f"{i % nsigs} {i}\n" for i in order) + f"{FLOOD} caught\n").encode()
    assert traced == plain
    ((pid, sigs),) = psigs(records).items()
    assert sigs == fb(*(rtmin + i % nsigs for i in order))
    assert nothing_lost(f"rt-flood-{mode}", records) == []


# ---------------------------------------------------------------------------
# The signal dispositions the command starts with.


def test_the_command_keeps_the_signal_dispositions_it_was_given(runtime_env: dict[str, str],
                                                                tmp_path: Path) -> None:  # fmt: skip
    # What this test runner hands down (some harnesses ignore signals, e.g. glibc's 32 and 33).
    status = subprocess.run(["/bin/cat", "/proc/self/status"], capture_output=True).stdout
    inherited = int(next(line.split()[1] for line in status.splitlines()
                         if line.startswith(b"SigIgn:")), 16)  # fmt: skip
    given = frozenset(s for s in range(1, 65) if inherited >> (s - 1) & 1)
    assert loads.command_sigign(runtime_env, tmp_path) == given
    script = "yes | head -1; echo $?"
    plain = subprocess.run(["/bin/sh", "-c", script], capture_output=True, env=runtime_env)
    traced = subprocess.run([*loads.PYKTRACE, "-f", str(tmp_path / "t.out"), "/bin/sh", "-c",
                             script], capture_output=True, env=runtime_env)  # fmt: skip
    assert (traced.stdout, traced.stderr) == (plain.stdout, plain.stderr) == (b"y\n0\n", b"")

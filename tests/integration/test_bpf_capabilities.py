"""The bpf engine for a user who is not root but holds CAP_BPF and CAP_PERFMON.

pyktrace runs as `nobody` through setpriv with both capabilities ambient
(so they survive the exec of the interpreter), with a runtime directory of
its own: its bpf daemon is nobody's, and applies FreeBSD's rule itself (a
capability holder is not root: its own processes only). The same user
without the capabilities is refused with one line, and --engine=auto falls
back to ptrace and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import Namei

from .conftest import (
    AS_NOBODY,
    NOBODY,
    PYKDUMP,
    PYKTRACE,
    TIMEOUT,
    Looper,
    Nobody,
    bpf_unavailable,
    line_body,
    tracer,
)  # fmt: skip

_WHY = bpf_unavailable()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"BPF cannot load here: {_WHY}")

AS_HOLDER = (*AS_NOBODY, "--inh-caps=+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon")
NEEDS = "the bpf engine needs root, or CAP_BPF and CAP_PERFMON"


@pytest.fixture(scope="module")
def holder(nobody: Nobody) -> Iterator[Nobody]:
    """nobody's directories, once setpriv is known to grant CAP_BPF and CAP_PERFMON."""
    r = subprocess.run([*AS_HOLDER, "true"], capture_output=True, text=True, timeout=TIMEOUT)
    if r.returncode != 0:
        pytest.skip(f"setpriv cannot grant CAP_BPF and CAP_PERFMON here: {r.stderr.strip()}")
    yield nobody


def _run(h: Nobody, prefix: tuple[str, ...], *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *PYKTRACE, *map(str, args)], capture_output=True, text=True,
                          cwd=h.work, env=h.env, stdin=subprocess.DEVNULL, timeout=TIMEOUT)  # fmt: skip


def _kdump(h: Nobody, name: str) -> list[str]:
    """pykdump run as the holder: it asks the holder's own engine to flush first."""
    r = subprocess.run([*AS_HOLDER, *PYKDUMP, "-f", name], capture_output=True, text=True,
                       cwd=h.work, env=h.env, timeout=TIMEOUT, check=True)  # fmt: skip
    return r.stdout.splitlines()


def _engine_uid(h: Nobody) -> int:
    pid = int((h.xdg / "pyktrace" / "bpf" / "engine.pid").read_text())
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def _namei(path: Path) -> list[bytes]:
    return [Namei.unpack(AMD64, r.payload).path for r in iter_records(str(path)) if r.type == K.KTR_NAMEI]


def test_a_holder_records_its_command_as_the_ptrace_engine_does(holder: Nobody) -> None:
    if shutil.which("setarch") is None:
        pytest.skip("setarch (util-linux) is not installed")
    (holder.work / "in.txt").write_text("hello ktrace\n")
    os.chown(holder.work / "in.txt", NOBODY, NOBODY)
    bodies = {}
    for engine, prefix in (("bpf", AS_HOLDER), ("ptrace", AS_NOBODY)):
        out = f"{engine}.out"
        r = _run(holder, prefix, f"--engine={engine}", "-t", "cni", "-f", out,
                 "setarch", "-R", holder.shared / "basic", "in.txt")  # fmt: skip
        assert (r.returncode, r.stdout, r.stderr) == (3, "hello ktrace\n", "")
        lines = _kdump(holder, out)
        first = next(i for i, x in enumerate(lines) if x.split()[1:2] == ["basic"])  # after the exec
        pid = int(lines[first].split()[0])  # each run is another process: its pid, where a RET shows it
        bodies[engine] = [line_body(x).replace(f"{pid}/{pid:#x}", "PID") for x in lines[first:]]
    assert _engine_uid(holder) == NOBODY  # the holder's own daemon, in its own runtime directory
    assert bodies["bpf"] == bodies["ptrace"]
    at = bodies["bpf"].index('NAMI  "/nonexistent/basic"')
    assert bodies["bpf"][at + 1] == "RET   openat -1 errno 2 No such file or directory"


def test_a_holder_traces_its_own_running_process(holder: Nobody) -> None:
    lp = Looper(holder.shared, prefix=AS_NOBODY)
    try:
        for args in (("-t", "n", "-f", "own.out", "-p", lp.pid), ("-c", "-p", lp.pid)):
            r = _run(holder, AS_HOLDER, "--engine=bpf", *args)
            assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
            lp.ping()  # traced once, then not
        _kdump(holder, "own.out")  # flushed
        assert _namei(holder.work / "own.out") == [b"/nonexistent/looper-0"]
        assert {r.pid for r in iter_records(str(holder.work / "own.out"))} == {lp.pid}
    finally:
        assert lp.close() == 0


def test_a_holder_may_not_trace_another_users_process(holder: Nobody, looper) -> None:  # type: ignore[no-untyped-def]
    """A capability holder is not root for FreeBSD's rule, though its programs see every process."""
    lp = looper()  # root's
    why = f"pyktrace: pid {lp.pid} belongs to uid 0, not to you (uid {NOBODY}); only root may trace it\n"
    for args in (("-t", "n", "-f", "roots.out", "-p", lp.pid), ("-c", "-p", lp.pid)):
        r = _run(holder, AS_HOLDER, "--engine=bpf", *args)
        name = "roots.out" if "-f" in args else "ktrace.out"
        assert (r.returncode, r.stdout, r.stderr) == (
            1, "", f"pyktrace: {name}: Operation not permitted\n" + why)  # fmt: skip
    lp.ping()
    assert not (holder.work / "roots.out").exists()  # the refused request's new file is undone


@pytest.mark.parametrize("roots", ["bpf", "ptrace"])
def test_a_holder_may_not_change_what_root_traces(holder: Nobody, session_env: dict[str, str],
                                                  roots: str) -> None:  # fmt: skip
    """FreeBSD's KTRFAC_ROOT, whichever of root's engines traces the holder's process."""
    env = dict(session_env, PYKTRACE_ENGINE=roots)
    out = holder.work / f"root-{roots}.out"
    lp = Looper(holder.shared, prefix=AS_NOBODY)
    try:
        r = subprocess.run([*PYKTRACE, "-t", "n", "-f", str(out), "-p", str(lp.pid)],
                           capture_output=True, text=True, env=env, timeout=TIMEOUT)  # fmt: skip
        assert (r.returncode, r.stderr) == (0, "")
        if roots == "bpf":
            engine = int((Path(env["XDG_RUNTIME_DIR"]) / "pyktrace" / "bpf" / "engine.pid").read_text())
        else:
            engine = tracer(lp.pid)
        r = _run(holder, AS_HOLDER, "--engine=bpf", "-t", "c", "-f", "mine.out", "-p", lp.pid)
        assert (r.returncode, r.stderr) == (1, (
            "pyktrace: mine.out: Operation not permitted\n"
            f"pyktrace: pid {lp.pid} is traced by the trace engine of uid 0 (pid {engine}); "
            "only that user can change its tracing\n"))  # fmt: skip
        assert not (holder.work / "mine.out").exists()
        lp.ping()
        r = subprocess.run([*PYKTRACE, "-c", "-p", str(lp.pid)], capture_output=True, text=True,
                           env=env, timeout=TIMEOUT)  # fmt: skip
        assert (r.returncode, r.stderr) == (0, "")
        lp.ping()
        assert _namei(out) == [b"/nonexistent/looper-0"]  # root's trace, whole
    finally:
        assert lp.close() == 0


def test_a_set_uid_exec_ends_a_holders_trace(holder: Nobody) -> None:
    """The program runs with its privileges, untraced: the kernel side stops at the exec."""
    prog = holder.shared / "euid-setuid-caps"
    shutil.copy(holder.shared / "euid", prog)
    os.chown(prog, 0, 0)
    prog.chmod(0o4755)
    r = _run(holder, AS_HOLDER, "--engine=bpf", "-t", "cn", "-f", "s.out", prog)
    assert (r.returncode, r.stdout, r.stderr) == (0, "euid=0\n", "")
    _kdump(holder, "s.out")  # flushed
    recs = list(iter_records(str(holder.work / "s.out")))
    assert recs and {x.comm_name for x in recs} == {b"pyktrace"}  # nothing of the program
    assert b"/nonexistent/euid" not in _namei(holder.work / "s.out")


def test_without_the_capabilities_bpf_is_refused_and_auto_says_why(holder: Nobody) -> None:
    r = _run(holder, AS_NOBODY, "--engine=bpf", "-t", "n", "-f", "no.out", holder.shared / "basic", "/dev/null")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", f"pyktrace: {NEEDS}\n")
    assert not (holder.work / "no.out").exists()
    r = _run(holder, AS_NOBODY, "--engine=auto", "-t", "n", "-f", "auto.out", holder.shared / "basic", "/dev/null")
    assert (r.returncode, r.stdout, r.stderr) == (3, "", f"pyktrace: --engine=auto: using ptrace: {NEEDS}\n")
    assert b"/nonexistent/basic" in _namei(holder.work / "auto.out")


def test_auto_picks_bpf_for_a_holder(holder: Nobody) -> None:
    r = _run(holder, AS_HOLDER, "--engine=auto", "-t", "n", "-f", "hauto.out", holder.shared / "basic", "/dev/null")
    assert (r.returncode, r.stdout, r.stderr) == (3, "", "")
    _kdump(holder, "hauto.out")  # flushed
    assert b"/nonexistent/basic" in _namei(holder.work / "hauto.out")
    # The bpf engine's programs know the CPU each record was made on; ptrace's records say -1.
    assert all(r.cpu >= 0 for r in iter_records(str(holder.work / "hauto.out")) if r.type == K.KTR_NAMEI)

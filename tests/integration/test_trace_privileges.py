"""pyktrace's permission rules and write failures, on real processes and real limits.

The EPERM cases run pyktrace as `nobody` (setpriv, from util-linux) with a
runtime directory of its own, so a second, unprivileged engine is involved,
as it would be on a shared machine. They need root to switch users.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from ktrace_cli.abi import linux as abi
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import Namei, Record, Syscall

from .conftest import AS_NOBODY, NOBODY, PYKTRACE, TIMEOUT, Looper, Nobody, settle, tracer

pytestmark = pytest.mark.both_engines

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to nobody")


@needs_root
@pytest.mark.ptrace_only("nobody without capabilities runs only ptrace; a CAP_BPF holder's refusal: test_bpf_capabilities.py")
def test_eperm_names_another_user(nobody: Nobody, looper, kt) -> None:  # type: ignore[no-untyped-def]
    lp = looper()  # root's
    for args in (("-p", lp.pid), ("-c", "-p", lp.pid)):
        r = kt(*args, ok=False, env=nobody.env, prefix=AS_NOBODY, cwd=nobody.work)
        assert (r.returncode, r.stdout, r.stderr) == (1, "", (
            "pyktrace: ktrace.out: Operation not permitted\n"
            f"pyktrace: pid {lp.pid} belongs to uid 0, not to you (uid {NOBODY}); "
            "only root may trace it\n"))  # fmt: skip
    assert tracer(lp.pid) == 0
    lp.ping()


def holder(env: dict[str, str], engine: str, pid: int) -> int:
    """The pid of the test's (root's) engine if it traces `pid`, else 0."""
    if engine == "ptrace":
        return tracer(pid)
    rtdir = Path(env["XDG_RUNTIME_DIR"]) / "pyktrace" / "bpf"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(rtdir / "engine.sock"))
        s.sendall(b'{"op": "status"}\n')
        reply = b""
        while not reply.endswith(b"\n"):
            reply += s.recv(4096)
    return int((rtdir / "engine.pid").read_text()) if pid in json.loads(reply)["procs"] else 0


@needs_root
def test_a_user_cannot_change_what_roots_engine_traces(nobody: Nobody, progs: Path, kt, engine: str,
                                                       runtime_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """FreeBSD's KTRFAC_ROOT: root's tracing of a user's process is root's, on either engine of root's.

    The user's requests go to its own (ptrace) engine, which must learn of
    root's bpf engine's tracing from that engine (trace/rootbpf.py).
    """
    lp = Looper(nobody.shared, prefix=AS_NOBODY)
    try:
        kt("-t", "n", "-p", lp.pid)  # root's engine
        held = holder(runtime_env, engine, lp.pid)
        assert held != 0
        why = (f"pyktrace: pid {lp.pid} is traced by the trace engine of uid 0 (pid {held}); "
               "only that user can change its tracing\n")  # fmt: skip
        for args in (("-c", "-p", lp.pid), ("-t", "c", "-p", lp.pid)):
            r = kt(*args, ok=False, env=nobody.env, prefix=AS_NOBODY, cwd=nobody.work)
            assert (r.returncode, r.stderr) == (
                1, "pyktrace: ktrace.out: Operation not permitted\n" + why)  # fmt: skip
        assert tracer(lp.pid) == (held if engine == "ptrace" else 0)  # the user's engine never attached
        kt("-C", env=nobody.env, prefix=AS_NOBODY, cwd=nobody.work)  # quietly, changing nothing
        assert holder(runtime_env, engine, lp.pid) == held
        lp.ping()
        kt("-c", "-p", lp.pid)  # root can
        assert holder(runtime_env, engine, lp.pid) == 0
        lp.ping()
        got = [Namei.unpack(AMD64, r.payload).path for r in iter_records(str(tmp_path / "ktrace.out"))
               if r.type == K.KTR_NAMEI]  # fmt: skip
        assert got == [b"/nonexistent/looper-0"]
    finally:
        assert lp.close() == 0


def _ends_at_the_exec(recs: list[Record], call: str) -> None:
    """The trace was written before the detach: it ends with the CALL of the exec."""
    last = recs[-1]
    assert last.type == K.KTR_SYSCALL
    assert Syscall.unpack(AMD64, last.payload).code == abi.syscall_number(call)


@needs_root
def test_set_uid_exec_runs_untraced_with_its_privileges(nobody: Nobody) -> None:
    prog = nobody.shared / "euid-setuid"
    shutil.copy(nobody.shared / "euid", prog)
    os.chown(prog, 0, 0)
    prog.chmod(0o4755)
    r = subprocess.run([*AS_NOBODY, *PYKTRACE, "-t", "cn", "-f", "s.out", str(prog)],
                       capture_output=True, text=True, cwd=nobody.work, env=nobody.env,
                       timeout=TIMEOUT)  # fmt: skip
    assert (r.returncode, r.stdout, r.stderr) == (0, "euid=0\n", "")
    recs = list(iter_records(str(nobody.work / "s.out")))
    assert recs and {r.comm_name for r in recs} == {b"pyktrace"}  # nothing of the program
    _ends_at_the_exec(recs, "execve")
    assert f"set-id exec of {prog}: tracing stopped so it keeps its privileges\n" in nobody.log.read_text()


@needs_root
@pytest.mark.parametrize(("how", "named"), [("e", "fd 3"), ("d", "euid-setuid-d")])
def test_set_uid_execveat_runs_untraced_with_its_privileges(nobody: Nobody, how: str, named: str) -> None:
    """fexecve (execveat with AT_EMPTY_PATH) and a name relative to a directory descriptor."""
    prog = nobody.shared / f"euid-setuid-{how}"
    shutil.copy(nobody.shared / "euid", prog)
    os.chown(prog, 0, 0)
    prog.chmod(0o4755)
    r = subprocess.run([*AS_NOBODY, *PYKTRACE, "-t", "cn", "-f", f"{how}.out",
                        str(nobody.shared / "setid"), how, str(prog)],
                       capture_output=True, text=True, cwd=nobody.work, env=nobody.env,
                       timeout=TIMEOUT)  # fmt: skip
    assert (r.returncode, r.stdout, r.stderr) == (0, "euid=0\n", "")
    recs = list(iter_records(str(nobody.work / f"{how}.out")))
    assert recs and {r.comm_name for r in recs} == {b"pyktrace", b"setid"}  # nothing of the program
    _ends_at_the_exec(recs, "execveat")
    assert f"set-id exec of {named}: tracing stopped" in nobody.log.read_text()


@needs_root
def test_file_capabilities_exec_runs_untraced_with_them(nobody: Nobody) -> None:
    if shutil.which("setcap") is None:
        pytest.skip("setcap (libcap2-bin) is not installed")
    prog = nobody.shared / "caps-netraw"
    shutil.copy(nobody.shared / "caps", prog)
    done = subprocess.run(["setcap", "cap_net_raw+ep", str(prog)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"file capabilities are not supported here: {done.stderr.strip()}")
    alone = subprocess.run([*AS_NOBODY, str(prog)], capture_output=True, text=True, timeout=TIMEOUT)
    assert alone.stdout == "TracerPid:\t0\nCapEff:\t0000000000002000\n"
    r = subprocess.run([*AS_NOBODY, *PYKTRACE, "-t", "cn", "-f", "caps.out", str(prog)],
                       capture_output=True, text=True, cwd=nobody.work, env=nobody.env,
                       timeout=TIMEOUT)  # fmt: skip
    assert (r.returncode, r.stdout, r.stderr) == (0, alone.stdout, "")
    recs = list(iter_records(str(nobody.work / "caps.out")))
    assert recs and {r.comm_name for r in recs} == {b"pyktrace"}
    _ends_at_the_exec(recs, "execve")
    assert f"file-capability exec of {prog}: tracing stopped" in nobody.log.read_text()


def _dd(env: dict[str, str], trfile: Path, preexec: object = None) -> tuple[int, int, bytes]:
    """dd under pyktrace -t ci: 128 GIO records of 4 KiB, far more than the file may take."""
    p = subprocess.Popen([*PYKTRACE, "-t", "ci", "-f", str(trfile), "dd", "if=/dev/zero",
                          "of=/dev/null", "bs=4096", "count=64", "status=none"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                         preexec_fn=preexec)  # type: ignore[arg-type]  # fmt: skip
    out, _ = p.communicate(timeout=TIMEOUT)
    settle(env)
    return p.pid, p.returncode, out


def _check_failed_trace(run: tuple[int, int, bytes], trfile: Path, runtime_env, errno: int,
                        limit: int) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    pid, status, out = run
    # The program was never hurt: it ran to the end, untraced after the failure.
    assert (status, out) == (0, b"")
    rtdir = Path(runtime_env["XDG_RUNTIME_DIR"]) / "pyktrace"
    if runtime_env["PYKTRACE_ENGINE"] == "bpf":
        rtdir /= "bpf"  # the bpf engine's daemon keeps its files apart
    log = (rtdir / "engine.log").read_text()
    assert f"ktrace write failed, errno {errno}, tracing stopped for pid {pid}\n" in log
    size = trfile.stat().st_size
    assert 0 < size <= limit
    recs = list(iter_records(str(trfile)))  # every record whole and decodable
    assert sum(64 + len(x.payload) for x in recs) == size
    assert recs[0].pid == pid and any(x.type == K.KTR_GENIO for x in recs)
    dump = subprocess.run([*PYKTRACE[:-1], "ktrace_cli.cli.pykdump", "-f", str(trfile)],
                          capture_output=True, timeout=TIMEOUT)  # fmt: skip
    assert dump.returncode == 0 and dump.stderr == b""


def test_file_size_limit_stops_tracing_cleanly(runtime_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    limit = 65536
    f = tmp_path / "limited.out"

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    r = _dd(runtime_env, f, low_limit)
    _check_failed_trace(r, f, runtime_env, 27, limit)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_filesystem_stops_tracing_cleanly(runtime_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=True)
    try:
        f = mnt / "full.out"
        r = _dd(runtime_env, f)
        _check_failed_trace(r, f, runtime_env, 28, 65536)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)

"""The eBPF engine: the same records as the ptrace engine, drops marked, attaching without stopping.

Skipped (with the reason) only where the BPF programs cannot load: neither
root nor CAP_BPF with CAP_PERFMON, no kernel BTF, no libbpf.  Every test
leaves nothing attached: the engine detaches when nothing is traced, and
the session's engine is shut down at the end even when a test failed.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrace_cli.abi import linux as abi
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, FDPAIR, FDPAIR_PIPE
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import Record, unpack_payload

from .conftest import PYKTRACE, TIMEOUT, _stop_engine, bpf_unavailable

PYKDUMP = [sys.executable, "-m", "ktrace_cli.cli.pykdump"]


_WHY = bpf_unavailable()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"BPF cannot load here: {_WHY}")


def _engine_call(env: dict[str, str], message: dict[str, object]) -> dict[str, object] | None:
    path = Path(env["XDG_RUNTIME_DIR"]) / "pyktrace" / "bpf" / "engine.sock"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(path))
            s.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    return json.loads(data) if data else None


@pytest.fixture(scope="session")
def bpf_env(session_env: dict[str, str]) -> dict[str, str]:
    """The session's private runtime directory (its bpf engine is shut down at the session's end)."""
    return session_env


@pytest.fixture
def fresh_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A runtime directory of its own, for an engine loaded with other settings."""
    rt = tmp_path / "xdg"
    rt.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(rt))
    yield env
    _stop_engine(rt / "pyktrace" / "bpf")


def _sync(env: dict[str, str]) -> None:
    """The engine writes asynchronously: every record made so far is on disk after this."""
    _engine_call(env, {"op": "sync"})


def _run(env: dict[str, str], args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    r = subprocess.run([*PYKTRACE, *args], env=env, cwd=cwd, capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=TIMEOUT)  # fmt: skip
    _sync(env)  # a command's last records may still be on their way to the file
    return r


def _program_records(path: Path, comm: bytes) -> list[Record]:
    """The records from the traced program's first one on (after its exec)."""
    recs = list(iter_records(str(path)))
    first = next(i for i, r in enumerate(recs) if r.comm_name == comm)
    return recs[first:]


_FDPAIR_NAME = b"fdpair\0"


def _payload(r: Record) -> bytes:
    """A record's payload, the inode numbers of a STRU fdpair cut to whether each is known
    (a pipe or socket each run makes is its own)."""
    if r.type == K.KTR_STRUCT and r.payload.startswith(_FDPAIR_NAME):
        *fields, ino0, ino1 = FDPAIR.unpack(r.payload[len(_FDPAIR_NAME) :])
        return _FDPAIR_NAME + FDPAIR.pack(*fields, ino0 > 0, ino1 > 0)
    return bytes(r.payload)


def _comparable(r: Record) -> tuple[int, bytes, bytes]:
    """A record without what differs by run in its header: times and CPU (and _payload's inodes).
    The pids (each run is another pyktrace process) are _same_but_pids' matter."""
    return r.type, r.comm_name, _payload(r)


def _pid_map(a: list[Record], b: list[Record]) -> dict[int, int]:
    """Run a's pids and tids to run b's, record by record."""
    pids: dict[int, int] = {}
    for x, y in zip(a, b, strict=False):  # lists of other lengths: the == says so
        pids.setdefault(x.pid, y.pid)
        pids.setdefault(x.tid, y.tid)
    return pids


def _text_as_in(a: bytes, b: bytes, pids: dict[int, int]) -> bytes:
    """Text of run a (a program's output, GIO data) with each number that is one
    of a's pids where b has the matching pid of b written as b writes it."""
    ta, tb = re.split(rb"(\d+)", a), re.split(rb"(\d+)", b)
    if len(ta) != len(tb):
        return a
    for i in range(1, len(ta), 2):  # re.split puts the digit runs at odd places
        if ta[i] != tb[i] and pids.get(int(ta[i])) == int(tb[i]):
            ta[i] = tb[i]
    return b"".join(ta)


def _same_but_pids(a: list[Record], b: list[Record]) -> tuple[list[tuple[int, bytes, bytes]],
                                                               list[tuple[int, bytes, bytes]]]:  # fmt: skip
    """Two runs' records, _comparable, for an == between the lists.

    Where a CALL or RET field of run a holds one of a's pids (getpid,
    kill, set_tid_address) and the same field of run b the matching pid
    of b, a's field takes b's value (also in GIO data: a program that
    prints its pid). Fields are matched pairwise, not by value: a size
    that happens to equal one run's pid (read(3, buf, 0x340) by pid 832,
    pids wrap at pid_max) is equal in both runs and stays a size.
    """
    pids = _pid_map(a, b)
    out = []
    for x, y in zip(a, b, strict=False):  # lists of other lengths: the == says so
        payload = bytearray(_payload(x))
        if x.type == y.type and len(x.payload) == len(y.payload):
            if x.type in (K.KTR_SYSCALL, K.KTR_SYSRET):
                for off in range(8, len(payload) - 7, 8):
                    mine = int.from_bytes(x.payload[off : off + 8], "little")
                    theirs = y.payload[off : off + 8]
                    if pids.get(mine) == int.from_bytes(theirs, "little"):
                        payload[off : off + 8] = theirs
            elif x.type == K.KTR_GENIO:
                payload[8:] = _text_as_in(x.payload[8:], y.payload[8:], pids)
        out.append((x.type, x.comm_name, bytes(payload)))
    out += [_comparable(x) for x in a[len(b) :]]
    return out, [_comparable(y) for y in b]


CASES = {  # program, arguments, trace points, header version
    "io-v1": ("basic", ["in.txt"], "cni", "1"),
    "io-v0": ("basic", ["in.txt"], "cni", "0"),
    "signals": ("sig", [], "cs", "1"),
    "structures": ("io", [], "cit", "1"),  # pipe I/O, writev, stat, sockaddr in and out
    "signal-masks": ("sig", [], "cst", "1"),  # l_sigset_t of signal()'s rt_sigaction calls
}


def _fatal_psig_codes(recs: list[Record]) -> list[int]:
    """The si_code of each PSIG with the default action (handler 0)."""
    return [int.from_bytes(r.payload[16:20], "little") for r in recs
            if r.type == K.KTR_PSIG and r.payload[8:16] == bytes(8)]  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_same_records_as_the_ptrace_engine(bpf_env, progs: Path, tmp_path: Path, case: str) -> None:  # type: ignore[no-untyped-def]
    """One deterministic program (no ASLR, so pointers agree) traced by both engines."""
    if shutil.which("setarch") is None:
        pytest.skip("setarch (util-linux) is not installed")
    prog, args, points, version = CASES[case]
    (tmp_path / "in.txt").write_bytes(b"hello ktrace\n")
    got, outcomes = {}, []
    for engine in ("ptrace", "bpf"):
        out = tmp_path / f"{engine}.out"
        r = _run(bpf_env, [f"--engine={engine}", "--header-version", version, "-t", points,
                           "-f", str(out), "setarch", "-R", str(progs / prog), *args],
                 cwd=tmp_path)  # fmt: skip
        outcomes.append((r.returncode, r.stdout))
        got[engine] = _program_records(out, prog.encode())
    assert outcomes[0] == outcomes[1]  # the same exit status and output
    ptrace, bpf = got["ptrace"], got["bpf"]
    if case == "signals":
        # sig.c dies of SIGUSR2 (no handler, no core dump), which Linux turns
        # into a group exit when it is sent: the bpf engine keeps the
        # sender's code from signal_generate, so both say SI_USER.
        assert _fatal_psig_codes(bpf) == _fatal_psig_codes(ptrace) == [0x10001]
    if case == "signal-masks":
        # Not two engines wrong alike: signal(SIGUSR1) and signal(SIGCHLD)
        # each log the new action's mask (glibc blocks the signal itself in
        # its handler) after the CALL, and the old action's (the default's,
        # empty) before the RET.
        sigaction = abi.syscall_number("rt_sigaction")
        calls = [i for i, r in enumerate(bpf) if r.type == K.KTR_SYSCALL
                 and int.from_bytes(r.payload[:2], "little") == sigaction]  # fmt: skip
        assert len(calls) == 2
        for at, linux_sig in zip(calls, (10, 17), strict=True):  # SIGUSR1, SIGCHLD
            assert [(r.type, r.payload) for r in bpf[at + 1 : at + 3]] == [
                (K.KTR_STRUCT, b"l_sigset_t\0" + (1 << (linux_sig - 1)).to_bytes(8, "little")),
                (K.KTR_STRUCT, b"l_sigset_t\0" + bytes(8)),
            ]
            assert bpf[at + 3].type == K.KTR_SYSRET
        # printf's fstat(1) is of the pipe each run makes: its inode and times differ.
        ptrace = [r for r in ptrace if not r.payload.startswith(b"stat\0")]
        bpf = [r for r in bpf if not r.payload.startswith(b"stat\0")]
    if case == "structures":
        # io.c's pipe: both engines name its two ends by the one inode.
        for recs in (ptrace, bpf):
            pairs = [FDPAIR.unpack(r.payload[len(_FDPAIR_NAME) :]) for r in recs
                     if r.type == K.KTR_STRUCT and r.payload.startswith(_FDPAIR_NAME)]  # fmt: skip
            assert len(pairs) == 1 and pairs[0][:4] == (3, 4, FDPAIR_PIPE, 0) and pairs[0][4] == pairs[0][5] > 0
    mapped, expected = _same_but_pids(bpf, ptrace)
    assert mapped == expected
    assert len({r.pid for r in bpf}) == 1
    wanted = {K.KTR_SYSCALL, K.KTR_SYSRET}
    wanted |= {"s": {K.KTR_PSIG}, "t": {K.KTR_STRUCT}}.get(points[-1], {K.KTR_NAMEI, K.KTR_GENIO})
    assert wanted <= {r.type for r in bpf}
    if version == "1":
        # The bpf engine knows the CPU each record was made on; ptrace cannot.
        assert all(r.cpu >= 0 for r in bpf) and all(r.cpu == -1 for r in ptrace)
        assert all(r.version == 1 for r in bpf)
        assert bpf[-1].type == K.KTR_PROCDTOR
    else:
        assert all(r.version == 0 for r in bpf)


def test_pykdump_prints_a_bpf_trace_exactly(bpf_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "in.txt"
    data.write_bytes(b"hello ktrace\n")
    out = tmp_path / "k.out"
    r = _run(bpf_env, ["--engine=bpf", "-t", "cni", "-f", str(out), str(progs / "basic"), "in.txt"],
             cwd=tmp_path)  # fmt: skip
    assert r.returncode == 3, r.stderr
    text = subprocess.run([*PYKDUMP, "-f", str(out)], capture_output=True, text=True,
                          timeout=TIMEOUT, check=True).stdout  # fmt: skip
    lines = text.splitlines()
    start = lines.index(next(x for x in lines if x.endswith('NAMI  "in.txt"')))
    pid = lines[start].split()[0]
    # Pointers vary from run to run: shown as PTR.
    shown = [re.sub(r"0x[0-9a-f]{6,}", "PTR", x) for x in lines[start:]]
    head = f"{pid:>6} basic    "
    assert shown == [
        head + 'NAMI  "in.txt"',
        head + "RET   openat 3",
        head + "CALL  read(0x3,PTR,0x40)",
        head + "GIO   fd 3 read 13 bytes",
        '       "hello ktrace',
        '       "',
        head + "RET   read 13/0xd",
        head + "CALL  close(0x3)",
        head + "RET   close 0",
        head + "CALL  write(0x1,PTR,0xd)",
        head + "GIO   fd 1 wrote 13 bytes",
        '       "hello ktrace',
        '       "',
        head + "RET   write 13/0xd",
        head + "CALL  openat(AT_FDCWD,PTR,0<O_RDONLY>)",
        head + 'NAMI  "/nonexistent/basic"',
        head + "RET   openat -1 errno 2 No such file or directory",
        head + "CALL  pipe2(PTR,0x800<O_NONBLOCK>)",
        head + "RET   pipe2 0",
        head + "CALL  read(0x3,PTR,0x40)",
        head + "RET   read -1 errno 11 Resource temporarily unavailable",
        head + "CALL  exit_group(0x3)",
    ]


def test_inherit_follows_children_from_the_kernel(bpf_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "k.out"
    r = _run(bpf_env, ["--engine=bpf", "-i", "-t", "cn", "-f", str(out), str(progs / "forker")])
    assert r.returncode == 7, r.stderr
    recs = _program_records(out, b"forker")
    parent = recs[0].pid
    child = next(r.pid for r in recs if r.pid != parent)
    mine = [r for r in recs if r.pid == child]
    # The child's PROCCTOR (its parent's name) precedes its own RET from fork.
    assert mine[0].type == K.KTR_PROCCTOR and mine[0].comm_name == b"forker"
    first_ret = unpack_payload(AMD64, K.KTR_SYSRET, mine[1].payload)
    assert mine[1].type & 0xFF == K.KTR_SYSRET and first_ret.retval == 0 and first_ret.error == 0
    names = [unpack_payload(AMD64, K.KTR_NAMEI, r.payload).path for r in mine
             if r.type == K.KTR_NAMEI]  # fmt: skip
    assert names == [b"/nonexistent/child"]
    assert mine[-1].type == K.KTR_PROCDTOR
    # Without -i the child is not traced.
    r = _run(bpf_env, ["--engine=bpf", "-t", "cn", "-f", str(out), str(progs / "forker")])
    assert r.returncode == 7
    assert len({x.pid for x in _program_records(out, b"forker")}) == 1


def test_the_command_keeps_pyktraces_pid(bpf_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """As ktrace(1): pyktrace is traced from the engine's answer on and execs the command itself."""
    out = tmp_path / "k.out"
    p = subprocess.Popen([*PYKTRACE, "--engine=bpf", "-t", "cn", "-f", str(out), "sh", "-c", "echo $$"],
                         env=bpf_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)  # fmt: skip
    stdout, stderr = p.communicate(timeout=TIMEOUT)
    _sync(bpf_env)
    assert (p.returncode, stdout, stderr) == (0, f"{p.pid}\n".encode(), b"")
    recs = list(iter_records(str(out)))
    assert {r.pid for r in recs} == {p.pid}
    execve = abi.syscall_number("execve")
    calls = [(r.comm_name, unpack_payload(AMD64, K.KTR_SYSCALL, r.payload).code) for r in recs
             if r.type == K.KTR_SYSCALL]  # fmt: skip
    # Only pyktrace's last calls come before the exec: no fork, no wait.
    first_sh = next(i for i, (comm, _) in enumerate(calls) if comm == b"sh")
    mine = calls[:first_sh]
    assert mine and all(comm == b"pyktrace" for comm, _ in mine) and mine[-1][1] == execve
    assert abi.syscall_number("clone") not in {code for _, code in mine}
    assert recs[-1].type == K.KTR_PROCDTOR and recs[-1].comm_name == b"sh"


def test_programs_detach_when_nothing_is_traced(fresh_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With no grace, the programs are detached as soon as the command has gone."""
    env = dict(fresh_env, PYKTRACE_BPF_DETACH_GRACE="0")
    r = _run(env, ["--engine=bpf", "-f", str(tmp_path / "k.out"), str(progs / "forker")])
    assert r.returncode == 7
    status = _engine_call(env, {"op": "status"})
    assert status is not None and status["procs"] == [] and status["attached"] is False
    log = (Path(env["XDG_RUNTIME_DIR"]) / "pyktrace" / "bpf" / "engine.log").read_text()
    assert log.rstrip().endswith("nothing traced: programs detached"), log[-400:]


@pytest.mark.parametrize("var, value", [("PYKTRACE_BPF_DETACH_GRACE", "soon"), ("PYKTRACE_BPF_DETACH_GRACE", "9"),
                                        ("PYKTRACE_BPF_RING", "5000")])  # fmt: skip
def test_bad_engine_settings_are_one_line(fresh_env, tmp_path: Path, var: str, value: str) -> None:  # type: ignore[no-untyped-def]
    r = _run(dict(fresh_env, **{var: value}), ["--engine=bpf", "-f", str(tmp_path / "k.out"), "/bin/true"])
    assert r.returncode == 1 and r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyktrace: ") and f"{var}={value}" in lines[0], lines
    assert not (tmp_path / "k.out").exists()


def test_nothing_stays_attached(bpf_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """After the default grace the engine detaches, or has exited (idle)."""
    r = _run(bpf_env, ["--engine=bpf", "-f", str(tmp_path / "k.out"), str(progs / "forker")])
    assert r.returncode == 7
    status = _engine_call(bpf_env, {"op": "status"})
    assert status is None or status["procs"] == []
    _stop_engine(Path(bpf_env["XDG_RUNTIME_DIR"]) / "pyktrace" / "bpf")
    log = (Path(bpf_env["XDG_RUNTIME_DIR"]) / "pyktrace" / "bpf" / "engine.log").read_text()
    last = log.rstrip().splitlines()[-3:]
    assert any(x.endswith("nothing traced: programs detached") for x in last), last


def test_drops_are_counted_and_marked(fresh_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A one-page ring cannot hold a getppid storm the drainer does not read: batches are lost,
    the next record says so.

    The engine is stopped while the storm runs: a drainer at real-time
    priority can otherwise keep up with the one page, and the test would
    depend on the machine's load.

    Which record carries the mark is the machine's business: the first one
    the process makes after a lost batch. That is one of the storm's last
    (a short batch flushed at a preemption may fit the room a long one
    left, or the process may block in its read only after the engine,
    continued, has drained), or the read's RET if the whole tail was lost.
    That some record does is certain: the process waits in its read until
    the engine has drained (the sync), and the few records it makes then
    fit the empty ring. Every lost record is counted, and a sync logs the
    count whatever the time since the last line (one a second otherwise).
    """
    env = dict(fresh_env, PYKTRACE_BPF_RING="4096")
    out = tmp_path / "k.out"
    storm = ("import os, sys\n"
             "print('ready', flush=True); sys.stdin.readline()\n"
             "for _ in range(200000): os.getppid()\n"
             "print('done', flush=True); sys.stdin.readline()\n")  # fmt: skip
    p = subprocess.Popen([*PYKTRACE, "--engine=bpf", "-t", "c", "-f", str(out), sys.executable, "-I", "-S", "-c",
                          storm], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)  # fmt: skip
    assert p.stdin is not None and p.stdout is not None and p.stderr is not None
    # "ready" comes from the traced program: the engine runs and traces it.
    assert p.stdout.readline() == b"ready\n", p.stderr.read()
    engine = int((Path(env["XDG_RUNTIME_DIR"]) / "pyktrace" / "bpf" / "engine.pid").read_text())
    os.kill(engine, signal.SIGSTOP)
    try:
        p.stdin.write(b"go\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"done\n"
    finally:
        os.kill(engine, signal.SIGCONT)
    assert _engine_call(env, {"op": "sync"}) == {"error": 0}  # drained: the read's wake-up fits
    p.stdin.write(b"\n")
    p.stdin.close()
    assert p.wait(timeout=TIMEOUT) == 0, p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    assert _engine_call(env, {"op": "sync"}) == {"error": 0}
    recs = list(iter_records(str(out)))  # every record that arrived is whole
    marked = [x for x in recs if x.drop]
    assert marked, "no record carries KTR_DROP"
    getppid = abi.syscall_number("getppid")
    calls = sum(1 for x in recs if x.type == K.KTR_SYSCALL and int.from_bytes(x.payload[:2], "little") == getppid)
    assert calls < 200000
    text = subprocess.run([*PYKDUMP, "-f", str(out)], capture_output=True, text=True,
                          timeout=TIMEOUT, check=True).stdout  # fmt: skip
    assert text.count("Events dropped.") == len(marked)
    # The engine counts every lost record, and its log says so by the sync.
    log = (Path(env["XDG_RUNTIME_DIR"]) / "pyktrace" / "bpf" / "engine.log").read_text()
    counts = [int(n) for n in re.findall(r"records dropped \((\d+) since load\)", log)]
    kept = sum(1 for x in recs if x.type in (K.KTR_SYSCALL, K.KTR_SYSRET)
               and int.from_bytes(x.payload[:2], "little") == getppid)  # fmt: skip
    status = _engine_call(env, {"op": "status"})
    assert status is not None and counts and counts[-1] == status["lost"], (status, log[-400:])
    assert counts[-1] >= 2 * 200000 - kept, log[-400:]


def test_attach_to_a_process_strace_traces(bpf_env, looper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """ptrace allows one tracer; the bpf engine needs none, and never stops the process."""
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    lp = looper(prefix=("strace", "-qq", "-o", str(tmp_path / "strace.out")))
    pid = lp.pid
    with open(f"/proc/{pid}/status") as f:
        assert re.search(r"^TracerPid:\s+[1-9]", f.read(), re.M), "strace does not trace it"
    out = tmp_path / "k.out"
    try:
        r = _run(bpf_env, ["--engine=bpf", "-t", "n", "-p", str(pid), "-f", str(out)])
        assert r.returncode == 0, r.stderr
        lp.ping()
    finally:
        r = _run(bpf_env, ["--engine=bpf", "-c", "-p", str(pid)])
    assert r.returncode == 0, r.stderr
    lp.ping()  # still running, untraced now
    recs = list(iter_records(str(out)))
    assert recs[0].type == K.KTR_PROCCTOR and recs[0].pid == pid
    names = [unpack_payload(AMD64, K.KTR_NAMEI, x.payload).path for x in recs
             if x.type == K.KTR_NAMEI]  # fmt: skip
    assert names == [b"/nonexistent/looper-0"]
    assert lp.close() == 0


def _names(path: Path) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for x in iter_records(str(path)):
        if x.type == K.KTR_NAMEI:
            out.setdefault(x.pid, []).append(unpack_payload(AMD64, K.KTR_NAMEI, x.payload).path)
    return out


def test_descendants_and_clear_by_file(bpf_env, looper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lp = looper(2)
    out = tmp_path / "k.out"
    try:
        r = _run(bpf_env, ["--engine=bpf", "-d", "-t", "n", "-p", str(lp.pid), "-f", str(out)])
        assert r.returncode == 0, r.stderr
        status = _engine_call(bpf_env, {"op": "status"})
        assert status is not None and status["procs"] == sorted(lp.pids)
        lp.ping(0)
        lp.ping(1)
    finally:
        r = _run(bpf_env, ["--engine=bpf", "-c", "-f", str(out)])
    assert r.returncode == 0, r.stderr
    status = _engine_call(bpf_env, {"op": "status"})
    assert status is None or status["procs"] == []
    lp.ping(0)
    lp.ping(1)
    assert _names(out) == {lp.pids[0]: [b"/nonexistent/looper-0"],
                           lp.pids[1]: [b"/nonexistent/looper-1"]}  # fmt: skip
    assert lp.close() == 0


def test_process_group_and_clear_all(bpf_env, looper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lp = looper(2, start_new_session=True)  # a group of its own: never the test runner's
    out = tmp_path / "k.out"
    try:
        r = _run(bpf_env, ["--engine=bpf", "-t", "n", "-g", str(lp.pid), "-f", str(out)])
        assert r.returncode == 0, r.stderr
        lp.ping(1)
    finally:
        r = _run(bpf_env, ["--engine=bpf", "-C"])
    assert r.returncode == 0, r.stderr
    lp.ping(0)  # after the clear: not recorded
    assert _names(out) == {lp.pids[1]: [b"/nonexistent/looper-1"]}
    assert lp.close() == 0


def test_utrace_records(bpf_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "k.out"
    code = "from ktrace_cli.utrace import utrace; utrace(b'from python'); utrace(b'again')"
    r = _run(bpf_env, ["--engine=bpf", "-t", "u", "-f", str(out), sys.executable, "-c", code])
    assert r.returncode == 0, r.stderr
    users = [bytes(x.payload) for x in iter_records(str(out)) if x.type == K.KTR_USER]
    assert users == [b"from python", b"again"]


def test_file_size_limit_stops_tracing_with_whole_records(fresh_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The tracer's RLIMIT_FSIZE holds for the file, as with the ptrace engine."""
    limit = 65536
    out = tmp_path / "limited.out"

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    r = subprocess.run([*PYKTRACE, "--engine=bpf", "-t", "ci", "-f", str(out), "dd", "if=/dev/zero",
                        "of=/dev/null", "bs=4096", "count=64", "status=none"],
                       capture_output=True, env=fresh_env, timeout=TIMEOUT,
                       preexec_fn=low_limit)  # fmt: skip
    _sync(fresh_env)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")  # dd never noticed
    size = out.stat().st_size
    assert 0 < size <= limit
    recs = list(iter_records(str(out)))
    assert sum(64 + len(x.payload) for x in recs) == size  # whole records only
    pid = next(x.pid for x in recs if x.comm_name == b"dd")
    log = (Path(fresh_env["XDG_RUNTIME_DIR"]) / "pyktrace" / "bpf" / "engine.log").read_text()
    assert f"ktrace write failed, errno 27, tracing stopped for pid {pid}\n" in log


def test_args_and_envs_at_exec(progs: Path, tmp_path: Path, bpf_env) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "k.out"
    env = dict(bpf_env, KTRACE_TEST_VAR="one two")
    r = subprocess.run([*PYKTRACE, "--engine=bpf", "-t", "ae", "-f", str(out), str(progs / "basic"),
                        "in.txt", "second arg"],
                       capture_output=True, env=env, cwd=tmp_path, timeout=TIMEOUT)  # fmt: skip
    _sync(env)
    assert r.returncode == 3, r.stderr
    text = subprocess.run([*PYKDUMP, "-t", "ae", "-f", str(out)], capture_output=True, text=True,
                          timeout=TIMEOUT, check=True).stdout  # fmt: skip
    args = [x for x in text.splitlines() if " ARGS  " in x]
    envs = [x for x in text.splitlines() if " ENVS  " in x]
    assert len(args) == 1 and len(envs) == 1
    assert args[0].split(" ARGS  ", 1)[1] == f'"{progs / "basic"}", "in.txt", "second arg"'
    assert '"KTRACE_TEST_VAR=one two"' in envs[0].split(" ENVS  ", 1)[1].split(", ")


def _asleep_in_read(pid: int) -> None:
    """Wait until the process sleeps in read(2) (a condition, not a delay)."""
    import time

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        with open(f"/proc/{pid}/syscall") as f:
            nr = f.read().split()[0]
        if state == b"S" and nr == str(abi.syscall_number("read")):
            return
        time.sleep(0.001)
    raise AssertionError(f"pid {pid} never slept in read")


def test_context_switches_around_a_sleeping_call(bpf_env, looper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """-t w: exact CSW records from the scheduler, named by the call that slept."""
    lp = looper()
    out = tmp_path / "k.out"
    _asleep_in_read(lp.pid)
    try:
        r = _run(bpf_env, ["--engine=bpf", "-t", "w", "-p", str(lp.pid), "-f", str(out)])
        assert r.returncode == 0, r.stderr
        lp.ping()  # woken (its sleep began untraced), then asleep again in read: "out"
        _asleep_in_read(lp.pid)
        lp.ping()  # switched back in: "in", then asleep again: "out"
        _asleep_in_read(lp.pid)
    finally:
        r = _run(bpf_env, ["--engine=bpf", "-c", "-p", str(lp.pid)])
    assert r.returncode == 0, r.stderr
    csws = [(x, unpack_payload(AMD64, K.KTR_CSW, x.payload)) for x in iter_records(str(out))
            if x.type == K.KTR_CSW]  # fmt: skip
    assert [(c.out, c.user, c.wmesg) for _, c in csws] == [(1, 0, b"read"), (0, 0, b"read"),
                                                          (1, 0, b"read")]  # fmt: skip
    assert all(x.pid == lp.pid and x.tid == lp.pid and x.comm_name == b"looper" for x, _ in csws)
    assert lp.close() == 0


def test_page_faults_on_fresh_pages(bpf_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """-t f: PFLT and PRET, which ptrace cannot see, for each first write to a page."""
    out = tmp_path / "k.out"
    r = _run(bpf_env, ["--engine=bpf", "-t", "f", "-f", str(out), str(progs / "touch")])
    assert (r.returncode, r.stderr) == (0, b""), r.stderr
    base = int(r.stdout.split()[0], 16)
    page = os.sysconf("SC_PAGESIZE")
    recs = [x for x in _program_records(out, b"touch") if x.type in (K.KTR_FAULT, K.KTR_FAULTEND)]
    faults = [(unpack_payload(AMD64, K.KTR_FAULT, x.payload), i) for i, x in enumerate(recs)
              if x.type == K.KTR_FAULT and base <= unpack_payload(AMD64, K.KTR_FAULT, x.payload).vaddr
              < base + 8 * page]  # fmt: skip
    assert [(f.vaddr, f.type) for f, _ in faults] == [(base + i * page + 5, 2) for i in range(8)], (
        hex(base), [(hex(f.vaddr), f.type) for f, _ in faults], len(recs))
    for _, i in faults:  # each followed by its PRET, KERN_SUCCESS
        assert recs[i + 1].type == K.KTR_FAULTEND
        assert unpack_payload(AMD64, K.KTR_FAULTEND, recs[i + 1].payload).result == 0
    text = subprocess.run([*PYKDUMP, "-t", "f", "-f", str(out)], capture_output=True, text=True,
                          timeout=TIMEOUT, check=True).stdout  # fmt: skip
    assert f"PFLT  {hex(base + 5)} 0x2<VM_PROT_WRITE>" in text
    assert "PRET  KERN_SUCCESS" in text


def test_sysctl_names_as_the_ptrace_engine_makes_them(bpf_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code = ("import os\nopen('/proc/sys/kernel/hostname').read()\n"
            "os.open('/proc/sys/kernel/', os.O_RDONLY)\n"
            "os.open('/proc/sys//kernel//ostype', os.O_RDONLY)\nopen('/proc/version').read()")  # fmt: skip
    got = {}
    for engine in ("ptrace", "bpf"):
        out = tmp_path / f"{engine}.out"
        r = _run(bpf_env, [f"--engine={engine}", "-t", "y", "-f", str(out), sys.executable, "-c", code])
        assert r.returncode == 0, r.stderr
        got[engine] = [bytes(x.payload) for x in iter_records(str(out)) if x.type == K.KTR_SYSCTL]
    assert got["bpf"] == got["ptrace"] == [b"kernel.hostname\0", b"kernel\0", b"kernel..ostype\0"]


def test_errors_are_one_line(bpf_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gone = subprocess.Popen(["true"])
    gone.wait()
    for args in (["-p", str(gone.pid)], ["-c", "-p", str(gone.pid)]):
        r = _run(bpf_env, ["--engine=bpf", *args], cwd=tmp_path)
        assert (r.returncode, r.stdout, r.stderr) == (1, b"", b"pyktrace: ktrace.out: No such process\n")
    r = _run(bpf_env, ["--engine=bpf", "/nonexistent/command"], cwd=tmp_path)
    assert (r.returncode, r.stderr) == (
        1, b"pyktrace: exec of '/nonexistent/command' failed: No such file or directory\n")


def test_a_command_killed_by_sigkill(bpf_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "k.out"
    r = _run(bpf_env, ["--engine=bpf", "-t", "cs", "-f", str(out), str(progs / "selfkill")])
    assert r.returncode == -9 and r.stderr == b""
    recs = _program_records(out, b"selfkill")
    psig = [unpack_payload(AMD64, K.KTR_PSIG, x.payload) for x in recs if x.type == K.KTR_PSIG]
    assert [(p.signo, p.action, p.code) for p in psig] == [(9, 0, 0)]
    assert recs[-1].type == K.KTR_PROCDTOR


def test_genio_size_and_append(bpf_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "k.out"
    r = _run(bpf_env, ["--engine=bpf", "--genio-size", "3", "-t", "i", "-f", str(out), str(progs / "io")])
    assert r.returncode == 0, r.stderr
    first = list(iter_records(str(out)))
    gio = [unpack_payload(AMD64, K.KTR_GENIO, x.payload).data for x in first if x.type == K.KTR_GENIO]
    assert b"pin" in gio and b"abc" in gio and all(len(d) <= 3 for d in gio)  # "ping", "abcd" cut
    r = _run(bpf_env, ["--engine=bpf", "-a", "-t", "i", "-f", str(out), str(progs / "io")])
    assert r.returncode == 0, r.stderr
    both = list(iter_records(str(out)))
    assert [bytes(x.payload) for x in both[: len(first)]] == [bytes(x.payload) for x in first]
    assert len(both) > len(first)


def test_clear_all_under_the_ptrace_engine_clears_bpf_too(bpf_env, looper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lp = looper()
    out = tmp_path / "k.out"
    try:
        r = _run(bpf_env, ["--engine=bpf", "-t", "n", "-p", str(lp.pid), "-f", str(out)])
        assert r.returncode == 0, r.stderr
        status = _engine_call(bpf_env, {"op": "status"})
        assert status is not None and status["procs"] == [lp.pid]
    finally:
        r = _run(bpf_env, ["--engine=ptrace", "-C"])
    assert r.returncode == 0, r.stderr
    status = _engine_call(bpf_env, {"op": "status"})
    assert status is None or status["procs"] == []
    lp.ping()
    assert lp.close() == 0


def test_args_and_envs_as_the_ptrace_engine_bounds_them(bpf_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Whole strings up to 256 KiB, as ARGS and ENVS of both engines hold them."""
    big = ["x" * 999 + str(i % 10) for i in range(300)]  # 300,000 bytes of arguments
    env = dict(bpf_env, KTRACE_TEST_VAR="one two")
    got = {}
    for engine in ("ptrace", "bpf"):
        out = tmp_path / f"{engine}.out"
        r = subprocess.run([*PYKTRACE, f"--engine={engine}", "-t", "ae", "-f", str(out), "true", *big],
                           capture_output=True, env=env, timeout=TIMEOUT)  # fmt: skip
        _sync(env)
        assert r.returncode == 0, r.stderr
        recs = [x for x in iter_records(str(out)) if x.type in (K.KTR_ARGS, K.KTR_ENVS)]
        got[engine] = [(x.type, bytes(x.payload)) for x in recs[-2:]]  # the command's exec
    assert got["bpf"] == got["ptrace"]
    args = got["bpf"][0][1]
    assert got["bpf"][0][0] == K.KTR_ARGS and len(args) <= 256 * 1024 and args.endswith(b"\0")
    assert args.split(b"\0")[1:-1] == [s.encode() for s in big[: len(args.split(b"\0")) - 2]]
    assert b"KTRACE_TEST_VAR=one two\0" in got["bpf"][1][1]


# int $0x80 calls (progs/i386*.s, progs/int80.c): recorded under linux32 as
# the ptrace engine records them (tests/integration/test_i386.py).
SV_LINUX32 = 0x654103  # FreeBSD's linux32 sysentvec flags on amd64 (docs/FORMAT.md)
SV_LINUX64 = K.SV_ABI_LINUX | K.SV_LP64
I386_CASES = {  # program, arguments, trace points, PROCCTOR flags in the program's records
    # exits 0: getpid, write, an open of a missing path (NAMI), exit
    "static": ("i386", ["missing"], "cnis", [SV_LINUX64, SV_LINUX32]),
    # a 64-bit program: two int $0x80 calls between x86_64 ones
    "int80": ("int80", [], "cni", [SV_LINUX64, SV_LINUX32, SV_LINUX64]),
    # rt_sigaction, kill, the handler, rt_sigreturn (JUSTRETURN), exit
    "signal": ("i386sig", [], "cis", [SV_LINUX64, SV_LINUX32]),
    # the same with STRU: the l_sigset_t at offset 12 of the i386 struct sigaction
    "signal-masks": ("i386sig", [], "cist", [SV_LINUX64, SV_LINUX32]),
    # an i386 execve of an x86_64 program: its RET stays i386's
    "exec": ("i386exec", ["basic", "data.txt"], "c", [SV_LINUX64, SV_LINUX32, SV_LINUX32, SV_LINUX64]),
    # the same with ARGS, ENVS and NAMI: argv and envp read as 4-byte pointers
    "exec-records": ("i386exec", ["basic", "data.txt"], "cnae", [SV_LINUX64, SV_LINUX32, SV_LINUX32, SV_LINUX64]),
}


@pytest.mark.parametrize("case", list(I386_CASES))
def test_i386_calls_as_the_ptrace_engine_records_them(bpf_env, progs: Path, tmp_path: Path, case: str) -> None:  # type: ignore[no-untyped-def]
    """The same records on both engines: i386 numbers and registers, linux32 PROCCTORs, RET under the entry's ABI."""
    if shutil.which("setarch") is None:
        pytest.skip("setarch (util-linux) is not installed")
    prog, args, points, ctors = I386_CASES[case]
    (tmp_path / "data.txt").write_bytes(b"hello\n")
    args = [str(progs / a) if (progs / a).exists() else a for a in args]
    got, outcomes = {}, {}
    for engine in ("ptrace", "bpf"):
        out = tmp_path / f"{engine}.out"
        r = _run(bpf_env, [f"--engine={engine}", "-t", points, "-f", str(out), "setarch", "-R",
                           str(progs / prog), *args], cwd=tmp_path)  # fmt: skip
        outcomes[engine] = r
        got[engine] = _program_records(out, prog.encode())
    ptrace, bpf = got["ptrace"], got["bpf"]
    # The same status and output, but for the pid int80 prints.
    rp, rb = outcomes["ptrace"], outcomes["bpf"]
    assert (rb.returncode, _text_as_in(rb.stdout, rp.stdout, _pid_map(bpf, ptrace))) == (rp.returncode, rp.stdout)
    if case == "exec-records":
        from .conftest import requested_interpreter

        ptrace = _without_elf_interp(ptrace, requested_interpreter(progs / "basic"))
        assert [r.payload for r in bpf if r.type == K.KTR_ARGS] == [
            b"%s\0data.txt\0" % bytes(progs / "basic")]
    mapped, expected = _same_but_pids(bpf, ptrace)
    assert mapped == expected
    # Not two engines wrong alike: the records are linux32's where they should be.
    flags = [unpack_payload(AMD64, K.KTR_PROCCTOR, r.payload).sv_flags for r in bpf
             if r.type == K.KTR_PROCCTOR]  # fmt: skip
    assert flags == ctors
    assert any(r.type == K.KTR_SYSCALL for r in bpf)


def _from_last_exec(recs: list[Record], comm: bytes | None) -> list[Record]:
    """The records from the exec that started the program named `comm` (None: the last exec) on:
    its CALL, and what follows."""
    first = len(recs) if comm is None else next(i for i, r in enumerate(recs) if r.comm_name == comm)
    execve = abi.syscall_number("execve")
    return recs[max(i for i, r in enumerate(recs[:first]) if r.type == K.KTR_SYSCALL
                    and int.from_bytes(r.payload[:2], "little") == execve):]  # fmt: skip


def _exec_both(env: dict[str, str], argv: list[str], points: str, cwd: Path, comm: bytes | None
               ) -> tuple[list[Record], list[Record], int]:  # fmt: skip
    got, outcomes = {}, []
    for engine in ("ptrace", "bpf"):
        out = cwd / f"{engine}.out"
        r = _run(env, [f"--engine={engine}", "-t", points, "-f", str(out), "setarch", "-R", *argv], cwd=cwd)
        outcomes.append((r.returncode, r.stdout))
        got[engine] = _from_last_exec(list(iter_records(str(out))), comm)
    assert outcomes[0] == outcomes[1]
    return got["ptrace"], got["bpf"], outcomes[0][0]


def test_exec_records_as_the_ptrace_engine_orders_them(bpf_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """CALL, ARGS, ENVS, the script's NAMI, its #! interpreter's, that image's PT_INTERP, PROCCTOR, RET."""
    if shutil.which("setarch") is None:
        pytest.skip("setarch (util-linux) is not installed")
    from .conftest import requested_interpreter

    basic = progs / "basic"  # prints the file named by argv[1] (here: the script), exits 3
    ld = requested_interpreter(basic)
    script = tmp_path / "script"
    script.write_bytes(b"#! %s -x\n" % bytes(basic))
    script.chmod(0o755)
    ptrace, bpf, status = _exec_both(bpf_env, [str(script)], "cnae+", tmp_path, b"script")
    assert status == 3
    # From the exec's ARGS on (its CALL carries setarch's pointers, which ASLR moves).
    assert bpf[0].type == ptrace[0].type == K.KTR_SYSCALL
    mapped, expected = _same_but_pids(bpf[1:], _without_elf_interp(ptrace[1:], ld))
    assert mapped == expected
    # Not two engines wrong alike: FreeBSD's order, the lookups under the caller's name.
    head = [(r.type, r.comm_name, r.payload) for r in bpf[1:7]]
    assert [t for t, _, _ in head] == [K.KTR_ARGS, K.KTR_ENVS, K.KTR_NAMEI, K.KTR_NAMEI, K.KTR_PROCCTOR,
                                       K.KTR_SYSRET]  # fmt: skip
    assert head[0][2] == bytes(script) + b"\0"  # the argv execve was given, not the interpreter's
    assert [p for t, _, p in head if t == K.KTR_NAMEI] == [bytes(script), bytes(basic)]
    assert [c for _, c, _ in head] == [b"setarch"] * 4 + [b"script"] * 2


def _without_elf_interp(recs: list[Record], ld: str) -> list[Record]:
    """The records but the ELF interpreter's NAMI, which the bpf engine cannot see (docs/DESIGN.md)."""
    return [r for r in recs if not (r.type == K.KTR_NAMEI and r.payload == ld.encode())]


def test_failed_exec_records_as_the_ptrace_engine_orders_them(bpf_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A failed exec: CALL, ARGS, ENVS, the path's NAMI, the error's RET."""
    if shutil.which("setarch") is None:
        pytest.skip("setarch (util-linux) is not installed")
    missing = tmp_path / "missing"
    got = {}
    for engine in ("ptrace", "bpf"):
        out = tmp_path / f"{engine}.out"
        r = _run(bpf_env, [f"--engine={engine}", "-t", "cnae", "-f", str(out), "setarch", "-R", str(missing),
                           "one", "two"], cwd=tmp_path)  # fmt: skip
        assert r.returncode != 0
        recs = list(iter_records(str(out)))
        execve = abi.syscall_number("execve")
        at = max(i for i, x in enumerate(recs) if x.type == K.KTR_SYSCALL and x.comm_name == b"setarch"
                 and int.from_bytes(x.payload[:2], "little") == execve)  # fmt: skip
        got[engine] = recs[at + 1 : at + 5]
    mapped, expected = _same_but_pids(got["bpf"], got["ptrace"])
    assert mapped == expected
    assert [(x.type, x.payload) for x in got["bpf"]][::2] == [
        (K.KTR_ARGS, b"%s\0one\0two\0" % bytes(missing)), (K.KTR_NAMEI, bytes(missing))]
    assert unpack_payload(AMD64, K.KTR_SYSRET, got["bpf"][3].payload).error == 2  # ENOENT


def test_exec_strings_in_pages_not_yet_touched(bpf_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The path, argv and envp in a fresh file mapping: read from the kernel's copies, in the same order."""
    if shutil.which("setarch") is None:
        pytest.skip("setarch (util-linux) is not installed")
    from .conftest import requested_interpreter

    page = 4096
    strings = tmp_path / "strings"
    strings.write_bytes(bytes(progs / "execfresh").ljust(page, b"\0") + b"fresh".ljust(page, b"\0")
                        + b"FRESH=1".ljust(page, b"\0"))  # fmt: skip
    ptrace, bpf, status = _exec_both(bpf_env, [str(progs / "execfresh"), str(strings)], "cnae", tmp_path, None)
    assert status == 0
    # From the second exec's CALL on: its pointers are the same in both runs (no ASLR).
    ld = requested_interpreter(progs / "execfresh")
    mapped, expected = _same_but_pids(bpf, _without_elf_interp(ptrace, ld))
    assert mapped == expected
    assert [(r.type, r.payload) for r in bpf[1:4]] == [
        (K.KTR_ARGS, b"fresh\0"), (K.KTR_ENVS, b"FRESH=1\0"), (K.KTR_NAMEI, bytes(progs / "execfresh"))]


def test_signal_masks_as_the_ptrace_engine_logs_them(bpf_env, progs: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """linuxulator.c's rt_sigaction, rt_sigprocmask and rt_sigsuspend calls and their l_sigset_t records."""
    got = {}
    names = ("rt_sigaction", "rt_sigprocmask", "rt_sigsuspend")
    calls = {abi.syscall_number(n) for n in names}
    for engine in ("ptrace", "bpf"):
        out = tmp_path / f"{engine}.out"
        r = _run(bpf_env, [f"--engine={engine}", "-t", "ct", "-f", str(out), str(progs / "linuxulator")],
                 cwd=tmp_path)  # fmt: skip
        assert r.returncode == -signal.SIGFPE
        main = [x for x in _program_records(out, b"linuxulator") if x.tid == x.pid]  # the other thread's interleave
        got[engine] = [(x.type, x.payload[:2] if x.type == K.KTR_SYSCALL else x.payload) for x in main
                       if (x.type == K.KTR_SYSCALL and int.from_bytes(x.payload[:2], "little") in calls)
                       or (x.type == K.KTR_STRUCT and x.payload.startswith(b"l_sigset_t\0"))]  # fmt: skip
    assert got["bpf"] == got["ptrace"]
    sigalrm = (1 << 13).to_bytes(8, "little")
    # sigprocmask(SIG_BLOCK, {SIGALRM}, &old): the new mask, then the old (empty) one.
    assert (K.KTR_STRUCT, b"l_sigset_t\0" + sigalrm) in got["bpf"]
    at = got["bpf"].index((K.KTR_STRUCT, b"l_sigset_t\0" + sigalrm))
    assert got["bpf"][at + 1] == (K.KTR_STRUCT, b"l_sigset_t\0" + bytes(8))


RACE_RUNS = 40  # enough that a reader racing the drainer loses at least once (issue 9)


def test_pykdump_right_after_the_command_sees_its_end(bpf_env, progs: Path, tmp_path: Path, monkeypatch,
                                                      capsysbinary) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """A script's `pyktrace --engine=bpf cmd; pykdump` reads the whole trace.

    pykdump runs in this process, the moment the command's parent has
    reaped it (no start-up, no sleep, no sync of ours): only pykdump's own
    flush request stands between it and a trace whose end is still in the
    ring.
    """
    from ktrace_cli.cli import pykdump

    monkeypatch.setenv("XDG_RUNTIME_DIR", bpf_env["XDG_RUNTIME_DIR"])
    (tmp_path / "in.txt").write_bytes(b"hello ktrace\n")
    argv = [*PYKTRACE, "--engine=bpf", "-t", "c+", "-f", "k.out", str(progs / "basic"), "in.txt"]
    short: list[int] = []
    for run in range(RACE_RUNS):
        out = tmp_path / "k.out"
        out.unlink(missing_ok=True)
        r = subprocess.run(argv, env=bpf_env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=TIMEOUT)  # fmt: skip
        assert r.returncode == 3, r.stderr
        status = pykdump.main(["-f", str(out)])
        lines = capsysbinary.readouterr().out.splitlines()
        assert status == 0
        if not lines or not lines[-1].endswith(b" basic    CALL  exit_group(0x3)"):
            short.append(run)
            continue
        recs = list(iter_records(str(out)))
        assert (recs[-1].type, recs[-1].comm_name) == (K.KTR_PROCDTOR, b"basic")
    assert short == []

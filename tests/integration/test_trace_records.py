"""pyktrace command mode on real programs: the exact records of each kind."""

from __future__ import annotations

import os
import signal
import stat
import struct
import sys
from pathlib import Path

import pytest

from ktrace_cli.abi import linux as abi
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.records import Genio, Namei, ProcCtor, Psig, Struct, Syscall, Sysret, User

pytestmark = pytest.mark.both_engines

NR = abi.syscall_number


def _calls(t, pid=None):  # type: ignore[no-untyped-def]
    return [(r, p) for r, p in t.payloads(K.KTR_SYSCALL) if pid is None or r.pid == pid]


def test_trace_starts_like_freebsd_and_keeps_pid_and_status(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data.txt"
    data.write_bytes(b"hello ktrace\n")
    t = trace([str(progs / "basic"), str(data)])
    assert t.returncode == 3
    assert t.stdout == b"hello ktrace\n"
    recs = t.records
    first = recs[0]
    assert first.type == K.KTR_PROCCTOR and first.comm_name == b"pyktrace"
    assert first.pid == t.pid  # the command kept pyktrace's pid
    assert ProcCtor.unpack(AMD64, first.payload).sv_flags == K.SV_ABI_LINUX | K.SV_LP64
    assert all(r.pid == t.pid and r.tid == t.pid for r in recs)
    # pyktrace's execve of the program, its NAMI, then the program's records.
    execs = [(r, p) for r, p in _calls(t) if p.code == NR("execve")]
    assert execs[-1][0].comm_name == b"pyktrace"
    i = recs.index(execs[-1][0])
    assert Namei.unpack(AMD64, recs[i + 1].payload).path == str(progs / "basic").encode()
    rets = [(r, p) for r, p in t.payloads(K.KTR_SYSRET) if p.code == NR("execve")]
    assert rets[-1][1].error == K.EJUSTRETURN and rets[-1][0].comm_name == b"basic"
    assert recs[-1].type == K.KTR_PROCDTOR
    # NAMI of the data file and the missing path, in the order opened.
    names = [p.path for _, p in t.payloads(K.KTR_NAMEI)]
    assert str(data).encode() in names and b"/nonexistent/basic" in names
    # GIO: the bytes actually read and written, with fd and direction.
    gio = [p for r, p in t.payloads(K.KTR_GENIO) if r.comm_name == b"basic"]
    assert any(g.rw == K.UIO_READ and g.data == b"hello ktrace\n" for g in gio)
    assert any(g.fd == 1 and g.rw == K.UIO_WRITE and g.data == b"hello ktrace\n" for g in gio)
    # RET errnos in FreeBSD numbering: ENOENT 2, EAGAIN 11 -> 35.
    errors = {p.error for _, p in t.payloads(K.KTR_SYSRET)}
    assert 2 in errors and 35 in errors
    ret_read = [p for _, p in t.payloads(K.KTR_SYSRET) if p.code == NR("read") and p.error == 35]
    assert ret_read and ret_read[0].retval == 0


def test_exec_failure_message(pyktrace_cli) -> None:  # type: ignore[no-untyped-def]
    r = pyktrace_cli("/nonexistent/command")
    assert r.returncode == 1
    assert r.stderr == "pyktrace: exec of '/nonexistent/command' failed: No such file or directory\n"


def test_signals_with_handler_addresses(trace, progs) -> None:  # type: ignore[no-untyped-def]
    t = trace([str(progs / "sig")])
    assert t.returncode == -signal.SIGUSR2
    handler = int(t.stdout.split(b"handler=")[1].split()[0], 16)
    psigs = [p for _, p in t.payloads(K.KTR_PSIG)]
    assert [(p.signo, p.action) for p in psigs] == [(30, handler), (31, 0)]  # SIGUSR1, SIGUSR2
    assert psigs[0].code == 0x10001  # FreeBSD's SI_USER: sent by kill()
    assert t.records[-1].type == K.KTR_PROCDTOR


def test_fork_without_inherit_traces_only_the_parent(trace, progs) -> None:  # type: ignore[no-untyped-def]
    t = trace([str(progs / "forker")])
    assert t.returncode == 7
    assert {r.pid for r in t.records} == {t.pid}
    names = [p.path for _, p in t.payloads(K.KTR_NAMEI)]
    assert b"/nonexistent/parent" in names and b"/nonexistent/child" not in names


def test_fork_with_inherit_traces_the_child(trace, progs) -> None:  # type: ignore[no-untyped-def]
    t = trace([str(progs / "forker")], ["-i"])
    assert t.returncode == 7
    pids = {r.pid for r in t.records}
    assert len(pids) == 2
    child = (pids - {t.pid}).pop()
    child_recs = [r for r in t.records if r.pid == child]
    assert child_recs[0].type == K.KTR_PROCCTOR
    assert child_recs[-1].type == K.KTR_PROCDTOR
    ret0 = Sysret.unpack(AMD64, child_recs[1].payload)
    assert child_recs[1].type == K.KTR_SYSRET and ret0.retval == 0 and ret0.code == NR("clone")
    assert any(r.type == K.KTR_NAMEI and r.payload == b"/nonexistent/child" for r in child_recs)


def test_threads_are_traced_with_their_tids(trace, progs) -> None:  # type: ignore[no-untyped-def]
    t = trace([str(progs / "threads"), "4"])
    assert t.returncode == 0
    by_path = {p.path: r for r, p in t.payloads(K.KTR_NAMEI) if p.path.startswith(b"/nonexistent/")}
    assert set(by_path) == {b"/nonexistent/thread%d" % i for i in range(4)}
    tids = {r.tid for r in by_path.values()}
    assert len(tids) == 4 and t.pid not in tids
    assert all(r.pid == t.pid for r in t.records)
    exits = [r.tid for r, p in _calls(t) if p.code == NR("exit")]
    assert sorted(exits) == sorted(tids)


def test_exec_from_a_thread(trace, progs) -> None:  # type: ignore[no-untyped-def]
    t = trace([str(progs / "threadexec"), "/bin/true"])
    assert t.returncode == 0
    rets = [(r, p) for r, p in t.payloads(K.KTR_SYSRET) if p.code == NR("execve")]
    last, ret = rets[-1]
    assert ret.error == K.EJUSTRETURN and last.tid == t.pid and last.comm_name == b"true"
    assert t.records[-1].type == K.KTR_PROCDTOR and t.records[-1].comm_name == b"true"


def test_sigkilled_tracee(trace, progs) -> None:  # type: ignore[no-untyped-def]
    t = trace([str(progs / "selfkill")])
    assert t.returncode == -signal.SIGKILL
    assert t.records[-2].type == K.KTR_PSIG
    assert Psig.unpack(AMD64, t.records[-2].payload).signo == 9
    assert t.records[-1].type == K.KTR_PROCDTOR


def test_sigstop_sigcont_job_control_unchanged(trace, progs) -> None:  # type: ignore[no-untyped-def]
    t = trace([str(progs / "stopcont")], ["-i"])
    assert t.returncode == 5 and t.stdout == b"resumed\n"
    assert not any(p.signo in (17, 19) for _, p in t.payloads(K.KTR_PSIG))  # SIGSTOP, SIGCONT


def test_utrace_from_c_and_python(trace, progs, engine: str) -> None:  # type: ignore[no-untyped-def]
    t = trace([str(progs / "utrace")], ["-t", "u"])
    # The C message is a constant in a read-only segment nothing else
    # touches: the bpf engine cannot read a page never faulted in, and does
    # not write the record (the man page says so).
    assert [p.data for _, p in t.payloads(K.KTR_USER)] == ([b"hello utrace"] if engine == "ptrace" else [])
    code = "from ktrace_cli.utrace import utrace; utrace(b'from python')"
    t = trace([sys.executable, "-c", code], ["-t", "u"])
    assert t.returncode == 0
    assert [User.unpack(AMD64, r.payload).data for r in t.records if r.type == K.KTR_USER] == [
        b"from python"
    ]


def test_io_stat_and_sockaddr_structures(trace, progs) -> None:  # type: ignore[no-untyped-def]
    t = trace([str(progs / "io")], ["-t", "it"])
    gio = [(p.fd, p.rw, p.data) for _, p in t.payloads(K.KTR_GENIO) if isinstance(p, Genio)]
    assert (4, K.UIO_WRITE, b"ping") in gio and (3, K.UIO_READ, b"ping") in gio
    assert (4, K.UIO_WRITE, b"abcd") in gio  # writev: one record for the whole transfer
    stru = [p for _, p in t.payloads(K.KTR_STRUCT) if isinstance(p, Struct)]
    st = os.stat("/")
    stats = [s.data for s in stru if s.name == b"stat"]
    assert any(len(d) == 224 and struct.unpack_from("<Q", d, 8)[0] == st.st_ino
               and struct.unpack_from("<H", d, 24)[0] == stat.S_IFDIR | stat.S_IMODE(st.st_mode)
               for d in stats)  # fmt: skip
    addrs = [s.data for s in stru if s.name == b"sockaddr"]
    unix = [a for a in addrs if a[1] == 1]
    assert unix and unix[0][0] == len(unix[0]) and unix[0][2:].startswith(b"/nonexistent/sock\0")
    inet = [a for a in addrs if a[1] == 2]
    assert inet == [bytes([16, 2, 0, 9, 127, 0, 0, 1]) + bytes(8)]
    assert {r.type for r in t.records} <= {K.KTR_GENIO, K.KTR_STRUCT, K.KTR_PROCCTOR,
                                           K.KTR_PROCDTOR, K.KTR_NAMEI}  # fmt: skip


def test_genio_size_option_caps_records(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data.txt"
    data.write_bytes(b"0123456789" * 6)
    t = trace([str(progs / "basic"), str(data)], ["-t", "i", "--genio-size=8"])
    assert {len(p.data) for _, p in t.payloads(K.KTR_GENIO)} == {8}


def test_namei_only_uses_the_filter_and_misses_nothing(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data.txt"
    data.write_bytes(b"x")
    full = trace([str(progs / "basic"), str(data)])
    only = trace([str(progs / "basic"), str(data)], ["-t", "n", "--seccomp=on"])
    assert only.returncode == 3
    want = [r.payload for r in full.after_exec() if r.type == K.KTR_NAMEI]
    got = [r.payload for r in only.after_exec() if r.type == K.KTR_NAMEI]
    assert got == want
    assert {r.type for r in only.records} <= {K.KTR_NAMEI, K.KTR_PROCCTOR, K.KTR_PROCDTOR}


def test_python_snippet(trace) -> None:  # type: ignore[no-untyped-def]
    code = "import os\ntry:\n    open('/nonexistent/py')\nexcept OSError:\n    pass\nos.write(1, b'ok')"
    t = trace([sys.executable, "-c", code])
    assert t.returncode == 0 and t.stdout == b"ok"
    rets = t.payloads(K.KTR_SYSRET)
    i = next(i for i, r in enumerate(t.records) if r.payload == b"/nonexistent/py")
    ret = next(Sysret.unpack(AMD64, r.payload) for r in t.records[i:] if r.type == K.KTR_SYSRET)
    assert ret.code == NR("openat") and ret.error == 2
    assert rets and any(isinstance(p, Syscall) for _, p in t.payloads(K.KTR_SYSCALL))


def test_csw_around_a_sleeping_call_and_sysctl_names(trace) -> None:  # type: ignore[no-untyped-def]
    code = "import time\nopen('/proc/sys/kernel/hostname').read()\ntime.sleep(0.02)"
    t = trace([sys.executable, "-c", code], ["-t", "wy"])
    assert t.returncode == 0
    sysctl = [r.payload for r in t.records if r.type == K.KTR_SYSCTL]
    assert sysctl == [b"kernel.hostname\0"]
    csw = [(p.out, p.wmesg) for _, p in t.payloads(K.KTR_CSW)]
    assert (1, b"clock_n") in csw and (0, b"clock_n") in csw
    assert not any(w in (b"execve", b"clone") for _, w in csw)  # ptrace stops are not sleeps

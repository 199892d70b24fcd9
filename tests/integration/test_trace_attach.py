"""pyktrace on live processes: -p, -g, -d, -i, re-tracing, -c, -C, and the errors of attaching.

Every traced process is a `looper` (progs/looper.c) driven through pipes:
each byte sent makes it look up a known path and echo the byte back, so
the echo proves it is running and the NAMI records prove what was traced,
with no sleeps anywhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import Namei, Record

from .conftest import TIMEOUT, assert_attached, tracer

pytestmark = pytest.mark.both_engines


def names(path: Path) -> list[tuple[int, bytes]]:
    """(pid, path) of every looper NAMI record, in file order."""
    out = []
    for r in iter_records(str(path)):
        if r.type == K.KTR_NAMEI:
            p = Namei.unpack(AMD64, r.payload).path
            if p.startswith(b"/nonexistent/looper"):
                out.append((r.pid, p.removeprefix(b"/nonexistent/")))
    return out


def records(path: Path) -> list[Record]:
    return list(iter_records(str(path)))


def ctors(path: Path) -> list[int]:
    return [r.pid for r in records(path) if r.type == K.KTR_PROCCTOR]


def test_attach_to_a_running_loop_then_clear(looper, kt, tmp_path: Path, engine: str) -> None:  # type: ignore[no-untyped-def]
    lp = looper()
    lp.ping()  # before tracing: not recorded
    kt("-t", "n", "-p", lp.pid)
    assert_attached(lp.pid, engine)
    lp.ping()
    lp.ping(0, b"t")  # a thread created after the attach is traced too
    lp.ping(0, b"f")  # a child is not traced without -i
    kt("-c", "-p", lp.pid)
    # The clear returned once the process was detached, and it runs on.
    assert tracer(lp.pid) == 0
    lp.ping()
    f = tmp_path / "ktrace.out"
    expected = [(lp.pid, b"looper-0"), (lp.pid, b"looper-0-thread"), (lp.pid, b"looper-0"), (lp.pid, b"looper-0")]
    got = names(f)
    if engine == "bpf":
        # The kernel's records come in per-CPU batches: in order within a
        # thread, not across threads.
        got, expected = sorted(got), sorted(expected)
    assert got == expected
    recs = records(f)
    assert recs[0].type == K.KTR_PROCCTOR and recs[0].pid == lp.pid
    thread = [r for r in recs if r.type == K.KTR_NAMEI and r.tid != lp.pid]
    assert len(thread) == 1 and thread[0].pid == lp.pid
    assert K.KTR_PROCDTOR not in {r.type for r in recs}  # cleared, not exited
    assert lp.close() == 0


def test_inherit_traces_children_forked_later(looper, kt, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lp = looper()
    kt("-i", "-t", "n", "-p", lp.pid)
    lp.ping(0, b"f")
    lp.ping(0, b"f")
    kt("-C")
    assert tracer(lp.pid) == 0
    lp.ping()
    f = tmp_path / "ktrace.out"
    got = names(f)
    kids = [pid for pid, name in got if name == b"looper-0-child"]
    assert len(kids) == 2 and lp.pid not in kids
    assert got == [(kids[0], b"looper-0-child"), (lp.pid, b"looper-0"),
                   (kids[1], b"looper-0-child"), (lp.pid, b"looper-0")]  # fmt: skip
    recs = records(f)
    for kid in kids:  # each child starts with its PROCCTOR and ends with its PROCDTOR
        mine = [r.type for r in recs if r.pid == kid]
        assert mine[0] == K.KTR_PROCCTOR and mine[-1] == K.KTR_PROCDTOR


def test_descend_traces_the_whole_tree(looper, kt, tmp_path: Path, engine: str) -> None:  # type: ignore[no-untyped-def]
    lp = looper(3)
    kt("-d", "-t", "n", "-p", lp.pid)
    for pid in lp.pids:
        assert_attached(pid, engine)
    for k in range(3):
        lp.ping(k)
    kt("-C")
    assert [tracer(pid) for pid in lp.pids] == [0, 0, 0]
    for k in range(3):
        lp.ping(k)
    f = tmp_path / "ktrace.out"
    assert sorted(names(f)) == sorted((pid, b"looper-%d" % k) for k, pid in enumerate(lp.pids))
    assert sorted(ctors(f)) == sorted(lp.pids)


def test_group_traces_its_members_only(looper, kt, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    group = looper(2, start_new_session=True)
    other = looper()
    kt("-t", "n", "-g", group.pid)
    for k in range(2):
        group.ping(k)
    other.ping()
    assert tracer(other.pid) == 0
    kt("-c", "-g", group.pid)
    assert [tracer(pid) for pid in group.pids] == [0, 0]
    group.ping(1)
    assert sorted(names(tmp_path / "ktrace.out")) == sorted(
        (pid, b"looper-%d" % k) for k, pid in enumerate(group.pids)
    )


def test_retrace_adds_points_switches_file_and_clears_subsets(looper, kt, tmp_path: Path, engine: str) -> None:  # type: ignore[no-untyped-def]
    lp = looper()
    a, b = tmp_path / "a.out", tmp_path / "b.out"
    kt("-t", "n", "-f", a, "-p", lp.pid)
    lp.ping()
    kt("-t", "c", "-f", b, "-p", lp.pid)  # ktrops(): OR the points, switch the file
    lp.ping()
    kt("-c", "-t", "n", "-f", b, "-p", lp.pid)  # clear a subset: stays traced
    assert_attached(lp.pid, engine)
    lp.ping()
    size = b.stat().st_size
    kt("-c", "-f", b)  # KTROP_CLEARFILE: everything tracing to b.out
    assert tracer(lp.pid) == 0
    assert b.stat().st_size >= size  # clearing never truncates
    lp.ping()
    assert names(a) == [(lp.pid, b"looper-0")]
    assert names(b) == [(lp.pid, b"looper-0")]  # only while n and c were both set
    calls = [r for r in records(b) if r.type == K.KTR_SYSCALL]
    opens = [r for r in calls if int.from_bytes(r.payload[:2], "little") == 257]  # openat
    assert len(opens) == 2  # the c points outlived the n clear


def test_clear_with_nothing_traced(kt, tmp_path: Path, looper) -> None:  # type: ignore[no-untyped-def]
    kt("-C")
    assert not (tmp_path / "ktrace.out").exists()  # clearing never creates the file
    lp = looper()
    kt("-c", "-p", lp.pid)  # an untraced process: FreeBSD's ktrops() succeeds
    lp.ping()
    keep = tmp_path / "keep.out"
    keep.write_bytes(b"data")
    kt("-c", "-f", keep)
    assert keep.read_bytes() == b"data"
    r = kt("-c", "-f", "missing.out", ok=False)
    assert (r.returncode, r.stderr) == (1, "pyktrace: missing.out: No such file or directory\n")


def test_no_such_process(kt) -> None:  # type: ignore[no-untyped-def]
    gone = subprocess.Popen(["true"])
    gone.wait()
    for args in (("-p", gone.pid), ("-c", "-p", gone.pid), ("-g", gone.pid)):
        r = kt(*args, ok=False)
        assert (r.returncode, r.stdout, r.stderr) == (1, "", "pyktrace: ktrace.out: No such process\n")


def test_detach_keeps_a_group_stop(looper, kt) -> None:  # type: ignore[no-untyped-def]
    lp = looper()
    kt("-t", "n", "-p", lp.pid)
    os.kill(lp.pid, signal.SIGSTOP)
    _, status = os.waitpid(lp.pid, os.WUNTRACED)  # the real parent still hears of the stop
    assert os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGSTOP
    kt("-c", "-p", lp.pid)
    assert tracer(lp.pid) == 0
    state = Path(f"/proc/{lp.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    assert state == "T"  # still stopped, now by job control and not by a tracer
    os.kill(lp.pid, signal.SIGCONT)
    lp.ping()


@pytest.mark.ptrace_only("a ptrace tracer's death detaches its tracees; the bpf engine holds no process")
def test_a_killed_engine_leaves_attached_processes_running(looper, kt, runtime_env) -> None:  # type: ignore[no-untyped-def]
    lp = looper()
    kt("-t", "n", "-p", lp.pid)
    engine = int((Path(runtime_env["XDG_RUNTIME_DIR"]) / "pyktrace" / "engine.pid").read_text())
    assert tracer(lp.pid) == engine
    pidfd = os.pidfd_open(engine)
    os.kill(engine, signal.SIGKILL)
    import select

    assert select.select([pidfd], [], [], TIMEOUT)[0]
    os.close(pidfd)
    lp.ping()
    assert tracer(lp.pid) == 0
    kt("-t", "n", "-p", lp.pid)  # a fresh engine over the stale socket
    assert tracer(lp.pid) not in (0, engine)
    kt("-c", "-p", lp.pid)


@pytest.mark.ptrace_only("one ptrace tracer per process; the bpf engine attaches anyway (test_bpf_engine)")
def test_already_traced_by_strace(looper, kt) -> None:  # type: ignore[no-untyped-def]
    import shutil

    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    lp = looper()
    st = subprocess.Popen(["strace", "-p", str(lp.pid), "-o", "/dev/null"],
                          stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert st.stderr is not None
    assert "attached" in st.stderr.readline()
    try:
        r = kt("-p", lp.pid, ok=False)
        assert (r.returncode, r.stderr) == (1, (
            "pyktrace: ktrace.out: Operation not permitted\n"
            f"pyktrace: pid {lp.pid} is already traced by pid {st.pid} (strace); "
            "a process can have only one tracer\n"))  # fmt: skip
    finally:
        st.terminate()
        st.wait(timeout=TIMEOUT)
    lp.ping()


def test_attach_writes_the_descriptors_already_open(progs: Path, kt, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """-p writes a STRU fdtable at attach, so the first traced call on descriptor 3 shows its path."""
    import sys

    data = tmp_path / "held.txt"
    data.write_bytes(b"held data\n")
    proc = subprocess.Popen([str(progs / "fdholder"), str(data)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, close_fds=True)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline() == b"ready\n"
        kt("-p", proc.pid)
        proc.stdin.write(b"x")
        proc.stdin.flush()
        assert proc.stdout.read(1) == b"x"  # one pread made while traced
        kt("-c", "-p", proc.pid)
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=TIMEOUT) == 0
    f = tmp_path / "ktrace.out"
    stru = [r for r in records(f) if r.type == K.KTR_STRUCT and r.payload.startswith(b"fdtable\0")]
    assert len(stru) == 1 and stru[0].pid == proc.pid
    table = dict(line.split(b"\t", 1) for line in stru[0].payload[8:].splitlines())
    assert table[b"3"] == bytes(data)
    out = subprocess.run([sys.executable, "-m", "ktrace_cli.cli.pykdump", "-f", str(f), "--calls",
                          "-e", "trace=pread64"], capture_output=True, text=True, timeout=TIMEOUT)  # fmt: skip
    assert out.returncode == 0, out.stderr
    # The duration cut; the fdtable record itself prints as kdump prints an unknown STRU.
    lines = [line.rsplit(" <", 1)[0] for line in out.stdout.splitlines() if " pread64(" in line]
    assert lines == [f'{proc.pid:6d} fdholder pread64(3<{data}>,"held",0x4,0) = 4']

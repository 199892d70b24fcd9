"""Loads traced with -i and every observable point: strace's syscall counts, the untraced output, nothing lost."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import _ptrace_allowed
from tests.reliability import figures, loads

pytestmark = [
    pytest.mark.skipif(not _ptrace_allowed(), reason="ptrace is not permitted here"),
    pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed"),
]

# CI sizes; bench/soak.py runs larger ones. (workload, processes, threads per process)
CI_LOADS = {
    # make; gcc, cc1 and as per source file; gcc, collect2 and ld to link.
    "make": (lambda progs: loads.make_project(10), 1 + 3 * 10 + 3, None),
    "compileall": (lambda progs: loads.compileall("email"), 1, None),
    "forktree": (lambda progs: loads.forktree(200, progs), 200, None),
    "threads": (lambda progs: loads.iothreads(64, 16, progs), 1, 65),
}


@pytest.mark.parametrize("name", list(CI_LOADS))
def test_load_is_traced_whole(name: str, rel_progs: Path, runtime_env: dict[str, str],
                              command_sigign: frozenset[int], tmp_path: Path) -> None:  # fmt: skip
    make, processes, threads = CI_LOADS[name]
    if name == "make" and shutil.which("make") is None:
        pytest.skip("make is not installed")
    w = make(rel_progs)
    # Each run in the same directory, so the counts cannot differ by path (see at_one_path).
    plain = loads.at_one_path(tmp_path, "plain", lambda root: loads.run_untraced(w, root, runtime_env))
    theirs = loads.at_one_path(tmp_path, "strace",
                               lambda root: loads.run_strace(w, root, runtime_env, command_sigign))  # fmt: skip
    ours = loads.at_one_path(tmp_path, "pyktrace", lambda root: loads.run_pyktrace(w, root, runtime_env))

    assert (plain.returncode, theirs.returncode, ours.returncode) == (0, 0, 0)
    assert plain.outputs, "the workload wrote nothing to compare"
    assert ours.outputs == plain.outputs
    assert theirs.outputs == plain.outputs
    assert ours.stdout == plain.stdout

    lost = loads.losses(ours.records)
    pids = {r.pid for r in loads.after_pyktrace(ours.records)}
    held = (ours.outputs == plain.outputs
            and loads.comparable(ours.counts, w) == loads.comparable(theirs.counts, w))  # fmt: skip
    figures.record("load", workload=w.name, records=len(ours.records), lost=len(lost),
                   processes=len(pids), syscalls=sum(ours.counts.values()), held=int(held))  # fmt: skip
    assert loads.comparable(ours.counts, w) == loads.comparable(theirs.counts, w)
    assert lost == []
    assert len(pids) == processes
    if threads is not None:
        tids = collections.Counter(r.pid for r in {(r.pid, r.tid): r for r in ours.records}.values())
        assert list(tids.values()) == [threads]


def test_counts_see_a_missing_call() -> None:
    """The comparison can fail: one CALL fewer in a trace shows up as a difference."""
    from ktrace_cli.format import constants as K
    from ktrace_cli.format.records import Record, comm_field

    def rec(rtype: int, payload: bytes, comm: bytes = b"prog") -> Record:
        return Record(rtype, 7, 7, comm_field(comm), 0, 0, payload)

    getpid = (39).to_bytes(2, "little") + b"\0\0\0\0\0\0"
    ret = (39).to_bytes(2, "little") + b"\0\0" + b"\0" * 4 + b"\0" * 8
    trace = [rec(K.KTR_PROCCTOR, b"\3\2\0\0", b"pyktrace"), rec(K.KTR_SYSRET, ret),
             rec(K.KTR_SYSCALL, getpid), rec(K.KTR_SYSRET, ret), rec(K.KTR_SYSCALL, getpid)]  # fmt: skip
    assert loads.trace_counts(trace)[("prog", "getpid")] == 2
    assert loads.losses(trace) == ["tid 7: last CALL getpid has no RET",
                                   "pid 7: 0 PROCDTOR, last record type 1"]  # fmt: skip


def test_compared_runs_see_one_path(tmp_path: Path) -> None:
    """Every run of a comparison happens at the same path, each tree is kept apart afterwards."""
    roots: list[Path] = []

    def run(root: Path) -> loads.Run:
        root.mkdir()
        (root / "out").write_text(root.name)
        roots.append(root)
        return loads.Run(0, b"", {}, 0.0)

    for name in ("plain", "strace", "pyktrace"):
        loads.at_one_path(tmp_path, name, run)
    assert roots == [tmp_path / "run"] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "pyktrace", "strace"]

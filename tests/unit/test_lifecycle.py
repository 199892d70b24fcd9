"""views/lifecycle.py: processes from PROCCTOR/PROCDTOR, forks, execs and exits, in the orders traces have."""

from __future__ import annotations

from ktrace_cli.decode.events import Shown
from ktrace_cli.format import constants as K
from ktrace_cli.format.records import Namei, ProcCtor, ProcDtor, Strings, Syscall, Sysret
from ktrace_cli.views.lifecycle import Lifecycle, ProcTap
from tests.kdump_helpers import FREEBSD64, LINUX64
from tests.unit.test_views_tree_errors import CLONE, EXECVE, EXIT_GROUP, Clock

SV = {100: LINUX64, 200: LINUX64, 300: FREEBSD64}
EXIT = 60  # Linux exit(2): one thread


def _life(records: list[object]) -> Lifecycle:
    """Records through the tap and the call stream, as the views run them."""
    from ktrace_cli.decode.fdtable import FdTables
    from ktrace_cli.decode.filters import CallFilter
    from tests.unit.calls_reference import calls

    life = Lifecycle()
    tap = ProcTap(records, life.proc_record)
    events = (Shown(r, SV.get(r.pid, LINUX64), _payload(r)) for r in tap  # type: ignore[attr-defined]
              if r.type not in (K.KTR_PROCCTOR, K.KTR_PROCDTOR))  # fmt: skip
    for item in calls(events, CallFilter(), FdTables()):
        life.feed(item)
    return life


def _payload(r: object) -> object:
    from ktrace_cli.format.layouts import AMD64
    from ktrace_cli.format.records import unpack_payload

    return unpack_payload(AMD64, r.type, r.payload)  # type: ignore[attr-defined]


def test_threads_are_not_processes_and_thread_exit_is_not_process_exit() -> None:
    t = Clock()
    records = [t(ProcCtor(LINUX64), 100), t(Syscall(CLONE, (0x3D0F00, 0, 0, 0, 0)), 100),
               t(Sysret(CLONE, 0, 101), 100), t(Syscall(EXIT, (0,)), 100, tid=101),
               t(Syscall(EXIT_GROUP, (4,)), 100), t(ProcDtor(), 100)]  # fmt: skip
    life = _life(records)
    [proc] = life.processes
    assert (proc.pid, proc.status, proc.threads, proc.children) == (100, "exit 4", {100, 101}, [])


def test_child_life_before_parent_ret_and_pid_reuse() -> None:
    t = Clock()
    records = [t(ProcCtor(LINUX64), 100), t(Syscall(CLONE, (0x1200011, 0, 0, 0, 0)), 100),
               t(ProcCtor(LINUX64), 200), t(Sysret(CLONE, 0, 0), 200), t(Syscall(EXIT_GROUP, (1,)), 200),
               t(ProcDtor(), 200), t(Sysret(CLONE, 0, 200), 100),
               # pid 200 again: a new process, from a second fork
               t(Syscall(CLONE, (0x1200011, 0, 0, 0, 0)), 100), t(Sysret(CLONE, 0, 200), 100),
               t(ProcCtor(LINUX64), 200), t(Sysret(CLONE, 0, 0), 200)]  # fmt: skip
    life = _life(records)
    parent, first, second = life.processes
    assert [(c.pid, c.seq, c.status) for c in parent.children] == [(200, 1, "exit 1"), (200, 2, "running")]
    assert first.start_ns == second.start_ns - 7_000_000 and first.end_ns is not None
    assert second.start_ns == 1700000000 * 10**9 + 10_000_000  # its PROCCTOR, after the parent's RET


def test_args_before_the_call_and_a_failed_exec() -> None:
    t = Clock()
    records = [t(ProcCtor(LINUX64), 100), t(Strings([b"ls", b"-l"]), 100, comm="sh")]  # an ARGS record
    records += [t(Syscall(EXECVE, (1, 2, 3)), 100), t(Namei(b"/nope/ls"), 100), t(Sysret(EXECVE, 2, 0), 100),
                t(Syscall(EXECVE, (1, 2, 3)), 100), t(Namei(b"/bin/ls"), 100),
                t(Sysret(EXECVE, K.EJUSTRETURN, 0), 100, comm="ls")]  # fmt: skip
    life = _life(records)
    [proc] = life.processes
    # The ARGS record outside any call went to the first exec, which failed.
    assert [(e.path, e.argv) for e in proc.execs] == [("/bin/ls", None)]
    assert (proc.argv, proc.comm) == (["/bin/ls"], "ls")

"""The engine's loop when fastloop.c is loaded: kt_run waits and handles what it can, Python the rest.

Engine.run calls run(); the engine's handlers for the stops C leaves to
Python (syscall_stop, other_stop, stray) and its housekeeping (attend,
idle, arm_flush) are reached through `Host`, so this module depends on
fastloop and the table's types only, never on engine.py.
"""

from __future__ import annotations

import _signal as signal  # signal.py's enum conversions cost the engine's start-up
import os

from ktrace_cli.trace import ptrace as P
from ktrace_cli.trace.englog import log
from ktrace_cli.trace.fastloop import HEAD, KT_ECHILD, KT_IDLE, KT_STOP, FastLoop

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the engine's start-up)
if TYPE_CHECKING:
    from typing import Protocol

    from ktrace_cli.trace.table import TraceeTable
    from ktrace_cli.trace.tracee import Thread

    class Host(Protocol):
        """What the loop needs of the engine (trace/engine.py's Engine)."""

        table: TraceeTable
        threads: dict[int, Thread]
        born: list[Thread]
        attention: bool
        shutdown: bool
        spin: bool
        timer_armed: bool
        flush_deadline: int

        def attend(self) -> None: ...
        def idle(self) -> bool: ...
        def arm_flush(self) -> None: ...
        def stray(self, pid: int, status: int) -> None: ...
        def syscall_stop(self, t: Thread, shared: memoryview | None = None) -> None: ...
        def other_stop(self, t: Thread, status: int) -> None: ...


SYSCALL_STOP = P.STATUS_SYSCALL_STOP
SECCOMP_STOP = P.STATUS_SECCOMP_STOP


def run(engine: Host, fast: FastLoop) -> None:
    """Engine.run's loop with fastloop.c waiting and handling the plain syscall stops.

    kt_run comes back with a stop Python must handle (its syscall
    information already read), or to let Python look around: a signal
    handler to run, a request, records to flush before it blocks. The
    records C wrote are drained into the files' buffers first, so every
    record Python writes comes after them. Around a stop Python handles,
    the thread's slot is pulled (what C changed) and pushed (what Python
    changed, with its process's state).
    """
    threads, awaiting = engine.threads, engine.table.awaiting
    syscall_stop, run, st, shared = engine.syscall_stop, fast.run, fast.st, fast.shared
    pull, push, push_proc, drain = fast.pull, fast.push, fast.push_proc, fast.drain
    head = HEAD.unpack_from
    spin = int(engine.spin)
    born = engine.born
    while True:
        if engine.attention:
            engine.attend()
        if born:
            # Pushed only now: a first stop already handled with its creator's
            # event must not be taken for one still to come.
            for nt in born:
                if threads.get(nt.tid) is nt:
                    push(nt)
            born.clear()
        if not threads and not awaiting:
            if engine.shutdown or not engine.idle():
                break
            continue
        if engine.table.dirty and not engine.timer_armed:
            engine.arm_flush()
        kind = run(st, len(threads), spin, engine.flush_deadline if engine.timer_armed else 0)
        if drain():
            engine.table.dirty = True
        if kind != KT_STOP:
            if kind == KT_ECHILD:
                engine.table.forget_all()
                fast.clear_ready()
            elif kind == KT_IDLE and engine.timer_armed:
                # The timer fires too soon to block on: write now, before blocking.
                signal.setitimer(signal.ITIMER_REAL, 0)
                engine.timer_armed = False
                engine.table.flush_all()
            continue
        pid, status, has_info = head(shared)
        t = threads.get(pid)
        try:
            if t is None:
                engine.stray(pid, status)
                continue
            pull(t)
            if status == SYSCALL_STOP or status == SECCOMP_STOP:
                syscall_stop(t, shared if has_info else None)
            else:
                several = len(t.proc.threads) > 1
                engine.other_stop(t, status)
                if several and status >> 16 == P.PTRACE_EVENT_EXEC:
                    # An exec from another thread gave it the leader's tid: the
                    # leader's slot and the execer's old one are stale. (A lone
                    # thread's slot is pushed whole below.)
                    fast.drop(pid)
                    fast.reconcile(threads)
                    t = threads.get(pid)
        except Exception:
            log.exception("tid %d, status %#x: event failed; thread resumed", pid, status)
            if t is not None and os.WIFSTOPPED(status):
                P.libc_ptrace(t.resume_op(), pid, 0, 0)
        if t is not None and threads.get(t.tid) is t:
            push_proc(t)

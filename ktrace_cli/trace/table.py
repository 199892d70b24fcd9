"""The table of traced processes, threads and trace files, and the operations that change it.

One owner of the engine's state (FreeBSD keeps it in struct proc's
p_traceflag/p_tracevp and ktrace_mtx): the loop, the life-cycle hooks
and the ktrace(2) operations all change it through these methods. The
table knows nothing of how a capture backend reaches a thread: it asks its
Backend to take hold of a process, to let a thread go or to interrupt it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ktrace_cli.format import constants as K
from ktrace_cli.format.writer import TraceFile, procdtor
from ktrace_cli.trace import restarts
from ktrace_cli.trace.signals import PSIG_PACK
from ktrace_cli.trace.tracee import Proc, Thread

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the engine's start-up)
if TYPE_CHECKING:
    from typing import Protocol

    class Backend(Protocol):
        """What the table and ktrace(2)'s operations need of a capture backend."""

        def attach(self, table: TraceeTable, pid: int, facs: int, tf: TraceFile | None,
                   want_seccomp: bool, descend: bool) -> int:  # fmt: skip
            """Start tracing every thread of `pid` into the table; 0 or an errno."""

        def let_go(self, tid: int) -> None:
            """Stop tracing a thread that is stopped now; it runs on untraced."""

        def interrupt(self, tid: int) -> None:
            """Ask a running thread to stop, so it can be let go at that stop."""


def _nothing(*_: object) -> None:
    pass


class TraceeTable:
    """procs, threads, files, tasks pending and awaited, and whether buffers hold records."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.threads: dict[int, Thread] = {}
        self.procs: dict[int, Proc] = {}
        self.files: dict[tuple[int, int], TraceFile] = {}
        self.pending: dict[int, int] = {}  # tid -> first stop status of a task not yet known
        self.awaiting: dict[int, tuple[Proc | None, Thread]] = {}  # new task -> (proc, creator)
        self.detach_started: dict[int, float] = {}  # tgid -> when its detach began
        self.dirty = False  # some file's buffer holds records not yet written
        self.in_flush = False
        # Set by the engine: a process left the table (replies held for it
        # may go), and a write failed (flush_all's from_signal passed on).
        self.on_release: Callable[[], None] = _nothing
        self.on_write_failure: Callable[[bool], None] = _nothing
        # Set by the engine's C loop (trace/fastloop.py): records it holds
        # reach the files' buffers before any flush, a thread leaving takes
        # its slot with it, a closed file its buffer.
        self.before_flush: Callable[[], object] = _nothing
        self.on_drop: Callable[[int], None] = _nothing
        self.on_close: Callable[[TraceFile], None] = _nothing
        # Set by the C loop too: a task a fork or clone made, to be known there
        # once its creator's event is handled.
        self.on_new: Callable[[Thread], None] = _nothing

    def add_thread(self, t: Thread) -> None:
        """A task a fork or clone made, into its process (already in procs) and the table."""
        t.proc.threads[t.tid] = t
        self.threads[t.tid] = t
        self.on_new(t)

    # ----- threads and processes leaving -----

    def drop_thread(self, t: Thread) -> None:
        if t.restart_ret is not None:
            restarts.settle(t, 0)  # let go with its RET still waiting: written as it stands
        t.close()
        p = t.proc
        if self.threads.get(t.tid) is t:
            del self.threads[t.tid]
            self.on_drop(t.tid)
        if p.threads.get(t.tid) is t:
            del p.threads[t.tid]
        if not p.threads:
            self.release(p)

    def release(self, p: Proc) -> None:
        """The process has no traced thread left: forget it and close its file if it was the last user."""
        if self.procs.get(p.tgid) is p:
            del self.procs[p.tgid]
        p.mem.close()
        self.drop_file(p, None)
        self.on_release()

    def forget_all(self) -> None:
        for t in list(self.threads.values()):
            self.drop_thread(t)
        self.awaiting.clear()
        self.pending.clear()

    def drop_file(self, p: Proc, tf: TraceFile | None) -> None:
        """Switch `p` to `tf` (None: no file); the old file is written and closed if `p` was its last user."""
        if tf is not None:
            self.files[tf.ident] = tf
        old = p.set_file(tf)
        if old is not None:
            self.before_flush()
            old.flush()
            if self.files.get(old.ident) is old:
                del self.files[old.ident]
            old.close()
            self.on_close(old)

    def discard(self, tf: TraceFile | None) -> None:
        """Close a file a refused request opened, unless a process writes to it."""
        if tf is not None and tf.users <= 0 and self.files.get(tf.ident) is not tf:
            tf.close()

    # ----- records every backend writes -----

    def write_dtor(self, p: Proc, t: Thread) -> None:
        """The process's exit record (PROCDTOR), once."""
        if p.dtor_done or p.passthrough or p.file is None:
            return
        p.dtor_done = True
        procdtor(p.file, p.tgid, t.tid, t.comm)
        self.dirty = True

    def report_kill(self, t: Thread, p: Proc) -> None:
        """SIGKILL has no delivery stop; FreeBSD logs it as a default-action PSIG."""
        if p.kill_reported or p.dtor_done or p.file is None or not p.facs & K.KTRFAC_PSIG:
            return
        p.kill_reported = True
        data = PSIG_PACK(9, 0, 0, 0, 0, 0, 0)  # SIGKILL is 9 in both numberings
        p.file.record(K.KTR_PSIG, p.tgid, t.tid, t.comm, time.time_ns(), data)
        self.dirty = True

    def flush_all(self, from_signal: bool = False) -> None:
        """Write every buffer; a failed write is reported through on_write_failure."""
        self.in_flush = True
        try:
            self.before_flush()
            failed = False
            for tf in list(self.files.values()):
                if tf.buf and tf.flush():
                    failed = True
            self.dirty = False
            if failed:
                self.on_write_failure(from_signal)
        finally:
            self.in_flush = False

    # ----- detaching -----

    def detach(self, p: Proc, current: Thread | None = None) -> None:
        """Stop tracing a process; a filtered one is only muted (detaching would ENOSYS it).

        Each thread is interrupted and let go at its next stop (engine.py): a
        signal being delivered goes with the detach, a group-stop stays in force,
        a system call in progress is restarted by the kernel.
        """
        if p.filtered:
            if p.threads:
                self.write_dtor(p, current or next(iter(p.threads.values())))
            p.passthrough = True
            self.drop_file(p, None)
            p.facs = 0
            return
        p.detaching = True
        self.detach_started.setdefault(p.tgid, time.monotonic())
        if current is not None:
            # Its records reach the file before it runs on (a set-id exec's
            # program could otherwise finish before they are written).
            self.flush_all()
        for th in list(p.threads.values()):
            if th is current:
                self.backend.let_go(th.tid)
                self.drop_thread(th)
            else:
                self.backend.interrupt(th.tid)

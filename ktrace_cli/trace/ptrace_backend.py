"""The ptrace capture backend's side of the table: attach with PTRACE_SEIZE, let go, interrupt.

The table (table.py) and ktrace(2)'s operations (ktrops.py) hold no
ptrace call: they reach the tracee through a Backend, this one here,
an eBPF one elsewhere.
"""

from __future__ import annotations

import errno as E
import os

from ktrace_cli.format.writer import TraceFile, procctor
from ktrace_cli.trace import ptrace as P
from ktrace_cli.trace.table import TraceeTable
from ktrace_cli.trace.tracee import Proc, Thread, list_tasks

OPTIONS = P.BASE_OPTIONS | P.PTRACE_O_TRACEEXIT | P.PTRACE_O_TRACESECCOMP


class PtraceBackend:
    """How the table takes hold of a process and lets it go, through ptrace."""

    def let_go(self, tid: int) -> None:
        P.libc_ptrace(P.PTRACE_DETACH, tid, 0, 0)

    def interrupt(self, tid: int) -> None:
        P.libc_ptrace(P.PTRACE_INTERRUPT, tid, 0, 0)

    def attach(self, table: TraceeTable, pid: int, facs: int, tf: TraceFile | None,
               want_seccomp: bool, descend: bool = False) -> int:  # fmt: skip
        """Trace every thread of `pid` (PTRACE_SEIZE + INTERRUPT); 0 or an errno.

        Tasks are listed again until no new one appears; a thread cloned by one
        already seized is attached by the kernel (its seize fails) and arrives
        through the clone event, so none is missed.
        """
        p = Proc(pid, facs, tf)
        p.want_seccomp = want_seccomp
        p.load_dispositions()
        seen: set[int] = set()
        first_error = 0
        while True:
            try:
                tids = [x for x in list_tasks(pid) if x not in seen]
            except OSError:
                if not p.threads:
                    raise
                break  # out of descriptors: keep the threads seized so far (clones come by event)
            if not tids:
                break
            for tid in tids:
                seen.add(tid)
                err = P.seize(tid, OPTIONS)
                if err:
                    if not p.threads and tid == pid:
                        first_error = err
                    continue
                P.libc_ptrace(P.PTRACE_INTERRUPT, tid, 0, 0)
                t = Thread(tid, p)
                t.descend_pending = descend
                p.threads[tid] = t
                table.threads[tid] = t
            if first_error:
                break
        if not p.threads:
            p.set_file(None)
            p.mem.close()
            # lazy: start-up (only a refused attach asks who traces the process)
            from ktrace_cli.trace import diagnose

            if first_error == E.EPERM and diagnose.tracer_of(pid) == os.getpid():
                return 0  # a child its traced parent forked while we walked: adopted at the fork event
            return first_error or E.ESRCH
        table.procs[pid] = p
        if tf is not None:
            table.files[tf.ident] = tf
            leader = p.threads.get(pid) or next(iter(p.threads.values()))
            procctor(tf, pid, leader.tid, leader.comm)
            table.dirty = True
        return 0

"""ktrace(2)'s operations applied by the engine: set, clear, clear-file, descend (kern_ktrace.c)."""

from __future__ import annotations

import errno as E
import os
import stat
from typing import TYPE_CHECKING

from ktrace_cli.format import constants as K
from ktrace_cli.trace import ptrace as P
from ktrace_cli.trace.emit import TraceFile, procctor
from ktrace_cli.trace.tracee import Proc, Thread, list_tasks

if TYPE_CHECKING:
    from ktrace_cli.trace.engine import Engine, Request

OPTIONS = P.BASE_OPTIONS | P.PTRACE_O_TRACEEXIT | P.PTRACE_O_TRACESECCOMP


def apply(engine: Engine, req: Request) -> dict[str, object]:
    """Carry out one request; the reply carries error 0 or an errno, as ktrace(2) returns."""
    if req.ops < 0:  # "shutdown": detach everything and exit
        with engine.lock:
            engine.closing = True
        engine.shutdown = engine.attention = True
        return {"error": 0}
    op = K.ktrop(req.ops)
    facs = req.facs & ~K.KTRFAC_ROOT
    if op != K.KTROP_CLEARFILE and not facs & K.KTRFAC_MASK:
        return {"error": E.EINVAL}
    tf: TraceFile | None = None
    if op != K.KTROP_CLEAR:
        if req.fd is None:
            return {"error": E.EBADF}
        st = os.fstat(req.fd)
        if not stat.S_ISREG(st.st_mode):
            return {"error": E.EACCES}
        tf = engine.files.get((st.st_dev, st.st_ino))
        if tf is None:
            tf = TraceFile(os.dup(req.fd), req.version, req.genio_size)
    if op == K.KTROP_CLEARFILE:
        return _clear_file(engine, tf)
    if req.command and req.pid != req.peer_pid:
        return {"error": E.EPERM, "message": "command mode traces only the caller"}
    pids = _targets(req.pid, bool(req.ops & K.KTRFLAG_DESCEND))
    if not pids:
        _discard(engine, tf)
        return {"error": E.ESRCH}
    reply: dict[str, object] = {"error": 0}
    want_filter: list[int] | None = None
    if req.command and op == K.KTROP_SET and req.seccomp != "off":
        if req.seccomp == "on" or os.geteuid() == 0:
            want_filter = engine.rules.filter_syscalls(facs, setid_check=os.geteuid() != 0)
    affected = 0
    last_error = 0
    for pid in pids:
        if op == K.KTROP_SET:
            err = _set(engine, pid, facs, tf, want_filter is not None)
        else:
            err = _clear(engine, pid, facs)
        if err:
            last_error = err
        else:
            affected += 1
    if not affected:
        _discard(engine, tf)
        return {"error": last_error or E.EPERM}
    if want_filter is not None:
        reply["filter"] = want_filter
    engine._flush_all()
    return reply


def _set(engine: Engine, pid: int, facs: int, tf: TraceFile | None, want_seccomp: bool) -> int:
    p = engine.procs.get(pid)
    if p is None:
        return engine.attach(pid, facs, tf, want_seccomp)
    # ktrops(): add the facilities, switch the file, announce with a PROCCTOR.
    p.facs |= facs
    if tf is not None:
        engine.files[tf.ident] = tf
        old = p.set_file(tf)
        if old is not None:
            engine.files.pop(old.ident, None)
            old.flush()
            old.close()
    if p.passthrough:
        p.passthrough = False
    leader = p.threads.get(pid) or next(iter(p.threads.values()), None)
    if tf is not None and leader is not None:
        procctor(tf, pid, leader.tid, leader.comm)
        engine.dirty = True
    return 0


def _clear(engine: Engine, pid: int, facs: int) -> int:
    p = engine.procs.get(pid)
    if p is None:
        return E.EPERM
    p.facs &= ~facs
    if not p.facs & K.KTRFAC_MASK:
        engine._detach_proc(p)
    return 0


def _clear_file(engine: Engine, tf: TraceFile | None) -> dict[str, object]:
    if tf is not None:
        for p in list(engine.procs.values()):
            if p.file is not None and p.file.ident == tf.ident:
                p.facs = 0
                engine._detach_proc(p)
        _discard(engine, tf)
    return {"error": 0}


def _discard(engine: Engine, tf: TraceFile | None) -> None:
    if tf is not None and tf.users <= 0 and engine.files.get(tf.ident) is not tf:
        tf.close()


def _targets(pid: int, descend: bool) -> list[int]:
    """The processes a request names: one pid or a group (-pgid), plus descendants."""
    if pid > 0:
        roots = [pid] if os.path.exists(f"/proc/{pid}") else []
    else:
        roots = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.getpgid(int(name)) == -pid:
                        roots.append(int(name))
                except OSError:
                    pass
    if not descend:
        return roots
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out: list[int] = []
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid in out:
            continue
        out.append(pid)
        stack.extend(children.get(pid, ()))
    return out


def attach(engine: Engine, pid: int, facs: int, tf: TraceFile | None, want_seccomp: bool) -> int:
    """Trace every thread of `pid` (PTRACE_SEIZE + INTERRUPT); 0 or an errno."""
    p = Proc(pid, facs, tf)
    p.want_seccomp = want_seccomp
    p.load_dispositions()
    seen: set[int] = set()
    first_error = 0
    while True:
        tids = [x for x in list_tasks(pid) if x not in seen]
        if not tids:
            break
        for tid in tids:
            seen.add(tid)
            err = P.seize(tid, OPTIONS)
            if err:
                if not p.threads and tid == pid:
                    first_error = err
                continue
            P._ptrace(P.PTRACE_INTERRUPT, tid, 0, 0)
            t = Thread(tid, p)
            p.threads[tid] = t
            engine.threads[tid] = t
        if first_error:
            break
    if not p.threads:
        p.set_file(None)
        p.mem.close()
        return first_error or E.ESRCH
    engine.procs[pid] = p
    if tf is not None:
        engine.files[tf.ident] = tf
        leader = p.threads.get(pid) or next(iter(p.threads.values()))
        procctor(tf, pid, leader.tid, leader.comm)
        engine.dirty = True
    return 0

def detach(engine: Engine, p: Proc, current: Thread | None = None) -> None:
    """Stop tracing a process; a filtered one is only muted (detaching would ENOSYS it)."""
    if p.filtered:
        if p.threads:
            engine._dtor(p, current or next(iter(p.threads.values())))
        p.passthrough = True
        old = p.set_file(None)
        if old is not None:
            engine.files.pop(old.ident, None)
            old.flush()
            old.close()
        p.facs = 0
        return
    p.detaching = True
    for th in list(p.threads.values()):
        if th is current:
            P._ptrace(P.PTRACE_DETACH, th.tid, 0, 0)
            engine._drop_thread(th)
        else:
            P._ptrace(P.PTRACE_INTERRUPT, th.tid, 0, 0)

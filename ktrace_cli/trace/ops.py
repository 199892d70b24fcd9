"""ktrace(2)'s operations applied by the engine: set, clear, clear-file, descend (kern_ktrace.c)."""

from __future__ import annotations

import errno as E
import logging
import os
import stat
import time
from typing import TYPE_CHECKING

from ktrace_cli.format import constants as K
from ktrace_cli.trace import diagnose
from ktrace_cli.trace import ptrace as P
from ktrace_cli.trace.emit import GENIO_SIZE_MAX, TraceFile, procctor
from ktrace_cli.trace.memory import RESOURCE_ERRNOS
from ktrace_cli.trace.tracee import Proc, Thread, list_tasks, read_tgid

if TYPE_CHECKING:
    from ktrace_cli.trace.engine import Engine, Request

OPTIONS = P.BASE_OPTIONS | P.PTRACE_O_TRACEEXIT | P.PTRACE_O_TRACESECCOMP
# On Linux the letterless creation/exit points alone would keep a process
# stopped at every exit and fork for nothing: they count as "no trace points".
LIVE_POINTS = K.KTRFAC_MASK & ~K.PROC_ABI_POINTS
log = logging.getLogger("pyktrace.engine")
# Requests that are not ktrace(2) operations (Request.ops < 0).
SHUTDOWN, STATUS = -1, -2
DETACH_TIMEOUT = 10.0  # seconds a request waits for a process being detached to stop


def serve(engine: Engine) -> None:
    """Answer queued requests in order; a clear is answered once its processes are detached.

    A request that sets tracing on a process being detached waits for it,
    so it never meets a half-detached process (FreeBSD's ktrace(2) is atomic
    under the proctree lock; this is the engine's equivalent). Requests
    about other processes go on meanwhile, and a detach that does not finish within
    DETACH_TIMEOUT (a frozen cgroup, a read stuck in a FUSE server) is
    reported to whoever waits for it.
    """
    now = time.monotonic()
    _expire(engine, now)
    blocked: list[Request] = []
    while True:
        with engine.lock:
            if not engine.requests:
                break
            req = engine.requests.popleft()
        stuck = _blocked_by(engine, req)
        if stuck is not None:
            if _overdue(engine, stuck, now):
                _close_fd(req)
                send(req.reply, _stuck_reply(stuck))
            else:
                blocked.append(req)
            continue
        before = {p.tgid for p in engine.procs.values() if p.detaching}
        try:
            reply = apply(engine, req)
        except OSError as e:
            reply = _os_error(e)
        except Exception as e:  # a bad request must never take the engine down
            log.exception("request failed")
            reply = {"error": E.EIO, "message": str(e)}
        finally:
            _close_fd(req)
        waiting = [p for p in engine.procs.values() if p.detaching and p.tgid not in before]
        if waiting:
            engine.held_replies.append((waiting, req.reply, reply))
        else:
            send(req.reply, reply)
    if blocked:
        with engine.lock:
            engine.requests.extendleft(reversed(blocked))
    _next_deadline(engine)


def _close_fd(req: Request) -> None:
    if req.fd is not None:
        os.close(req.fd)
        req.fd = None


def _os_error(e: OSError) -> dict[str, object]:
    if e.errno in RESOURCE_ERRNOS:
        log.warning("request failed: %s", e)
        return {"error": e.errno, "why": f"the trace engine is short of resources: {e.strerror}"}
    log.exception("request failed")
    return {"error": E.EIO, "message": str(e)}


def _blocked_by(engine: Engine, req: Request) -> Proc | None:
    """A process being detached that the request may set tracing on, if any.

    Clearing a process that is being detached only asks again for what is
    under way, so clears are never held back.
    """
    if req.ops < 0 or K.ktrop(req.ops) != K.KTROP_SET:
        return None
    detaching = [p for p in engine.procs.values() if p.detaching]
    if not detaching:
        return None
    if req.pid > 0 and not req.ops & K.KTRFLAG_DESCEND and K.ktrop(req.ops) != K.KTROP_CLEARFILE:
        return next((p for p in detaching if p.tgid == req.pid), None)
    return detaching[0]  # a group, a tree or a file may reach any of them


def _overdue(engine: Engine, p: Proc, now: float) -> bool:
    return now - engine.detach_started.get(p.tgid, now) >= DETACH_TIMEOUT


def _stuck_reply(p: Proc) -> dict[str, object]:
    why = (f"pid {p.tgid} did not stop within {DETACH_TIMEOUT:.0f} s (frozen, or asleep in the "
           "kernel); it is detached when it next stops")  # fmt: skip
    log.warning("%s", why)
    return {"error": E.EBUSY, "why": why}


def _expire(engine: Engine, now: float) -> None:
    """Answer the clears that waited too long for a process to stop."""
    still = []
    for procs, reply_fn, reply in engine.held_replies:
        late = [p for p in procs if engine.procs.get(p.tgid) is p and _overdue(engine, p, now)]
        if late:
            send(reply_fn, _stuck_reply(late[0]))
        else:
            still.append((procs, reply_fn, reply))
    engine.held_replies = still


def _next_deadline(engine: Engine) -> None:
    """When the control thread must wake the engine to report a detach that does not finish."""
    if not engine.held_replies and not engine.requests:
        engine.detach_deadline = 0.0
        return
    starts = [engine.detach_started[p.tgid] for p in engine.procs.values()
              if p.detaching and p.tgid in engine.detach_started]  # fmt: skip
    engine.detach_deadline = min(starts) + DETACH_TIMEOUT if starts else 0.0


def send(reply_fn: object, reply: dict[str, object]) -> None:
    try:
        reply_fn(reply)  # type: ignore[operator]
    except OSError:
        pass


def released(engine: Engine) -> None:
    """A process left the engine: answer the clears that waited for it, take new requests."""
    still = []
    for procs, reply_fn, reply in engine.held_replies:
        if any(engine.procs.get(p.tgid) is p for p in procs):
            still.append((procs, reply_fn, reply))
        else:
            send(reply_fn, reply)
    engine.held_replies = still
    for tgid in [t for t in engine.detach_started if t not in engine.procs]:
        del engine.detach_started[tgid]
    _next_deadline(engine)
    if engine.requests:
        engine.attention = True


def apply(engine: Engine, req: Request) -> dict[str, object]:
    """Carry out one request; the reply carries error 0 or an errno, as ktrace(2) returns."""
    if req.ops == STATUS:
        return status(engine)
    if req.ops < 0:  # SHUTDOWN: detach everything and exit
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
        # A pipe is pyktrace --live's stream to its reader (and, for a clear,
        # names everything tracing into it); anything else but a file is refused.
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
            return {"error": E.EACCES}
        tf = engine.files.get((st.st_dev, st.st_ino))
        if tf is None or tf.failed:
            tf = TraceFile(os.dup(req.fd), req.version, min(req.genio_size, GENIO_SIZE_MAX))
        tf.fsize_limit = req.fsize_limit
    if op == K.KTROP_CLEARFILE:
        return _clear_file(engine, tf)
    if req.command and req.pid != req.peer_pid:
        return {"error": E.EPERM, "message": "command mode traces only the caller"}
    if req.pid > 0 and read_tgid(req.pid) == os.getpid():
        _discard(engine, tf)
        return {"error": E.EPERM, "self": f"pid {req.pid} is the trace engine; it cannot trace itself"}
    roots = _roots(req.pid)
    if not roots:
        _discard(engine, tf)
        return {"error": E.ESRCH}
    reply: dict[str, object] = {"error": 0}
    want_filter: list[int] | None = None
    if req.command and op == K.KTROP_SET and req.seccomp == "on":
        want_filter = engine.rules.filter_syscalls(facs, setid_check=os.geteuid() != 0)
    walk = _Walk(engine, op, facs, tf, want_filter is not None, bool(req.ops & K.KTRFLAG_DESCEND))
    for root in roots:
        walk.visit(root)
    if not walk.affected:
        _discard(engine, tf)
        err = walk.error or E.EPERM
        out: dict[str, object] = {"error": err}
        if err == E.EPERM and walk.refused:
            out["why"] = diagnose.why_eperm(walk.refused, os.getpid())
        return out
    if want_filter is not None:
        reply["filter"] = want_filter
    if req.rename is not None and req.fd is not None and op == K.KTROP_SET:
        reply.update(rename_accepted(req.peer_pid, req.fd, req.rename))
    engine._flush_all()
    return reply


def rename_accepted(peer: int, fd: int, spec: object) -> dict[str, object]:
    """Give the new trace file its name, now that the request is accepted.

    The client created it beside PATH under a temporary name and waits for
    our answer holding a descriptor of the directory; renaming it here,
    through that descriptor, keeps the rename out of a command's trace and
    leaves PATH untouched by a refused request. Only a file that is still
    the one the client passed is renamed, and only over a regular file or
    a symbolic link.
    """
    if not (isinstance(spec, list) and len(spec) == 3 and isinstance(spec[0], int)
            and all(isinstance(n, str) and "/" not in n and n not in ("", ".", "..")
                    for n in spec[1:])):  # fmt: skip
        return {"rename_error": E.EINVAL}
    dirfd, old, new = spec[0], str(spec[1]), str(spec[2])
    try:
        dfd = os.open(f"/proc/{peer}/fd/{dirfd}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        return {"rename_error": e.errno or E.EIO}
    try:
        ours, theirs = os.fstat(fd), os.lstat(old, dir_fd=dfd)
        if (ours.st_dev, ours.st_ino) != (theirs.st_dev, theirs.st_ino):
            return {"rename_error": E.ENOENT}
        try:
            there = os.lstat(new, dir_fd=dfd).st_mode
        except FileNotFoundError:
            there = stat.S_IFREG
        if not (stat.S_ISREG(there) or stat.S_ISLNK(there)):
            return {"rename_error": E.EEXIST}
        os.rename(old, new, src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError as e:
        return {"rename_error": e.errno or E.EIO}
    finally:
        os.close(dfd)
    return {"renamed": True}


def status(engine: Engine) -> dict[str, object]:
    """What the engine holds, for tests and for a user asking why it still runs.

    Taken on the engine thread between events, so it is never half-updated.
    """
    return {
        "error": 0,
        "pid": os.getpid(),
        "procs": sorted(engine.procs),
        "threads": sorted(engine.threads),
        "files": len(engine.files),
        "awaiting": sorted(engine.awaiting),
        "pending": sorted(engine.pending),
        "held_replies": len(engine.held_replies),
    }


class _Walk:
    """ktrops() on each process, and ktrsetchildren()'s walk of the tree when descending.

    A process is attached before its children are listed, so a child forked
    meanwhile is either listed or reported to the engine by a fork event that
    precedes the parent's attach stop (Thread.descend_pending adopts those).
    """

    def __init__(self, engine: Engine, op: int, facs: int, tf: TraceFile | None,
                 want_seccomp: bool, descend: bool) -> None:  # fmt: skip
        self.engine, self.op, self.facs, self.tf = engine, op, facs, tf
        self.want_seccomp, self.descend = want_seccomp, descend
        self.seen: set[int] = {os.getpid()}  # never the engine itself (a subreaper's tree)
        self.affected = 0
        self.error = 0
        self.refused = 0

    def visit(self, root: int) -> None:
        stack = [root]
        while stack:
            pid = stack.pop()
            if pid in self.seen:
                continue
            self.seen.add(pid)
            if self.op == K.KTROP_SET:
                err = _set(self.engine, pid, self.facs, self.tf, self.want_seccomp, self.descend)
            else:
                err = _clear(self.engine, pid, self.facs)
            if err == 0:
                self.affected += 1
            elif err != E.ESRCH or not self.error:
                self.error = err
                if err == E.EPERM and not self.refused:
                    self.refused = pid
            if self.descend:
                stack.extend(children(pid))


def _set(engine: Engine, pid: int, facs: int, tf: TraceFile | None, want_seccomp: bool,
         descend: bool) -> int:  # fmt: skip
    p = engine.procs.get(pid)
    if p is None:
        if _state(pid) == "Z":
            return 0  # exiting: ktrops() counts it, changes nothing
        return attach(engine, pid, facs, tf, want_seccomp, descend)
    # ktrops(): add the facilities, switch the file, announce with a PROCCTOR.
    p.facs |= facs
    if tf is not None:
        engine.files[tf.ident] = tf
        old = p.set_file(tf)
        if old is not None:
            if engine.files.get(old.ident) is old:
                del engine.files[old.ident]
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
        # Not traced by us: FreeBSD's ktrops() succeeds on any process the
        # caller may debug; one traced by another user's engine (root's
        # KTRFAC_ROOT) or that we may not debug is refused.
        if _state(pid) is None:
            return E.ESRCH
        tracer = diagnose.tracer_of(pid)
        if tracer and diagnose.is_foreign_engine(tracer):
            return E.EPERM
        return 0 if diagnose.can_debug(pid) else E.EPERM
    p.facs &= ~facs
    if not p.facs & LIVE_POINTS:
        p.facs = 0
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


def _state(pid: int) -> str | None:
    """The process's state letter from /proc/PID/stat, None if there is no such process.

    Running out of descriptors is not "no such process": it is raised.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError as e:
        if e.errno in RESOURCE_ERRNOS:
            raise
        return None
    except IndexError:
        return None


def _alive(pid: int) -> bool:
    """Whether pfind() would find `pid`: it exists and is not a zombie.

    A thread-group leader that called pthread_exit() shows as a zombie
    while its other threads run; the process is alive then.
    """
    state = _state(pid)
    if state is None:
        return False
    return state not in ("Z", "X") or len(list_tasks(pid)) > 1


def _roots(pid: int) -> list[int]:
    """The processes a request names: one pid, or every member of group -pid."""
    if pid > 0:
        return [pid] if _alive(pid) else []
    roots = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getpgid(int(name)) == -pid:
                    roots.append(int(name))
            except OSError:
                pass
    return sorted(roots)


def children(pid: int) -> list[int]:
    """The current children of every thread of `pid` (/proc/PID/task/TID/children)."""
    out: list[int] = []
    for tid in list_tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(x) for x in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def attach(engine: Engine, pid: int, facs: int, tf: TraceFile | None, want_seccomp: bool,
           descend: bool = False) -> int:  # fmt: skip
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
            P._ptrace(P.PTRACE_INTERRUPT, tid, 0, 0)
            t = Thread(tid, p)
            t.descend_pending = descend
            p.threads[tid] = t
            engine.threads[tid] = t
        if first_error:
            break
    if not p.threads:
        p.set_file(None)
        p.mem.close()
        if first_error == E.EPERM and diagnose.tracer_of(pid) == os.getpid():
            return 0  # a child its traced parent forked while we walked: adopted at the fork event
        return first_error or E.ESRCH
    engine.procs[pid] = p
    if tf is not None:
        engine.files[tf.ident] = tf
        leader = p.threads.get(pid) or next(iter(p.threads.values()))
        procctor(tf, pid, leader.tid, leader.comm)
        engine.dirty = True
    return 0


def detach(engine: Engine, p: Proc, current: Thread | None = None) -> None:
    """Stop tracing a process; a filtered one is only muted (detaching would ENOSYS it).

    Each thread is interrupted and let go at its next stop (engine.py): a
    signal being delivered goes with the detach, a group-stop stays in force,
    a system call in progress is restarted by the kernel.
    """
    if p.filtered:
        if p.threads:
            engine._dtor(p, current or next(iter(p.threads.values())))
        p.passthrough = True
        old = p.set_file(None)
        if old is not None:
            if engine.files.get(old.ident) is old:
                del engine.files[old.ident]
            old.flush()
            old.close()
        p.facs = 0
        return
    p.detaching = True
    engine.detach_started.setdefault(p.tgid, time.monotonic())
    if current is not None:
        # Its records reach the file before it runs on (a set-id exec's
        # program could otherwise finish before they are written).
        engine._flush_all()
    for th in list(p.threads.values()):
        if th is current:
            P._ptrace(P.PTRACE_DETACH, th.tid, 0, 0)
            engine._drop_thread(th)
        else:
            P._ptrace(P.PTRACE_INTERRUPT, th.tid, 0, 0)

"""Process life-cycle events: fork/clone, exec and exit stops (kern_fork/kern_exec/kern_exit's ktrace hooks)."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

from ktrace_cli.format import constants as K
from ktrace_cli.trace import ptrace as P
from ktrace_cli.trace.emit import SYSRET, procctor
from ktrace_cli.trace.memory import ProcMem
from ktrace_cli.trace.tracee import Proc, Thread, read_comm, read_tgid

if TYPE_CHECKING:
    from ktrace_cli.trace.engine import Engine

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
XATTR_CAPS = "security.capability"


def new_task(engine: Engine, t: Thread, p: Proc, event: int) -> None:
    child = P.get_event_msg(t.tid, engine.bufs)
    if child <= 0:
        return
    if event == P.PTRACE_EVENT_CLONE and read_tgid(child) == p.tgid:
        nt = Thread(child, p, t.comm)
        nt.started = False
        p.threads[child] = nt
        engine.threads[child] = nt
    elif p.passthrough or not ((p.inherit or t.descend_pending) and p.file is not None):
        if p.filtered:
            np = Proc(child, 0, None)
            np.passthrough = np.filtered = True
            np.mode_op = P.PTRACE_CONT
            adopt(engine, np, child, t, None)
        else:
            engine.awaiting[child] = (None, t)
    else:
        np = Proc(child, p.facs, p.file)
        np.handlers = dict(p.handlers)
        np.resethand = set(p.resethand)
        np.filtered = p.filtered
        np.mode_op = p.mode_op
        adopt(engine, np, child, t, t.comm)
        if p.file is not None:
            procctor(p.file, child, child, t.comm)
            if p.facs & K.KTRFAC_SYSRET and t.nr >= 0:
                # The child's return from fork/clone, as FreeBSD logs it.
                p.file.record(K.KTR_SYSRET, child, child, t.comm, time.time_ns(),
                              SYSRET(t.nr, 0, 0, 0))  # fmt: skip
            engine.dirty = True
    status = engine.pending.pop(child, None)
    if status is not None:
        first_stop(engine, child, status)

def adopt(engine: Engine, np: Proc, child: int, creator: Thread, comm: bytes | None) -> None:
    engine.procs[child] = np
    nt = Thread(child, np, comm if comm is not None else creator.comm)
    nt.started = False
    np.threads[child] = nt
    engine.threads[child] = nt

def first_stop(engine: Engine, tid: int, status: int) -> None:
    """A new task's first stop, once we know whether to keep it."""
    entry = engine.awaiting.pop(tid, None)
    if entry is not None:
        P._ptrace(P.PTRACE_DETACH, tid, 0, 0)  # not inherited: runs on untraced
        return
    t = engine.threads.get(tid)
    if t is not None:
        engine._other_stop(t, status)


def exec_(engine: Engine, t: Thread, p: Proc) -> None:
    former = P.get_event_msg(t.tid, engine.bufs)
    if former > 0 and former != p.tgid:
        # execve from a non-leader thread: it takes over the leader's tid,
        # and the leader (already through its exit stop) is gone.
        execer = p.threads.get(former)
        if execer is not None:
            for tid in (p.tgid, former):
                gone = p.threads.pop(tid, None)
                engine.threads.pop(tid, None)
                if gone is not None:
                    gone.close()
            execer.tid = p.tgid
            p.threads[p.tgid] = execer
            engine.threads[p.tgid] = execer
            t = execer
    t.exiting = False
    p.mem.reopen(p.tgid)
    p.exec_reset()
    t.comm = read_comm(p.tgid, t.tid)
    if p.file is not None:
        procctor(p.file, p.tgid, t.tid, t.comm)
        engine.dirty = True
    P._ptrace(t.resume_op(), t.tid, 0, 0)

def exiting(engine: Engine, t: Thread, p: Proc) -> None:
    """PTRACE_EVENT_EXIT: the thread is dying but its parent has not been told yet."""
    t.exiting = True
    code = P.get_event_msg(t.tid, engine.bufs)
    if code >= 0 and code & 0x7F == signal.SIGKILL:
        engine._killed(t, p)
    if all(th.exiting for th in p.threads.values()):
        engine._dtor(p, t)
        engine._flush_all()  # records are on disk before the parent can wait for it


def exec_target(tid: int, name: str, args: tuple[int, ...],
                mem: ProcMem) -> tuple[bytes, bool, bytes] | None:  # fmt: skip
    """Where the file an execve/execveat is about to run can be reached from here.

    (path through /proc, whether to follow a final symbolic link, the name
    as the program gave it); None if the name cannot be read. A relative
    name is looked up from the thread's cwd or from execveat's dirfd, an
    absolute one from the thread's root, and AT_EMPTY_PATH (fexecve) names
    the descriptor itself, as the kernel resolves them.
    """
    if name == "execve":
        dirfd, addr, flags = AT_FDCWD, args[0], 0
    else:
        dirfd, addr, flags = _s32(args[0]), args[1], args[4]
    path = mem.read_path(addr)
    if path is None:
        return None
    follow = not flags & AT_SYMLINK_NOFOLLOW
    if not path:
        if not flags & AT_EMPTY_PATH or dirfd < 0:
            return None
        return b"/proc/%d/fd/%d" % (tid, dirfd), True, b"fd %d" % dirfd
    if path.startswith(b"/"):
        return b"/proc/%d/root" % tid + path, follow, path
    if dirfd == AT_FDCWD:
        return b"/proc/%d/cwd/" % tid + path, follow, path
    if dirfd < 0:
        return None
    return b"/proc/%d/fd/%d/" % (tid, dirfd) + path, follow, path


def exec_privileges(where: bytes, follow: bool) -> str | None:
    """What running this file would gain for us ("set-id", "file-capability"); None if nothing.

    A set-user-ID file owned by someone else, a set-group-ID file of
    another group, or a file with capabilities (security.capability):
    the kernel grants none of them to a traced process, so the engine
    must let go of it before the exec.
    """
    try:
        st = os.stat(where, follow_symlinks=follow)
    except OSError:
        return None
    if (st.st_mode & 0o4000 and st.st_uid != os.getuid()) or (
        st.st_mode & 0o2000 and st.st_gid != os.getgid()
    ):
        return "set-id"
    try:
        caps = os.getxattr(where, XATTR_CAPS, follow_symlinks=follow)
    except OSError:
        return None
    return "file-capability" if caps else None


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >> 31 else value

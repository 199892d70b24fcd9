"""Process life-cycle events: fork/clone, exec and exit stops (kern_fork/kern_exec/kern_exit's ktrace hooks)."""

from __future__ import annotations

import _signal as signal  # signal.py's enum conversions cost the engine's start-up
import os
import time

from ktrace_cli.format import constants as K
from ktrace_cli.format.writer import SYSRET, procctor
from ktrace_cli.trace import capture, interp, restarts
from ktrace_cli.trace import ptrace as P
from ktrace_cli.trace import rules as R
from ktrace_cli.trace.englog import log
from ktrace_cli.trace.memory import ProcMem
from ktrace_cli.trace.table import TraceeTable
from ktrace_cli.trace.tracee import SA_RESETHAND, Proc, Thread, read_comm, read_tgid

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
XATTR_CAPS = "security.capability"


def new_task(table: TraceeTable, bufs: P.PtraceBuffers, t: Thread, p: Proc,
             event: int) -> tuple[Thread, int] | None:  # fmt: skip
    """A fork/clone event: adopt the new task or let it go; a first stop already seen is returned to handle."""
    child = P.get_event_msg(t.tid, bufs)
    if child <= 0:
        return None
    if event == P.PTRACE_EVENT_CLONE and read_tgid(child) == p.tgid:
        nt = Thread(child, p, t.comm)
        nt.started = False
        table.add_thread(nt)
        if p.file is not None and p.facs & K.KTRFAC_SYSRET and t.nr >= 0:
            # The new thread's own return from clone/clone3 (FreeBSD's fork_return()).
            p.file.record(K.KTR_SYSRET, p.tgid, child, t.comm, time.time_ns(),
                          SYSRET(t.nr, 0, 0, 0))  # fmt: skip
            table.dirty = True
    elif p.passthrough or not ((p.inherit or t.descend_pending) and p.file is not None):
        if p.filtered:
            np = Proc(child, 0, None)
            np.passthrough = np.filtered = True
            np.mode_op = P.PTRACE_CONT
            adopt(table, np, child, t, None)
        else:
            table.awaiting[child] = (None, t)
    else:
        np = Proc(child, p.facs, p.file)
        np.handlers = dict(p.handlers)
        np.resethand = set(p.resethand)
        np.sa_restart = set(p.sa_restart)
        np.filtered = p.filtered
        np.mode_op = p.mode_op
        np.arch, np.sv_flags = p.arch, p.sv_flags  # the ABI of the call that forked it
        adopt(table, np, child, t, t.comm)
        if p.file is not None:
            procctor(p.file, child, child, t.comm, p.sv_flags)
            if p.facs & K.KTRFAC_SYSRET and t.nr >= 0:
                # The child's return from fork/clone, as FreeBSD logs it.
                p.file.record(K.KTR_SYSRET, child, child, t.comm, time.time_ns(),
                              SYSRET(t.nr, 0, 0, 0))  # fmt: skip
            table.dirty = True
    status = table.pending.pop(child, None)
    if status is not None:
        return first_stop(table, child, status)
    return None


def adopt(table: TraceeTable, np: Proc, child: int, creator: Thread, comm: bytes | None) -> None:
    table.procs[child] = np
    nt = Thread(child, np, comm if comm is not None else creator.comm)
    nt.started = False
    table.add_thread(nt)


def first_stop(table: TraceeTable, tid: int, status: int) -> tuple[Thread, int] | None:
    """A new task's first stop, once we know whether to keep it: the thread and stop to handle, if kept."""
    entry = table.awaiting.pop(tid, None)
    if entry is not None:
        P.libc_ptrace(P.PTRACE_DETACH, tid, 0, 0)  # not inherited: runs on untraced
        return None
    t = table.threads.get(tid)
    return (t, status) if t is not None else None


def exec_(table: TraceeTable, bufs: P.PtraceBuffers, t: Thread, p: Proc) -> None:
    # The tid the execer had: only a process with other threads can have
    # exec'd from one that is not its leader (a ptrace call saved per exec).
    former = P.get_event_msg(t.tid, bufs) if len(p.threads) > 1 else p.tgid
    if former > 0 and former != p.tgid:
        # execve from a non-leader thread: it takes over the leader's tid,
        # and the leader (already through its exit stop) is gone.
        execer = p.threads.get(former)
        if execer is not None:
            for tid in (p.tgid, former):
                gone = p.threads.pop(tid, None)
                table.threads.pop(tid, None)
                if gone is not None:
                    gone.close()
            execer.tid = p.tgid
            p.threads[p.tgid] = execer
            table.threads[p.tgid] = execer
            t = execer
    t.exiting = False
    p.mem.reopen(p.tgid)
    p.exec_reset()
    if p.file is not None and p.facs & K.KTRFAC_NAMEI:
        # The #! and ELF interpreters, under the comm of the image that called exec.
        ns = time.time_ns()
        for name in interp.looked_up(p.tgid, p.mem):
            p.file.record(K.KTR_NAMEI, p.tgid, t.tid, t.comm, ns, name)
    t.comm = read_comm(p.tgid, t.tid)
    if p.file is not None:
        # Under the ABI of the exec call, so its RET reads right; the new
        # image's first call switches it if the image is of the other ABI.
        procctor(p.file, p.tgid, t.tid, t.comm, p.sv_flags)
        table.dirty = True
    P.libc_ptrace(t.resume_op(), t.tid, 0, 0)


def exiting(table: TraceeTable, bufs: P.PtraceBuffers, t: Thread, p: Proc) -> None:
    """PTRACE_EVENT_EXIT: the thread is dying but its parent has not been told yet."""
    t.exiting = True
    if t.restart_ret is not None:
        restarts.settle(t, 0)  # killed inside the call: the kernel would have restarted it
    if p.file is not None and p.facs & K.KTRFAC_PSIG and not (p.kill_reported or p.dtor_done):
        # Only a PSIG record needs the exit code: no ptrace call at every exit otherwise.
        code = P.get_event_msg(t.tid, bufs)
        if code >= 0 and code & 0x7F == signal.SIGKILL:
            table.report_kill(t, p)
    if all(th.exiting for th in p.threads.values()):
        table.write_dtor(p, t)
        table.flush_all()  # records are on disk before the parent can wait for it


def entry_special(table: TraceeTable, t: Thread, p: Proc, rule: R.SyscallRule, args: tuple[int, ...],
                  is_root: bool) -> bool:  # fmt: skip
    """A special call's entry (sigaction, a set-id exec); True if the process was let go."""
    kind = rule.special
    if kind == R.SPECIAL_SIGACTION:
        t.sigaction = None
        if args[1]:
            raw = p.mem.read(args[1], 16)
            if len(raw) == 16:
                handler = int.from_bytes(raw[:8], "little")
                flags = int.from_bytes(raw[8:], "little")
                t.sigaction = (args[0], handler, flags)
    elif kind == R.SPECIAL_SIGACTION32:
        t.sigaction = None
        if args[1]:
            raw = p.mem.read(args[1], 8)  # the i386 struct: 32-bit handler, then flags
            if len(raw) == 8:
                t.sigaction = (args[0], int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little"))
    elif kind == R.SPECIAL_EXEC and not is_root and not p.filtered:
        return _setid_exec_check(table, t, p, rule, args)
    return False


def exit_special(t: Thread, p: Proc, rule: R.SyscallRule) -> None:
    """A special call's successful exit: dispositions, the thread's name, a live seccomp filter."""
    kind = rule.special
    args = t.args
    if (kind == R.SPECIAL_SIGACTION or kind == R.SPECIAL_SIGACTION32) and t.sigaction is not None:
        sig, handler, flags = t.sigaction
        p.handlers[sig] = handler
        if flags & SA_RESETHAND:
            p.resethand.add(sig)
        else:
            p.resethand.discard(sig)
        if flags & restarts.SA_RESTART:
            p.sa_restart.add(sig)
        else:
            p.sa_restart.discard(sig)
    elif kind == R.SPECIAL_PRCTL and args:
        if args[0] == capture.PR_SET_NAME:
            t.comm = read_comm(p.tgid, t.tid)
        elif args[0] == capture.PR_SET_SECCOMP and args[1] == capture.SECCOMP_MODE_FILTER:
            _filter_live(p)
    elif kind == R.SPECIAL_SECCOMP and args and args[0] == capture.SECCOMP_SET_MODE_FILTER:
        _filter_live(p)


def _filter_live(p: Proc) -> None:
    p.filtered = True
    if p.want_seccomp:
        p.want_seccomp = False
        p.mode_op = P.PTRACE_CONT
        log.info("pid %d: seccomp filter live, stopping only on selected syscalls", p.tgid)


def _setid_exec_check(table: TraceeTable, t: Thread, p: Proc, rule: R.SyscallRule,
                      args: tuple[int, ...]) -> bool:  # fmt: skip
    """Detach before an exec that would gain privileges, so the program keeps them."""
    target = exec_target(t.tid, rule.name, args, p.mem)
    if target is None:
        return False
    where, follow, name = target
    why = exec_privileges(where, follow)
    if why is None:
        return False
    shown = name.decode(errors="backslashreplace")
    log.info("pid %d: %s exec of %s: tracing stopped so it keeps its privileges", p.tgid, why, shown)
    table.detach(p, current=t)
    return True


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

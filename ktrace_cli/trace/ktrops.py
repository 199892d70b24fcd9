"""ktrace(2)'s operations on the table: set, clear, clear-file, descend, attach (kern_ktrace.c).

ktrops() and ktrsetchildren() semantics, the permission rules and the
attach of a new process; the engine loop applies them between stops.
"""

from __future__ import annotations

import errno as E
import os
import stat
import time
from collections.abc import Callable

from ktrace_cli.format import constants as K
from ktrace_cli.format.writer import GENIO_SIZE_MAX, TraceFile, procctor
from ktrace_cli.trace import procfs, rootbpf
from ktrace_cli.trace import rules as R
from ktrace_cli.trace.table import TraceeTable
from ktrace_cli.trace.tracee import read_tgid
from ktrace_cli.value import Fields

# On Linux the letterless creation/exit points alone would keep a process
# stopped at every exit and fork for nothing: they count as "no trace points".
LIVE_POINTS = K.KTRFAC_MASK & ~K.PROC_ABI_POINTS
# Requests that are not ktrace(2) operations (Request.ops < 0).
SHUTDOWN, STATUS = -1, -2
DETACH_TIMEOUT = 10.0  # seconds a request waits for a process being detached to stop
Reply = dict[str, object]
FDTABLE = b"fdtable"  # the STRU name of a process's descriptors at attach (ours, not FreeBSD's)


class Request(Fields):
    """One ktrace(2)-like request from a client, handed to the engine thread."""

    __slots__ = ("ops", "facs", "pid", "fd", "peer_pid", "command", "seccomp", "genio_size", "version",
                 "fsize_limit", "rename", "reply")  # fmt: skip
    ops: int
    facs: int
    pid: int
    fd: int | None
    peer_pid: int
    command: bool
    seccomp: str  # "on": install the command-mode filter
    genio_size: int
    version: int
    fsize_limit: int  # the client's RLIMIT_FSIZE (RLIM_INFINITY = -1), as FreeBSD captures it
    # [dirfd in the client, temporary name, final name]: the new trace file to
    # rename once the request is accepted (rename_accepted).
    rename: object
    reply: Callable[[Reply], None]

    def __init__(self, ops: int, facs: int, pid: int, fd: int | None, peer_pid: int,
                 command: bool = False, seccomp: str = "off", genio_size: int = K.GENIO_SIZE_DEFAULT,
                 version: int = K.KTR_VERSION1, fsize_limit: int = -1, rename: object = None,
                 reply: Callable[[Reply], None] = lambda r: None) -> None:  # fmt: skip
        self.ops, self.facs, self.pid, self.fd, self.peer_pid = ops, facs, pid, fd, peer_pid
        self.command, self.seccomp, self.genio_size, self.version = command, seccomp, genio_size, version
        self.fsize_limit, self.rename, self.reply = fsize_limit, rename, reply


def apply(table: TraceeTable, rules: R.Rules, req: Request) -> Reply:
    """Carry out one ktrace(2) request; the reply carries error 0 or an errno, as ktrace(2) returns."""
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
        tf = table.files.get((st.st_dev, st.st_ino))
        if tf is None or tf.failed:
            tf = TraceFile(os.dup(req.fd), req.version, min(req.genio_size, GENIO_SIZE_MAX))
        tf.fsize_limit = req.fsize_limit
    if op == K.KTROP_CLEARFILE:
        return _clear_file(table, tf)
    if req.command and req.pid != req.peer_pid:
        return {"error": E.EPERM, "message": "command mode traces only the caller"}
    if req.pid > 0 and read_tgid(req.pid) == os.getpid():
        table.discard(tf)
        return {"error": E.EPERM, "self": f"pid {req.pid} is the trace engine; it cannot trace itself"}
    roots = procfs.roots(req.pid)
    if not roots:
        table.discard(tf)
        return {"error": E.ESRCH}
    reply: dict[str, object] = {"error": 0}
    want_filter: list[int] | None = None
    if req.command and op == K.KTROP_SET and req.seccomp == "on":
        want_filter = rules.filter_syscalls(facs, setid_check=os.geteuid() != 0)
    walk = _Walk(table, op, facs, tf, want_filter is not None, bool(req.ops & K.KTRFLAG_DESCEND))
    walk.fdtable = not req.command  # a command's descriptors are pyktrace's, opened before its trace
    for root in roots:
        walk.visit(root)
    if not walk.affected:
        table.discard(tf)
        err = walk.error or E.EPERM
        out: dict[str, object] = {"error": err}
        if err == E.EPERM and walk.refused:
            from ktrace_cli.trace import diagnose  # lazy: start-up (only a refusal is explained)

            out["why"] = diagnose.why_eperm(walk.refused, os.getpid(), walk.holders)
        return out
    if want_filter is not None:
        reply["filter"] = want_filter
    if req.rename is not None and req.fd is not None and op == K.KTROP_SET:
        reply.update(rename_accepted(req.peer_pid, req.fd, req.rename))
    table.flush_all()
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


class _Walk:
    """ktrops() on each process, and ktrsetchildren()'s walk of the tree when descending.

    A process is attached before its children are listed, so a child forked
    meanwhile is either listed or reported to the engine by a fork event that
    precedes the parent's attach stop (Thread.descend_pending adopts those).
    """

    def __init__(self, table: TraceeTable, op: int, facs: int, tf: TraceFile | None,
                 want_seccomp: bool, descend: bool) -> None:  # fmt: skip
        self.table, self.op, self.facs, self.tf = table, op, facs, tf
        self.want_seccomp, self.descend = want_seccomp, descend
        self.seen: set[int] = {os.getpid()}  # never the engine itself (a subreaper's tree)
        self.affected = 0
        self.error = 0
        self.refused = 0
        self.fdtable = False  # write each attached process's descriptors (STRU fdtable)
        self.holders = rootbpf.Holders()  # root's bpf engine asked once per request, if at all

    def visit(self, root: int) -> None:
        stack = [root]
        while stack:
            pid = stack.pop()
            if pid in self.seen:
                continue
            self.seen.add(pid)
            if self.op == K.KTROP_SET:
                err = _set(self.table, pid, self.facs, self.tf, self.want_seccomp, self.descend,
                           self.fdtable, self.holders)  # fmt: skip
            else:
                err = _clear(self.table, pid, self.facs, self.holders)
            if err == 0:
                self.affected += 1
            elif err != E.ESRCH or not self.error:
                self.error = err
                if err == E.EPERM and not self.refused:
                    self.refused = pid
            if self.descend:
                stack.extend(procfs.children(pid))


def _set(table: TraceeTable, pid: int, facs: int, tf: TraceFile | None, want_seccomp: bool,
         descend: bool, fdtable: bool = False, holders: rootbpf.Holders | None = None) -> int:  # fmt: skip
    p = table.procs.get(pid)
    if p is None:
        if procfs.state(pid) == "Z":
            return 0  # exiting: ktrops() counts it, changes nothing
        if holders is not None and holders.root_bpf(pid):
            return E.EPERM  # root's bpf engine traces it (KTRFAC_ROOT): not ours to change
        err = table.backend.attach(table, pid, facs, tf, want_seccomp, descend)
        if not err and fdtable and facs & K.KTRFAC_STRUCT:
            _write_fdtable(table, pid)
        return err
    # ktrops(): add the facilities, switch the file, announce with a PROCCTOR.
    p.facs |= facs
    if tf is not None:
        table.drop_file(p, tf)
    if p.passthrough:
        p.passthrough = False
    leader = p.threads.get(pid) or next(iter(p.threads.values()), None)
    if tf is not None and leader is not None:
        procctor(tf, pid, leader.tid, leader.comm, p.sv_flags)  # linux32 if its last call was i386
        table.dirty = True
    return 0


def _write_fdtable(table: TraceeTable, pid: int) -> None:
    """The descriptors a newly attached process already has, as a STRU `fdtable` (docs/FORMAT.md).

    Its earlier calls are not in the trace, so this is what tells the reader
    what descriptor 3 is when its first traced call reads it.
    """
    p = table.procs.get(pid)
    leader = None if p is None else p.threads.get(pid) or next(iter(p.threads.values()), None)
    if p is None or p.file is None or leader is None:
        return
    p.file.record(K.KTR_STRUCT, pid, leader.tid, leader.comm, time.time_ns(),
                  FDTABLE + b"\0" + procfs.fdtable(pid))  # fmt: skip
    table.dirty = True


def _clear(table: TraceeTable, pid: int, facs: int, holders: rootbpf.Holders | None = None) -> int:
    p = table.procs.get(pid)
    if p is None:
        # Not traced by us: FreeBSD's ktrops() succeeds on any process the
        # caller may debug; one traced by another user's engine (root's
        # KTRFAC_ROOT) or that we may not debug is refused.
        if procfs.state(pid) is None:
            return E.ESRCH
        # lazy: start-up (a clear of a process we do not trace is rare)
        from ktrace_cli.trace import diagnose

        tracer = diagnose.tracer_of(pid)
        if tracer and diagnose.is_foreign_engine(tracer):
            return E.EPERM
        if holders is not None and holders.root_bpf(pid):
            return E.EPERM
        return 0 if diagnose.can_debug(pid) else E.EPERM
    p.facs &= ~facs
    if not p.facs & LIVE_POINTS:
        p.facs = 0
        table.detach(p)
    return 0


def _clear_file(table: TraceeTable, tf: TraceFile | None) -> Reply:
    if tf is not None:
        for p in list(table.procs.values()):
            if p.file is not None and p.file.ident == tf.ident:
                p.facs = 0
                table.detach(p)
        table.discard(tf)
    return {"error": 0}

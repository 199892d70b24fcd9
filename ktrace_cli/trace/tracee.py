"""Per-process and per-thread tracing state held by the engine (the kernel's p_traceflag & co)."""

from __future__ import annotations

import os

from ktrace_cli.format import constants as K
from ktrace_cli.format.writer import SV_FLAGS_LINUX64, TraceFile
from ktrace_cli.trace.englog import log
from ktrace_cli.trace.memory import RESOURCE_ERRNOS, ProcMem
from ktrace_cli.trace.ptrace import AUDIT_ARCH_X86_64, PTRACE_SYSCALL

SIG_DFL = 0
SIG_IGN = 1
SA_RESETHAND = 0x80000000
HANDLER_UNKNOWN = -1  # caught, but installed before we attached
PROC_READ_MAX = 4096  # /proc/PID/comm and the head of /proc/PID/status fit (Tgid is its 4th line)


class Proc:
    """One traced process (thread group): facilities, file, memory, signal dispositions."""

    __slots__ = (
        "tgid", "facs", "file", "threads", "mem", "handlers", "resethand", "mode_op",
        "want_seccomp", "filtered", "passthrough", "dtor_done", "kill_reported", "detaching",
        "status_short", "sa_restart", "arch", "sv_flags",
    )  # fmt: skip

    def __init__(self, tgid: int, facs: int, file: TraceFile | None) -> None:
        self.tgid = tgid
        self.facs = facs
        self.file = file
        if file is not None:
            file.users += 1
        self.threads: dict[int, Thread] = {}
        self.mem = ProcMem(tgid, self._lost)
        self.handlers: dict[int, int] = {}
        self.resethand: set[int] = set()
        self.sa_restart: set[int] = set()  # signals whose handler has SA_RESTART
        self.mode_op = PTRACE_SYSCALL  # PTRACE_CONT once a seccomp filter selects the stops
        self.want_seccomp = False  # the command-mode filter is about to be installed
        self.filtered = False  # a RET_TRACE filter is live: never detach, pass through
        self.passthrough = False  # attached only to keep a filtered process working
        self.dtor_done = False
        self.kill_reported = False
        self.detaching = False
        self.status_short = False  # a thread's status file could not be opened (logged once)
        # AUDIT_ARCH_X86_64 while every call is x86_64; ARCH_MIXED once one
        # was i386 (trace/abi32.py), which sends its stops off the fast path.
        self.arch = AUDIT_ARCH_X86_64
        self.sv_flags = SV_FLAGS_LINUX64  # of the last PROCCTOR written for it

    def status_lost(self, path: str, err: OSError) -> None:
        """A status file (for `w`) could not be opened for lack of resources: said once, marked each time."""
        if not self.status_short:
            self.status_short = True
            log.warning("pid %d: cannot open %s: %s; its context-switch records are lost (marked "
                        "KTR_DROP)", self.tgid, path, err.strerror)  # fmt: skip
        self._lost()

    def _lost(self) -> None:
        """Memory could not be read for lack of a descriptor: the next record says records were dropped."""
        if self.file is not None:
            self.file.mark_drop(self.tgid)

    @property
    def inherit(self) -> bool:
        return bool(self.facs & K.KTRFAC_INHERIT)

    def set_file(self, file: TraceFile | None) -> TraceFile | None:
        """Switch to `file`; returns the old file if this dropped its last user."""
        old = self.file
        if old is file:
            return None
        if file is not None:
            file.users += 1
        self.file = file
        if old is not None:
            old.users -= 1
            if old.users <= 0:
                return old
        return None

    def load_dispositions(self) -> None:
        """Signal dispositions of a process we attach to, from /proc/PID/status."""
        ign = cgt = 0
        try:
            with open(f"/proc/{self.tgid}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"SigIgn:"):
                        ign = int(line.split()[1], 16)
                    elif line.startswith(b"SigCgt:"):
                        cgt = int(line.split()[1], 16)
        except OSError:
            return
        for sig in range(1, 65):
            bit = 1 << (sig - 1)
            if ign & bit:
                self.handlers[sig] = SIG_IGN
            elif cgt & bit:
                self.handlers[sig] = HANDLER_UNKNOWN

    def exec_reset(self) -> None:
        """execve resets caught signals to SIG_DFL; ignored ones stay ignored."""
        self.handlers = {s: h for s, h in self.handlers.items() if h == SIG_IGN}
        self.resethand.clear()
        self.sa_restart.clear()


class Thread:
    """One traced thread: its comm and the syscall it is in."""

    __slots__ = (
        "tid", "proc", "comm", "nr", "args", "insys", "entry_ns", "nvcsw", "started",
        "exiting", "sigaction", "stepping", "descend_pending", "status_fd", "restart_ret",
        "quiet_restart", "entry32",
    )  # fmt: skip

    def __init__(self, tid: int, proc: Proc, comm: bytes | None = None) -> None:
        self.tid = tid
        self.proc = proc
        self.comm = comm if comm is not None else read_comm(proc.tgid, tid)
        self.nr = -1
        self.args: tuple[int, ...] = ()
        self.insys = False
        self.entry_ns = 0
        self.nvcsw = -1
        self.started = True  # False until a new task's first stop has been seen
        self.exiting = False
        self.sigaction: tuple[int, int, int] | None = None
        self.stepping = 0  # signal whose handler address a single-step is finding
        # Attached by a descending request and not yet at its attach stop: a
        # child it forks now was forked during the walk and is traced too.
        self.descend_pending = False
        self.status_fd = -1  # /proc/TGID/task/TID/status, opened once `w` needs it
        # (syscall, Linux restart code, time) of a RET waiting for its next stop (trace/restarts.py)
        self.restart_ret: tuple[int, int, int] | None = None
        # Only signals the program ignores were delivered since restart_ret was held (restarts.py).
        self.quiet_restart = False
        self.entry32 = False  # the call it is in was entered by int $0x80 (i386 numbering)

    def read_nvcsw(self) -> int:
        """The voluntary context switch count (for CSW records), -1 if unreadable.

        The status file is opened once per thread and re-read with pread: a
        seq_file regenerates its text at offset 0, and open/close on every
        syscall stop cost more than the read itself.
        """
        for _ in range(2):
            if self.status_fd < 0:
                path = f"/proc/{self.proc.tgid}/task/{self.tid}/status"
                try:
                    self.status_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as e:
                    if e.errno in RESOURCE_ERRNOS:
                        self.proc.status_lost(path, e)
                    return -1
            try:
                data = os.pread(self.status_fd, 4096, 0)
            except OSError:
                data = b""
            at = data.find(b"voluntary_ctxt_switches:")
            if at >= 0:
                try:
                    return int(data[at + 24 : data.index(b"\n", at)])
                except ValueError:
                    return -1
            self.close()  # the task changed (exec by another thread): open it again
        return -1

    def close(self) -> None:
        if self.status_fd >= 0:
            os.close(self.status_fd)
            self.status_fd = -1

    def resume_op(self) -> int:
        return PTRACE_SYSCALL if self.insys else self.proc.mode_op


def comm_field(name: bytes) -> bytes:
    return name[: K.MAXCOMLEN].ljust(K.MAXCOMLEN + 1, b"\0")


def read_comm(tgid: int, tid: int) -> bytes:
    """The thread's comm as the 20-byte ktr_comm field."""
    return comm_field(_read_proc(f"/proc/{tgid}/task/{tid}/comm").rstrip(b"\n"))


def read_tgid(tid: int) -> int:
    """The thread group of a task, 0 if it is gone."""
    status = _read_proc(f"/proc/{tid}/status")
    at = status.find(b"\nTgid:")
    try:
        return int(status[at + 6 : status.index(b"\n", at + 1)]) if at >= 0 else 0
    except ValueError:
        return 0


def _read_proc(path: str) -> bytes:
    """A small /proc file in one read(2), b"" if it cannot be read.

    Called at every exec and clone: a buffered open() adds an fstat, an
    ioctl, two lseeks and a read to find the end, each a syscall while the
    tracee waits.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        return os.read(fd, PROC_READ_MAX)
    except OSError:
        return b""
    finally:
        os.close(fd)


def list_tasks(pid: int) -> list[int]:
    """The threads of `pid`; [] if it is gone (a shortage of descriptors is raised, not hidden)."""
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError as e:
        if e.errno in RESOURCE_ERRNOS:
            raise
        return []



"""The Linux ptrace(2) calls the engine needs, through ctypes straight into libc."""

from __future__ import annotations

import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
# No argtypes: ctypes then passes Python ints as C ints/longs without a
# conversion wrapper, the cheapest call path measured (docs/DESIGN.md, Speed).
# The hot path calls this binding directly: P.libc_ptrace(op, tid, 0, 0).
libc_ptrace = _libc.ptrace
libc_ptrace.restype = ctypes.c_long
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

PTRACE_PEEKUSER = 3
PTRACE_CONT = 7
PTRACE_KILL = 8
PTRACE_SINGLESTEP = 9
PTRACE_GETREGS = 12
PTRACE_DETACH = 17
PTRACE_SYSCALL = 24
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
PTRACE_GETSIGMASK = 0x420A
PTRACE_GET_SYSCALL_INFO = 0x420E

PTRACE_O_TRACESYSGOOD = 0x01
PTRACE_O_TRACEFORK = 0x02
PTRACE_O_TRACEVFORK = 0x04
PTRACE_O_TRACECLONE = 0x08
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_TRACEVFORKDONE = 0x20
PTRACE_O_TRACEEXIT = 0x40
PTRACE_O_TRACESECCOMP = 0x80

PTRACE_EVENT_FORK = 1
PTRACE_EVENT_VFORK = 2
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_EXEC = 4
PTRACE_EVENT_VFORK_DONE = 5
PTRACE_EVENT_EXIT = 6
PTRACE_EVENT_SECCOMP = 7
PTRACE_EVENT_STOP = 128

PTRACE_SYSCALL_INFO_NONE = 0
PTRACE_SYSCALL_INFO_ENTRY = 1
PTRACE_SYSCALL_INFO_EXIT = 2
PTRACE_SYSCALL_INFO_SECCOMP = 3

# Options without EXITKILL on purpose: if the engine dies the kernel detaches
# its tracees and they run on untraced (docs/DESIGN.md, Safety of traced programs).
BASE_OPTIONS = (
    PTRACE_O_TRACESYSGOOD
    | PTRACE_O_TRACEFORK
    | PTRACE_O_TRACEVFORK
    | PTRACE_O_TRACECLONE
    | PTRACE_O_TRACEEXEC
)

__WALL = 0x40000000
# WUNTRACED: the engine's one real child (ptrace_daemon.Waker) wakes it by stopping.
WAIT_ALL = __WALL | os.WUNTRACED
WAIT_ALL_NOHANG = __WALL | os.WUNTRACED | os.WNOHANG

# Wait statuses tested with a single compare in the hot loop.
STATUS_SYSCALL_STOP = ((0x80 | 5) << 8) | 0x7F  # SIGTRAP|0x80: 0x857f
STATUS_SECCOMP_STOP = (PTRACE_EVENT_SECCOMP << 16) | (5 << 8) | 0x7F

ORIG_RAX_OFFSET = 15 * 8  # offsetof(struct user_regs_struct, orig_rax)
RIP_OFFSET = 16 * 8

# struct ptrace_syscall_info: op u8, pad[3], arch u32, ip u64, sp u64, then
# entry/seccomp {nr u64, args[6] u64, (seccomp) ret_data u32} or exit {rval s64, is_error u8}.
# SYSCALL_INFO reads op, arch and the seven words after the header in one unpack:
# at entry (nr, args...), at exit (rval as unsigned, is_error in the low byte, ...).
SYSCALL_INFO_SIZE = 88
SYSCALL_INFO = struct.Struct("<B3xI16x7Q")

SIGINFO = struct.Struct("<iii")  # si_signo, si_errno, si_code

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003


class PtraceBuffers:
    """Preallocated buffers reused for every call (no allocation per stop)."""

    def __init__(self) -> None:
        self.info = ctypes.create_string_buffer(SYSCALL_INFO_SIZE)
        self.ulong = ctypes.c_ulong()
        self.siginfo = ctypes.create_string_buffer(128)
        self.sigmask = ctypes.c_uint64()
        self.ulong_ref = ctypes.byref(self.ulong)
        self.sigmask_ref = ctypes.byref(self.sigmask)


def ptrace(request: int, pid: int, addr: int = 0, data: object = 0) -> int:
    """ptrace(2); returns -1 on failure with the errno left in ctypes.get_errno()."""
    return int(libc_ptrace(request, pid, addr, data))


def errno_now() -> int:
    return ctypes.get_errno()


def seize(pid: int, options: int) -> int:
    """PTRACE_SEIZE; 0, or the errno of the failure."""
    ctypes.set_errno(0)
    if libc_ptrace(PTRACE_SEIZE, pid, 0, options) < 0:
        return ctypes.get_errno()
    return 0


def get_event_msg(pid: int, bufs: PtraceBuffers) -> int:
    if libc_ptrace(PTRACE_GETEVENTMSG, pid, 0, bufs.ulong_ref) < 0:
        return -1
    return bufs.ulong.value


def get_siginfo(pid: int, bufs: PtraceBuffers) -> tuple[int, int, int] | None:
    """(si_signo, si_errno, si_code) of the signal the tracee is stopped for."""
    if libc_ptrace(PTRACE_GETSIGINFO, pid, 0, bufs.siginfo) < 0:
        return None
    signo, err, code = SIGINFO.unpack_from(bufs.siginfo.raw)
    return signo, err, code


def get_sigmask(pid: int, bufs: PtraceBuffers) -> int:
    """The thread's blocked-signal mask as a 64-bit Linux sigset."""
    if libc_ptrace(PTRACE_GETSIGMASK, pid, 8, bufs.sigmask_ref) < 0:
        return 0
    return bufs.sigmask.value


def peek_user(pid: int, offset: int) -> int | None:
    ctypes.set_errno(0)
    value = libc_ptrace(PTRACE_PEEKUSER, pid, offset, 0)
    if value == -1 and ctypes.get_errno():
        return None
    return value & 0xFFFFFFFFFFFFFFFF


def syscall(nr: int, *args: object) -> int:
    """A raw syscall(2); -errno on failure."""
    ctypes.set_errno(0)
    r = int(_syscall(nr, *args))
    if r == -1:
        e = ctypes.get_errno()
        if e:
            return -e
    return r


PR_SET_NAME = 15


def set_comm(name: bytes) -> None:
    """prctl(PR_SET_NAME): the calling thread's comm, as records show it."""
    _libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)


def prctl(option: int, a2: int = 0, a3: int = 0, a4: int = 0, a5: int = 0) -> int:
    """prctl(2); -errno on failure."""
    ctypes.set_errno(0)
    f = _libc.prctl
    f.restype = ctypes.c_int
    r = int(f(option, ctypes.c_ulong(a2), ctypes.c_ulong(a3), ctypes.c_ulong(a4), ctypes.c_ulong(a5)))
    return -ctypes.get_errno() if r < 0 else r

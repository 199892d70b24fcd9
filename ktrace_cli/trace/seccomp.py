"""The command-mode seccomp-bpf filter: stop only on syscalls that can produce a record.

Opt-in (pyktrace --seccomp=on). Installed by pyktrace in itself, after the
engine has attached and before the exec, so the filter covers the command
and everything it starts.  A
SECCOMP_RET_TRACE filter outlives its tracer: a syscall it selects fails with
ENOSYS when no tracer is attached.  The engine therefore never detaches a
filtered process (it mutes it and lets it run instead), keeps filtered
children that were not asked for (-i) attached in a pass-through mode, and on
SIGTERM keeps serving them until they exit; only a SIGKILLed or crashed
engine leaves the selected syscalls failing, which is why it is not the
default.  See pyktrace(1), CAVEATS.
"""

from __future__ import annotations

import ctypes
import struct

from ktrace_cli.trace import ptrace as P

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_TRACE = 0x7FF00000
PR_SET_NO_NEW_PRIVS = 38
NR_SECCOMP = 317
X32_SYSCALL_BIT = 0x40000000

BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_RET_K = 0x06
_INSN = struct.Struct("<HBBI")
_OFF_NR = 0
_OFF_ARCH = 4


def build_filter(nrs: list[int]) -> bytes:
    """A classic BPF program: RET_TRACE for `nrs` (and any non-x86_64 call), ALLOW otherwise."""
    insns = [
        (BPF_LD_W_ABS, 0, 0, _OFF_ARCH),
        (BPF_JEQ_K, 1, 0, P.AUDIT_ARCH_X86_64),
        (BPF_RET_K, 0, 0, SECCOMP_RET_TRACE),
        (BPF_LD_W_ABS, 0, 0, _OFF_NR),
        (BPF_JGE_K, 0, 1, X32_SYSCALL_BIT),
        (BPF_RET_K, 0, 0, SECCOMP_RET_TRACE),
    ]
    for nr in sorted(set(nrs)):
        insns.append((BPF_JEQ_K, 0, 1, nr))
        insns.append((BPF_RET_K, 0, 0, SECCOMP_RET_TRACE))
    insns.append((BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    return b"".join(_INSN.pack(*i) for i in insns)


def install(nrs: list[int], no_new_privs: bool) -> int:
    """Install the filter in the calling process; 0 or -errno."""
    if no_new_privs:
        r = P.prctl(PR_SET_NO_NEW_PRIVS, 1)
        if r < 0:
            return r
    prog = build_filter(nrs)
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = struct.pack("<H6xQ", len(prog) // 8, ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    return P.syscall(NR_SECCOMP, SECCOMP_SET_MODE_FILTER, 0, fbuf)

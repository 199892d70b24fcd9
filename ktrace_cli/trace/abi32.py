"""Stops of `int $0x80` calls: recorded under FreeBSD's linux32 ABI, with i386 numbers.

A 32-bit program, or 64-bit code issuing `int $0x80`, enters the kernel
with i386 syscall numbers and 32-bit registers; PTRACE_GET_SYSCALL_INFO
reports such a stop with arch AUDIT_ARCH_I386. FreeBSD runs such a
process under its linux32 ABI, so pyktrace writes a PROCCTOR with
linux32's sv_flags before the first record of an i386 call, and one with
the x86_64 flags again before the next x86_64 call (kdump keeps one ABI
per pid: the last PROCCTOR's). Arguments are the 32-bit registers (ebx,
ecx, edx, esi, edi, ebp) widened to register_t slots, as FreeBSD's
linux32 records them.

The engine sends a stop here only when its arch differs from Proc.arch:
AUDIT_ARCH_X86_64 for a process that has made only x86_64 calls (so the
64-bit path costs one comparison), ARCH_MIXED once an i386 call was seen.
"""

from __future__ import annotations

import time

from ktrace_cli.abi.linux_i386 import JUSTRETURN_SYSCALLS
from ktrace_cli.format import constants as K
from ktrace_cli.format.writer import SV_FLAGS_LINUX32, SV_FLAGS_LINUX64, procctor
from ktrace_cli.trace import capture, lifecycle, restarts
from ktrace_cli.trace import ptrace as P
from ktrace_cli.trace import rules as R
from ktrace_cli.trace.table import TraceeTable
from ktrace_cli.trace.tracee import Proc, Thread

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the engine's start-up)
if TYPE_CHECKING:
    from typing import Protocol

    class Engine(Protocol):
        """What these stops use of trace/engine.py's Engine (named here, so neither imports the other)."""

        table: TraceeTable
        is_root: bool

        def record_exit(
            self, t: Thread, p: Proc, nr: int, rules: R.Rules, justreturn: frozenset[int], rval: int, is_error: int
        ) -> None: ...


ARCH_MIXED = 0  # matches no arch: every stop of the process comes here
# The kernel reads an i386 call's arguments from the low halves of the
# registers; ptrace reports them whole, and 64-bit code issuing int $0x80
# may have left their upper halves set.
REG32 = 0xFFFFFFFF


def switch(t: Thread, p: Proc, sv_flags: int) -> None:
    """Write a PROCCTOR if the records that follow belong to the other ABI."""
    if p.sv_flags != sv_flags:
        p.sv_flags = sv_flags
        if p.file is not None:
            procctor(p.file, p.tgid, t.tid, t.comm, sv_flags)


def stop(eng: Engine, t: Thread, p: Proc, op: int, arch: int, nr: int, args: tuple[int, ...]) -> bool:
    """A syscall stop whose arch is not the process's; True if handled here, False for the x86_64 path."""
    if arch == P.AUDIT_ARCH_I386:
        p.arch = ARCH_MIXED
        if op == P.PTRACE_SYSCALL_INFO_EXIT:
            if not t.insys:  # a call entered before we attached: its number is still in orig_eax
                orig = P.peek_user(t.tid, P.ORIG_RAX_OFFSET)
                t.nr = orig if orig is not None and orig < R.MAX_SYSCALL else -1
                t.args = ()
                t.entry32 = True
            if not t.entry32:  # an x86_64 execve that loaded an i386 image: its RET is x86_64's
                switch(t, p, SV_FLAGS_LINUX64)
                return False
            switch(t, p, SV_FLAGS_LINUX32)
            _exit(eng, t, p, nr, args[0] & 0xFF)
            return True
        switch(t, p, SV_FLAGS_LINUX32)
        _entry(eng, t, p, op, nr, args)
        return True
    if arch != P.AUDIT_ARCH_X86_64:
        return False
    if op == P.PTRACE_SYSCALL_INFO_EXIT:
        if t.entry32:  # an i386 execve that loaded an x86_64 image: its RET is i386's
            switch(t, p, SV_FLAGS_LINUX32)
            _exit(eng, t, p, nr, args[0] & 0xFF)
            return True
        switch(t, p, SV_FLAGS_LINUX64)
        return False
    switch(t, p, SV_FLAGS_LINUX64)
    t.entry32 = False
    if not any(th.entry32 for th in p.threads.values()):
        p.arch = P.AUDIT_ARCH_X86_64  # no i386 call under way: back to the fast path
    return False


def _entry(eng: Engine, t: Thread, p: Proc, op: int, nr: int, args: tuple[int, ...]) -> None:
    tid = t.tid
    if op == P.PTRACE_SYSCALL_INFO_SECCOMP and t.insys:
        P.libc_ptrace(P.PTRACE_SYSCALL, tid, 0, 0)  # the program's own RET_TRACE filter: same call
        return
    if t.restart_ret is not None and restarts.reentered(t, nr, restarts.NR32_RESTART_SYSCALL):
        t.entry32 = True
        P.libc_ptrace(P.PTRACE_SYSCALL, tid, 0, 0)  # still the call an ignored signal interrupted
        return
    a0, a1, a2, a3, a4, a5 = args
    args = (a0 & REG32, a1 & REG32, a2 & REG32, a3 & REG32, a4 & REG32, a5 & REG32)
    rules = R.rules_i386()
    t.insys = True
    t.entry32 = True
    t.nr = nr
    ns = time.time_ns()
    t.args = args
    t.entry_ns = ns
    tf = p.file
    if tf is not None and p.facs & K.KTRFAC_SYSCALL:
        tf.syscall(p.tgid, tid, t.comm, ns, nr, rules.narg[nr] if nr < R.MAX_SYSCALL else 6, args)
        eng.table.dirty = True
    rule = rules.by_nr[nr] if nr < R.MAX_SYSCALL else None
    if rule is not None:
        if rule.special:
            if lifecycle.entry_special(eng.table, t, p, rule, args, eng.is_root):
                return  # the thread was detached
        if tf is not None and (rule.paths or rule.stru or rule.special or p.facs & K.KTRFAC_CSW):
            capture.entry_records(t, rule, args, ns)
            eng.table.dirty = True
    P.libc_ptrace(P.PTRACE_SYSCALL, tid, 0, 0)


def _exit(eng: Engine, t: Thread, p: Proc, raw: int, is_error: int) -> None:
    """The RET of an i386 call, as Engine._exit writes an x86_64 one; `raw` is rval as unsigned."""
    rval = raw - (1 << 64) if raw >> 63 else raw
    nr = t.nr
    t.entry32 = False
    t.insys = False
    try:
        if nr < 0:
            return
        eng.record_exit(t, p, nr, R.rules_i386(), JUSTRETURN_SYSCALLS, rval, is_error)
    finally:
        P.libc_ptrace(p.mode_op, t.tid, 0, 0)

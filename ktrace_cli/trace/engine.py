"""The ptrace engine: one loop that owns every traced thread and writes their records."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ktrace_cli.format import constants as K
from ktrace_cli.trace import capture, events
from ktrace_cli.trace import ptrace as P
from ktrace_cli.trace import rules as R
from ktrace_cli.trace import signals as S
from ktrace_cli.trace.emit import (
    ARGS,
    H1,
    SYSCALL_FIXED,
    SYSCALL_LEN,
    SYSRET,
    T_SYSCALL,
    T_SYSRET,
    TraceFile,
    procdtor,
)  # fmt: skip
from ktrace_cli.trace.tracee import (
    HANDLER_UNKNOWN,
    SA_RESETHAND,
    Proc,
    Thread,
    read_comm,
)  # fmt: skip

log = logging.getLogger("pyktrace.engine")

# Linux's kernel-internal "restart me" codes, seen by a tracer at syscall exit.
RESTART_ERRNOS = frozenset({512, 513, 514, 516})

FLUSH_DELAY = 0.01  # seconds a record may wait in the buffer while the engine sleeps
SPIN_NS = 60_000  # how long to poll for a syscall-dense tracee's next stop


@dataclass
class Request:
    """One ktrace(2)-like request from a client, handed to the engine thread."""

    ops: int
    facs: int
    pid: int
    fd: int | None
    peer_pid: int
    command: bool = False
    seccomp: str = "off"  # "on": install the command-mode filter
    genio_size: int = K.GENIO_SIZE_DEFAULT
    version: int = K.KTR_VERSION1
    fsize_limit: int = -1  # the client's RLIMIT_FSIZE (RLIM_INFINITY = -1), as FreeBSD captures it
    # [dirfd in the client, temporary name, final name]: the new trace file to
    # rename once the request is accepted (ops.rename_accepted).
    rename: object = None
    reply: Callable[[dict[str, object]], None] = field(default=lambda r: None)


class Engine:
    """Owns all tracees; run() returns when nothing is traced and no request is pending."""

    def __init__(self, idle_grace: float = 1.0) -> None:
        self.rules = R.rules()
        from ktrace_cli.abi import linux as abi

        self.errmap = [abi.freebsd_errno_from_linux(e) for e in range(4096)]
        self.threads: dict[int, Thread] = {}
        self.procs: dict[int, Proc] = {}
        self.files: dict[tuple[int, int], TraceFile] = {}
        self.pending: dict[int, int] = {}  # tid -> first stop status of a task not yet known
        self.awaiting: dict[int, tuple[Proc | None, Thread]] = {}  # new task -> (proc, creator)
        self.requests: deque[Request] = deque()
        # Replies to clears, sent once their processes are fully detached.
        self.held_replies: list[tuple[list[Proc], object, dict[str, object]]] = []
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.closing = False
        self.shutdown = False
        self.idle_grace = idle_grace
        self.bufs = P.PtraceBuffers()
        self.is_root = os.geteuid() == 0
        self.dirty = False
        self.attention = False
        self.write_failure = False
        self.shutdown_started = False
        self.timer_armed = False
        self.in_flush = False
        self.spin = len(os.sched_getaffinity(0)) > 1 and os.environ.get("PYKTRACE_SPIN") != "0"
        self.spin_misses = 0
        self.spin_skip = 0
        # Stops collected but not yet handled: see _wait.
        self.ready: deque[tuple[int, int]] = deque()
        self.waker: Any = None  # daemon.Waker: wakes the loop out of waitpid() without forking
        self.detach_started: dict[int, float] = {}  # tgid -> when its detach began (ops)
        self.detach_deadline = 0.0  # when a waiting request or clear is overdue; 0: none

    # ----- requests (called from the control thread) -----

    def submit(self, req: Request) -> bool:
        """Queue a request and wake the engine; False if the engine is closing."""
        with self.lock:
            if self.closing:
                return False
            self.requests.append(req)
            self.attention = True
            self.wake.notify()
        self.ring()
        return True

    def ring(self) -> None:
        """Wake the engine thread out of waitpid() (daemon.Waker: no fork, no zombie)."""
        self.attention = True
        if self.waker is not None:
            self.waker.ring()

    # ----- the loop -----

    def run(self) -> None:
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        while True:
            if self.attention:
                self._attend()
            if not self.threads and not self.awaiting:
                if self.shutdown or not self._idle():
                    break
                continue
            try:
                pid, status = self._wait()
            except ChildProcessError:
                self._forget_all()
                continue
            t = self.threads.get(pid)
            try:
                if t is None:
                    self._stray(pid, status)
                elif status == P.STATUS_SYSCALL_STOP or status == P.STATUS_SECCOMP_STOP:
                    self._syscall_stop(t)
                else:
                    self._other_stop(t, status)
            except Exception:
                # A bug must not leave a tracee stopped or take the others down.
                log.exception("tid %d, status %#x: event failed; thread resumed", pid, status)
                if t is not None and os.WIFSTOPPED(status):
                    P._ptrace(t.resume_op(), pid, 0, 0)
        self._flush_all()
        for _procs, reply_fn, reply in self.held_replies:
            from ktrace_cli.trace import ops

            ops.send(reply_fn, reply)

    def _attend(self) -> None:
        """Work the signal handlers and the control thread left for the engine thread."""
        self.attention = False
        if self.shutdown and not self.shutdown_started:
            self.shutdown_started = True
            self._begin_shutdown()
        if self.write_failure:
            self.write_failure = False
            for tf in list(self.files.values()):
                if tf.failed:
                    self._write_failed(tf, tf.failed)
        if self.requests or self.held_replies:
            self._serve()

    def _idle(self) -> bool:
        """Wait for a request while nothing is traced; False to exit."""
        self._flush_all()
        with self.lock:
            if not self.requests:
                self.wake.wait(self.idle_grace)
            if self.requests:
                return True
            self.closing = True
            return False

    def _wait(self) -> tuple[int, int]:
        """The next stop to handle, in rounds: every tracee stopped now is served once before any again.

        waitpid(-1) scans the tracer's list of tracees from the head, so a
        busy tracee near it, stopping again at once, would be reported
        again and again while one further down waits (a traced process
        starved for seconds). Each round collects every pending stop first.
        """
        if self.ready:
            return self.ready.popleft()
        pid, status = self._wait_one()
        if len(self.threads) > 1:
            ready, waitpid = self.ready, os.waitpid
            while True:
                try:
                    more = waitpid(-1, P.WAIT_ALL_NOHANG)
                except ChildProcessError:
                    break
                if not more[0]:
                    break
                ready.append(more)
        return pid, status

    def _wait_one(self) -> tuple[int, int]:
        waitpid = os.waitpid
        if self.dirty and not self.timer_armed:
            self.timer_armed = True
            signal.setitimer(signal.ITIMER_REAL, FLUSH_DELAY)
        if self.spin and not self.spin_skip:
            # Spin-then-block: a syscall-dense tracee stops again within a few
            # µs, and sleeping would cost a cross-CPU wake-up (docs/DESIGN.md, Speed).
            deadline = time.monotonic_ns() + SPIN_NS
            while True:
                pid, status = waitpid(-1, P.WAIT_ALL_NOHANG)
                if pid:
                    self.spin_misses = 0
                    return pid, status
                if time.monotonic_ns() > deadline:
                    break
            self.spin_misses += 1
            if self.spin_misses >= 4:
                self.spin_skip = 256  # CPU-bound tracee: stop stealing its CPU for a while
                self.spin_misses = 0
        elif self.spin_skip:
            self.spin_skip -= 1
        return waitpid(-1, P.WAIT_ALL)

    def _on_alarm(self, signum: int, frame: object) -> None:
        self.timer_armed = False
        if not self.in_flush:
            self._flush_all(from_signal=True)

    def _on_term(self, signum: int, frame: object) -> None:
        if not self.shutdown:
            self.shutdown = True
            self.closing = True
            self.ring()

    def _flush_all(self, from_signal: bool = False) -> None:
        self.in_flush = True
        try:
            for tf in list(self.files.values()):
                if tf.buf and tf.flush():
                    self.write_failure = self.attention = True
            self.dirty = False
            if self.write_failure and not from_signal:
                self._attend()
        finally:
            self.in_flush = False

    # ----- syscall stops: the hot path -----

    def _syscall_stop(self, t: Thread) -> None:
        tid = t.tid
        info = self.bufs.info
        if P._ptrace(P.PTRACE_GET_SYSCALL_INFO, tid, P.SYSCALL_INFO_SIZE, info) <= 0:
            P._ptrace(t.resume_op(), tid, 0, 0)
            return
        op, nr, a0, a1, a2, a3, a4, a5 = _INFO.unpack_from(info)
        if op == P.PTRACE_SYSCALL_INFO_NONE:
            # A SIGKILL took the thread out of the stop we collected; it is in
            # another (its exit event), reported on its own. The rest of the
            # buffer is another call's: recording it would forge a CALL.
            return
        p = t.proc
        if p.passthrough or p.detaching:
            self._quiet_stop(t, p)
            return
        if op == P.PTRACE_SYSCALL_INFO_EXIT:
            rval = nr - (1 << 64) if nr >> 63 else nr
            self._exit(t, p, rval, a0 & 0xFF)
            t.insys = False
            P._ptrace(p.mode_op, tid, 0, 0)
            return
        if op == P.PTRACE_SYSCALL_INFO_SECCOMP and t.insys:
            # A program's own RET_TRACE filter after our entry stop: same call.
            P._ptrace(P.PTRACE_SYSCALL, tid, 0, 0)
            return
        t.insys = True
        t.nr = nr
        ns = time.time_ns()
        args = (a0, a1, a2, a3, a4, a5)
        t.args = args
        t.entry_ns = ns
        tf = p.file
        if tf is not None and p.facs & K.KTRFAC_SYSCALL:
            narg = self.rules.narg[nr] if nr < R.MAX_SYSCALL else 6
            if tf.version:
                sec, nsec = divmod(ns, 1_000_000_000)
                tf.buf += H1(SYSCALL_LEN[narg], T_SYSCALL, 1, p.tgid, t.comm, sec, nsec,
                             tid, -1) + SYSCALL_FIXED(nr, narg) + ARGS[narg](*args[:narg])  # fmt: skip
            else:
                tf.record(K.KTR_SYSCALL, p.tgid, tid, t.comm, ns,
                          SYSCALL_FIXED(nr, narg) + ARGS[narg](*args[:narg]))  # fmt: skip
            self.dirty = True
        rule = self.rules.by_nr[nr] if nr < R.MAX_SYSCALL else None
        if rule is not None:
            if rule.special:
                if self._entry_special(t, p, rule, args):
                    return  # the thread was detached
            if tf is not None and (rule.paths or rule.stru or rule.special
                                   or p.facs & K.KTRFAC_CSW):  # fmt: skip
                capture.entry_records(t, rule, args, ns)
                self.dirty = True
        P._ptrace(P.PTRACE_SYSCALL, tid, 0, 0)

    def _quiet_stop(self, t: Thread, p: Proc) -> None:
        """A syscall stop of a process we no longer record: detach or let it run."""
        t.insys = False
        if p.detaching:
            P._ptrace(P.PTRACE_DETACH, t.tid, 0, 0)
            self._drop_thread(t)
        else:
            P._ptrace(P.PTRACE_CONT, t.tid, 0, 0)

    def _exit(self, t: Thread, p: Proc, rval: int, is_error: int) -> None:
        nr = t.nr
        if not t.insys:
            # Exit of a call that began before we attached.
            orig = P.peek_user(t.tid, P.ORIG_RAX_OFFSET)
            nr = orig if orig is not None and orig < R.MAX_SYSCALL else -1
            t.args = ()
        if nr < 0:
            return
        ns = time.time_ns()
        rule = self.rules.by_nr[nr] if nr < R.MAX_SYSCALL else None
        error = 0
        if is_error:
            e = -rval
            error = K.ERESTART if e in RESTART_ERRNOS else (self.errmap[e] if 0 < e < 4096 else e)
            rval = 0
        if rule is not None:
            if rule.special and not is_error:
                self._exit_special(t, p, rule)
                if rule.special == R.SPECIAL_EXEC:
                    error = K.EJUSTRETURN
                    rval = 0
            if (rule.gio or rule.stru or p.facs & K.KTRFAC_CSW) and p.file is not None and len(
                t.args
            ) == 6:
                capture.exit_records(t, rule, t.args, rval, bool(is_error), ns)
        tf = p.file
        if tf is not None and p.facs & K.KTRFAC_SYSRET:
            if tf.version:
                sec, nsec = divmod(ns, 1_000_000_000)
                tf.buf += H1(16, T_SYSRET, 1, p.tgid, t.comm, sec, nsec, t.tid, -1) + SYSRET(
                    nr, 0, error, rval
                )
            else:
                tf.record(K.KTR_SYSRET, p.tgid, t.tid, t.comm, ns, SYSRET(nr, 0, error, rval))
            self.dirty = True

    def _entry_special(self, t: Thread, p: Proc, rule: R.SyscallRule, args: tuple[int, ...]) -> bool:
        kind = rule.special
        if kind == R.SPECIAL_SIGACTION:
            t.sigaction = None
            if args[1]:
                raw = p.mem.read(args[1], 16)
                if len(raw) == 16:
                    handler = int.from_bytes(raw[:8], "little")
                    flags = int.from_bytes(raw[8:], "little")
                    t.sigaction = (args[0], handler, flags)
        elif kind == R.SPECIAL_EXEC and not self.is_root and not p.filtered:
            return self._setid_exec_check(t, p, rule, args)
        return False

    def _exit_special(self, t: Thread, p: Proc, rule: R.SyscallRule) -> None:
        kind = rule.special
        args = t.args
        if kind == R.SPECIAL_SIGACTION and t.sigaction is not None:
            sig, handler, flags = t.sigaction
            p.handlers[sig] = handler
            if flags & SA_RESETHAND:
                p.resethand.add(sig)
            else:
                p.resethand.discard(sig)
        elif kind == R.SPECIAL_PRCTL and args:
            if args[0] == capture.PR_SET_NAME:
                t.comm = read_comm(p.tgid, t.tid)
            elif args[0] == capture.PR_SET_SECCOMP and args[1] == capture.SECCOMP_MODE_FILTER:
                self._filter_live(p)
        elif kind == R.SPECIAL_SECCOMP and args and args[0] == capture.SECCOMP_SET_MODE_FILTER:
            self._filter_live(p)

    def _filter_live(self, p: Proc) -> None:
        p.filtered = True
        if p.want_seccomp:
            p.want_seccomp = False
            p.mode_op = P.PTRACE_CONT
            log.info("pid %d: seccomp filter live, stopping only on selected syscalls", p.tgid)

    def _setid_exec_check(self, t: Thread, p: Proc, rule: R.SyscallRule, args: tuple[int, ...]) -> bool:
        """Detach before an exec that would gain privileges, so the program keeps them."""
        target = events.exec_target(t.tid, rule.name, args, p.mem)
        if target is None:
            return False
        where, follow, name = target
        why = events.exec_privileges(where, follow)
        if why is None:
            return False
        shown = name.decode(errors="backslashreplace")
        log.info("pid %d: %s exec of %s: tracing stopped so it keeps its privileges", p.tgid, why, shown)
        self._detach_proc(p, current=t)
        return True

    # ----- every other stop -----

    def _other_stop(self, t: Thread, status: int) -> None:
        tid = t.tid
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self._gone(t, status)
            return
        if not os.WIFSTOPPED(status):
            return
        sig = (status >> 8) & 0xFF
        event = status >> 16
        p = t.proc
        if event and t.nvcsw >= 0:
            t.nvcsw += 1  # this ptrace stop is a switch too; it is not the call sleeping
        if event == 0:
            self._signal_stop(t, p, sig)
        elif event == P.PTRACE_EVENT_STOP:
            t.descend_pending = False  # the attach stop: later forks are only inherited
            if p.detaching and sig not in S.STOP_SIGNALS:
                P._ptrace(P.PTRACE_DETACH, tid, 0, 0)
                self._drop_thread(t)
            elif not t.started:
                t.started = True
                P._ptrace(p.mode_op, tid, 0, 0)
            elif sig in S.STOP_SIGNALS:
                if p.detaching:
                    P._ptrace(P.PTRACE_DETACH, tid, 0, 0)  # stays in its group-stop
                    self._drop_thread(t)
                else:
                    P._ptrace(P.PTRACE_LISTEN, tid, 0, 0)
            else:
                P._ptrace(t.resume_op(), tid, 0, 0)
        elif event in (P.PTRACE_EVENT_FORK, P.PTRACE_EVENT_VFORK, P.PTRACE_EVENT_CLONE):
            events.new_task(self, t, p, event)
            P._ptrace(t.resume_op(), tid, 0, 0)
        elif event == P.PTRACE_EVENT_EXEC:
            events.exec_(self, t, p)
        elif event == P.PTRACE_EVENT_EXIT:
            events.exiting(self, t, p)
            P._ptrace(P.PTRACE_CONT, t.tid, 0, 0)
        else:
            P._ptrace(t.resume_op(), tid, 0, 0)

    def _signal_stop(self, t: Thread, p: Proc, sig: int) -> None:
        tid = t.tid
        if t.stepping:
            stepped, self_ns, payload = t.stepping, t.entry_ns, self._step_payload
            t.stepping = 0
            if sig == signal.SIGTRAP:
                rip = P.peek_user(tid, P.RIP_OFFSET) or 0
                p.handlers[stepped] = rip
                self._psig_record(t, p, self_ns, payload, rip)
                P._ptrace(t.resume_op(), tid, 0, 0)
                return
            self._psig_record(t, p, self_ns, payload, 0)
        if p.detaching:
            P._ptrace(P.PTRACE_DETACH, tid, 0, sig)
            self._drop_thread(t)
            return
        if p.file is not None and p.facs & K.KTRFAC_PSIG:
            handler = p.handlers.get(sig, 0)
            if S.wants_psig(handler, sig):
                ns = time.time_ns()
                if handler == HANDLER_UNKNOWN:
                    # Caught by a handler installed before we attached: one
                    # single-step lands on its first instruction, giving its address.
                    t.stepping = sig
                    t.entry_ns = ns
                    self._step_payload = S.psig_payload(t, sig, 0, self.bufs)
                    P._ptrace(P.PTRACE_SINGLESTEP, tid, 0, sig)
                    return
                S.write_psig(t, sig, handler, ns, self.bufs)
                self.dirty = True
        if sig in p.resethand and p.handlers.get(sig, 0) > 1:
            p.handlers[sig] = 0
            p.resethand.discard(sig)
        P._ptrace(t.resume_op(), tid, 0, sig)

    _step_payload = b""

    def _psig_record(self, t: Thread, p: Proc, ns: int, payload: bytes, action: int) -> None:
        if p.file is None:
            return
        # Patch the action field (offset 8) of the payload computed at delivery.
        data = payload[:8] + action.to_bytes(8, "little") + payload[16:]
        p.file.record(K.KTR_PSIG, p.tgid, t.tid, t.comm, ns, data)
        self.dirty = True

    def _stray(self, pid: int, status: int) -> None:
        if self.waker is not None and self.waker.stopped(pid, status):
            return
        if pid in self.awaiting:
            if os.WIFSTOPPED(status):
                events.first_stop(self, pid, status)
            else:
                self.awaiting.pop(pid, None)
            return
        if os.WIFSTOPPED(status):
            # A new task reported before its creator's fork event: hold it.
            self.pending[pid] = status

    def _dtor(self, p: Proc, t: Thread) -> None:
        if p.dtor_done or p.passthrough or p.file is None:
            return
        p.dtor_done = True
        procdtor(p.file, p.tgid, t.tid, t.comm)
        self.dirty = True

    def _gone(self, t: Thread, status: int) -> None:
        p = t.proc
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            self._killed(t, p)
        if len(p.threads) <= 1 and p.threads.get(t.tid) is t:
            self._dtor(p, t)
            self._flush_all()
        self._drop_thread(t)

    def _killed(self, t: Thread, p: Proc) -> None:
        """SIGKILL has no delivery stop; FreeBSD logs it as a default-action PSIG."""
        if p.kill_reported or p.dtor_done or p.file is None or not p.facs & K.KTRFAC_PSIG:
            return
        p.kill_reported = True
        data = S.PSIG_PACK(9, 0, 0, 0, 0, 0, 0)  # SIGKILL is 9 in both numberings
        p.file.record(K.KTR_PSIG, p.tgid, t.tid, t.comm, time.time_ns(), data)
        self.dirty = True

    def _drop_thread(self, t: Thread) -> None:
        t.close()
        p = t.proc
        if self.threads.get(t.tid) is t:
            del self.threads[t.tid]
        if p.threads.get(t.tid) is t:
            del p.threads[t.tid]
        if not p.threads:
            self._release(p)

    def _release(self, p: Proc) -> None:
        if self.procs.get(p.tgid) is p:
            del self.procs[p.tgid]
        p.mem.close()
        old = p.set_file(None)
        if old is not None:
            old.flush()
            if self.files.get(old.ident) is old:
                del self.files[old.ident]
            old.close()
        if self.held_replies or self.requests:
            from ktrace_cli.trace import ops

            ops.released(self)

    def _forget_all(self) -> None:
        for t in list(self.threads.values()):
            self._drop_thread(t)
        self.awaiting.clear()
        self.pending.clear()
        self.ready.clear()

    # ----- attach, detach, write failures -----

    def _serve(self) -> None:
        from ktrace_cli.trace import ops

        ops.serve(self)

    def _detach_proc(self, p: Proc, current: Thread | None = None) -> None:
        from ktrace_cli.trace import ops

        ops.detach(self, p, current)

    def _begin_shutdown(self) -> None:
        log.info("shutting down: detaching every tracee")
        for p in list(self.procs.values()):
            self._detach_proc(p)
        self._flush_all()

    def _write_failed(self, tf: TraceFile, err: int) -> None:
        for p in list(self.procs.values()):
            if p.file is tf and not p.detaching:
                # FreeBSD stops the process whose record failed; here every
                # process sharing the buffer lost records in the same write.
                log.error("ktrace write failed, errno %d, tracing stopped for pid %d", err, p.tgid)
                self._detach_proc(p)


_INFO = __import__("struct").Struct("<B23x7Q")

"""The ptrace engine: one loop that waits for the traced threads' stops, and the request hand-off.

The table of traced processes is trace/table.py's; fork/exec/exit stops
are trace/lifecycle.py's; ktrace(2)'s operations are trace/ktrops.py's.
This module holds the Python wait loop (the loop with fastloop.c is
trace/cloop.py's, calling back the handlers here), the syscall and signal
stops (the hot path), and the queue of requests from the control thread
with the replies held until their processes are detached.
"""

from __future__ import annotations

import _signal as signal  # signal.py's enum conversions cost the engine's start-up
import errno as E
import os
import threading
import time
from collections import deque
from collections.abc import Callable

from ktrace_cli.abi.linuxulator import JUSTRETURN_SYSCALLS
from ktrace_cli.format import constants as K
from ktrace_cli.format.writer import TraceFile
from ktrace_cli.trace import capture, cloop, convert, fastloop, ktrops, lifecycle, restarts
from ktrace_cli.trace import ptrace as P
from ktrace_cli.trace import rules as R
from ktrace_cli.trace import signals as S
from ktrace_cli.trace.englog import log
from ktrace_cli.trace.ktrops import DETACH_TIMEOUT, SHUTDOWN, STATUS, Reply, Request
from ktrace_cli.trace.memory import RESOURCE_ERRNOS
from ktrace_cli.trace.ptrace_backend import PtraceBackend
from ktrace_cli.trace.table import TraceeTable
from ktrace_cli.trace.tracee import HANDLER_UNKNOWN, Proc, Thread

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the engine's start-up)
if TYPE_CHECKING:
    from typing import Any


FLUSH_DELAY = 0.01  # seconds a record may wait in the buffer while the engine sleeps
SPIN_NS = 60_000  # how long to poll for a syscall-dense tracee's next stop
# After a round that found no other stop pending, this many waits skip the
# collecting of one (see _wait): a busy tracee still waits at most this many
# stops of another, and one busy tracee among idle ones pays no extra waitpid.
ROUND_SKIP = 7

# The hot path's names, bound once (a module attribute costs a lookup per use).
_ptrace = P.libc_ptrace
_waitpid = os.waitpid
_time_ns = time.time_ns
_unpack_info = P.SYSCALL_INFO.unpack_from
GET_SYSCALL_INFO = P.PTRACE_GET_SYSCALL_INFO
INFO_SIZE = P.SYSCALL_INFO_SIZE
INFO_NONE = P.PTRACE_SYSCALL_INFO_NONE
INFO_ENTRY = P.PTRACE_SYSCALL_INFO_ENTRY
INFO_EXIT = P.PTRACE_SYSCALL_INFO_EXIT
PTRACE_SYSCALL = P.PTRACE_SYSCALL
SYSCALL_STOP = P.STATUS_SYSCALL_STOP
SECCOMP_STOP = P.STATUS_SECCOMP_STOP
WAIT_ALL = P.WAIT_ALL
WAIT_ALL_NOHANG = P.WAIT_ALL_NOHANG
MAX_SYSCALL = R.MAX_SYSCALL
FAC_SYSCALL = K.KTRFAC_SYSCALL
FAC_SYSRET = K.KTRFAC_SYSRET
ERESTART = K.ERESTART
ERRNO_LIMIT = convert.ERRNO_LIMIT


class Engine:
    """Owns all tracees; run() returns when nothing is traced and no request is pending."""

    def __init__(self, idle_grace: float = 1.0, c_loop: bool = True) -> None:
        self.rules = R.rules()
        self.narg = self.rules.narg
        self.plain: dict[int, tuple[bytes, bytes]] = {}  # facs -> Rules.plain_stops(facs)
        self.errmap = convert.errno_map()
        self.table = TraceeTable(PtraceBackend())
        self.table.on_release = self._released
        self.table.on_write_failure = self._write_failure
        # The table's dicts, bound once: the loop reads them at every stop.
        self.threads = self.table.threads
        self.procs = self.table.procs
        self.requests: deque[Request] = deque()
        # Replies to clears, sent once their processes are fully detached.
        self.held_replies: list[tuple[list[Proc], Callable[[Reply], None], Reply]] = []
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.closing = False
        self.shutdown = False
        self.idle_grace = idle_grace
        self.bufs = P.PtraceBuffers()
        self.is_root = os.geteuid() == 0
        self.attention = False
        self.write_failure = False
        self.shutdown_started = False
        self.timer_armed = False
        self.spin = len(os.sched_getaffinity(0)) > 1 and os.environ.get("PYKTRACE_SPIN") != "0"
        self.spin_misses = 0
        self.spin_skip = 0
        self.round_skip = 0
        # Stops collected but not yet handled: see _wait.
        self.ready: deque[tuple[int, int]] = deque()
        self.waker: Any = None  # ptrace_daemon.Waker: wakes the loop out of waitpid() without forking
        self.detach_deadline = 0.0  # when a waiting request or clear is overdue; 0: none
        self.flush_deadline = 0  # CLOCK_MONOTONIC ns when the armed flush timer fires
        # The plain stops in C (trace/fastloop.py), unless not built or turned off.
        self.fast = fastloop.load(self.narg, self.errmap, self._plain, self.is_root) if c_loop else None
        self.born: list[Thread] = []  # new tasks for the C loop to know, once their creator's event is done
        if self.fast is not None:
            self.table.before_flush = self.fast.drain
            self.table.on_drop = self.fast.drop
            self.table.on_close = self.fast.forget_file
            self.table.on_new = self.born.append

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
        """Wake the engine thread out of waitpid() (ptrace_daemon.Waker: no fork, no zombie)."""
        self.attention = True
        if self.fast is not None:
            self.fast.attend()
        if self.waker is not None:
            self.waker.ring()

    # ----- the loop -----

    def run(self) -> None:
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        if self.fast is not None:
            cloop.run(self, self.fast)
        else:
            self._run_py()
        self.table.flush_all()
        for _procs, reply_fn, reply in self.held_replies:
            send(reply_fn, reply)

    def _run_py(self) -> None:
        """The loop in Python: each stop is waited for and handled here."""
        # Bound once: the loop runs once per stop.
        threads, awaiting, ready = self.threads, self.table.awaiting, self.ready
        wait, syscall_stop = self._wait, self.syscall_stop
        while True:
            if self.attention:
                self.attend()
            if not threads and not awaiting:
                if self.shutdown or not self.idle():
                    break
                continue
            try:
                pid, status = ready.popleft() if ready else wait()
            except ChildProcessError:
                self.table.forget_all()
                ready.clear()
                continue
            t = threads.get(pid)
            try:
                if t is None:
                    self.stray(pid, status)
                elif status == SYSCALL_STOP or status == SECCOMP_STOP:
                    syscall_stop(t)
                else:
                    self.other_stop(t, status)
            except Exception:
                # A bug must not leave a tracee stopped or take the others down.
                log.exception("tid %d, status %#x: event failed; thread resumed", pid, status)
                if t is not None and os.WIFSTOPPED(status):
                    P.libc_ptrace(t.resume_op(), pid, 0, 0)

    def arm_flush(self) -> None:
        self.timer_armed = True
        self.flush_deadline = time.monotonic_ns() + int(FLUSH_DELAY * 1e9)
        signal.setitimer(signal.ITIMER_REAL, FLUSH_DELAY)

    def attend(self) -> None:
        """Work the signal handlers and the control thread left for the engine thread."""
        self.attention = False
        if self.shutdown and not self.shutdown_started:
            self.shutdown_started = True
            self._begin_shutdown()
        if self.write_failure:
            self.write_failure = False
            for tf in list(self.table.files.values()):
                if tf.failed:
                    self._write_failed(tf, tf.failed)
        if self.requests or self.held_replies:
            self._serve()
        if self.fast is not None:
            self.fast.push_all(self.threads)  # a request may have changed any process

    def idle(self) -> bool:
        """Wait for a request while nothing is traced; False to exit."""
        self.table.flush_all()
        with self.lock:
            if not self.requests:
                self.wake.wait(self.idle_grace)
            if self.requests:
                return True
            self.closing = True
            return False

    def _wait(self) -> tuple[int, int]:
        """The next stop to handle when none is queued (self.ready), in rounds.

        waitpid(-1) scans the tracer's list of tracees from the head, so a
        busy tracee near it, stopping again at once, would be reported
        again and again while one further down waits (a traced process
        starved for seconds). So each round collects every pending stop
        into self.ready; the loop serves them in order before waiting again.
        A round that finds no other stop means the others are not busy: the
        next ROUND_SKIP waits take one stop each, saving the waitpid that
        finds nothing (one per stop of a lone busy tracee).
        """
        if self.table.dirty and not self.timer_armed:
            self.arm_flush()
        pid, status = self._spin_wait() if self.spin else _waitpid(-1, WAIT_ALL)
        if len(self.threads) > 1:
            if self.round_skip:
                self.round_skip -= 1
                return pid, status
            ready = self.ready
            while True:
                try:
                    more = _waitpid(-1, WAIT_ALL_NOHANG)
                except ChildProcessError:
                    break
                if not more[0]:
                    break
                ready.append(more)
            if not ready:
                self.round_skip = ROUND_SKIP
        return pid, status

    def _spin_wait(self) -> tuple[int, int]:
        """Spin-then-block: a syscall-dense tracee stops again within a few µs,
        and sleeping would cost a cross-CPU wake-up (docs/DESIGN.md, Speed)."""
        if self.spin_skip:
            self.spin_skip -= 1
            return _waitpid(-1, WAIT_ALL)
        deadline = time.monotonic_ns() + SPIN_NS
        while True:
            pid, status = _waitpid(-1, WAIT_ALL_NOHANG)
            if pid:
                self.spin_misses = 0
                return pid, status
            if time.monotonic_ns() > deadline:
                break
        self.spin_misses += 1
        if self.spin_misses >= 4:
            self.spin_skip = 256  # CPU-bound tracee: stop stealing its CPU for a while
            self.spin_misses = 0
        return _waitpid(-1, WAIT_ALL)

    def _on_alarm(self, signum: int, frame: object) -> None:
        self.timer_armed = False
        if not self.table.in_flush:
            self.table.flush_all(from_signal=True)

    def _on_term(self, signum: int, frame: object) -> None:
        if not self.shutdown:
            self.shutdown = True
            self.closing = True
            self.ring()

    def _write_failure(self, from_signal: bool) -> None:
        """A buffer could not be written: the processes writing to it are detached (in attend)."""
        self.write_failure = self.attention = True
        if not from_signal:
            self.attend()

    # ----- syscall stops: the hot path -----

    def syscall_stop(self, t: Thread, shared: memoryview | None = None) -> None:
        """A syscall entry or exit stop: its CALL or RET, and what else its rule and the facilities ask.

        The common stop, whose call needs nothing but its CALL or RET under
        the process's facilities (Rules.plain_stops), is written here without
        looking at its rule: at every stop of every call, each step counts.
        `shared`: the C loop's state, holding the stop's syscall information.
        """
        tid = t.tid
        if shared is None:
            info = self.bufs.info
            if _ptrace(GET_SYSCALL_INFO, tid, INFO_SIZE, info) <= 0:
                _ptrace(t.resume_op(), tid, 0, 0)
                return
            op, arch, nr, a0, a1, a2, a3, a4, a5 = _unpack_info(info)
        else:
            op, arch, nr, a0, a1, a2, a3, a4, a5 = _unpack_info(shared, fastloop.INFO_OFFSET)
        if op == INFO_NONE:
            # A SIGKILL took the thread out of the stop we collected; it is in
            # another (its exit event), reported on its own. The rest of the
            # buffer is another call's: recording it would forge a CALL.
            return
        p = t.proc
        if p.passthrough or p.detaching:
            self._quiet_stop(t, p)
            return
        if arch != p.arch:
            # lazy: start-up (the i386 tables and rules load only once a
            # process makes an int $0x80 call; most never do)
            from ktrace_cli.trace import abi32

            if abi32.stop(self, t, p, op, arch, nr, (a0, a1, a2, a3, a4, a5)):
                return  # an int $0x80 call, recorded under the linux32 ABI
        facs = p.facs
        plain = self.plain.get(facs) or self._plain(facs)
        if op == INFO_EXIT:
            rval = nr - (1 << 64) if nr >> 63 else nr
            call = t.nr
            if t.insys and call < MAX_SYSCALL and not plain[1][call]:
                error = 0
                if a0 & 0xFF:  # is_error: rval is -errno
                    e = -rval
                    error = self.errmap[e] if 0 < e < ERRNO_LIMIT else e
                    rval = 0
                if error != ERESTART:  # else its RET waits for the next stop (_exit)
                    t.insys = False
                    tf = p.file
                    if tf is not None and facs & FAC_SYSRET:
                        tf.sysret(p.tgid, tid, t.comm, _time_ns(), call, error, rval)
                        self.table.dirty = True
                    _ptrace(p.mode_op, tid, 0, 0)
                    return
                rval = nr - (1 << 64) if nr >> 63 else nr
            self._exit(t, p, rval, a0 & 0xFF)
            t.insys = False
            _ptrace(p.mode_op, tid, 0, 0)
            return
        if op == INFO_ENTRY and nr < MAX_SYSCALL and not plain[0][nr] and t.restart_ret is None:
            t.insys = True
            t.nr = nr
            ns = _time_ns()
            t.args = args = (a0, a1, a2, a3, a4, a5)
            t.entry_ns = ns
            tf = p.file
            if tf is not None and facs & FAC_SYSCALL:
                tf.syscall(p.tgid, tid, t.comm, ns, nr, self.narg[nr], args)
                self.table.dirty = True
            _ptrace(PTRACE_SYSCALL, tid, 0, 0)
            return
        if op == P.PTRACE_SYSCALL_INFO_SECCOMP and t.insys:
            # A program's own RET_TRACE filter after our entry stop: same call.
            P.libc_ptrace(P.PTRACE_SYSCALL, tid, 0, 0)
            return
        if t.restart_ret is not None and restarts.reentered(t, nr, restarts.NR_RESTART_SYSCALL):
            P.libc_ptrace(P.PTRACE_SYSCALL, tid, 0, 0)  # still the call an ignored signal interrupted
            return
        t.insys = True
        t.nr = nr
        ns = time.time_ns()
        args = (a0, a1, a2, a3, a4, a5)
        t.args = args
        t.entry_ns = ns
        tf = p.file
        if tf is not None and p.facs & K.KTRFAC_SYSCALL:
            tf.syscall(p.tgid, tid, t.comm, ns, nr, self.rules.narg[nr] if nr < R.MAX_SYSCALL else 6, args)
            self.table.dirty = True
        rule = self.rules.by_nr[nr] if nr < R.MAX_SYSCALL else None
        if rule is not None:
            if rule.special:
                if lifecycle.entry_special(self.table, t, p, rule, args, self.is_root):
                    return  # the thread was detached
            if tf is not None and (rule.paths or rule.stru or rule.special
                                   or p.facs & K.KTRFAC_CSW):  # fmt: skip
                capture.entry_records(t, rule, args, ns)
                self.table.dirty = True
        P.libc_ptrace(P.PTRACE_SYSCALL, tid, 0, 0)

    def _plain(self, facs: int) -> tuple[bytes, bytes]:
        tables = self.plain[facs] = self.rules.plain_stops(facs)
        return tables

    def _quiet_stop(self, t: Thread, p: Proc) -> None:
        """A syscall stop of a process we no longer record: detach or let it run."""
        t.insys = False
        if p.detaching:
            P.libc_ptrace(P.PTRACE_DETACH, t.tid, 0, 0)
            self.table.drop_thread(t)
        else:
            P.libc_ptrace(P.PTRACE_CONT, t.tid, 0, 0)

    def _exit(self, t: Thread, p: Proc, rval: int, is_error: int) -> None:
        nr = t.nr
        if not t.insys:
            # Exit of a call that began before we attached.
            orig = P.peek_user(t.tid, P.ORIG_RAX_OFFSET)
            nr = orig if orig is not None and orig < R.MAX_SYSCALL else -1
            t.args = ()
        if nr < 0:
            return
        self.record_exit(t, p, nr, self.rules, JUSTRETURN_SYSCALLS, rval, is_error)

    def record_exit(
        self, t: Thread, p: Proc, nr: int, rules: R.Rules, justreturn: frozenset[int], rval: int, is_error: int
    ) -> None:
        """The records of a call's exit under its ABI's `rules` and sigreturn numbers:
        captures, then its RET (held back while the kernel's restart code leaves
        EINTR or RESTART open)."""
        ns = time.time_ns()
        rule = rules.by_nr[nr] if nr < R.MAX_SYSCALL else None
        error = 0
        rval_in = rval
        if nr in justreturn:
            # The restored registers are the interrupted code's, not a result.
            is_error, rval, error = 0, 0, K.EJUSTRETURN
        if is_error:
            e = -rval
            error = self.errmap[e] if 0 < e < convert.ERRNO_LIMIT else e
            rval = 0
        if rule is not None:
            if rule.special and not is_error:
                lifecycle.exit_special(t, p, rule)
                if rule.special == R.SPECIAL_EXEC:
                    error = K.EJUSTRETURN
                    rval = 0
            if (rule.gio or rule.stru or p.facs & K.KTRFAC_CSW) and p.file is not None and len(t.args) == 6:
                capture.exit_records(t, rule, t.args, rval, bool(is_error), ns)
        tf = p.file
        if is_error and error == K.ERESTART:
            t.restart_ret = (nr, -rval_in, ns)  # EINTR or RESTART: known at the next stop
            return
        if tf is not None and p.facs & K.KTRFAC_SYSRET:
            tf.sysret(p.tgid, t.tid, t.comm, ns, nr, error, rval)
            self.table.dirty = True

    # ----- every other stop -----

    def other_stop(self, t: Thread, status: int) -> None:
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
                P.libc_ptrace(P.PTRACE_DETACH, tid, 0, 0)
                self.table.drop_thread(t)
            elif not t.started:
                t.started = True
                P.libc_ptrace(p.mode_op, tid, 0, 0)
            elif sig in S.STOP_SIGNALS:
                if p.detaching:
                    P.libc_ptrace(P.PTRACE_DETACH, tid, 0, 0)  # stays in its group-stop
                    self.table.drop_thread(t)
                else:
                    P.libc_ptrace(P.PTRACE_LISTEN, tid, 0, 0)
            else:
                P.libc_ptrace(t.resume_op(), tid, 0, 0)
        elif event in (P.PTRACE_EVENT_FORK, P.PTRACE_EVENT_VFORK, P.PTRACE_EVENT_CLONE):
            held = lifecycle.new_task(self.table, self.bufs, t, p, event)
            if held is not None:
                self.other_stop(*held)
            P.libc_ptrace(t.resume_op(), tid, 0, 0)
        elif event == P.PTRACE_EVENT_EXEC:
            lifecycle.exec_(self.table, self.bufs, t, p)
        elif event == P.PTRACE_EVENT_EXIT:
            lifecycle.exiting(self.table, self.bufs, t, p)
            P.libc_ptrace(P.PTRACE_CONT, t.tid, 0, 0)
        else:
            P.libc_ptrace(t.resume_op(), tid, 0, 0)

    def _signal_stop(self, t: Thread, p: Proc, sig: int) -> None:
        tid = t.tid
        if t.restart_ret is not None and restarts.delivered(t, sig):
            self.table.dirty = True
        if t.stepping:
            stepped, self_ns, payload = t.stepping, t.entry_ns, self._step_payload
            t.stepping = 0
            if sig == signal.SIGTRAP:
                rip = P.peek_user(tid, P.RIP_OFFSET) or 0
                p.handlers[stepped] = rip
                self._psig_record(t, p, self_ns, payload, rip)
                P.libc_ptrace(t.resume_op(), tid, 0, 0)
                return
            self._psig_record(t, p, self_ns, payload, 0)
        if p.detaching:
            P.libc_ptrace(P.PTRACE_DETACH, tid, 0, sig)
            self.table.drop_thread(t)
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
                    P.libc_ptrace(P.PTRACE_SINGLESTEP, tid, 0, sig)
                    return
                S.write_psig(t, sig, handler, ns, self.bufs)
                self.table.dirty = True
        if sig in p.resethand and p.handlers.get(sig, 0) > 1:
            p.handlers[sig] = 0
            p.resethand.discard(sig)
        P.libc_ptrace(t.resume_op(), tid, 0, sig)

    _step_payload = b""

    def _psig_record(self, t: Thread, p: Proc, ns: int, payload: bytes, action: int) -> None:
        if p.file is None:
            return
        # Patch the action field (offset 8) of the payload computed at delivery.
        data = payload[:8] + action.to_bytes(8, "little") + payload[16:]
        p.file.record(K.KTR_PSIG, p.tgid, t.tid, t.comm, ns, data)
        self.table.dirty = True

    def stray(self, pid: int, status: int) -> None:
        if self.waker is not None and self.waker.stopped(pid, status):
            return
        if pid in self.table.awaiting:
            if os.WIFSTOPPED(status):
                held = lifecycle.first_stop(self.table, pid, status)
                if held is not None:
                    self.other_stop(*held)
            else:
                self.table.awaiting.pop(pid, None)
            return
        if os.WIFSTOPPED(status):
            # A new task reported before its creator's fork event: hold it.
            self.table.pending[pid] = status

    def _gone(self, t: Thread, status: int) -> None:
        p = t.proc
        if t.restart_ret is not None:
            restarts.settle(t, 0)  # died in the interrupted call, before any delivery stop
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            self.table.report_kill(t, p)
        if len(p.threads) <= 1 and p.threads.get(t.tid) is t and not p.dtor_done:
            # Its exit event wrote and flushed the PROCDTOR already, unless it
            # died without one (killed, or let go before it).
            self.table.write_dtor(p, t)
            self.table.flush_all()
        self.table.drop_thread(t)

    # ----- the hand-off with the control thread: requests in, replies out -----

    def _serve(self) -> None:
        """Answer queued requests in order; a clear is answered once its processes are detached.

        A request that sets tracing on a process being detached waits for it,
        so it never meets a half-detached process (FreeBSD's ktrace(2) is atomic
        under the proctree lock; this is the engine's equivalent). Requests
        about other processes go on meanwhile, and a detach that does not finish
        within DETACH_TIMEOUT (a frozen cgroup, a read stuck in a FUSE server)
        is reported to whoever waits for it.
        """
        now = time.monotonic()
        self._expire(now)
        blocked: list[Request] = []
        while True:
            with self.lock:
                if not self.requests:
                    break
                req = self.requests.popleft()
            stuck = self._blocked_by(req)
            if stuck is not None:
                if self._overdue(stuck, now):
                    _close_fd(req)
                    send(req.reply, _stuck_reply(stuck))
                else:
                    blocked.append(req)
                continue
            before = {p.tgid for p in self.procs.values() if p.detaching}
            try:
                reply = self._apply(req)
            except OSError as e:
                reply = _os_error(e)
            except Exception as e:  # a bad request must never take the engine down
                log.exception("request failed")
                reply = {"error": E.EIO, "message": str(e)}
            finally:
                _close_fd(req)
            waiting = [p for p in self.procs.values() if p.detaching and p.tgid not in before]
            if waiting:
                self.held_replies.append((waiting, req.reply, reply))
            else:
                send(req.reply, reply)
        if blocked:
            with self.lock:
                self.requests.extendleft(reversed(blocked))
        self._next_deadline()

    def _apply(self, req: Request) -> Reply:
        if req.ops == STATUS:
            return self.status()
        if req.ops == SHUTDOWN:  # detach everything and exit
            with self.lock:
                self.closing = True
            self.shutdown = self.attention = True
            return {"error": 0}
        return ktrops.apply(self.table, self.rules, req)

    def status(self) -> Reply:
        """What the engine holds, for tests and for a user asking why it still runs.

        Taken on the engine thread between events, so it is never half-updated.
        """
        return {
            "error": 0,
            "pid": os.getpid(),
            "procs": sorted(self.procs),
            "threads": sorted(self.threads),
            "files": len(self.table.files),
            "awaiting": sorted(self.table.awaiting),
            "pending": sorted(self.table.pending),
            "held_replies": len(self.held_replies),
        }

    def _blocked_by(self, req: Request) -> Proc | None:
        """A process being detached that the request may set tracing on, if any.

        Clearing a process that is being detached only asks again for what is
        under way, so clears are never held back.
        """
        if req.ops < 0 or K.ktrop(req.ops) != K.KTROP_SET:
            return None
        detaching = [p for p in self.procs.values() if p.detaching]
        if not detaching:
            return None
        if req.pid > 0 and not req.ops & K.KTRFLAG_DESCEND and K.ktrop(req.ops) != K.KTROP_CLEARFILE:
            return next((p for p in detaching if p.tgid == req.pid), None)
        return detaching[0]  # a group, a tree or a file may reach any of them

    def _overdue(self, p: Proc, now: float) -> bool:
        return now - self.table.detach_started.get(p.tgid, now) >= DETACH_TIMEOUT

    def _expire(self, now: float) -> None:
        """Answer the clears that waited too long for a process to stop."""
        still = []
        for procs, reply_fn, reply in self.held_replies:
            late = [p for p in procs if self.procs.get(p.tgid) is p and self._overdue(p, now)]
            if late:
                send(reply_fn, _stuck_reply(late[0]))
            else:
                still.append((procs, reply_fn, reply))
        self.held_replies = still

    def _next_deadline(self) -> None:
        """When the control thread must wake the engine to report a detach that does not finish."""
        if not self.held_replies and not self.requests:
            self.detach_deadline = 0.0
            return
        started = self.table.detach_started
        starts = [started[p.tgid] for p in self.procs.values() if p.detaching and p.tgid in started]
        self.detach_deadline = min(starts) + DETACH_TIMEOUT if starts else 0.0

    def _released(self) -> None:
        """A process left the table: answer the clears that waited for it, take new requests."""
        if not (self.held_replies or self.requests):
            return
        still = []
        for procs, reply_fn, reply in self.held_replies:
            if any(self.procs.get(p.tgid) is p for p in procs):
                still.append((procs, reply_fn, reply))
            else:
                send(reply_fn, reply)
        self.held_replies = still
        started = self.table.detach_started
        for tgid in [t for t in started if t not in self.procs]:
            del started[tgid]
        self._next_deadline()
        if self.requests:
            self.attention = True

    # ----- shutdown and write failures -----

    def _begin_shutdown(self) -> None:
        log.info("shutting down: detaching every tracee")
        for p in list(self.procs.values()):
            self.table.detach(p)
        self.table.flush_all()

    def _write_failed(self, tf: TraceFile, err: int) -> None:
        for p in list(self.procs.values()):
            if p.file is tf and not p.detaching:
                # FreeBSD stops the process whose record failed; here every
                # process sharing the buffer lost records in the same write.
                log.error("ktrace write failed, errno %d, tracing stopped for pid %d", err, p.tgid)
                self.table.detach(p)


def send(reply_fn: Callable[[Reply], None], reply: Reply) -> None:
    try:
        reply_fn(reply)
    except OSError:
        pass


def _close_fd(req: Request) -> None:
    if req.fd is not None:
        os.close(req.fd)
        req.fd = None


def _os_error(e: OSError) -> Reply:
    if e.errno in RESOURCE_ERRNOS:
        log.warning("request failed: %s", e)
        return {"error": e.errno, "why": f"the trace engine is short of resources: {e.strerror}"}
    log.exception("request failed")
    return {"error": E.EIO, "message": str(e)}


def _stuck_reply(p: Proc) -> Reply:
    why = (f"pid {p.tgid} did not stop within {DETACH_TIMEOUT:.0f} s (frozen, or asleep in the "
           "kernel); it is detached when it next stops")  # fmt: skip
    log.warning("%s", why)
    return {"error": E.EBUSY, "why": why}

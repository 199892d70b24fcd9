"""The ptrace engine as a daemon: started by its first client, woken without forking, logging to engine.log.

The control socket and its thread are control_server's; the double fork
and the name in ps are detach's.
"""

from __future__ import annotations

import _signal as signal  # signal.py's enum conversions cost the engine's start-up
import ctypes
import os
import resource
import select
import threading

from ktrace_cli.trace.control_server import Endpoint, serve_control
from ktrace_cli.trace.detach import close_other_fds, set_title, settle_daemon
from ktrace_cli.trace.engine import Engine
from ktrace_cli.trace.englog import RuntimeLog, log
from ktrace_cli.trace.protocol import Identity
from ktrace_cli.trace.runtime import SOCKET, Runtime

ENGINE_NAME = b"pyktrace-engine"
WAKER_NAME = b"pyktrace-waker"
PR_SET_PDEATHSIG = 1


class Waker:
    """Wakes the engine thread out of waitpid() without forking.

    One child, made at start-up, does nothing but sleep. Stopping it with
    SIGSTOP (through a pidfd, so a recycled pid is never hit) makes the
    engine's waitpid(WUNTRACED) report it; the engine sends SIGCONT. The
    stop is level-triggered: a wake-up sent before the engine blocks is
    not lost, and no zombie is left per wake-up (the fork-per-wake-up this
    replaces failed under RLIMIT_NPROC and left one while idle).
    """

    def __init__(self) -> None:
        self.pid = 0
        self.pidfd = -1
        self._start()

    def _start(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                if os.getppid() != parent:
                    os._exit(0)
                for sig in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCONT}:
                    try:  # a signal to the engine's process group must not take it away
                        signal.signal(sig, signal.SIG_IGN)
                    except (OSError, ValueError):
                        pass
                close_other_fds(set())
                set_title(WAKER_NAME)
                while True:
                    select.select([], [], [])
            finally:
                os._exit(0)
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)

    def ring(self) -> None:
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGSTOP)
        except OSError as e:
            log.warning("cannot wake the engine through pid %d: %s", self.pid, e)

    def stopped(self, pid: int, status: int) -> bool:
        """Whether this waitpid() report is the waker's: resumed if stopped, replaced if gone."""
        if pid != self.pid:
            return False
        if os.WIFSTOPPED(status):
            signal.pidfd_send_signal(self.pidfd, signal.SIGCONT)
        elif os.WIFEXITED(status) or os.WIFSIGNALED(status):
            log.warning("the waker (pid %d) was killed: starting another", pid)
            os.close(self.pidfd)
            try:
                self._start()
            except OSError as e:
                log.error("cannot start a waker: %s; requests wait for the next traced event", e)
        return True

    def close(self) -> None:
        """Kill and reap it: the engine leaves no child behind."""
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except OSError:
            pass


def engine_main(rt: Runtime, lockfd: int, ready: int) -> int:
    """The engine's process, once detach.spawn_daemon has forked it; 0 when it exits idle."""
    # SIGXFSZ ignored: a trace file over a limit must fail the write
    # (EFBIG, handled like FreeBSD's write failure), not kill the engine.
    settle_daemon((signal.SIGHUP, signal.SIGPIPE, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGXFSZ))
    # A name people and other users' tools recognise (diagnose.is_foreign_engine).
    set_title(ENGINE_NAME)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    sink = log.sink = RuntimeLog(rt, "pyktrace-engine")
    try:
        engine = Engine()
        engine.waker = Waker()
        rt.unlink(SOCKET)
        endpoint = Endpoint(rt, lockfd, sink.moved)
    except Exception as e:
        log.exception("engine start failed")
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        os.write(ready, f"the trace engine failed to start: {why}".encode())
        return 1
    _raise_fd_limit()
    log.info("engine started (uid %d, %s)", os.getuid(), Identity.ours().describe())
    os.write(ready, b"ok")
    os.close(ready)
    threading.Thread(target=serve_control, args=(engine, endpoint), daemon=True).start()
    try:
        engine.run()
    except BaseException:
        log.exception("engine failed; the kernel detaches its tracees")
    with engine.lock:  # the control thread must not put them back now
        engine.closing = True
        endpoint.remove()
    engine.waker.close()
    log.info("engine exiting: nothing traced")
    sink.close()
    return 0


def _raise_fd_limit() -> None:
    """Use the whole hard limit of descriptors: the engine keeps one per traced
    process (/proc/PID/mem) and, with `w`, one per thread; running out costs
    records (marked KTR_DROP)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            log.warning("could not raise the descriptor limit from %d", soft)

"""Starting the engine as a daemon: detached from its first client, named, woken without forking.

The control socket and its thread are control_server's.
"""

from __future__ import annotations

import ctypes
import errno as E
import logging
import os
import resource
import select
import signal
import stat
import threading
from collections.abc import Callable

from ktrace_cli.trace.control_server import Endpoint, serve_control
from ktrace_cli.trace.engine import Engine
from ktrace_cli.trace.protocol import EngineUnavailable, Identity
from ktrace_cli.trace.runtime import LOG, SOCKET, Runtime

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the engine's start-up)
if TYPE_CHECKING:
    from typing import TextIO

log = logging.getLogger("pyktrace.engine")
ENGINE_NAME = b"pyktrace-engine"
WAKER_NAME = b"pyktrace-waker"
PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1
STAT_ARG_START = 47  # /proc/PID/stat fields (0-based) of argv's bounds, after the comm


def spawn(rt: Runtime, lockfd: int) -> None:
    """Double-fork an engine that inherits the held lock; return once it listens."""
    spawn_daemon(rt, lockfd, _engine_main, "the trace engine")


def spawn_daemon(rt: Runtime, lockfd: int, main: Callable[[Runtime, int, int], int], what: str) -> None:
    """Double-fork `main(rt, lockfd, ready)`, setsid'd and never our child; return once it
    writes "ok" on `ready`, or raise EngineUnavailable with what it wrote instead.

    Both engines (ptrace's and bpf's) start this way."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            code = main(rt, lockfd, w)
        except BaseException:
            pass
        os._exit(code)
    os.close(w)
    os.waitpid(pid, 0)
    try:
        msg = os.read(r, 4096)
    finally:
        os.close(r)
    if msg != b"ok":
        raise EngineUnavailable(E.EIO, msg.decode(errors="replace") or f"{what} failed to start (see {rt.log})")


def close_other_fds(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def set_title(name: bytes) -> None:
    """Show as `name` in ps: comm (PR_SET_NAME) and argv, rewritten in place.

    The engine is forked from its first client, so argv would otherwise
    read like a stale pyktrace command. The argument area is overwritten
    and its last byte left non-zero, which tells Linux to report the
    command line only up to the first NUL (the setproctitle convention).
    Exec'ing a fresh interpreter would do the same at the cost of a second
    start-up on every cold start.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(name[:15]), 0, 0, 0)
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[STAT_ARG_START - 2]), int(fields[STAT_ARG_START - 1])
    except (OSError, ValueError, IndexError):
        return
    size = end - start
    if size < 2:
        return
    title = name[: size - 2] + b"\0"
    ctypes.memmove(start, title + b"\0" * (size - len(title)), size)
    ctypes.memset(end - 1, 0x20, 1)


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


def _engine_main(rt: Runtime, lockfd: int, ready: int) -> int:
    close_other_fds({lockfd, ready, rt.fd})
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.umask(0o077)
    os.chdir("/")
    # SIGXFSZ ignored: a trace file over a limit must fail the write
    # (EFBIG, handled like FreeBSD's write failure), not kill the engine.
    for sig in (signal.SIGHUP, signal.SIGPIPE, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU,
                signal.SIGXFSZ):  # fmt: skip
        signal.signal(sig, signal.SIG_IGN)
    try:
        # The client that started us may have a low limit; each request
        # brings its own (TraceFile.fsize_limit), so ours is only the hard one.
        _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    except (OSError, ValueError):
        pass
    # A name people and other users' tools recognise (diagnose.is_foreign_engine).
    set_title(ENGINE_NAME)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    handler = RuntimeLogHandler(rt)
    handler.setFormatter(logging.Formatter("%(asctime)s pyktrace-engine[%(process)d]: %(message)s"))
    root = logging.getLogger("pyktrace")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        engine = Engine()
        engine.waker = Waker()
        rt.unlink(SOCKET)
        endpoint = Endpoint(rt, lockfd, handler.moved)
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
    logging.shutdown()
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


class RuntimeLogHandler(logging.StreamHandler):
    """Appends to engine.log, opened relative to the runtime directory; reopened if removed."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.ident: tuple[int, int] | None = None
        super().__init__(self._open())

    def _open(self) -> TextIO:
        fd = self.rt.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise OSError(E.EINVAL, f"{self.rt.log}: not a regular file")
        self.ident = (st.st_dev, st.st_ino)
        return os.fdopen(fd, "a", encoding="utf-8", errors="replace")

    def moved(self, rt: Runtime) -> None:
        self.rt = rt
        self.ident = (-1, -1)  # matches nothing: the next line opens the log in `rt`

    def emit(self, record: logging.LogRecord) -> None:
        try:
            st = self.rt.stat(LOG)
            current: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            current = None
        if current != self.ident:
            try:
                stream = self._open()
            except OSError:
                stream = None
            if stream is not None:
                old = self.setStream(stream)
                if old is not None:
                    old.close()
        super().emit(record)

"""Starting the engine as a daemon and serving its control socket."""

from __future__ import annotations

import ctypes
import fcntl
import logging
import logging.handlers
import os
import resource
import select
import signal
import socket
import stat
import threading
from typing import TYPE_CHECKING

from ktrace_cli.format import constants as K
from ktrace_cli.trace import control
from ktrace_cli.trace.runtime import Runtime

if TYPE_CHECKING:
    from ktrace_cli.trace.engine import Request

log = logging.getLogger("pyktrace.engine")
_ENGINE_NAME = ctypes.create_string_buffer(b"pyktrace-engine")
_ENGINE_COMM = ctypes.addressof(_ENGINE_NAME)
# How often the control thread checks that clients can still find the
# engine; a client finding no socket but the lock held retries for
# control.START_TIMEOUT, far longer.
GUARD_PERIOD = 0.25


def spawn(rt: Runtime, lockfd: int) -> None:
    """Double-fork an engine that inherits the held lock; return once it listens."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            code = _engine_main(rt, lockfd, w)
        except BaseException:
            pass
        os._exit(code)
    os.close(w)
    os.waitpid(pid, 0)
    try:
        msg = os.read(r, 512)
    finally:
        os.close(r)
    if msg != b"ok":
        raise control.EngineUnavailable(
            5, msg.decode(errors="replace") or f"the trace engine failed to start (see {rt.log})"
        )


def _close_other_fds(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _engine_main(rt: Runtime, lockfd: int, ready: int) -> int:
    _close_other_fds({lockfd, ready})
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
    # A name other users' tools can recognise (diagnose.is_foreign_engine).
    from ktrace_cli.trace.ptrace import prctl

    prctl(15, _ENGINE_COMM)  # PR_SET_NAME
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    handler = logging.handlers.WatchedFileHandler(rt.log)  # reopened if removed
    handler.setFormatter(logging.Formatter("%(asctime)s pyktrace-engine[%(process)d]: %(message)s"))
    root = logging.getLogger("pyktrace")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        from ktrace_cli.trace.engine import Engine

        engine = Engine()
        try:
            os.unlink(rt.socket)
        except FileNotFoundError:
            pass
        endpoint = Endpoint(rt, lockfd)
    except Exception as e:
        log.exception("engine start failed")
        os.write(ready, f"the trace engine failed to start: {e}".encode())
        return 1
    _raise_fd_limit()
    log.info("engine started (uid %d)", os.getuid())
    os.write(ready, b"ok")
    os.close(ready)
    threading.Thread(target=_serve_control, args=(engine, endpoint), daemon=True).start()
    try:
        engine.run()
    except BaseException:
        log.exception("engine failed; the kernel detaches its tracees")
    with engine.lock:  # the control thread must not put them back now
        engine.closing = True
        endpoint.remove()
    log.info("engine exiting: nothing traced")
    logging.shutdown()
    return 0


def _raise_fd_limit() -> None:
    """Use the whole hard limit of descriptors: the engine keeps one per traced
    process (/proc/PID/mem) and, with `w`, one per thread; running out would
    silently cost records."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            log.warning("could not raise the descriptor limit from %d", soft)


class Endpoint:
    """The engine's names in the runtime directory (socket, pid file, lock), put back if removed.

    A user or a tmp cleaner removing the socket would otherwise leave the
    engine unreachable while it holds the lock: the next pyktrace could
    neither reach it nor start another, and its traces could not be
    cleared. So the control thread checks every GUARD_PERIOD and binds the
    socket again, unless another engine has taken the directory over.
    """

    def __init__(self, rt: Runtime, lockfd: int) -> None:
        self.rt = rt
        self.lockfd = lockfd
        self.listener: socket.socket | None = None
        self.ident: tuple[int, int] | None = None
        self.owner = True
        self._bind()

    def _bind(self) -> None:
        try:
            os.unlink(self.rt.socket)
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            listener.bind(self.rt.socket)
            os.chmod(self.rt.socket, 0o600)
            listener.listen(64)
            st = os.stat(self.rt.socket)
        except OSError:
            listener.close()
            raise
        if self.listener is not None:
            self.listener.close()
        self.listener, self.ident = listener, (st.st_dev, st.st_ino)
        with open(self.rt.pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")

    def _ours(self, path: str, ident: tuple[int, int] | None) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == ident

    def check(self) -> None:
        """Put back what was removed; give up if another engine owns the directory now."""
        if not self.owner or self._ours(self.rt.socket, self.ident):
            return
        try:
            os.mkdir(self.rt.dir, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return
        st = os.lstat(self.rt.dir)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            return
        lock = os.fstat(self.lockfd)
        if not self._ours(self.rt.lock, (lock.st_dev, lock.st_ino)):
            fd = os.open(self.rt.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self.owner = False
                log.warning("another engine has taken over %s; this one (pid %d) runs on "
                            "unreachable until its tracees exit or it gets SIGTERM",
                            self.rt.dir, os.getpid())  # fmt: skip
                return
            os.close(self.lockfd)
            self.lockfd = fd
        try:
            self._bind()
        except OSError as e:
            log.warning("cannot put back %s: %s", self.rt.socket, e)
            return
        log.info("%s was removed: bound again", self.rt.socket)

    def remove(self) -> None:
        if not self.owner:
            return
        for path, ident in ((self.rt.socket, self.ident), (self.rt.pidfile, None)):
            if ident is None or self._ours(path, ident):
                try:
                    os.unlink(path)
                except OSError:
                    pass


def _serve_control(engine: object, endpoint: Endpoint) -> None:
    from ktrace_cli.trace.engine import Engine

    assert isinstance(engine, Engine)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGTERM, signal.SIGINT})
    uid = os.getuid()
    while True:
        listener = endpoint.listener
        assert listener is not None
        if not select.select([listener], [], [], GUARD_PERIOD)[0]:
            with engine.lock:
                if not engine.closing:
                    try:
                        endpoint.check()
                    except OSError as e:  # never lose the control thread over it
                        log.warning("checking %s: %s", endpoint.rt.dir, e)
            continue
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        try:
            peer_pid, peer_uid, _gid = control.peer_credentials(conn)
            if peer_uid != uid:
                log.warning("refused a request from uid %d", peer_uid)
                conn.close()
                continue
            msg, fd = control.recv_message(conn)
        except OSError:
            conn.close()
            continue
        if msg is None:
            if fd is not None:
                os.close(fd)
            conn.close()
            continue
        req = _request(msg, fd, peer_pid, conn)
        if req is None:
            _answer(conn, {"error": 22, "message": "malformed request"})
            if fd is not None:
                os.close(fd)
            continue
        if not engine.submit(req):
            if fd is not None:
                os.close(fd)
            conn.close()  # closing: the client starts a fresh engine


def _answer(conn: socket.socket, reply: dict[str, object]) -> None:
    try:
        control.send_message(conn, reply)
    except OSError:
        pass
    finally:
        conn.close()


def _request(msg: dict[str, object], fd: int | None, peer_pid: int, conn: socket.socket) -> Request | None:

    from ktrace_cli.trace.engine import Request

    try:
        from ktrace_cli.trace.ops import SHUTDOWN, STATUS

        op = msg.get("op")
        if op in ("shutdown", "status"):
            return Request(ops=SHUTDOWN if op == "shutdown" else STATUS, facs=0, pid=0, fd=fd,
                           peer_pid=peer_pid, reply=lambda r: _answer(conn, r))  # fmt: skip
        if op != "ktrace":
            return None
        return Request(
            ops=int(msg["ops"]),  # type: ignore[call-overload]
            facs=int(msg["facs"]),  # type: ignore[call-overload]
            pid=int(msg["pid"]),  # type: ignore[call-overload]
            fd=fd,
            peer_pid=peer_pid,
            command=bool(msg.get("command", False)),
            seccomp=str(msg.get("seccomp", "auto")),
            genio_size=max(0, int(msg.get("genio_size", K.GENIO_SIZE_DEFAULT))),  # type: ignore[call-overload]
            version=int(msg.get("version", K.KTR_VERSION1)),  # type: ignore[call-overload]
            fsize_limit=int(msg.get("fsize_limit", -1)),  # type: ignore[call-overload]
            rename=msg.get("rename"),
            reply=lambda r: _answer(conn, r),
        )
    except (KeyError, TypeError, ValueError):
        return None

"""The engine's control socket: its names in the runtime directory, and the thread that serves it.

The control thread must survive whatever a client or the system throws at
it: it reads every connection from one poll loop (a silent client delays
nobody and is dropped after CONN_TIMEOUT), keeps a spare descriptor to
answer a client even when the engine is out of descriptors, and logs any
exception, closes that connection and goes on.
"""

from __future__ import annotations

import _signal as signal  # signal.py's enum conversions cost the engine's start-up

# The C socket type, as the client uses it (protocol.py): socket.py loads enum
# and selectors, a few ms of a cold start, where the engine is started on demand.
import _socket as socket
import errno as E
import fcntl
import os
import select
import time
from collections.abc import Callable

from ktrace_cli.trace import engine as engine_mod
from ktrace_cli.trace import ktrops, protocol
from ktrace_cli.trace.engine import Engine
from ktrace_cli.trace.englog import log
from ktrace_cli.trace.protocol import (
    ANY_VERSION_OPS,
    MAX_MESSAGE,
    MISMATCH,
    Identity,
    ProtocolError,
    Reply,
    Request,
    Socket,
    peer_credentials,
    received_fd,
)  # fmt: skip
from ktrace_cli.trace.runtime import LOCK, PIDFILE, SOCKET, Runtime, open_runtime

# How often the control thread checks that clients can still find the
# engine; a client finding no socket but the lock held retries for
# control.START_TIMEOUT, far longer.
GUARD_PERIOD = 0.25
CONN_TIMEOUT = 2.0  # seconds a client has, once connected, to send its whole request
REPLY_SEND_TIMEOUT = 1.0  # the engine thread never waits longer on a client that does not read
MAX_CONNS = 128  # connections read at once; more wait in the listen backlog
BACKLOG = 64


class Endpoint:
    """The engine's names in the runtime directory (socket, pid file, lock), put back if removed.

    A user or a tmp cleaner removing the socket would otherwise leave the
    engine unreachable while it holds the lock: the next pyktrace could
    neither reach it nor start another, and its traces could not be
    cleared. So the control thread checks every GUARD_PERIOD and binds the
    socket again, unless another engine has taken the directory over.
    Everything is done relative to the open directory; if the directory
    itself was removed, the runtime rules choose one again.
    """

    def __init__(self, rt: Runtime, lockfd: int, on_move: Callable[[Runtime], None] | None = None) -> None:
        self.rt = rt
        self.lockfd = lockfd
        self.on_move = on_move
        self.listener: Socket | None = None
        self.ident: tuple[int, int] | None = None
        self.owner = True
        self._bind()

    def _bind(self) -> None:
        self.rt.unlink(SOCKET)
        listener = Socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            old = os.umask(0o177)  # created 0600 at once: no chmod by name afterwards
            try:
                listener.bind(self.rt.name(SOCKET))
            finally:
                os.umask(old)
            listener.listen(BACKLOG)
            listener.setblocking(False)
            st = self.rt.stat(SOCKET)
        except OSError:
            listener.close()
            raise
        if self.listener is not None:
            self.listener.close()
        self.listener, self.ident = listener, (st.st_dev, st.st_ino)
        fd = self.rt.open(PIDFILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)

    def _ours(self, leaf: str, ident: tuple[int, int] | None) -> bool:
        try:
            st = self.rt.stat(leaf)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == ident

    def check(self) -> None:
        """Put back what was removed; give up if another engine owns the directory now."""
        if not self.owner or (not self.rt.removed() and self._ours(SOCKET, self.ident)):
            return
        if self.rt.removed():
            try:
                rt = open_runtime()
            except OSError as e:
                log.warning("%s was removed and no other runtime directory is usable: %s", self.rt.dir, e)
                return
            self.rt.close()
            self.rt = rt
            if self.on_move is not None:
                self.on_move(rt)
        lock = os.fstat(self.lockfd)
        if not self._ours(LOCK, (lock.st_dev, lock.st_ino)):
            fd = self.rt.open(LOCK, os.O_RDWR | os.O_CREAT)
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
        if self._ours(SOCKET, self.ident):
            self.rt.unlink(SOCKET)
        self.rt.unlink(PIDFILE)


class _Conn:
    """A connected client whose request has not fully arrived."""

    __slots__ = ("sock", "peer_pid", "buf", "fd", "deadline", "fd_lost")

    def __init__(self, sock: socket.socket, peer_pid: int) -> None:
        self.sock = sock
        self.peer_pid = peer_pid
        self.buf = b""
        self.fd: int | None = None
        self.deadline = time.monotonic() + CONN_TIMEOUT
        self.fd_lost = False  # a passed descriptor could not be received (MSG_CTRUNC)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.sock.close()


def _answer(sock: socket.socket, reply: Reply, legacy: bool = False) -> None:
    """Send one reply and close; a client that went away or does not read is not an error."""
    try:
        sock.settimeout(REPLY_SEND_TIMEOUT)
        sock.sendall(reply.to_wire(legacy), socket.MSG_NOSIGNAL)
    except OSError:
        pass
    except Exception:
        log.exception("could not encode a reply")
    finally:
        sock.close()


def _reply(sock: socket.socket, result: dict[str, object], legacy: bool) -> None:
    """The engine's answer to a request: never raises into the engine thread."""
    try:
        reply = Reply.from_result(result)
    except Exception:
        log.exception("unexpected result %r", result)
        reply = Reply(error=E.EIO, message="the trace engine made an invalid reply")
    _answer(sock, reply, legacy)


class ControlServer:
    """The control thread's state: the listener, connections being read, the spare descriptor."""

    def __init__(self, engine: Engine, endpoint: Endpoint) -> None:
        self.engine = engine
        self.endpoint = endpoint
        self.conns: dict[int, _Conn] = {}
        self.uid = os.getuid()
        self.ours = Identity.ours()
        self.spare = self._spare()
        self.short_of_fds = False
        self.listen_after = 0.0
        self.next_guard = time.monotonic() + GUARD_PERIOD

    @staticmethod
    def _spare() -> int | None:
        try:
            return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None

    def step(self) -> None:
        """One round: wait for activity (at most GUARD_PERIOD), serve it, do the periodic checks."""
        now = time.monotonic()
        poller = select.poll()
        listener = self.endpoint.listener
        assert listener is not None
        if len(self.conns) < MAX_CONNS and now >= self.listen_after:
            poller.register(listener, select.POLLIN)
        for fd in self.conns:
            poller.register(fd, select.POLLIN)
        wait = min([self.next_guard] + [c.deadline for c in self.conns.values()]) - now
        for fd, _events in poller.poll(max(0, int(wait * 1000) + 1)):
            if fd == listener.fileno():
                self._accept(listener)
            elif fd in self.conns:
                self._read(self.conns[fd])
        now = time.monotonic()
        for fd, conn in list(self.conns.items()):
            if now >= conn.deadline:
                log.info("pid %d sent no whole request in %.0f s: connection closed", conn.peer_pid,
                         CONN_TIMEOUT)  # fmt: skip
                self._drop(fd)
        if now >= self.next_guard:
            self.next_guard = now + GUARD_PERIOD
            self._guard(now)

    def _guard(self, now: float) -> None:
        engine = self.engine
        with engine.lock:
            if not engine.closing:
                try:
                    self.endpoint.check()
                except OSError as e:  # never lose the control thread over it
                    log.warning("checking %s: %s", self.endpoint.rt.dir, e)
        if 0 < engine.detach_deadline <= now:
            engine.ring()  # the engine thread reports the detach that does not finish

    def _accept(self, listener: Socket) -> None:
        try:
            sock, _ = listener.accept()
        except OSError as e:
            if e.errno in (E.EMFILE, E.ENFILE):
                self._accept_without_fds(listener, e.errno)
            elif e.errno not in (E.EAGAIN, E.ECONNABORTED, E.EINTR):
                log.warning("accept: %s", e.strerror)
                self.listen_after = time.monotonic() + GUARD_PERIOD
            return
        if self.short_of_fds:
            self.short_of_fds = False
            log.info("descriptors available again")
        try:
            peer_pid, peer_uid, _gid = peer_credentials(sock)
            if peer_uid != self.uid:
                log.warning("refused a request from uid %d", peer_uid)
                sock.close()
                return
            sock.setblocking(False)
        except OSError:
            sock.close()
            return
        self.conns[sock.fileno()] = _Conn(sock, peer_pid)

    def _accept_without_fds(self, listener: Socket, err: int) -> None:
        """Out of descriptors: use the spare one to tell the client so, rather than leave it waiting."""
        if not self.short_of_fds:
            self.short_of_fds = True
            log.warning("out of descriptors (%s): refusing requests until some are free", os.strerror(err))
        if self.spare is not None:
            os.close(self.spare)
            self.spare = None
        try:
            sock, _ = listener.accept()
        except OSError:
            self.listen_after = time.monotonic() + GUARD_PERIOD  # not even one: do not spin
        else:
            _answer(sock, Reply(error=err, why=f"the trace engine is out of descriptors (see {self.endpoint.rt.log})"))
        self.spare = self._spare()

    def _read(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        try:
            data, anc, flags, _addr = conn.sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(4))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(fd)
            return
        conn.fd = received_fd(anc, conn.fd)
        if flags & socket.MSG_CTRUNC:
            conn.fd_lost = True  # the kernel could not install it: we are out of descriptors
        if not data:
            self._drop(fd)
            return
        conn.buf += data
        end = conn.buf.find(b"\n")
        if end < 0:
            if len(conn.buf) > MAX_MESSAGE:
                self._refuse(fd, "request too long")
            return
        del self.conns[fd]
        try:
            self._dispatch(conn, conn.buf[: end + 1])
        except Exception as e:
            if conn.fd is not None:
                os.close(conn.fd)
                conn.fd = None
            if isinstance(e, OSError) and e.errno in (E.EMFILE, E.ENFILE):
                log.warning("request from pid %d: %s", conn.peer_pid, e.strerror)
                _answer(conn.sock, Reply(error=e.errno, why=f"the trace engine is out of descriptors (see {self.endpoint.rt.log})"))
            else:
                log.exception("request from pid %d failed", conn.peer_pid)
                _answer(conn.sock, Reply(error=E.EIO, why=f"the trace engine failed: {e} (see {self.endpoint.rt.log})"))

    def _refuse(self, fd: int, why: str) -> None:
        conn = self.conns.pop(fd)
        if conn.fd is not None:
            os.close(conn.fd)
            conn.fd = None
        _answer(conn.sock, Reply(error=E.EINVAL, message=f"malformed request: {why}"))

    def _drop(self, fd: int) -> None:
        conn = self.conns.pop(fd, None)
        if conn is not None:
            conn.close()

    def _dispatch(self, conn: _Conn, line: bytes) -> None:
        try:
            req = Request.from_wire(line)
        except ProtocolError as e:
            self.conns[conn.sock.fileno()] = conn
            self._refuse(conn.sock.fileno(), str(e))
            return
        if conn.fd_lost:
            raise OSError(E.EMFILE, "the trace file's descriptor could not be received")
        legacy = req.identity.protocol < protocol.PROTOCOL
        if req.op not in ANY_VERSION_OPS and req.identity != self.ours:
            self._mismatch(conn, req.identity)
            return
        sock, fd = conn.sock, conn.fd
        conn.fd = None
        engine_req = _engine_request(req, fd, conn.peer_pid, lambda result: _reply(sock, result, legacy))
        if not self.engine.submit(engine_req):
            if fd is not None:
                os.close(fd)
            sock.close()  # closing: the client starts a fresh engine

    def _mismatch(self, conn: _Conn, theirs: Identity) -> None:
        """A client of another installation: tell it who we are; exit as soon as nothing is traced."""
        engine = self.engine
        busy = bool(engine.procs or engine.requests)
        log.info("a client of %s asked for tracing: exiting once idle", theirs.describe())
        why = (f"the trace engine (pid {os.getpid()}) is {self.ours.describe()}, not this client's "
               "installation; it exits once it traces nothing")  # fmt: skip
        _answer(conn.sock, Reply(error=MISMATCH, why=why, busy=busy))
        conn.close()
        with engine.lock:
            engine.idle_grace = 0.0
            engine.wake.notify()


def _engine_request(req: Request, fd: int | None, peer_pid: int,
                    reply: Callable[[dict[str, object]], None]) -> engine_mod.Request:  # fmt: skip
    if req.args is None:
        op = ktrops.SHUTDOWN if req.op == "shutdown" else ktrops.STATUS
        return engine_mod.Request(ops=op, facs=0, pid=0, fd=fd, peer_pid=peer_pid, reply=reply)
    a = req.args
    return engine_mod.Request(ops=a.ops, facs=a.facs, pid=a.pid, fd=fd, peer_pid=peer_pid, command=a.command,
                         seccomp=a.seccomp, genio_size=a.genio_size, version=a.header_version,
                         fsize_limit=a.fsize_limit, rename=list(a.rename) if a.rename else None,
                         reply=reply)  # fmt: skip


def serve_control(engine: Engine, endpoint: Endpoint) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGTERM, signal.SIGINT})
    server = ControlServer(engine, endpoint)
    while True:
        try:
            server.step()
        except Exception:
            # Whatever it was, the thread goes on: without it nothing could
            # clear the engine's tracing.
            log.exception("control thread: unexpected error")
            time.sleep(GUARD_PERIOD)

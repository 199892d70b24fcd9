"""The client side of the control socket: one request (with the trace file's descriptor), one reply.

The engine is started on demand, and only an engine of this installation
is used (protocol.Identity): one of another installation is asked to exit
once it traces nothing, and replaced; while it still traces, the user is
told which one it is.
"""

from __future__ import annotations

import errno as E
import fcntl
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from ktrace_cli.trace import protocol
from ktrace_cli.trace.protocol import (
    MAX_MESSAGE,
    EngineUnavailable,
    Identity,
    Reply,
    Request,
    peer_credentials,
    recv_line,
    send_bytes,
)  # fmt: skip
from ktrace_cli.trace.runtime import LOCK, SOCKET, Runtime, open_runtime

REPLY_TIMEOUT = 60.0  # seconds a client waits for the engine's answer
START_TIMEOUT = 10.0
RETRY_PAUSE = 0.005  # another client is starting the engine, or the old one is exiting


class ForeignEngine(EngineUnavailable):
    """The engine running for this user belongs to another installation and still traces."""


def _connect(rt: Runtime) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(rt.name(SOCKET))
    except OSError:
        sock.close()
        return None
    _pid, uid, _gid = peer_credentials(sock)
    if uid != os.getuid():
        sock.close()
        raise EngineUnavailable(E.EPERM, f"{rt.socket}: engine runs as uid {uid}, not as you")
    return sock


def _engine_alive(rt: Runtime) -> bool:
    """Whether an engine holds the lock (running, starting or exiting)."""
    try:
        lockfd = rt.open(LOCK, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(lockfd)
    return False


def _start_engine(rt: Runtime) -> bool:
    """Start an engine if none holds the lock; False if another one is starting or stopping."""
    lockfd = rt.open(LOCK, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        # Imported here, not at the top: a client that finds the engine
        # running (the usual case) never pays for the daemon's imports.
        from ktrace_cli.trace import daemon

        daemon.spawn(rt, lockfd)
        return True
    finally:
        os.close(lockfd)


def _exchange(log: str, sock: socket.socket, request: Request, fd: int | None) -> Reply | None:
    # A thread stuck in uninterruptible sleep can hold a clear's reply
    # back; the user gets a message instead of a hang.
    sock.settimeout(REPLY_TIMEOUT)
    space = bytearray(MAX_MESSAGE)  # before the request: see recv_line
    try:
        send_bytes(sock, request.to_wire(), fd)
    except (BrokenPipeError, ConnectionResetError):
        pass  # answered unread (an engine out of descriptors says so): read the answer
    except TimeoutError:
        raise EngineUnavailable(E.ETIMEDOUT, f"the trace engine did not read the request (see {log})") from None
    except OSError:
        return None
    try:
        data, extra = recv_line(sock, space)
    except TimeoutError:
        raise EngineUnavailable(
            E.ETIMEDOUT, f"the trace engine did not answer in {REPLY_TIMEOUT:.0f} s (see {log})"
        ) from None
    except OSError:
        return None
    if extra is not None:
        os.close(extra)
    if data is None:
        return None
    try:
        return Reply.from_wire(data)
    except protocol.ProtocolError:
        return Reply(error=E.EPROTO, identity=None)


def _foreign(reply: Reply) -> bool:
    """Whether another installation's engine answered; raises if it still traces something.

    An engine of protocol 2 answers a stranger's ktrace with MISMATCH and
    exits as soon as it traces nothing. One of protocol 1 answers with a
    bare error and exits by itself after a second of idleness.
    """
    ours = Identity.ours()
    if reply.identity == ours:
        return False
    busy = reply.busy
    if reply.identity is None:
        busy = _legacy_busy()
    if busy:
        who = reply.identity.describe() if reply.identity else protocol.LEGACY.describe()
        pid = f" (pid {reply.engine_pid})" if reply.engine_pid else ""
        raise ForeignEngine(
            E.EBUSY,
            f"the running trace engine{pid} is {who}, not this pyktrace {ours.release} from "
            f"{ours.install}; it exits once it traces nothing (that installation's pyktrace -C "
            "clears its tracing)",
        )
    return True


def _legacy_busy() -> bool:
    reached = _reach(start=False)
    if reached.sock is None:
        return False
    with reached.sock:
        reply = _exchange(reached.log, reached.sock, Request("status", None, protocol.LEGACY), None)
    if reply is None:
        return False  # gone meanwhile, or on its way out: the caller retries
    return reply.status is None or bool(reply.status.procs)


@dataclass(frozen=True)
class _Reached:
    """One attempt to reach the engine."""

    sock: socket.socket | None
    log: str  # the engine log's path, for messages
    other: bool = False  # no socket, but an engine holds the lock (starting or exiting)


def _reach(start: bool) -> _Reached:
    """A connection to the engine, starting one if asked and none holds the lock.

    The runtime directory is closed again before anything is sent: in
    command mode the trace begins at the engine's answer, and nothing of
    the client's own is left to close but the socket.
    """
    rt = open_runtime()
    try:
        sock = _connect(rt)
        if sock is not None:
            return _Reached(sock, rt.log)
        other = not _start_engine(rt) if start else _engine_alive(rt)
        return _Reached(None, rt.log, other)
    finally:
        rt.close()


def call(request: Request, fd: int | None = None, before_send: Callable[[int], object] | None = None,
         start: bool = True) -> Reply | None:  # fmt: skip
    """Send one request to the engine (starting it on demand) and return its reply.

    With start=False, None when no engine of this installation is running
    (so nothing of ours is traced).
    """
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        reached = _reach(start)
        sock = reached.sock
        if sock is None:
            if not reached.other:
                if not start:
                    return None
                continue  # we started it: it listens now
            if time.monotonic() > deadline:
                raise EngineUnavailable(E.ETIMEDOUT, "the trace engine did not start")
            time.sleep(RETRY_PAUSE)  # another client is starting it, or the old one is exiting
            continue
        with sock:
            if before_send is not None:
                pid, _uid, _gid = peer_credentials(sock)
                before_send(pid)
            reply = _exchange(reached.log, sock, request, fd)
        if reply is not None:
            if not _foreign(reply):
                return reply
            if not start:
                return None  # an idle stranger traces nothing of ours
        if time.monotonic() > deadline:
            raise EngineUnavailable(E.ETIMEDOUT, "the trace engine did not answer")
        # The engine closed without answering (it was exiting), or a
        # stranger is on its way out: start another once it has gone.
        time.sleep(RETRY_PAUSE)

"""The control protocol: one JSON request with the trace file's descriptor (SCM_RIGHTS), one reply."""

from __future__ import annotations

import array
import errno as E
import fcntl
import json
import os
import socket
import struct
import time

from ktrace_cli.trace.runtime import Runtime, ensure_runtime

PEERCRED = struct.Struct("3i")  # pid, uid, gid
MAX_MESSAGE = 1 << 16
REPLY_TIMEOUT = 60.0  # seconds a client waits for the engine's answer
START_TIMEOUT = 10.0


class EngineUnavailable(OSError):
    """The engine could not be reached or started."""


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size)
    pid, uid, gid = PEERCRED.unpack(raw)
    return pid, uid, gid


def send_message(sock: socket.socket, message: dict[str, object], fd: int | None = None) -> None:
    data = json.dumps(message).encode() + b"\n"
    if fd is None:
        sock.sendall(data)
        return
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]).tobytes())]
    sent = sock.sendmsg([data], anc)
    if sent < len(data):
        sock.sendall(data[sent:])


def recv_message(sock: socket.socket) -> tuple[dict[str, object] | None, int | None]:
    """One newline-terminated JSON message and a passed descriptor, if any."""
    buf = b""
    fd: int | None = None
    while not buf.endswith(b"\n"):
        data, anc, _flags, _addr = sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(4))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS and len(payload) >= 4:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % 4])
                for extra in fds[1:]:
                    os.close(extra)
                if fd is None:
                    fd = fds[0]
                else:
                    os.close(fds[0])
        if not data:
            break
        buf += data
        if len(buf) > MAX_MESSAGE:
            break
    if not buf.endswith(b"\n"):
        return None, fd
    try:
        msg = json.loads(buf)
    except ValueError:
        return None, fd
    return (msg if isinstance(msg, dict) else None), fd


def _connect(rt: Runtime) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(rt.socket)
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
        lockfd = os.open(rt.lock, os.O_RDWR | os.O_CLOEXEC)
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
    lockfd = os.open(rt.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        from ktrace_cli.trace import daemon

        daemon.spawn(rt, lockfd)
        return True
    finally:
        os.close(lockfd)


def call(message: dict[str, object], fd: int | None = None,
         before_send: object = None, start: bool = True) -> dict[str, object] | None:  # fmt: skip
    """Send one request to the engine (starting it on demand) and return its reply.

    With start=False, None when no engine is running (so nothing is traced).
    """
    rt = ensure_runtime()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        sock = _connect(rt)
        if sock is None:
            if not start and not _engine_alive(rt):
                return None
            if not _start_engine(rt):
                if time.monotonic() > deadline:
                    raise EngineUnavailable(E.ETIMEDOUT, "the trace engine did not start")
                time.sleep(0.005)  # another client is starting it, or the old one is exiting
            continue
        with sock:
            if callable(before_send):
                pid, _uid, _gid = peer_credentials(sock)
                before_send(pid)
            # A thread stuck in uninterruptible sleep can hold a clear's reply
            # back; the user gets a message instead of a hang.
            sock.settimeout(REPLY_TIMEOUT)
            try:
                send_message(sock, message, fd)
                reply, extra = recv_message(sock)
            except TimeoutError:
                raise EngineUnavailable(
                    E.ETIMEDOUT, f"the trace engine did not answer in {REPLY_TIMEOUT:.0f} s (see {rt.log})"
                ) from None
            except OSError:
                reply, extra = None, None
            if extra is not None:
                os.close(extra)
        if reply is not None:
            return reply
        if time.monotonic() > deadline:
            raise EngineUnavailable(E.ETIMEDOUT, "the trace engine did not answer")
        # The engine closed without answering: it was exiting. Start another.

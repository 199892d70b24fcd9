"""pyktrace's side of the engine: the trace file opened as ktrace(1) does, one request, one reply.

The trace file: ktrace(1)'s checks, made safe for Linux habits. FreeBSD's
ktrace(1) unlinks the old file and creates a new one before it calls
ktrace(2). Here nothing the user did not mean is destroyed: an existing
path that is a device, a FIFO, a socket or a directory is refused and left
alone, and a new file is created beside the old one under a temporary
name, for the engine to rename over it only once it has accepted the
request, so a refused request leaves the old trace as it was.

The request goes over the control socket with the file's descriptor. The
engine is started on demand, and only an engine of this installation is
used (protocol.Identity): one of another installation is asked to exit
once it traces nothing, and replaced; while it still traces, the user is
told which one it is.

Failures are raised as TraceError(errno, text), the text one line for
the command to print.
"""

from __future__ import annotations

import _socket as socket  # not socket.py, for start-up (see protocol.py)
import errno as E
import fcntl
import os
import resource
import stat
import sys
import time

from ktrace_cli.trace import protocol
from ktrace_cli.trace.protocol import (
    MAX_MESSAGE,
    EngineUnavailable,
    Identity,
    KtraceArgs,
    Reply,
    Request,
    Socket,
    peer_credentials,
    recv_line,
    send_bytes,
)  # fmt: skip
from ktrace_cli.trace.runtime import LOCK, SOCKET, Runtime, open_runtime

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from collections.abc import Callable  # loads the collections package: start-up

REPLY_TIMEOUT = 60.0  # seconds a client waits for the engine's answer
START_TIMEOUT = 10.0
RETRY_PAUSE = 0.005  # another client is starting the engine, or the old one is exiting
PR_SET_PTRACER = 0x59616D61
YAMA_SCOPE = "/proc/sys/kernel/yama/ptrace_scope"


class TraceError(Exception):
    """A request that cannot be made or was refused: errno and a one-line text."""

    def __init__(self, errno: int, text: str) -> None:
        super().__init__(text)
        self.errno = errno
        self.text = text


class ForeignEngine(EngineUnavailable):
    """The engine running for this user belongs to another installation and still traces."""


def connect(rt: Runtime) -> Socket | None:
    sock = Socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
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


def engine_alive(rt: Runtime) -> bool:
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
    """Start the ptrace engine if none holds the lock; False if another one is starting or stopping."""
    # Imported here, not at the top: a client that finds the engine
    # running (the usual case) never pays for it.
    from ktrace_cli.trace import detach

    return start_daemon(rt, lambda rt, lockfd: detach.spawn_daemon(rt, lockfd, _engine_process,
                                                                   "the trace engine"))  # fmt: skip


def _engine_process(rt: Runtime, lockfd: int, ready: int) -> int:
    """The engine's process, after the double fork: it loads the engine's modules itself.

    Not the client: its forks are then of a smaller process, and it goes
    on to exec the command with none of the engine's modules loaded.
    """
    try:
        from ktrace_cli.trace import ptrace_daemon
    except Exception as e:  # a broken installation, no descriptor left: the client says why
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        os.write(ready, f"the trace engine failed to start: {why}".encode())
        return 1
    return ptrace_daemon.engine_main(rt, lockfd, ready)


def start_daemon(rt: Runtime, spawn: Callable[[Runtime, int], None]) -> bool:
    """Run `spawn(rt, lockfd)` while holding the runtime directory's lock, as
    both engines start; False if another process holds it (one is starting
    or stopping)."""
    lockfd = rt.open(LOCK, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        spawn(rt, lockfd)
        return True
    finally:
        os.close(lockfd)


def _exchange(log: str, sock: Socket, request: Request, fd: int | None) -> Reply | None:
    # A thread stuck in uninterruptible sleep can hold a clear's reply
    # back; the user gets a message instead of a hang.
    sock.settimeout(REPLY_TIMEOUT)
    space = bytearray(MAX_MESSAGE)  # before the request: see recv_line
    # One reply parsed before the request, for the same reason: the first
    # parse's one-time allocations (the JSON decoder's, the classes') could
    # otherwise grow the heap with a brk() after the answer, in the trace.
    Reply.from_wire(Reply(renamed=True, identity=Identity.ours(), engine_pid=1).to_wire())
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


class _Reached:
    """One attempt to reach the engine."""

    __slots__ = ("sock", "log", "other")

    def __init__(self, sock: Socket | None, log: str, other: bool = False) -> None:
        self.sock = sock
        self.log = log  # the engine log's path, for messages
        self.other = other  # no socket, but an engine holds the lock (starting or exiting)


def _reach(start: bool) -> _Reached:
    """A connection to the engine, starting one if asked and none holds the lock.

    The runtime directory is closed again before anything is sent: in
    command mode the trace begins at the engine's answer, and nothing of
    the client's own is left to close but the socket.
    """
    rt = open_runtime()
    try:
        sock = connect(rt)
        if sock is not None:
            return _Reached(sock, rt.log)
        other = not _start_engine(rt) if start else engine_alive(rt)
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


def allow_engine(engine_pid: int) -> None:
    """Yama ptrace_scope 1 lets only ancestors trace us unless we name the tracer."""
    if os.getuid() == 0:
        return
    try:
        with open(YAMA_SCOPE) as f:
            scope = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return
    if scope == 1:
        from ktrace_cli.trace.ptrace import prctl  # lazy: start-up (ctypes only when needed)

        prctl(PR_SET_PTRACER, engine_pid)


def ktrace(ops: int, facs: int, pid: int, fd: int | None, *, command: bool, seccomp: str,
           genio_size: int, version: int, rename: list[object] | None, start: bool) -> Reply | None:  # fmt: skip
    """One ktrace(2)-like request to the engine; None if start=False and no engine runs.

    In command mode the engine is allowed to trace us (Yama) just before
    the request goes out.
    """
    message = Request("ktrace", KtraceArgs(
        ops=ops, facs=facs, pid=pid, command=command, seccomp=seccomp,
        genio_size=genio_size, header_version=version,
        fsize_limit=resource.getrlimit(resource.RLIMIT_FSIZE)[0],
        rename=tuple(rename) if rename is not None else None))  # type: ignore[arg-type]  # fmt: skip
    try:
        return call(message, fd, before_send=allow_engine if command else None, start=start)
    except OSError as e:
        raise TraceError(e.errno or E.EIO, f"trace engine: {e.strerror or e}") from None


# ----- the trace file -----

TEMP_PREFIX = ".pyktrace-"  # a new trace file's name until the engine accepts the request
TEMP_ATTEMPTS = 100


class TraceTarget:
    """The trace file of a set request, and how to undo it if the request fails.

    A new file is created beside PATH under a temporary name; the engine
    renames it over PATH once it has accepted the request (it does so while
    this process waits for the answer, so a command's trace shows no rename).
    A refused request removes the temporary file and leaves PATH as it was.
    With -a the file itself is opened; one that -a created is removed again.
    """

    def __init__(self, path: str, fd: int, dirfd: int = -1, temp: str = "", base: str = "",
                 created: bool = False) -> None:  # fmt: skip
        self.path, self.fd, self.dirfd = path, fd, dirfd
        self.temp, self.base, self.created = temp, base, created

    def rename_request(self) -> list[object] | None:
        """What the engine needs to rename the file: our directory descriptor and both names."""
        return [self.dirfd, self.temp, self.base] if self.temp else None

    def abandon(self) -> None:
        """The request failed: remove what we created, nothing else."""
        try:
            if self.temp:
                os.unlink(self.temp, dir_fd=self.dirfd)
            elif self.created:
                st, now = os.fstat(self.fd), os.lstat(self.path)
                if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
                    os.unlink(self.path)
        except OSError:
            pass
        self.close()

    def settle(self, reply: dict[str, object]) -> None:
        """The request succeeded: make sure the file has its name (an older engine did not rename)."""
        if not self.temp or reply.get("renamed"):
            return
        err = reply.get("rename_error")
        if err is None:
            try:
                os.rename(self.temp, self.base, src_dir_fd=self.dirfd, dst_dir_fd=self.dirfd)
                return
            except OSError as e:
                err = e.errno
        code = err if isinstance(err, int) and err > 0 else E.EIO
        where = os.path.join(os.path.dirname(self.path), self.temp)
        sys.stderr.write(f"pyktrace: warning: {self.path}: {os.strerror(code)}; "
                         f"the trace goes to {where}\n")  # fmt: skip

    def close(self) -> None:
        for fd in (self.fd, self.dirfd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.dirfd = -1


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise TraceError(e.errno or 0, f"{path}: {os.strerror(e.errno or 0)}") from None


def _plain(st: os.stat_result | None) -> bool:
    """Absent, a regular file, or a symbolic link (replaced, never followed)."""
    return st is None or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)


def open_trace_file(path: str, append: bool) -> TraceTarget:
    """Open the trace file for a set request with ktrace(1)'s rules; Fatal with its messages.

    Unlike FreeBSD's ktrace(1), which unlinks PATH first whatever it is, an
    existing PATH that is not a regular file or a symbolic link (a device,
    a FIFO, a socket, a directory) is refused and left alone.
    """
    if not path:
        raise TraceError(E.ENOENT, f"{path}: {os.strerror(E.ENOENT)}")
    st = _lstat(path)
    if append:
        return _open_append(path, st)
    if not _plain(st):
        raise TraceError(E.EACCES, f"{path} not regular file")
    head, base = os.path.split(path)
    if base in ("", ".", ".."):
        raise TraceError(E.EISDIR, f"{path}: {os.strerror(E.EISDIR)}")
    try:
        dirfd = os.open(head or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise TraceError(e.errno or 0, f"{path}: {os.strerror(e.errno or 0)}") from None
    try:
        if st is not None and os.geteuid() != 0 and st.st_uid != os.geteuid():
            # A sticky directory (/tmp) lets only the owner replace a file,
            # the case where FreeBSD's unlink fails: say so before tracing.
            dst = os.fstat(dirfd)
            if dst.st_mode & stat.S_ISVTX and dst.st_uid != os.geteuid():
                raise TraceError(E.EPERM, f"unlink {path}: {os.strerror(E.EPERM)}")
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        old = os.umask(0o077)
        try:
            for _ in range(TEMP_ATTEMPTS):
                temp = TEMP_PREFIX + os.urandom(6).hex()
                try:
                    fd = os.open(temp, flags, 0o666, dir_fd=dirfd)
                except FileExistsError:
                    continue
                except OSError as e:
                    raise TraceError(e.errno or 0, f"{path}: {os.strerror(e.errno or 0)}") from None
                return TraceTarget(path, fd, dirfd, temp, base)
        finally:
            os.umask(old)
        raise TraceError(E.EEXIST, f"{path}: {os.strerror(E.EEXIST)}")
    except BaseException:
        os.close(dirfd)
        raise


def _open_append(path: str, st: os.stat_result | None) -> TraceTarget:
    """-a: ktrace(1)'s owner and type checks, without opening a device or a FIFO to check it."""
    if not _plain(st):
        assert st is not None
        if st.st_uid != os.getuid():
            raise TraceError(E.EPERM, f"refuse to append to {path} not owned by you")
        raise TraceError(E.EACCES, f"{path} not regular file")
    base = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    old = os.umask(0o077)
    created = False
    try:
        try:
            if st is None:
                fd = os.open(path, base | os.O_CREAT | os.O_EXCL, 0o666)
                created = True
            else:
                fd = os.open(path, base)
        except FileExistsError:
            fd = os.open(path, base | os.O_CREAT, 0o666)
    except OSError as e:
        raise TraceError(e.errno or 0, f"{path}: {os.strerror(e.errno or 0)}") from None
    finally:
        os.umask(old)
    target = TraceTarget(path, fd, created=created)
    try:
        fst = os.fstat(fd)
    except OSError:
        fst = None
    if fst is None or fst.st_uid != os.getuid():
        target.abandon()
        raise TraceError(E.EPERM, f"refuse to append to {path} not owned by you")
    if not stat.S_ISREG(fst.st_mode):
        target.abandon()
        raise TraceError(E.EACCES, f"{path} not regular file")
    return target


def open_clear_file(path: str) -> int:
    """-c -f: a handle on the file to name it to the engine, never opening its contents.

    O_PATH neither blocks on a FIFO nor has a device's open side effects;
    anything but a regular file is refused with EACCES, as FreeBSD's
    ktrace(2) refuses it.
    """
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise TraceError(e.errno or 0, f"{path}: {os.strerror(e.errno or 0)}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        err = E.ELOOP if stat.S_ISLNK(mode) else E.EACCES
        raise TraceError(err, f"{path}: {os.strerror(err)}")
    return fd

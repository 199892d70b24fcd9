"""The control protocol's messages: typed, versioned requests and replies and their JSON form.

A message is one line of JSON (the trace file's descriptor rides along with
SCM_RIGHTS). Every request and reply of protocol 2 carries the sender's
identity: the protocol number, the package release and the directory the
package was loaded from, so a client talks only to an engine of its own
installation. Protocol 1 (the unversioned messages of earlier releases)
is still understood for `status` and `shutdown`, which any installation
may ask of any engine; its `ktrace` is answered with a mismatch, never
carried out. A protocol-2 `ktrace` keeps its parameters under "args", so
an engine of protocol 1 finds no "ops" in it and refuses it unperformed.
"""

from __future__ import annotations

# The C socket type and constants: socket.py's enum conversions and selectors
# would cost pyktrace's start-up about as much as the rest of this module.
# The engine's socket.socket objects are instances of it too.
import _socket as socket
import errno as E
import os
import sys

from ktrace_cli import __version__
from ktrace_cli.format import constants as K
from ktrace_cli.trace import fastjson
from ktrace_cli.value import Value

PROTOCOL = 2
LEGACY_PROTOCOL = 1
MAX_MESSAGE = 1 << 16
MAX_DEPTH = 3  # message -> args or status -> one list: deeper is never valid
OPS = ("ktrace", "status", "shutdown")
ANY_VERSION_OPS = ("status", "shutdown")  # carry no parameters: every version may ask
SECCOMP_MODES = ("auto", "on", "off")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
# The reply to a request from another installation (the client explains it).
MISMATCH = E.EPROTO
STATUS_FIELDS = ("pid", "procs", "threads", "files", "awaiting", "pending", "held_replies")


# C ints as bytes, read and written with int.from_bytes/to_bytes: struct and array
# (array loads the collections package) cost the client's start-up.
C_INT = 4
PEERCRED_FIELDS = 3  # struct ucred: pid, uid, gid


class Socket(socket.socket):
    """A stream socket with what both sides use of socket.socket (accept, closed on leaving a
    `with` block), without loading socket.py."""

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def accept(self) -> tuple[Socket, object]:
        """accept4(SOCK_CLOEXEC), as socket.socket.accept does; the connection as a Socket."""
        fd, addr = self._accept()  # type: ignore[attr-defined]  # the C type's method socket.py calls
        return Socket(fileno=fd), addr


class ProtocolError(ValueError):
    """A message that is not valid JSON of this protocol."""


class EngineUnavailable(OSError):
    """The engine could not be reached or started."""


class Identity(Value):
    """Who speaks: protocol number, release, and the installation's package directory."""

    __slots__ = ("protocol", "release", "install")
    protocol: int
    release: str
    install: str

    def __init__(self, protocol: int, release: str, install: str) -> None:
        self._set(protocol=protocol, release=release, install=install)

    @classmethod
    def ours(cls) -> Identity:
        return cls(PROTOCOL, __version__, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def describe(self) -> str:
        if self.protocol < PROTOCOL:
            return f"an older pyktrace (protocol {self.protocol})"
        return f"pyktrace {self.release} from {self.install} (protocol {self.protocol})"


LEGACY = Identity(LEGACY_PROTOCOL, "", "")


class KtraceArgs(Value):
    """ktrace(2)'s arguments, and what ktrace(1) captures with them."""

    __slots__ = ("ops", "facs", "pid", "command", "seccomp", "genio_size", "header_version",
                 "fsize_limit", "rename")  # fmt: skip
    ops: int
    facs: int
    pid: int
    command: bool
    seccomp: str  # command mode: auto, on, off
    genio_size: int
    header_version: int
    fsize_limit: int  # the client's RLIMIT_FSIZE (RLIM_INFINITY = -1)
    # (dirfd in the client, temporary name, final name): the new trace file,
    # renamed by the engine once the request is accepted (ops.rename_accepted).
    rename: tuple[int, str, str] | None

    def __init__(self, ops: int, facs: int, pid: int, command: bool = False, seccomp: str = "auto",
                 genio_size: int = K.GENIO_SIZE_DEFAULT, header_version: int = K.KTR_VERSION1,
                 fsize_limit: int = -1, rename: tuple[int, str, str] | None = None) -> None:  # fmt: skip
        self._set(ops=ops, facs=facs, pid=pid, command=command, seccomp=seccomp, genio_size=genio_size,
                  header_version=header_version, fsize_limit=fsize_limit, rename=rename)  # fmt: skip


class Request(Value):
    __slots__ = ("op", "args", "identity")
    op: str
    args: KtraceArgs | None
    identity: Identity

    def __init__(self, op: str, args: KtraceArgs | None = None, identity: Identity | None = None) -> None:
        self._set(op=op, args=args, identity=Identity.ours() if identity is None else identity)

    def to_wire(self) -> bytes:
        msg: dict[str, object] = {"protocol": self.identity.protocol, "release": self.identity.release,
                                  "install": self.identity.install, "op": self.op}  # fmt: skip
        if self.args is not None:
            args = self.args.as_dict()
            if self.args.rename is None:
                del args["rename"]
            else:
                args["rename"] = list(self.args.rename)
            msg["args"] = args
        return _dump(msg)

    @classmethod
    def from_wire(cls, data: bytes) -> Request:
        msg = _load(data)
        op = msg.get("op")
        if op not in OPS:
            raise ProtocolError(f"unknown op {op!r}")
        identity = _identity(msg)
        if op != "ktrace":
            return cls(str(op), None, identity)
        if identity.protocol < PROTOCOL:
            return cls("ktrace", None, identity)  # answered with a mismatch
        a = _dict(msg, "args")
        args = KtraceArgs(
            ops=_int(a, "ops"), facs=_int(a, "facs"), pid=_int(a, "pid", -0x7FFFFFFF, 0x7FFFFFFF),
            command=_bool(a, "command"), seccomp=_choice(a, "seccomp", SECCOMP_MODES),
            genio_size=_int(a, "genio_size", 0), header_version=_int(a, "header_version", 0, 1),
            fsize_limit=_int(a, "fsize_limit", -1), rename=_rename(a),
        )  # fmt: skip
        return cls("ktrace", args, identity)


class Status(Value):
    """What the engine holds (for tests, and for a user asking why it still runs)."""

    __slots__ = STATUS_FIELDS
    pid: int
    procs: tuple[int, ...]
    threads: tuple[int, ...]
    files: int
    awaiting: tuple[int, ...]
    pending: tuple[int, ...]
    held_replies: int

    def __init__(self, pid: int, procs: tuple[int, ...], threads: tuple[int, ...], files: int,
                 awaiting: tuple[int, ...], pending: tuple[int, ...], held_replies: int) -> None:  # fmt: skip
        self._set(pid=pid, procs=procs, threads=threads, files=files, awaiting=awaiting, pending=pending,
                  held_replies=held_replies)  # fmt: skip


class Reply(Value):
    """ktrace(2)'s result (error 0 or an errno) and what goes with it."""

    __slots__ = ("error", "why", "message", "filter", "status", "itself", "rename_error", "renamed",
                 "identity", "engine_pid", "busy")  # fmt: skip
    error: int
    why: str | None  # the cause Linux hides behind an errno, for the user
    message: str | None  # for the log and for developers
    filter: tuple[int, ...] | None  # command mode: the seccomp filter to install
    status: Status | None
    itself: str | None  # the request named the engine itself: the whole message
    rename_error: int | None  # the new trace file could not be given its name
    renamed: bool  # the engine gave the new trace file its name
    identity: Identity | None  # None: an engine of protocol 1 answered
    engine_pid: int
    busy: bool  # with MISMATCH: the engine still traces something

    def __init__(self, error: int = 0, why: str | None = None, message: str | None = None,
                 filter: tuple[int, ...] | None = None, status: Status | None = None,
                 itself: str | None = None, rename_error: int | None = None, renamed: bool = False,
                 identity: Identity | None = None, engine_pid: int = 0, busy: bool = False) -> None:  # fmt: skip
        self._set(error=error, why=why, message=message, filter=filter, status=status, itself=itself,
                  rename_error=rename_error, renamed=renamed, identity=identity, engine_pid=engine_pid,
                  busy=busy)  # fmt: skip

    @classmethod
    def from_result(cls, result: dict[str, object]) -> Reply:
        """The engine's result dict (ops.apply) as a reply of this engine."""
        return cls._parse(result, Identity.ours())

    def result(self) -> dict[str, object]:
        """The engine's result as ops.apply made it (the reply without the identity)."""
        msg: dict[str, object] = {"error": self.error}
        for key, value in (("why", self.why), ("message", self.message), ("self", self.itself),
                           ("rename_error", self.rename_error)):  # fmt: skip
            if value is not None:
                msg[key] = value
        if self.renamed:
            msg["renamed"] = True
        if self.filter is not None:
            msg["filter"] = list(self.filter)
        if self.status is not None:
            msg.update({k: list(v) if isinstance(v, tuple) else v for k, v in self.status.as_dict().items()})
        return msg

    def to_wire(self, legacy: bool = False) -> bytes:
        msg = self.result()
        if not legacy:
            ident = self.identity or Identity.ours()
            msg.update(protocol=ident.protocol, release=ident.release, install=ident.install,
                       engine_pid=self.engine_pid or os.getpid(), busy=self.busy)  # fmt: skip
        return _dump(msg)

    @classmethod
    def from_wire(cls, data: bytes) -> Reply:
        msg = _load(data)
        return cls._parse(msg, _identity(msg) if "protocol" in msg else None)

    @classmethod
    def _parse(cls, msg: dict[str, object], identity: Identity | None) -> Reply:
        status = None
        if "procs" in msg:
            status = Status(
                pid=_int(msg, "pid"), procs=_ints(msg, "procs"), threads=_ints(msg, "threads"),
                files=_int(msg, "files", 0), awaiting=_ints(msg, "awaiting"),
                pending=_ints(msg, "pending"), held_replies=_int(msg, "held_replies", 0),
            )  # fmt: skip
        return cls(
            error=_int(msg, "error", 0, 4095),
            why=_opt_str(msg, "why"), message=_opt_str(msg, "message"),
            filter=_ints(msg, "filter") if "filter" in msg else None,
            status=status, itself=_opt_str(msg, "self"),
            rename_error=_int(msg, "rename_error", 0, 4095) if "rename_error" in msg else None,
            renamed=_bool(msg, "renamed") if "renamed" in msg else False, identity=identity,
            engine_pid=_int(msg, "engine_pid", 0) if "engine_pid" in msg else 0,
            busy=_bool(msg, "busy") if "busy" in msg else False,
        )  # fmt: skip


# ----- JSON (json's own text, without importing json: trace/fastjson.py), its types and depth checked -----


def _dump(msg: dict[str, object]) -> bytes:
    return fastjson.dumps(msg, fastjson.COMPACT).encode() + b"\n"


def _load(data: bytes) -> dict[str, object]:
    if len(data) > MAX_MESSAGE:
        raise ProtocolError("message too long")
    if _depth(data) > MAX_DEPTH:
        raise ProtocolError("message nested too deeply")
    try:
        msg = fastjson.loads(data)
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"not JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("not a JSON object")
    return msg


def _depth(data: bytes) -> int:
    """The deepest nesting of [ and { outside strings, found before parsing anything."""
    depth = deepest = 0
    in_string = escaped = False
    for c in data:
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:  # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif c in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _identity(msg: dict[str, object]) -> Identity:
    if "protocol" not in msg:
        return LEGACY
    return Identity(_int(msg, "protocol", 1), _str(msg, "release"), _str(msg, "install"))


def _dict(msg: dict[str, object], key: str) -> dict[str, object]:
    value = msg.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"{key}: not an object")
    return value


def _int(msg: dict[str, object], key: str, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int:
    value = msg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError(f"{key}: not an integer in [{lo}, {hi}]")
    return value


def _ints(msg: dict[str, object], key: str) -> tuple[int, ...]:
    value = msg.get(key)
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise ProtocolError(f"{key}: not a list of integers")
    return tuple(value)


def _bool(msg: dict[str, object], key: str) -> bool:
    value = msg.get(key)
    if not isinstance(value, bool):
        raise ProtocolError(f"{key}: not a boolean")
    return value


def _str(msg: dict[str, object], key: str) -> str:
    value = msg.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"{key}: not a string")
    return value


def _opt_str(msg: dict[str, object], key: str) -> str | None:
    return _str(msg, key) if msg.get(key) is not None else None


def _rename(msg: dict[str, object]) -> tuple[int, str, str] | None:
    value = msg.get("rename")
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 3 or isinstance(value[0], bool)
            or not isinstance(value[0], int) or not all(isinstance(v, str) for v in value[1:])):  # fmt: skip
        raise ProtocolError("rename: not [dirfd, name, name]")
    return value[0], value[1], value[2]


def _choice(msg: dict[str, object], key: str, choices: tuple[str, ...]) -> str:
    value = _str(msg, key)
    if value not in choices:
        raise ProtocolError(f"{key}: not one of {', '.join(choices)}")
    return value


# ----- the socket: credentials, descriptors, framing -----


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED_FIELDS * C_INT)
    pid, uid, gid = _c_ints(raw)
    return pid, uid, gid


def _c_ints(raw: bytes) -> list[int]:
    """The C ints in `raw` (a partial one at the end ignored)."""
    return [int.from_bytes(raw[i : i + C_INT], sys.byteorder, signed=True)
            for i in range(0, len(raw) - C_INT + 1, C_INT)]  # fmt: skip


def send_bytes(sock: socket.socket, data: bytes, fd: int | None = None) -> None:
    """Send a message (and a descriptor); a closed peer is EPIPE, never SIGPIPE, whoever calls."""
    if fd is None:
        sock.sendall(data, socket.MSG_NOSIGNAL)
        return
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd.to_bytes(C_INT, sys.byteorder, signed=True))]
    sent = sock.sendmsg([data], anc, socket.MSG_NOSIGNAL)
    if sent < len(data):
        sock.sendall(data[sent:], socket.MSG_NOSIGNAL)


def received_fd(anc: list[tuple[int, int, bytes]], keep: int | None) -> int | None:
    """The first descriptor passed with SCM_RIGHTS (if `keep` is None); every other one closed."""
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            for fd in _c_ints(payload):
                if keep is None:
                    keep = fd
                else:
                    os.close(fd)
    return keep


def recv_line(sock: socket.socket, space: bytearray | None = None) -> tuple[bytes | None, int | None]:
    """One newline-terminated message (blocking) and a passed descriptor, if any.

    `space`, allocated by the caller before it sent its request, receives
    the data: in command mode the trace begins at the engine's answer, and
    a fresh 64 KiB buffer then could cost the trace a brk() of pyktrace's.
    """
    if space is None:
        space = bytearray(MAX_MESSAGE)
    view = memoryview(space)
    got = 0
    fd: int | None = None
    while got < len(space) and not (got and space[got - 1] == 0x0A):
        n, anc, _flags, _addr = sock.recvmsg_into([view[got:]], socket.CMSG_SPACE(4))
        fd = received_fd(anc, fd)
        if not n:
            break
        got += n
    view.release()
    return (bytes(space[:got]) if got and space[got - 1] == 0x0A else None), fd

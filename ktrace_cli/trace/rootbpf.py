"""Which of a user's processes root's bpf engine traces: FreeBSD's KTRFAC_ROOT across engines.

On FreeBSD a process root set tracing on carries KTRFAC_ROOT, and ktrace(2)
by anyone else on it fails with EPERM. The ptrace engine's tracing shows in
/proc (TracerPid, an engine of another uid: diagnose.is_foreign_engine);
the bpf engine's tracing shows nowhere a user can look, since its table is
a BPF map. So root's bpf engine answers on an abstract unix socket named
after its pid, which any local user (of its network namespace) may
connect to: it sends, unasked, the pids it traces among the processes of
the caller's uid, and closes. It reads nothing from the caller, so no
caller can hold up its drainer. A user's engine asks it before it sets or
clears tracing on a process it does not trace itself (docs/DESIGN.md,
"eBPF backend").

The caller finds the engines' sockets in /proc/net/unix (one read; the
usual case, no engine, costs nothing more), and checks that the peer of
the socket is the process its name says and root (SO_PEERCRED): a name
squatted by another user is ignored.
"""

from __future__ import annotations

import _socket as socket  # the C module: socket.py loads enum and selectors (engine start-up)
import os

from ktrace_cli.trace import fastjson
from ktrace_cli.trace.protocol import Socket

ROOT = 0
TIMEOUT = 0.5  # seconds a caller waits for one engine's answer
UCRED = 12  # struct ucred: pid, uid, gid
MAX_ANSWER = 1 << 20
NAME_PREFIX = b"pyktrace-bpf-traced."  # then the engine's pid
UNIX_TABLE = "/proc/net/unix"  # every unix socket of our network namespace, abstract names with "@"


def address(engine_pid: int) -> bytes:
    """The abstract socket address of the engine with this pid."""
    return b"\0" + NAME_PREFIX + str(engine_pid).encode()


def listen(engine_pid: int) -> Socket:
    """The engine's socket (non-blocking); OSError (EADDRINUSE) if the name is taken."""
    sock = Socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    try:
        sock.bind(address(engine_pid))
        sock.listen(16)
    except OSError:
        sock.close()
        raise
    return sock


def owner_uid(pid: int) -> int | None:
    """The real uid of `pid` (/proc/PID/status), None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def answer(listener: Socket, traced: list[int]) -> None:
    """Serve each waiting caller: the traced pids that belong to its uid (all of them for root)."""
    while True:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        with conn:
            try:
                cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED)
                uid = int.from_bytes(cred[4:8], "little")
                mine = [p for p in traced if uid == ROOT or owner_uid(p) == uid]
                conn.send(fastjson.dumps(mine).encode(), socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
            except OSError:
                pass  # a caller gone or not reading: its loss


def engines() -> list[int]:
    """The pids in the names of the listening sockets of bpf engines (/proc/net/unix, one read)."""
    prefix = b"@" + NAME_PREFIX  # how the table shows an abstract name
    out = []
    try:
        with open(UNIX_TABLE, "rb") as f:
            table = f.read()
    except OSError:
        return []
    if prefix not in table:
        return []  # the usual case: no root bpf engine here
    for line in table.splitlines()[1:]:
        path = line.split()[-1]
        if path.startswith(prefix) and path[len(prefix) :].isdigit():
            out.append(int(path[len(prefix) :]))
    return sorted(set(out))


def _ask(engine_pid: int) -> list[int]:
    with Socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(address(engine_pid))
        cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED)
        pid, uid = int.from_bytes(cred[0:4], "little"), int.from_bytes(cred[4:8], "little")
        if pid != engine_pid or uid != ROOT:
            return []  # not that engine: someone took its name
        data = b""
        while len(data) < MAX_ANSWER:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    got = fastjson.loads(data)
    return [int(p) for p in got] if isinstance(got, list) else []


def traced_by_root() -> dict[int, int]:
    """The caller's processes root's bpf engines trace: pid -> engine pid (best effort)."""
    out: dict[int, int] = {}
    for engine in engines():
        try:
            for pid in _ask(engine):
                out.setdefault(pid, engine)
        except (OSError, ValueError):
            continue  # exiting, or too old to answer: it holds nothing we can see
    return out


class Holders:
    """Per request: which engine of another user holds a process, asked once."""

    def __init__(self) -> None:
        self._bpf: dict[int, int] | None = None

    def root_bpf(self, pid: int) -> int:
        """The pid of root's bpf engine tracing `pid`, or 0 (always 0 when we are root)."""
        if os.geteuid() == ROOT:
            return 0
        if self._bpf is None:
            self._bpf = traced_by_root()
        return self._bpf.get(pid, 0)

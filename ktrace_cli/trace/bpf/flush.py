"""A reader's request to its own bpf engine: every record made so far into the files.

The engine drains its ring asynchronously, so the end of a command's trace
may still be on its way when the command's parent starts a reader
(docs/DESIGN.md, "The daemon and the client"). pykdump calls
before_reading() first. This module imports nothing of ktrace_cli and only
the standard library's socket, and that only when an engine's socket
exists: with no engine running a reader pays a few stat(2) calls.
"""

from __future__ import annotations

import os

# Where the caller's bpf engine listens, in the order runtime.candidates()
# tries its directories (tests/unit holds them to runtime.py's and wire.py's
# names): spelt out because importing those modules costs more than the stats.
# Root's second place is /run; any other user's is /run/user/UID ({uid}).
SOCKETS = ("$XDG_RUNTIME_DIR/pyktrace/bpf/engine.sock", "/run/pyktrace/bpf/engine.sock",
           "/tmp/pyktrace-{uid}/bpf/engine.sock", "$HOME/.cache/pyktrace/bpf/engine.sock")  # fmt: skip
USER_SOCKET = "/run/user/{uid}/pyktrace/bpf/engine.sock"
REQUEST = b'{"op": "flush"}\n'  # wire.message({"op": "flush"})
TIMEOUT = 1.0  # seconds a reader waits for the flush before reading anyway
ROOT = 0
UCRED_UID = slice(4, 8)  # struct ucred: pid, uid, gid (ints)
UCRED_SIZE = 12


def engine_sockets() -> list[str]:
    """The paths at which the caller's bpf engine may listen (a place whose variable is unset: skipped)."""
    uid = os.getuid()
    places = [_expand(x.format(uid=uid)) for x in SOCKETS]
    if uid != ROOT:
        places[1] = USER_SOCKET.format(uid=uid)
        if places[0] == places[1]:
            del places[1]  # runtime.candidates() tries it once
    return [p for p in places if p is not None]


def _expand(path: str) -> str | None:
    """A leading $VARIABLE replaced by its value, None if it is unset (os.path.expandvars
    would do it, but it imports re: a tenth of a plain pykdump run's start-up)."""
    if not path.startswith("$"):
        return path
    name, _, rest = path[1:].partition("/")
    value = os.environ.get(name)
    return None if value is None else f"{value}/{rest}"


def before_reading() -> None:
    """Ask each running bpf engine to flush, best effort: it answers once every
    CPU's batch is in the ring and the ring is in the files.

    Root and holders of CAP_BPF and CAP_PERFMON run one (each their own):
    only an engine running as the caller's uid is asked, and never for
    more than TIMEOUT.
    """
    uid = os.getuid()
    found = [p for p in engine_sockets() if os.path.exists(p)]
    if not found:
        return
    # Lazy (only when an engine may be running), and the C module: socket.py
    # would load enum and selectors, a tenth of a plain pykdump's start-up.
    import _socket as socket

    for path in dict.fromkeys(found):
        sock = None
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            sock.settimeout(TIMEOUT)
            sock.connect(path)
            cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED_SIZE)
            if int.from_bytes(cred[UCRED_UID], "little") != uid:
                continue  # not the caller's engine: nothing to ask of it
            sock.sendall(REQUEST, socket.MSG_NOSIGNAL)
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
        except OSError:
            pass  # gone, busy or refused: read what is there, as before
        finally:
            if sock is not None:
                sock.close()

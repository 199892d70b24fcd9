"""Starting a daemon: double-forked from its first client, detached, named in ps.

Both engines (ptrace's and bpf's) start this way. Nothing here imports
logging: the ptrace engine's start-up does without it (trace/englog.py).
"""

from __future__ import annotations

import _signal  # not signal.py: its enum conversions cost the client's start-up
import errno as E
import os
import resource

from ktrace_cli.trace.protocol import EngineUnavailable
from ktrace_cli.trace.runtime import Runtime

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from collections.abc import Callable

PR_SET_NAME = 15
STAT_ARG_START = 47  # /proc/PID/stat fields (0-based) of argv's bounds, after the comm


def spawn_daemon(rt: Runtime, lockfd: int, main: Callable[[Runtime, int, int], int], what: str) -> None:
    """Double-fork `main(rt, lockfd, ready)`, setsid'd and never our child, with no descriptor
    but those three; return once it writes "ok" on `ready`, or raise EngineUnavailable with
    what it wrote instead.

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
            # Before `main` loads anything: the client's descriptors (its
            # trace file among them) are not the daemon's, and under a low
            # descriptor limit the imports need the room.
            close_other_fds({lockfd, w, rt.fd})
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
    import ctypes  # lazy: start-up (the client that spawns a daemon never needs it)

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


def settle_daemon(ignored: tuple[int, ...]) -> None:
    """What every engine does first in its own process: stdio on /dev/null, a private
    umask, the root directory as cwd, `ignored` signals ignored, and the file-size
    limit raised to the hard one (the client that started it may have had a low
    soft limit; each request brings its own, so its trace files would otherwise
    fail with EFBIG for good)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.umask(0o077)
    os.chdir("/")
    for sig in ignored:
        _signal.signal(sig, _signal.SIG_IGN)
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    except (OSError, ValueError):
        pass

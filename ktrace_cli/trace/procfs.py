"""Process facts read from /proc that the ktrace(2) operations need, whatever the capture backend."""

from __future__ import annotations

import os

from ktrace_cli.trace.memory import RESOURCE_ERRNOS
from ktrace_cli.trace.tracee import list_tasks


def state(pid: int) -> str | None:
    """The process's state letter from /proc/PID/stat, None if there is no such process.

    Running out of descriptors is not "no such process": it is raised.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError as e:
        if e.errno in RESOURCE_ERRNOS:
            raise
        return None
    except IndexError:
        return None


def alive(pid: int) -> bool:
    """Whether pfind() would find `pid`: it exists and is not a zombie.

    A thread-group leader that called pthread_exit() shows as a zombie
    while its other threads run; the process is alive then.
    """
    st = state(pid)
    if st is None:
        return False
    return st not in ("Z", "X") or len(list_tasks(pid)) > 1


def roots(pid: int) -> list[int]:
    """The processes a request names: one pid, or every member of group -pid."""
    if pid > 0:
        return [pid] if alive(pid) else []
    roots = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getpgid(int(name)) == -pid:
                    roots.append(int(name))
            except OSError:
                pass
    return sorted(roots)


def children(pid: int) -> list[int]:
    """The current children of every thread of `pid` (/proc/PID/task/TID/children)."""
    out: list[int] = []
    for tid in list_tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(x) for x in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def fdtable(pid: int) -> bytes:
    """`N` TAB target LF for each open descriptor of `pid`, by number (targets as the kernel gives them).

    A descriptor closed while the directory is read is left out.
    """
    base = f"/proc/{pid}/fd"
    try:
        names = os.listdir(base)
    except OSError as e:
        if e.errno in RESOURCE_ERRNOS:
            raise
        return b""
    out = []
    for fd in sorted(int(n) for n in names if n.isdigit()):
        try:
            target = os.readlink(f"{base}/{fd}".encode())
        except OSError:
            continue
        out.append(b"%d\t%s\n" % (fd, target))
    return b"".join(out)


def fd_inode(pid: int, fd: int, kind: bytes) -> int:
    """The inode number /proc/PID/fd/FD names for a `kind` (b"pipe", b"socket") descriptor, 0 if it names none.

    The target reads `pipe:[N]` or `socket:[N]`; a descriptor closed (or
    replaced by something else) since the call is not that kind, and gives 0.
    """
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}".encode())
    except OSError:
        return 0
    head = kind + b":["
    if not (target.startswith(head) and target.endswith(b"]")):
        return 0
    number = target[len(head) : -1]
    return int(number) if number.isdigit() else 0

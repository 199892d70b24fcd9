"""Why the kernel refused to let the engine trace a process: one line for the user after EPERM.

FreeBSD's ktrace(1) only says "Operation not permitted"; on Linux the causes
are many and invisible (another tracer, Yama, a container's capabilities,
credentials, dumpability), so the engine names the one that applies.
"""

from __future__ import annotations

import os

from ktrace_cli.trace import rootbpf

CAP_SYS_PTRACE = 19
ROOT = 0
ENGINE_COMM = "pyktrace-engine"


def status_fields(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict of its fields; empty if the process is gone."""
    out: dict[str, str] = {}
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                key, _, value = line.decode("utf-8", "replace").partition(":")
                out[key] = value.strip()
    except OSError:
        pass
    return out


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().decode("utf-8", "replace").rstrip("\n")
    except OSError:
        return "?"


def _ids(fields: dict[str, str], key: str) -> list[int]:
    try:
        return [int(x) for x in fields.get(key, "").split()]
    except ValueError:
        return []


def has_cap_sys_ptrace() -> bool:
    try:
        eff = int(status_fields(os.getpid()).get("CapEff", "0"), 16)
    except ValueError:
        return False
    return bool(eff >> CAP_SYS_PTRACE & 1)


def yama_scope() -> int:
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def tracer_of(pid: int) -> int:
    try:
        return int(status_fields(pid).get("TracerPid", "0"))
    except ValueError:
        return 0


def is_foreign_engine(tracer: int) -> bool:
    """Whether `tracer` is another user's trace engine (root's, typically)."""
    return comm(tracer) == ENGINE_COMM and _owner(tracer) != os.getuid()


def _owner(pid: int) -> int:
    uids = _ids(status_fields(pid), "Uid")
    return uids[0] if uids else -1


def can_debug(pid: int) -> bool:
    """The kernel's ptrace-access rule as far as /proc shows it (p_candebug's twin).

    Root with CAP_SYS_PTRACE may debug anyone; others need every uid and gid of
    the target to be theirs, and the target dumpable (a non-dumpable process's
    /proc directory belongs to root).
    """
    if os.geteuid() == 0 and has_cap_sys_ptrace():
        return True
    fields = status_fields(pid)
    if not fields:
        return False
    uid, gid = os.getuid(), os.getgid()
    if any(u != uid for u in _ids(fields, "Uid")) or any(g != gid for g in _ids(fields, "Gid")):
        return False
    try:
        return os.stat(f"/proc/{pid}").st_uid == uid
    except OSError:
        return False


def why_credentials(pid: int, fields: dict[str, str] | None = None) -> str | None:
    """FreeBSD's rule for a caller who is not root: the reason it may not trace `pid`
    (another user's, set-id, not dumpable), or None if its credentials are the caller's
    or it is gone (the caller then finds nothing to trace)."""
    fields = status_fields(pid) if fields is None else fields
    if not fields:
        return None
    uids, gids = _ids(fields, "Uid"), _ids(fields, "Gid")
    if any(u != os.getuid() for u in uids) or any(g != os.getgid() for g in gids):
        owner = uids[0] if uids else -1
        if len(set(uids)) > 1 or len(set(gids)) > 1:
            return f"pid {pid} has changed its user or group ids (set-user-ID or set-group-ID); only root may trace it"
        return f"pid {pid} belongs to uid {owner}, not to you (uid {os.getuid()}); only root may trace it"
    try:
        dumpable = os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except OSError:
        dumpable = True
    if not dumpable:
        return f"pid {pid} is not dumpable (prctl PR_SET_DUMPABLE 0, or it changed credentials)"
    return None


def held_by(pid: int, uid: int, engine: int) -> str:
    """The line for a process another user's engine traces (FreeBSD's KTRFAC_ROOT)."""
    return f"pid {pid} is traced by the trace engine of uid {uid} (pid {engine}); only that user can change its tracing"


def why_eperm(pid: int, engine_pid: int | None = None, holders: rootbpf.Holders | None = None) -> str:
    """One line naming the reason the engine may not trace `pid`."""
    me = engine_pid or os.getpid()
    fields = status_fields(pid)
    if not fields:
        return f"pid {pid} has exited"
    tracer = tracer_of(pid)
    if tracer and tracer != me:
        if is_foreign_engine(tracer):
            return held_by(pid, _owner(tracer), tracer)
        return f"pid {pid} is already traced by pid {tracer} ({comm(tracer)}); a process can have only one tracer"
    engine = (holders or rootbpf.Holders()).root_bpf(pid)
    if engine:
        return held_by(pid, ROOT, engine)
    root = os.geteuid() == 0
    if root and not has_cap_sys_ptrace():
        return "the trace engine lacks CAP_SYS_PTRACE (a container started without it?)"
    why = None if root else why_credentials(pid, fields)
    if why:
        return why
    scope = yama_scope()
    if scope == 1 and not root:
        return (f"kernel.yama.ptrace_scope is 1: only a process's ancestors may trace it, "
                f"and the trace engine is not an ancestor of pid {pid}")  # fmt: skip
    if scope >= 2:
        return f"kernel.yama.ptrace_scope is {scope}: attaching needs CAP_SYS_PTRACE" + (
            "" if scope == 2 else " and is disabled until reboot"
        )
    return f"the kernel refused to let the trace engine trace pid {pid}"

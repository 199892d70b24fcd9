"""The one-line EPERM diagnoses, for causes this machine cannot produce for real.

Yama is absent here and the tests run as root with CAP_SYS_PTRACE, so the
kernel facts are substituted; the other causes are covered on real
processes in tests/integration/test_trace_privileges.py.
"""

from __future__ import annotations

import os

import pytest

from ktrace_cli.trace import diagnose as D


def fake(monkeypatch: pytest.MonkeyPatch, *, euid: int = 1000, cap: bool = False, scope: int = 0,
         uid: int = 1000, gid: int = 1000, owner_of_proc: int = 1000, tracer: int = 0) -> None:  # fmt: skip
    fields = {"Uid": f"{uid} {uid} {uid} {uid}", "Gid": f"{gid} {gid} {gid} {gid}", "TracerPid": str(tracer)}
    monkeypatch.setattr(D, "status_fields", lambda pid: dict(fields))
    monkeypatch.setattr(D, "has_cap_sys_ptrace", lambda: cap)
    monkeypatch.setattr(D, "yama_scope", lambda: scope)
    monkeypatch.setattr(D, "comm", lambda pid: "gdb")
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    monkeypatch.setattr(os, "getgid", lambda: 1000)

    class St:
        st_uid = owner_of_proc

    monkeypatch.setattr(os, "stat", lambda path: St())


def test_yama_scope_one(monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, scope=1)
    assert D.why_eperm(42, engine_pid=7) == (
        "kernel.yama.ptrace_scope is 1: only a process's ancestors may trace it, "
        "and the trace engine is not an ancestor of pid 42"
    )


@pytest.mark.parametrize(("scope", "tail"), [(2, ""), (3, " and is disabled until reboot")])
def test_yama_scope_two_and_three(monkeypatch: pytest.MonkeyPatch, scope: int, tail: str) -> None:
    fake(monkeypatch, scope=scope)
    assert D.why_eperm(42, engine_pid=7) == f"kernel.yama.ptrace_scope is {scope}: attaching needs CAP_SYS_PTRACE{tail}"


def test_root_without_cap_sys_ptrace(monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, euid=0, cap=False, uid=0, gid=0)
    assert D.why_eperm(42, engine_pid=7) == "the trace engine lacks CAP_SYS_PTRACE (a container started without it?)"


def test_not_dumpable(monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, owner_of_proc=0)  # /proc/PID belongs to root when dumpable is 0
    assert D.why_eperm(42, engine_pid=7) == (
        "pid 42 is not dumpable (prctl PR_SET_DUMPABLE 0, or it changed credentials)"
    )


def test_already_traced_names_the_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, tracer=99)
    assert D.why_eperm(42, engine_pid=7) == "pid 42 is already traced by pid 99 (gdb); a process can have only one tracer"


def test_set_id_process(monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch)
    monkeypatch.setattr(D, "status_fields", lambda pid: {"Uid": "1000 0 0 0", "Gid": "1000 1000 1000 1000", "TracerPid": "0"})
    assert D.why_eperm(42, engine_pid=7) == (
        "pid 42 has changed its user or group ids (set-user-ID or set-group-ID); only root may trace it"
    )

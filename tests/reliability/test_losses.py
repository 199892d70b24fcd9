"""The lost-record checker itself, on hand-built traces (including a reused pid)."""

from __future__ import annotations

from ktrace_cli.format.records import ProcCtor, ProcDtor, Syscall, Sysret
from ktrace_cli.format.writer import make_record
from tests.reliability.loads import losses


def life(pid: int, *, ret: bool = True) -> list:
    recs = [make_record(ProcCtor(0x203), pid=pid), make_record(Syscall(0, (0, 0, 0)), pid=pid)]
    if ret:
        recs.append(make_record(Sysret(0, 0, 1), pid=pid))
    return [*recs, make_record(Syscall(231, (0,)), pid=pid), make_record(ProcDtor(), pid=pid)]


def test_a_reused_pid_is_a_new_life() -> None:
    assert losses(life(300) + life(301) + life(300)) == []


def test_a_missing_ret_is_found_in_either_life() -> None:
    assert losses(life(300) + life(300, ret=False)) == ["tid 300: CALL read has no RET"]


def test_a_missing_procdtor_is_found() -> None:
    assert losses(life(300)[:-1]) == ["pid 300: 0 PROCDTOR, last record type 1"]

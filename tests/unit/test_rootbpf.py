"""Root's bpf engine telling a user's engine which of its processes it traces (trace/rootbpf.py)."""

from __future__ import annotations

import json
import os
import select
import socket
import threading
from pathlib import Path

import pytest

from ktrace_cli.trace import rootbpf

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the answer is trusted only from root")


def test_engines_are_read_from_the_unix_socket_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "unix"
    table.write_text(
        "Num       RefCount Protocol Flags    Type St Inode Path\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 11 @pyktrace-bpf-traced.4242\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 12 /run/pyktrace/bpf/engine.sock\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 13 @pyktrace-bpf-traced.x1\n"
        "0000000000000000: 00000003 00000000 00000000 0001 03 14 @pyktrace-bpf-traced.77\n"
        "0000000000000000: 00000003 00000000 00000000 0001 03 15\n"
    )
    monkeypatch.setattr(rootbpf, "UNIX_TABLE", str(table))
    assert rootbpf.engines() == [77, 4242]
    table.write_text("Num       RefCount Protocol Flags    Type St Inode Path\n")
    assert rootbpf.engines() == []


def _serve_once(listener: socket.socket, traced: list[int], ask: int) -> list[int]:
    """rootbpf._ask(ask) from a thread, answered here once its connection is queued."""
    got: list[list[int]] = []
    t = threading.Thread(target=lambda: got.append(rootbpf._ask(ask)))
    t.start()
    assert select.select([listener], [], [], 5)[0]
    rootbpf.answer(listener, traced)
    t.join(5)
    return got[0]


@as_root
def test_the_answer_lists_the_callers_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    listener = rootbpf.listen(os.getpid())
    try:
        assert _serve_once(listener, [1, os.getpid()], os.getpid()) == [1, os.getpid()]  # root sees all
        # Another user's engine sees only its own: the filter is by the asker's uid.
        monkeypatch.setattr(rootbpf, "owner_uid", lambda pid: 0 if pid == 1 else 65534)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.connect(rootbpf.address(os.getpid()))
            monkeypatch.setattr(rootbpf.Socket, "getsockopt", lambda *a: (7).to_bytes(4, "little")
                                + (65534).to_bytes(4, "little") + bytes(4))  # fmt: skip
            rootbpf.answer(listener, [1, 99])
            monkeypatch.undo()
            assert json.loads(c.recv(4096)) == [99]
    finally:
        listener.close()


@as_root
def test_a_name_that_is_not_its_engines_is_ignored() -> None:
    """A socket under an engine's name whose peer is another process says nothing."""
    other = os.getpid() + 1_000_000  # no such engine: our socket squats its name
    listener = rootbpf.listen(other)
    try:
        assert _serve_once(listener, [1], other) == []
    finally:
        listener.close()


def test_a_user_asks_once_per_request_and_root_never(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []

    def traced() -> dict[int, int]:
        asked.append(1)
        return {5: 42}

    monkeypatch.setattr(rootbpf, "traced_by_root", traced)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    holders = rootbpf.Holders()
    assert (holders.root_bpf(5), holders.root_bpf(6), len(asked)) == (42, 0, 1)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert (rootbpf.Holders().root_bpf(5), len(asked)) == (0, 1)  # root may change anything

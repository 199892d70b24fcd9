"""The reader's own list of where its bpf engine listens matches the engine's runtime directories."""

from __future__ import annotations

import os

import pytest

from ktrace_cli.trace import runtime
from ktrace_cli.trace.bpf import flush, wire


def _engine_socket(base: str) -> str:
    return os.path.join(base, wire.RUNTIME_SUBDIR, runtime.SOCKET)


def test_the_places_are_runtimes_in_its_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/xdg")
    monkeypatch.setenv("HOME", "/home/r")
    assert flush.engine_sockets() == [
        _engine_socket(os.path.join("/xdg", runtime.NAME)),
        _engine_socket(os.path.join(runtime.ROOT_RUN, runtime.NAME)),
        _engine_socket(os.path.join(runtime.SHARED_TMP, f"{runtime.NAME}-0")),
        _engine_socket(os.path.join("/home/r", ".cache", runtime.NAME)),
    ]


def test_an_unset_variable_skips_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("HOME", raising=False)
    assert flush.engine_sockets() == [
        _engine_socket(os.path.join(runtime.ROOT_RUN, runtime.NAME)),
        _engine_socket(os.path.join(runtime.SHARED_TMP, f"{runtime.NAME}-0")),
    ]


def test_the_request_is_the_wire_message() -> None:
    assert flush.REQUEST == wire.message({"op": "flush"})


def test_another_user_asks_its_own_places(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CAP_BPF holder's engine lives in that user's runtime directory, as runtime.candidates() orders them."""
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/xdg")
    monkeypatch.setenv("HOME", "/home/u")
    assert flush.engine_sockets() == [
        _engine_socket(os.path.join("/xdg", runtime.NAME)),
        _engine_socket(os.path.join(runtime.USER_RUN, "1000", runtime.NAME)),
        _engine_socket(os.path.join(runtime.SHARED_TMP, f"{runtime.NAME}-1000")),
        _engine_socket(os.path.join("/home/u", ".cache", runtime.NAME)),
    ]
    monkeypatch.setenv("XDG_RUNTIME_DIR", f"{runtime.USER_RUN}/1000")  # systemd's: tried once
    assert flush.engine_sockets() == [
        _engine_socket(os.path.join(runtime.USER_RUN, "1000", runtime.NAME)),
        _engine_socket(os.path.join(runtime.SHARED_TMP, f"{runtime.NAME}-1000")),
        _engine_socket(os.path.join("/home/u", ".cache", runtime.NAME)),
    ]

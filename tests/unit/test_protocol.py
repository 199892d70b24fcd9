"""The control protocol's messages: exact wire forms, validation, the legacy forms still understood."""

from __future__ import annotations

import json

import pytest

from ktrace_cli.trace import protocol as W
from ktrace_cli.trace.protocol import Identity, KtraceArgs, ProtocolError, Reply, Request, Status

ME = Identity(2, "9.9.9", "/opt/pyktrace")
ARGS = KtraceArgs(ops=1, facs=0x40000007, pid=1234, command=True, seccomp="off", genio_size=64,
                  header_version=0, fsize_limit=-1)  # fmt: skip


def test_a_ktrace_request_on_the_wire() -> None:
    wire = Request("ktrace", ARGS, ME).to_wire()
    assert wire.endswith(b"\n") and wire.count(b"\n") == 1
    assert json.loads(wire) == {
        "protocol": 2, "release": "9.9.9", "install": "/opt/pyktrace", "op": "ktrace",
        "args": {"ops": 1, "facs": 0x40000007, "pid": 1234, "command": True, "seccomp": "off",
                 "genio_size": 64, "header_version": 0, "fsize_limit": -1},
    }  # fmt: skip
    assert Request.from_wire(wire) == Request("ktrace", ARGS, ME)


def test_our_identity_names_this_package() -> None:
    ours = Identity.ours()
    assert ours.protocol == W.PROTOCOL
    from ktrace_cli import __version__

    assert ours.release == __version__
    assert ours.install.endswith("/ktrace_cli")
    assert ours.describe() == f"pyktrace {__version__} from {ours.install} (protocol {W.PROTOCOL})"


@pytest.mark.parametrize("op", ["status", "shutdown"])
def test_the_unversioned_status_and_shutdown_are_still_understood(op: str) -> None:
    assert Request.from_wire(b'{"op": "%s"}\n' % op.encode()) == Request(op, None, W.LEGACY)


def test_an_unversioned_ktrace_is_recognised_but_carries_no_arguments() -> None:
    old = b'{"op":"ktrace","ops":1,"facs":4,"pid":5}\n'
    assert Request.from_wire(old) == Request("ktrace", None, W.LEGACY)


@pytest.mark.parametrize("wire, why", [
    (b"[" * 1000 + b"\n", "nested too deeply"),
    (b'{"a": [[[[1]]]]}\n', "nested too deeply"),
    (b"not json\n", "not JSON"),
    (b"[1]\n", "not a JSON object"),
    (b'{"op": "reboot"}\n', "unknown op 'reboot'"),
    (b'{"protocol": 2, "release": "x", "install": "y", "op": "ktrace"}\n', "args: not an object"),
    (b'{"protocol": 2, "release": "x", "install": "y", "op": "ktrace", "args": {"ops": true}}\n',
     "ops: not an integer"),
    (b'{"protocol": "2", "op": "status"}\n', "protocol: not an integer"),
    (b'{"protocol": 2, "release": 1, "install": "y", "op": "status"}\n', "release: not a string"),
])  # fmt: skip
def test_malformed_requests_are_refused(wire: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        Request.from_wire(wire)


@pytest.mark.parametrize("field, value", [
    ("ops", 1.5), ("pid", 1 << 40), ("command", 1), ("seccomp", "maybe"), ("genio_size", -1),
    ("header_version", 2), ("fsize_limit", -2), ("facs", 1 << 64),
])  # fmt: skip
def test_each_argument_is_checked(field: str, value: object) -> None:
    args = dict(ARGS.as_dict(), **{field: value})
    wire = json.dumps({"protocol": 2, "release": "x", "install": "y", "op": "ktrace", "args": args})
    with pytest.raises(ProtocolError, match=field):
        Request.from_wire(wire.encode() + b"\n")


def test_the_depth_check_ignores_brackets_in_strings() -> None:
    wire = Request("ktrace", ARGS, Identity(2, "[[[[[[", '{{{{"\\\\')).to_wire()
    assert Request.from_wire(wire).identity.release == "[[[[[["


def test_a_reply_on_the_wire() -> None:
    reply = Reply(error=1, why="pid 7 belongs to uid 0", filter=(0, 1, 59), identity=ME,
                  engine_pid=42)  # fmt: skip
    assert json.loads(reply.to_wire()) == {
        "error": 1, "why": "pid 7 belongs to uid 0", "filter": [0, 1, 59], "protocol": 2,
        "release": "9.9.9", "install": "/opt/pyktrace", "engine_pid": 42, "busy": False,
    }  # fmt: skip
    assert Reply.from_wire(reply.to_wire()) == reply


def test_a_status_reply_to_an_unversioned_request_has_the_old_flat_form() -> None:
    result = {"error": 0, "pid": 42, "procs": [5], "threads": [5, 6], "files": 1, "awaiting": [],
              "pending": [], "held_replies": 0}  # fmt: skip
    reply = Reply.from_result(result)
    assert reply.status == Status(42, (5,), (5, 6), 1, (), (), 0)
    assert json.loads(reply.to_wire(legacy=True)) == result


def test_a_reply_without_a_protocol_comes_from_an_old_engine() -> None:
    reply = Reply.from_wire(b'{"error": 22, "message": "malformed request"}\n')
    assert reply == Reply(error=22, message="malformed request", identity=None)

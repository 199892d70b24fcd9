"""value.py: the plain classes that replaced dataclasses on the start-up path keep their behaviour."""

from __future__ import annotations

import pickle

import pytest

from ktrace_cli.cli.options import Options
from ktrace_cli.format.records import Record, Strings, Syscall
from ktrace_cli.trace.protocol import Identity, Reply, Status


def test_value_is_frozen_and_compared_by_fields() -> None:
    a = Identity(2, "0.1.0", "/x")
    assert a == Identity(2, "0.1.0", "/x") and a != Identity(2, "0.1.0", "/y")
    assert hash(a) == hash(Identity(2, "0.1.0", "/x"))
    assert a != ("Identity", 2, "0.1.0", "/x")  # another type is never equal
    with pytest.raises(AttributeError):
        a.release = "9"
    with pytest.raises(AttributeError):
        del a.release
    assert repr(a) == "Identity(protocol=2, release='0.1.0', install='/x')"


def test_value_replace_defaults_and_pickle() -> None:
    o = Options(pid=5, command=["ls"])
    assert o.replace(engine="bpf") == Options(pid=5, command=["ls"], engine="bpf")
    assert o.engine == "ptrace" and Options().command == [] and Options().command is not Options().command
    status = Status(1, (2,), (3,), 0, (), (), 0)
    reply = Reply(error=1, status=status, identity=Identity(2, "r", "i"))
    assert pickle.loads(pickle.dumps(reply)) == reply
    assert reply.as_dict()["status"] is status


def test_fields_are_mutable_unhashable_and_compared_by_fields() -> None:
    r = Record(1, 2, 2, b"sh".ljust(20, b"\0"), 3, 4, b"")
    assert (r.version, r.cpu, r.drop) == (1, 0, False)
    assert r.replace(cpu=7) == Record(1, 2, 2, b"sh".ljust(20, b"\0"), 3, 4, b"", cpu=7)
    r.drop = True
    assert r != Record(1, 2, 2, b"sh".ljust(20, b"\0"), 3, 4, b"")
    with pytest.raises(TypeError):
        hash(r)
    assert Syscall(5, (1, 2)) != Strings([b"x"])
    assert Strings().strings == [] and Strings().strings is not Strings().strings
    assert repr(Syscall(5, (1,))) == "Syscall(code=5, args=(1,))"

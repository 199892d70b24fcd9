"""trace/fastjson.py writes and reads exactly what json.dumps and json.loads do."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ktrace_cli.trace import fastjson

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)  # fmt: skip
MESSAGES = st.dictionaries(st.text(max_size=8), VALUES, max_size=6) | st.lists(VALUES, max_size=6)


def test_the_c_accelerator_is_in_use() -> None:
    # Without it every call would go through json (correct, but the
    # start-up it exists for would be lost): this Python has _json.
    assert fastjson._SCAN is not None


@settings(max_examples=300)
@given(MESSAGES)
def test_dumps_writes_json_text(msg: object) -> None:
    for seps in (fastjson.COMPACT, fastjson.DEFAULT_SEPARATORS):
        assert fastjson.dumps(msg, seps) == json.dumps(msg, separators=seps)


@settings(max_examples=300)
@given(MESSAGES, st.sampled_from(["", " ", "\n", " \t\r\n"]))
def test_loads_reads_what_json_reads(msg: object, pad: str) -> None:
    text = pad + json.dumps(msg) + pad
    same = fastjson.loads(text.encode())
    assert repr(same) == repr(json.loads(text.encode()))  # repr: NaN != NaN


def _outcome(f: object, data: bytes) -> object:
    try:
        return ("value", repr(f(data)))  # type: ignore[operator]
    except Exception as e:
        return ("error", type(e), str(e))


@settings(max_examples=500)
@given(st.binary(max_size=40) | st.text(alphabet='{}[]",:0123456789.eE+-truefalsnul \\\t\n', max_size=40).map(str.encode))
def test_anything_else_gets_json_s_answer_or_json_s_error(data: bytes) -> None:
    assert _outcome(fastjson.loads, data) == _outcome(json.loads, data)


@pytest.mark.parametrize("data", [
    b"", b" ", b"{", b'{"a":1}x', b'{"a":1} {}', b"\xef\xbb\xbf{}", b"\xff{}", '{"a":"\u00e9"}'.encode(),
    '{"a":1}'.encode("utf-16-le"), b"NaN", b"[Infinity,-Infinity]", b'"\\ud800"', b"[1.5e300, -0.0]",
])  # fmt: skip
def test_edge_cases_match_json(data: bytes) -> None:
    assert _outcome(fastjson.loads, data) == _outcome(json.loads, data)


def test_an_unserializable_value_is_json_s_type_error() -> None:
    with pytest.raises(TypeError, match="^Object of type bytes is not JSON serializable$"):
        fastjson.dumps({"a": b"x"})
    with pytest.raises(ValueError, match="Circular reference detected"):
        loop: list[object] = []
        loop.append(loop)
        fastjson.dumps(loop)

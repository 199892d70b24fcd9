"""visdump and hexdump: the fast paths agree with kdump's byte-by-byte loop."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ktrace_cli.render import dump
from ktrace_cli.render.dump import hexdump_width, is_text, vis, visdump, visdump_bytewise

TEXTISH = st.binary(max_size=300).map(lambda b: bytes(c % 128 for c in b)) | st.lists(
    st.sampled_from([b"a", b"\n", b" ", b"xyz", b"\n\n", b"\\", b"\t", b"\0", b"7", b"\r"]), max_size=80
).map(b"".join)
TEXT = TEXTISH.filter(is_text)


@settings(max_examples=400, deadline=None)
@given(TEXT, st.integers(min_value=9, max_value=140), st.integers(min_value=0, max_value=255))
def test_fast_paths_equal_the_bytewise_loop(data: bytes, width: int, lookahead: int) -> None:
    assert visdump(data, lookahead, width) == visdump_bytewise(data, lookahead, width - 2)


def test_visdump_examples() -> None:
    assert visdump(b"ktrace\n", 0, 80) == '       "ktrace\n       "\n'
    assert visdump(b"a\n\nb", 0, 80) == '       "a\n\t\n\tb"\n'
    assert visdump(b"", 0, 80) == '       ""\n'
    assert visdump(b"ab", 0, 11) == '       "a\\\n\tb"\n'


def test_hexdump_width() -> None:
    assert hexdump_width(80) == 16
    assert hexdump_width(132) == 32  # 18 + 3.5 * 32 = 130 < 132


# The byte classes as kdump defines them, spelt out (the module tests them
# with bytes.translate and str methods, which load no regular expressions).
TEXT = frozenset([0, 9, 10, 13, *range(32, 127)])
UNSAFE = frozenset([*range(0x20), *range(0x7F, 0x100), 0x5C])


@settings(max_examples=500)
@given(st.binary(max_size=64) | st.sampled_from([b"", b"/usr/lib", b"a\\b", b"\x7f", b"\t\n\r\x00 ~"]))
def test_is_text_is_kdump_s_byte_class(data: bytes) -> None:
    assert is_text(data) == all(b in TEXT for b in data)


@settings(max_examples=500)
@given(st.binary(max_size=32) | st.sampled_from([b"", b"/usr/lib", b"a\\b", b"\x7f", b"caf\xc3\xa9", b" ~"]))
def test_vis_s_shortcut_agrees_with_its_rewrite(data: bytes) -> None:
    # The shortcut (printable ASCII, no backslash, returned as it is) gives
    # what the rewrite of every unsafe byte gives, and applies only to safe names.
    text = data.decode("latin-1")
    rewritten = dump._vis_token().sub(dump._vis_match, data).decode("latin-1")
    assert vis(text) == rewritten
    if all(b not in UNSAFE for b in data):
        assert rewritten == text

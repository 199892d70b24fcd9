"""GIO data as kdump shows it: C-style escaped text (visdump) or a hex dump.

Text is built as latin-1 `str`, one character per byte, so that padding and
column counting are by bytes as in C and the output encodes back to the
exact bytes.
"""

from __future__ import annotations

import functools

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    import re

# Bytes kdump treats as text: printable ASCII plus NUL, TAB, LF and CR.
_TEXT_BYTES = bytes([0, 9, 10, 13, *range(32, 127)])
_PLAIN_BYTES = bytes(b for b in range(32, 127) if b != 0x5C)
_PLAIN_OR_NL = b"\n" + _PLAIN_BYTES

_ENCODING = {b: chr(b) for b in range(32, 127)}
_ENCODING[0x5C] = "\\\\"
_ENCODING[9] = "\t"
_ENCODING[10] = "\n"
_ENCODING[13] = "\\r"
_OCTAL_DIGITS = frozenset(b"01234567")


def is_text(data: bytes) -> bool:
    """kdump's test: visdump when every byte is printable, NUL, TAB, LF or CR."""
    return not data.translate(None, _TEXT_BYTES)  # nothing left once the text bytes are deleted


def visdump(data: bytes, lookahead: int, screenwidth: int) -> str:
    """Escaped text; `lookahead` is the byte after `data` in the record (0 at its end)."""
    limit = screenwidth - 2
    if limit > 8 and not data.translate(None, _PLAIN_OR_NL):
        return _visdump_lines(data.decode("latin-1"), limit - 8)
    return visdump_bytewise(data, lookahead, limit)


def visdump_bytewise(data: bytes, lookahead: int, limit: int) -> str:
    """kdump's visdump loop, one byte at a time (any text, any width)."""
    out = ['       "']
    col = 8
    last = len(data) - 1
    for i, b in enumerate(data):
        if b == 0:
            nxt = lookahead if i == last else data[i + 1]
            enc = "\\000" if nxt in _OCTAL_DIGITS else "\\0"
        else:
            enc = _ENCODING[b]
        if col == 0:
            out.append("\t")
            col = 8
        if enc == "\n":
            out.append("\n")
            col = 0
            continue
        width = 8 - (col & 7) if enc == "\t" else len(enc)
        if col + width > limit:
            out.append("\\\n\t")
            col = 8
        col += width
        out.append(enc)
    if col == 0:
        out.append("       ")
    out.append('"\n')
    return "".join(out)


def _wrap(text: str, span: int) -> str:
    if len(text) <= span:
        return text
    return "\\\n\t".join(text[i : i + span] for i in range(0, len(text), span))


def _visdump_lines(text: str, span: int) -> str:
    """visdump of one-column characters and newlines: every line starts at column 8."""
    pieces = text.split("\n")
    last = pieces.pop()
    out = '       "' + "\n\t".join(_wrap(p, span) for p in pieces) if pieces else '       "'
    if not pieces:
        return out + _wrap(last, span) + '"\n'
    if last:
        return out + "\n\t" + _wrap(last, span) + '"\n'
    return out + '\n       "\n'


def hexdump_width(screenwidth: int) -> int:
    """Bytes per hexdump line for a screen width (16 for 80 columns)."""
    width = 0
    while True:
        width += 2
        used = 13 + (width // 2 + 1) + width * 2 + 3 + width + 1
        if used >= screenwidth:
            break
    return width - 2


def hexdump(data: bytes, screenwidth: int) -> str:
    width = hexdump_width(screenwidth)
    if width <= 0:
        width = 2  # kdump would loop forever here; keep going with the narrowest line
    out = []
    n = len(data)
    for start in range(0, n, width):
        line = [f"       0x{start:04x}"]
        for i in range(start, start + width):
            if i % 2 == 0:
                line.append(" ")
            line.append(f"{data[i]:02x}" if i < n else "  ")
        chunk = data[start : start + width]
        line.append("  |")
        line.append(chunk.translate(_SHOWN).decode("latin-1"))
        line.append("|\n")
        out.append("".join(line))
    if n % width:
        out.append("\n")
    return "".join(out)


_SHOWN = bytes(b if 0x20 <= b <= 0x7E else 0x2E for b in range(256))


def gio_data(data: bytes, lookahead: int, screenwidth: int) -> str:
    """The lines kdump prints under a GIO header for (already -m truncated) data."""
    if is_text(data):
        return visdump(data, lookahead, screenwidth)
    return hexdump(data, screenwidth)


# ---------------------------------------------------------------------------
# Names shown on a terminal: vis(3) escapes for control characters.

# Well-formed UTF-8 sequences of two to four bytes, C1 controls (U+0080 to
# U+009F, 0xC2 0x80-0x9F) left out: a terminal may act on those as on ESC.
_UTF8_PRINTABLE = (
    rb"\xc2[\xa0-\xbf]|[\xc3-\xdf][\x80-\xbf]"
    rb"|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


@functools.cache
def _vis_token() -> re.Pattern[bytes]:
    """What vis() rewrites, compiled on first use: loading re costs pykdump's start-up
    more than it renders, and most names need no escape."""
    import re

    return re.compile(b"(" + _UTF8_PRINTABLE + rb")|[\x00-\x1f\x7f-\xff\\]")


def _vis_byte(b: int) -> str:
    """vis(3)'s default encoding of one byte: \\\\, \\^C (control), \\M-x and \\M-^C (high bit)."""
    if b == 0x5C:
        return "\\\\"
    prefix = "\\M-" if b & 0x80 else "\\"
    low = b & 0x7F
    if low < 0x20:
        return prefix + "^" + chr(low + 0x40)
    if low == 0x7F:
        return prefix + "^?"
    return prefix + chr(low) if b & 0x80 else chr(low)


_VIS_BYTES = [_vis_byte(b) for b in range(256)]


def _vis_match(m: re.Match[bytes]) -> bytes:
    if m.group(1) is not None:
        return m.group(1)
    return _VIS_BYTES[m.group()[0]].encode("ascii")


def vis(text: str) -> str:
    """`text` (latin-1, one character per byte) safe to print on a terminal.

    A traced program chooses its paths and its command name; printed raw,
    an ESC or CR in them could retitle or clear the terminal or forge a
    kdump line.  Control characters (newline and tab included), DEL,
    backslash and bytes that are not well-formed UTF-8 are written as
    vis(3) writes them (ESC is \\^[); UTF-8 text stays readable.
    """
    # Printable ASCII without a backslash (0x20-0x7E less 0x5C) is left as it is.
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text
    return _vis_token().sub(_vis_match, text.encode("latin-1")).decode("latin-1")


def vis_line(line: str) -> str:
    """vis() of a one-line body, keeping its final newline."""
    if line.endswith("\n"):
        return vis(line[:-1]) + "\n"
    return vis(line)

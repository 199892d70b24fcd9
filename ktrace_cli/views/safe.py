"""Text of a view made safe for a terminal: the traced program chose its paths and argv.

An ESC or CR in a path, printed raw, could retitle or clear the terminal or
forge a line; on a terminal each line goes through render/dump's vis(),
which writes control characters, DEL, backslash and bytes that are not
UTF-8 as vis(3) does and keeps UTF-8 text readable.
"""

from __future__ import annotations

from ktrace_cli.render.dump import vis


def terminal_line(line: str) -> str:
    """One line (no newline) of a view, escaped for a terminal."""
    if line.isprintable() and "\\" not in line:
        return line
    raw = line.encode("utf-8", "surrogateescape").decode("latin-1")
    return vis(raw).encode("latin-1").decode("utf-8", "replace")


def terminal_text(text: str) -> str:
    return "\n".join(terminal_line(line) for line in text.split("\n"))

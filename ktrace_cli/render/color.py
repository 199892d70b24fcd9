"""kdump lines in colour for terminals: kdump's characters with ANSI SGR codes around them.

The codes are written directly rather than through rich: styling each line
as a rich Text cost about twice the plain rendering.  Only the record
header is dim; the body, which is what a reader reads, keeps the
terminal's normal intensity.
"""

from __future__ import annotations

from ktrace_cli.decode.events import Dropped, Shown
from ktrace_cli.format import constants as K
from ktrace_cli.render.kdump_text import KdumpText

# SGR parameters (ECMA-48): 1 bold, 2 dim, 31-37 red, green, yellow, blue, magenta, cyan, white.
RESET = "\x1b[0m"
DIM = "\x1b[2m"
BOLD = "\x1b[1m"
TAG_STYLES = {
    K.KTR_SYSCALL: "\x1b[1;36m",
    K.KTR_SYSRET: "\x1b[1;34m",
    K.KTR_NAMEI: "\x1b[1;32m",
    K.KTR_GENIO: "\x1b[1;35m",
    K.KTR_PSIG: "\x1b[1;33m",
    K.KTR_CSW: DIM,
    K.KTR_USER: "\x1b[1;37m",
    K.KTR_STRUCT: "\x1b[1;37m",
    K.KTR_STRUCT_ARRAY: "\x1b[1;37m",
    K.KTR_SYSCTL: "\x1b[1;32m",
    K.KTR_CAPFAIL: "\x1b[1;31m",
}
GREEN, YELLOW, RED = "\x1b[32m", "\x1b[33m", "\x1b[31m"
BODY_STYLES = {K.KTR_NAMEI: GREEN, K.KTR_SYSCTL: GREEN, K.KTR_PSIG: YELLOW, K.KTR_CAPFAIL: RED}
DROPPED_STYLE = "\x1b[1;31m"
FAILED = " -1 errno "
TAG_WIDTH = len("CALL  ")
ABI_WIDTH = len("L64  ")


class ColorKdump:
    """Renders events as KdumpText does, with the header dim and tags and some bodies coloured.

    Lines stay latin-1 `str` (one character per byte), as KdumpText's are.
    """

    def __init__(self, text: KdumpText) -> None:
        self.text = text
        self._tag_from_end = TAG_WIDTH + (ABI_WIDTH if text.o.abi_column else 0)
        self._heads: dict[str, str] = {}

    def render(self, event: Shown | Dropped) -> str:
        if isinstance(event, Dropped):
            return _styled(DROPPED_STYLE, self.text.dropped(event.record))
        head, body = self.text.parts(event)
        coloured = self._heads.get(head)
        if coloured is None:
            if len(self._heads) > 65536:
                self._heads.clear()  # memory stays flat with any number of headers (-T makes each unique)
            tag_at = len(head) - self._tag_from_end
            style = TAG_STYLES.get(event.record.type, BOLD)
            coloured = self._heads[head] = f"{DIM}{head[:tag_at]}{RESET}{style}{head[tag_at:]}{RESET}"
        rtype = event.record.type
        body_style = BODY_STYLES.get(rtype)
        if body_style is None and rtype == K.KTR_SYSRET and FAILED in body:
            body_style = RED
        if body_style is None:
            return coloured + body
        return coloured + _styled(body_style, body)


def _styled(style: str, line: str) -> str:
    """`line` in `style`, the reset before its final newline so no colour runs past it."""
    if line.endswith("\n"):
        return f"{style}{line[:-1]}{RESET}\n"
    return f"{style}{line}{RESET}"

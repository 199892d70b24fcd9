"""kdump lines in colour with rich, for terminals; the characters stay kdump's."""

from __future__ import annotations

from typing import Any

from ktrace_cli.decode.events import Dropped, Shown
from ktrace_cli.format import constants as K
from ktrace_cli.render.kdump_text import KdumpText

TAG_STYLES = {
    K.KTR_SYSCALL: "bold cyan",
    K.KTR_SYSRET: "bold blue",
    K.KTR_NAMEI: "bold green",
    K.KTR_GENIO: "bold magenta",
    K.KTR_PSIG: "bold yellow",
    K.KTR_CSW: "dim",
    K.KTR_USER: "bold white",
    K.KTR_STRUCT: "bold white",
    K.KTR_STRUCT_ARRAY: "bold white",
    K.KTR_SYSCTL: "bold green",
    K.KTR_CAPFAIL: "bold red",
}
BODY_STYLES = {K.KTR_NAMEI: "green", K.KTR_SYSCTL: "green", K.KTR_PSIG: "yellow", K.KTR_CAPFAIL: "red"}


class ColorKdump:
    """Prints kdump text through a rich Console, styling columns by meaning."""

    def __init__(self, text: KdumpText, console: Any) -> None:
        self.text = text
        self.console = console

    def print(self, event: Shown | Dropped) -> None:
        from rich.text import Text

        if isinstance(event, Dropped):
            self.console.print(Text(self.text.dropped(event.record), style="bold red"), end="")
            return
        head, body = self.text.parts(event)
        rtype = event.record.type
        tag_at = len(head) - 6 - (5 if self.text.o.abi_column else 0)
        line = Text(_utf8(head[:tag_at]), style="dim")
        line.append(head[tag_at:], style=TAG_STYLES.get(rtype, "bold"))
        body_style = BODY_STYLES.get(rtype)
        if rtype == K.KTR_SYSRET and " -1 errno " in body:
            body_style = "red"
        line.append(_utf8(body), style=body_style)
        self.console.print(line, end="")


def _utf8(latin1: str) -> str:
    """Text kept as bytes-in-latin-1 shown as the UTF-8 it most likely is."""
    return latin1.encode("latin-1").decode("utf-8", "replace")

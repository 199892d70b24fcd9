"""pyktrace's command-line rules without click: ktrace(1)'s checks and messages, and the plain case.

The click command (cli/pyktrace_click.py) applies these rules through its
option callbacks; `fast` applies the same ones to a command line that
cli/fastargs.py could read, so the common case starts without loading
click. Any line that breaks a rule is left to click, which reports it in
command-line order as ktrace(1)'s getopt loop does.
"""

from __future__ import annotations

import os

from ktrace_cli.cli import fastargs
from ktrace_cli.cli.fastargs import COUNT, FLAG, MULTIPLE, VALUE
from ktrace_cli.cli.options import ENGINES, Options
from ktrace_cli.format import constants as K

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from typing import Any

# The click command's options (cli/pyktrace_click.py), for cli/fastargs.py.
OPTIONS = {
    "-a": ("append", FLAG), "-C": ("C", COUNT), "-c": ("c", COUNT), "-d": ("descend", FLAG),
    "-f": ("trfile", VALUE), "-g": ("g", MULTIPLE), "-i": ("inherit", FLAG),
    "-p": ("p", MULTIPLE), "-t": ("t", MULTIPLE), "--genio-size": ("genio_size", VALUE),
    "--header-version": ("header_version", VALUE), "--engine": ("engine", VALUE),
    "--seccomp": ("seccomp", VALUE), "--live": ("live", FLAG), "--live-file": ("live_file", VALUE),
    "--live-fd": ("live_fd", VALUE), "--calls": ("calls", FLAG), "--color": ("color", VALUE),
}  # fmt: skip
OPERANDS = "command_args"


class Fatal(Exception):
    """A one-line diagnostic; the process exits 1 after printing it."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


class HelpShown(Exception):
    """--help printed click's help; exit with this status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def parse_id(text: str) -> int:
    """strtoimax(3) base 10 as ktrace(1) checks it: digits only, 1 to INT_MAX."""
    body = text.strip().lstrip("+")
    if not body.isdigit() or not body.isascii() or not 1 <= int(body) <= 0x7FFFFFFF:
        raise Fatal("invalid process or group id", usage=True)
    return int(body)


class State:
    """What the option callbacks saw, in command-line order (getopt's loop in ktrace.c)."""

    def __init__(self) -> None:
        self.clear = ""
        self.pid = 0

    def on_clear(self, name: str, count: int) -> None:
        for _ in range(count):
            if self.clear:
                raise Fatal("only one -c or -C flag is permitted", usage=True)
            self.clear = name

    def on_id(self, name: str, values: tuple[str, ...]) -> None:
        for text in values:
            if self.pid:
                raise Fatal("only one -g or -p flag is permitted", usage=True)
            self.pid = parse_id(text) * (-1 if name == "g" else 1)


def check_points(values: tuple[str, ...]) -> None:
    for text in values:
        if K.parse_trace_points(text) is None:
            raise Fatal(f"unknown facility in {text}", usage=True)


def check_genio(value: str | None) -> None:
    if value is not None and not (value.isascii() and value.isdigit()):
        raise Fatal(f"invalid --genio-size: {value}")
    if value is not None:
        from ktrace_cli.format.writer import GENIO_SIZE_MAX

        if int(value) > GENIO_SIZE_MAX:
            raise Fatal(f"invalid --genio-size: {value} (at most {GENIO_SIZE_MAX})", usage=True)


def fast(argv: list[str]) -> Options | None:
    """The options of a plain command line that breaks no option's rule; None: ask click."""
    kw = fastargs.parse("pyktrace", argv, OPTIONS, {}, OPERANDS)
    if kw is None:
        return None
    st = State()
    try:
        # The callbacks' checks: a line failing one goes to click, whose
        # callbacks report the first failure in command-line order.
        st.on_clear("C", kw.pop("C"))  # type: ignore[arg-type]
        st.on_clear("c", kw.pop("c"))  # type: ignore[arg-type]
        st.on_id("g", kw.pop("g"))  # type: ignore[arg-type]
        st.on_id("p", kw.pop("p"))  # type: ignore[arg-type]
        check_points(kw["t"])  # type: ignore[arg-type]
        check_genio(kw["genio_size"])  # type: ignore[arg-type]
    except Fatal:
        return None
    return options(st, **kw)  # type: ignore[arg-type]


def options(st: State, *, append: bool, descend: bool, trfile: str, inherit: bool,
            t: tuple[str, ...], genio_size: str | None, header_version: str | None,
            seccomp: str | None, command_args: tuple[str, ...], engine: str | None = None,
            **kw: Any) -> Options:  # fmt: skip
    o: dict[str, object] = {"append": append, "descend": descend, "inherit": inherit,
                            "trfile": K.DEF_TRACEFILE if trfile is None else trfile,
                            "trfile_given": trfile is not None}  # fmt: skip
    o.update(_live_options(st, **kw))
    facs, letters = K.DEF_POINTS, ""
    if t:
        letters = t[-1]
        facs = K.parse_trace_points(letters) or 0
    if genio_size is not None:
        o["genio_size"] = int(genio_size)
    if header_version is not None:
        if header_version not in ("0", "1"):
            raise Fatal(f"invalid --header-version: {header_version} (0 or 1)")
        o["version"] = int(header_version)
    if seccomp is not None:
        if seccomp not in ("on", "off"):
            raise Fatal(f"invalid --seccomp: {seccomp} (on or off)")
        o["seccomp"] = seccomp
    engine = engine if engine is not None else os.environ.get("PYKTRACE_ENGINE") or "ptrace"
    if engine not in ENGINES:
        raise Fatal(f"invalid --engine: {engine} (auto, ptrace or bpf)")
    o["engine"] = engine
    clear, pid, rest = st.clear, st.pid, list(command_args)
    if clear == "C" and pid:
        raise Fatal("the -C flag may not be combined with -g or -p", usage=True)
    if not clear and not pid and not rest:
        raise Fatal("", usage=True)
    if (pid or clear) and rest:
        raise Fatal("", usage=True)
    return Options(clear=clear, pid=pid, facs=facs, letters=letters, command=rest,
                   **o)  # type: ignore[arg-type]  # fmt: skip


def _live_options(st: State, *, live: bool, live_file: str | None, live_fd: str | None,
                  calls: bool, color: str | None, **_: object) -> dict[str, object]:  # fmt: skip
    """--live and the options that go with it (cli/live.py)."""
    o: dict[str, object] = {}
    if live_fd is not None:
        if not (live_fd.isascii() and live_fd.isdigit()) or int(live_fd) > 0x7FFFFFFF:
            raise Fatal(f"invalid --live-fd: {live_fd}")
        o["live_fd"] = int(live_fd)
    if live_file is not None:
        if not live_file:
            raise Fatal("invalid --live-file: empty name")
        o["live_file"] = live_file
    if live_fd is not None and live_file is not None:
        raise Fatal("--live-file and --live-fd exclude each other")
    live = live or live_fd is not None or live_file is not None
    if color is not None:
        if color not in ("auto", "always", "never"):
            raise Fatal(f"invalid --color: {color} (auto, always or never)")
        o["color"] = color
    if (calls or color is not None) and not live:
        raise Fatal(f"{'--calls' if calls else '--color'} goes with --live")
    if live and st.clear:
        raise Fatal(f"--live may not be combined with -{st.clear}", usage=True)
    o["live"], o["calls"] = live, calls
    return o

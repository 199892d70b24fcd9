"""pykdump's whole-trace views (--tree, --errors, --timeline, --diff): opening, running, errors.

Each view reads the whole file before it prints; a damaged file still gets
the view of the records before the damage, then the one-line error.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from ktrace_cli.decode.filters import CallFilter
from ktrace_cli.views.safe import terminal_text


@dataclass
class ViewRequest:
    kind: str  # "tree", "errors", "timeline", "diff"
    trfile: str
    flt: CallFilter
    pids: frozenset[int]
    as_json: bool
    color: bool
    timeline_out: str | None = None
    diff_files: tuple[str, str] | None = None
    terminal: bool = False  # stdout is a terminal: escape what the traced programs chose


class ViewFailure(Exception):
    """A one-line message for stderr, exit status 1."""


def _fail(message: str) -> None:
    sys.stderr.write(f"pykdump: {message}\n")
    sys.stderr.flush()


def _console() -> Any:
    import io

    from rich.console import Console

    out = sys.stdout
    if isinstance(out, io.TextIOWrapper):
        out.reconfigure(errors="replace")
    # No soft_wrap: a tree line longer than the terminal wraps instead of being cut.
    return Console(file=out, highlight=False, force_terminal=True, no_color=False)


def _reader(path: str, stack: Any) -> Any:
    from ktrace_cli.format.reader import TraceReader, open_trace
    from ktrace_cli.views.progress import with_progress

    try:
        stream = stack.enter_context(open_trace(path))
    except OSError as e:
        raise ViewFailure(f"{path}: {e.strerror}") from None
    return with_progress(TraceReader(stream), stream, path, stack)


def run_view(req: ViewRequest, stdout: Any) -> int:
    """Run one view; 0, or 1 after a one-line message."""
    from contextlib import ExitStack

    from ktrace_cli.format.reader import NotATrace, TraceFormatError

    error: TraceFormatError | None = None
    current = req.trfile
    try:
        with ExitStack() as stack:
            if req.kind == "diff":
                assert req.diff_files is not None
                from ktrace_cli.views import diff as diff_view

                sides = []
                for path in req.diff_files:
                    current = path
                    sides.append(diff_view.collect(_reader(path, stack), req.flt, req.pids))
                result = diff_view.compare(sides[0], sides[1])
                out = diff_view.as_json(result) if req.as_json else diff_view.plain_text(result, req.diff_files)
                _write(stdout, terminal_text(out) if req.terminal and not req.as_json else out)
                return 0
            reader = _reader(req.trfile, stack)
            if req.kind == "timeline":
                return _timeline(req, reader)
            builder = _builder(req)
            try:
                builder.run(reader, req.pids)
            except NotATrace:
                raise
            except TraceFormatError as e:
                error = e
            _emit(req, builder, stdout)
    except TraceFormatError as e:
        _fail(f"{current}: {e.message}" if req.kind == "diff" else e.message)
        return 1
    except ViewFailure as e:
        _fail(str(e))
        return 1
    except OSError as e:
        _fail(f"{getattr(e, 'filename', None) or current}: {e.strerror}")
        return 1
    if error is not None:
        _fail(error.message)
        return 1
    return 0


def _builder(req: ViewRequest) -> Any:
    filtered = req.flt.active or bool(req.pids)
    if req.kind == "tree":
        from ktrace_cli.views.tree import TreeView

        return TreeView(req.flt, filtered)
    if req.kind == "errors":
        from ktrace_cli.views.errors import ErrorsView

        return ErrorsView(req.flt)
    raise AssertionError(req.kind)


def _timeline(req: ViewRequest, reader: Any) -> int:
    """Write the timeline file (whole, even before a damaged record), then report any damage."""
    from ktrace_cli.format.reader import NotATrace, TraceFormatError
    from ktrace_cli.views.timeline import TimelineView, write_timeline

    error: list[TraceFormatError] = []

    def build(out: Any) -> None:
        view = TimelineView(req.flt, out)
        try:
            view.run(reader, req.pids)
        except NotATrace:
            raise
        except TraceFormatError as e:
            error.append(e)
        view.finish()

    path = req.timeline_out
    assert path is not None
    if path == "-":
        out = _TextOut(sys.stdout)
        build(out)
        out.flush()
    else:
        try:
            write_timeline(path, build)
        except OSError as e:
            raise ViewFailure(f"{path}: {e.strerror}") from None
    if error:
        _fail(error[0].message)
        return 1
    return 0


def _emit(req: ViewRequest, builder: Any, stdout: Any) -> None:
    if req.kind == "tree":
        from ktrace_cli.views import tree as mod
    else:
        from ktrace_cli.views import errors as mod  # type: ignore[no-redef]
    if req.as_json:
        text = mod.as_json(builder)
    elif req.color:
        mod.print_rich(builder, _console())
        return
    else:
        text = mod.plain_text(builder)
        if req.terminal:
            text = terminal_text(text)
    _write(stdout, text)


class _TextOut:
    """Standard output for the timeline, its write errors blamed on stdout, not on the trace."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def write(self, text: str) -> None:
        try:
            self.raw.write(text)
        except OSError as e:
            raise ViewFailure(f"stdout: {e.strerror}") from None

    def flush(self) -> None:
        try:
            self.raw.flush()
        except OSError as e:
            raise ViewFailure(f"stdout: {e.strerror}") from None


def _write(stdout: Any, text: str) -> None:
    try:
        stdout.write(text.encode("utf-8", "surrogateescape"))
        stdout.flush()
    except OSError as e:
        raise ViewFailure(f"stdout: {e.strerror}") from None

"""pykdump: FreeBSD kdump(1) for ktrace files, plus JSON lines, colour and summaries."""

from __future__ import annotations

import _signal as signal  # not signal.py: its enum conversions cost start-up
import io
import os
import sys

from ktrace_cli.cli import fastargs
from ktrace_cli.cli.exit_status import ExitStatus
from ktrace_cli.cli.fastargs import FLAG, MULTIPLE, VALUE
from ktrace_cli.format import constants as K

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

USAGE = "usage: pykdump [-dEnlHRSsTA] [-f trfile] [-m maxdata] [-p pid] [-t trstr]\n"


class OutputError(OSError):
    """Writing the output failed (disk full, closed pipe...): not the trace file's fault."""


class _Output:
    """Standard output that reports its own write errors as OutputError."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw

    def write(self, data: bytes) -> int:
        try:
            return self.raw.write(data)
        except OSError as e:
            raise OutputError(e.errno, e.strerror) from None

    def flush(self) -> None:
        try:
            self.raw.flush()
        except OSError as e:
            raise OutputError(e.errno, e.strerror) from None

    def isatty(self) -> bool:
        return self.raw.isatty()


class UsageFailure(Exception):
    """Bad command line: kdump's usage line, after a line that says what is wrong."""


def atoi(text: str) -> int:
    """C atoi(3): leading blanks, a sign, digits; anything unparsable is 0."""
    text = text.lstrip(" \t\n\v\f\r")
    sign = 1
    if text[:1] in "+-" and text:
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    digits = ""
    for ch in text:
        if not ch.isdigit() or not ch.isascii():
            break
        digits += ch
    value = sign * int(digits) if digits else 0
    # atoi's result is an int: wrap like the C conversion does on LP64.
    value &= 0xFFFFFFFF
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def screenwidth(fancy: bool, stdout: IO[bytes]) -> int:
    """kdump's data width: the terminal's columns when printing to one, else 80."""
    if fancy and stdout.isatty():
        try:
            cols = os.get_terminal_size(sys.stderr.fileno()).columns
        except (OSError, ValueError):
            cols = 0
        if cols > 8:
            return cols
    return 80


def fail(message: str) -> None:
    sys.stderr.write(f"pykdump: {message}\n")
    sys.stderr.flush()


def run(
    *,
    abi_column: bool,
    cpu: bool,
    decimal: bool,
    elapsed: bool,
    trfile: str,
    tid: bool,
    follow: bool,
    maxdata: str | None,
    plain: bool,
    pid: tuple[str, ...],
    relative: bool,
    resolve: bool,
    syscall_numbers: bool,
    suppress: bool,
    timestamps: bool,
    trstr: str | None,
    as_json: bool,
    summary: bool,
    color: str,
    extra: tuple[str, ...],
    calls_view: bool = False,
    trace_sets: tuple[str, ...] = (),
    failed: bool = False,
    successful: bool = False,
    errnos: tuple[str, ...] = (),
    paths: tuple[str, ...] = (),
    fds: tuple[str, ...] = (),
    comms: tuple[str, ...] = (),
    since: str | None = None,
    until: str | None = None,
    tree: bool = False,
    errors_view: bool = False,
    timeline: str | None = None,
    diff_files: tuple[str, str] | None = None,
    histogram: bool = False,
    sort_key: str | None = None,
    detail: bool = False,
) -> int:
    views = [v for v, on in (("tree", tree), ("errors", errors_view), ("timeline", timeline is not None),
                             ("diff", bool(diff_files))) if on]  # fmt: skip
    if extra:
        raise UsageFailure(f"unexpected operand: {extra[0]}")
    if as_json and summary:
        raise UsageFailure("--json and --summary cannot be combined")
    if calls_view and summary:
        raise UsageFailure("--calls and --summary cannot be combined")
    if len(views) > 1:
        raise UsageFailure(f"--{views[0]} and --{views[1]} cannot be combined")
    for other, on in (("summary", summary), ("calls", calls_view), ("-l", follow)):
        if views and on:
            raise UsageFailure(f"--{views[0]} and {'-l' if other == '-l' else '--' + other} cannot be combined")
    if views and as_json and views[0] == "timeline":
        raise UsageFailure("--timeline writes JSON itself: --json does not apply")
    if (histogram or sort_key or detail) and not summary:
        raise UsageFailure("--detail, --histogram and --sort go with --summary")
    if not follow:  # -l reads what comes, whenever it comes
        # The reader's bpf engine (root's, or a CAP_BPF holder's) may still be writing a trace's end.
        from ktrace_cli.trace.bpf import flush

        flush.before_reading()
    flt = None
    if trace_sets or failed or successful or errnos or paths or fds or comms or since or until:
        # Imported only when asked for: plain kdump output starts faster.
        from ktrace_cli.decode.filters import FilterError

        try:
            flt = _call_filter(trace_sets, failed, successful, errnos, paths, fds, comms, since, until)
        except FilterError as e:
            fail(str(e))
            return ExitStatus.ERROR
    points = K.ALL_POINTS
    if trstr is not None:
        parsed = K.parse_trace_points(trstr)
        if parsed is None:
            fail(f"unknown trace point in {trstr}")
            return ExitStatus.ERROR
        points = parsed
    pid_values = frozenset(v for v in (atoi(p) for p in pid) if v)
    if views:
        from ktrace_cli.cli.kdump_views import ViewRequest, run_view
        from ktrace_cli.decode.filters import CallFilter

        request = ViewRequest(views[0], trfile, flt if flt is not None else CallFilter(), pid_values, as_json, use_color(color, sys.stdout.buffer),
                              timeline_out=timeline, diff_files=diff_files or None,
                              terminal=sys.stdout.isatty())  # fmt: skip
        return run_view(request, _Output(sys.stdout.buffer))

    from ktrace_cli.format.reader import TraceFormatError, TraceReader, open_trace
    from ktrace_cli.render.options import KdumpOptions

    try:
        stream = open_trace(trfile)
    except OSError as e:
        fail(f"{trfile}: {e.strerror}")
        return ExitStatus.ERROR
    stdout: Any = _Output(sys.stdout.buffer)
    coloured = use_color(color, stdout)
    options = KdumpOptions(
        abi_column=abi_column,
        cpu=cpu,
        decimal=decimal,
        elapsed=elapsed,
        tid=tid,
        follow=follow,
        maxdata=max(atoi(maxdata), 0) if maxdata is not None else 0,
        fancy=not plain,
        pid=min(pid_values) if pid_values else None,
        relative=relative,
        resolve=resolve,
        syscall_numbers=syscall_numbers,
        suppress_data=suppress,
        timestamps=timestamps,
        points=points,
        screenwidth=screenwidth(not plain, stdout),
        terminal=coloured or stdout.isatty(),
    )
    reader: Any = TraceReader(stream, follow=follow)
    if not follow:
        from ktrace_cli.views.progress import with_progress

        reader = with_progress(reader, stream, trfile)
    # --calls text gets select_calls' quick path (a line builder over the view's caches).
    quick = _QuickView(options) if calls_view and not as_json and not follow else None
    # The summary's added tables need the calls joined; its plain tables, the records.
    events: Any = pipeline(
        reader, options, pid_values, flt, calls_view or (summary and (detail or histogram)),
        quick.make if quick is not None else None,
    )  # fmt: skip
    try:
        with stream:
            if summary:
                return _summary(events, reader, stdout, color, options.terminal, histogram, sort_key, detail)
            return _print(events, reader, options, stdout, as_json, coloured, calls_view, quick)
    except TraceFormatError as e:
        stdout.flush()
        fail(e.message)
        return ExitStatus.ERROR
    except OutputError as e:
        fail(f"stdout: {e.strerror}")
        return ExitStatus.ERROR
    except OSError as e:
        try:
            stdout.flush()
        except OutputError:
            pass
        fail(f"{trfile}: {e.strerror}")
        return ExitStatus.ERROR


def _call_filter(
    trace_sets: tuple[str, ...],
    failed: bool,
    successful: bool,
    errnos: tuple[str, ...],
    paths: tuple[str, ...],
    fds: tuple[str, ...],
    comms: tuple[str, ...],
    since: str | None,
    until: str | None,
) -> Any:
    """The call filter of the command line; FilterError for a value it cannot use."""
    from ktrace_cli.decode.filters import (
        CallFilter,
        FilterError,
        known_errnos,
        parse_time,
        parse_trace_set,
    )

    def warn(message: str) -> None:
        fail(f"warning: {message}")

    if failed and successful:
        raise FilterError("--failed and --successful select no call together")
    trace = parse_trace_set(",".join(trace_sets), warn) if trace_sets else None
    errno_set = None
    if errnos:
        errno_set = frozenset(n.strip().upper() for e in errnos for n in e.split(",") if n.strip())
        unknown = sorted(n for n in errno_set if n not in known_errnos())
        if unknown:
            warn(f"no such errno: {', '.join(unknown)}")
    fd_set = None
    if fds:
        try:
            fd_set = frozenset(int(n) for f in fds for n in f.split(",") if n.strip())
        except ValueError:
            raise FilterError(f"--fd: not a descriptor number: {','.join(fds)}") from None
    return CallFilter(
        trace=trace,
        failed=failed,
        successful=successful,
        errnos=errno_set,
        paths=paths,
        fds=fd_set,
        comms=comms,
        since=parse_time(since, "--since") if since is not None else None,
        until=parse_time(until, "--until") if until is not None else None,
    )


class _QuickView:
    """The --calls text view, made when select_calls knows the layout: its quick
    path reads the caches the view's general path fills."""

    def __init__(self, options: Any) -> None:
        self.options = options
        self.view: Any = None

    def make(self, arch: Any) -> Any:
        from ktrace_cli.render.calls_text import CallsText

        self.view = CallsText(self.options, arch)
        return self.view.text.quick


def pipeline(
    reader: Any, options: Any, pids: frozenset[int], flt: Any, calls_view: bool, quick: Any = None
) -> Any:
    """select, then the call filters and the per-call view when asked for.

    `quick`, for --calls text, is select_calls' quick line builder's maker."""
    from ktrace_cli.decode.events import select

    if not calls_view and flt is None:
        return select(reader, options.points, pids or None)
    from ktrace_cli.decode.fdtable import FdTables
    from ktrace_cli.decode.filters import CallFilter
    from ktrace_cli.decode.pipeline import TRACKED_POINTS, Clock, Shows, filtered

    clock = Clock()

    # Descriptors and calls are tracked on every process and record type;
    # -p and -t choose what is shown afterwards.
    shows = Shows(options.points, pids or None)
    if flt is None:
        flt = CallFilter()
    if calls_view:
        from ktrace_cli.decode.select_calls import select_call_lines

        return select_call_lines(reader, options.points | TRACKED_POINTS, flt, FdTables(), clock, shows, quick=quick)
    events = select(reader, options.points | TRACKED_POINTS, None, clock=clock)
    return filtered(events, flt, FdTables(), clock, shows)


def _console_file() -> IO[str]:
    """sys.stdout for rich, replacing what its encoding cannot show.

    Colour output decodes recorded bytes as UTF-8 (U+FFFD for the rest); on a
    latin-1 or ASCII terminal those characters must not end in a traceback.
    """
    out = sys.stdout
    if isinstance(out, io.TextIOWrapper):
        out.reconfigure(errors="replace")
    return out


def use_color(color: str, stdout: IO[bytes]) -> bool:
    """--color=always, or auto on a terminal unless NO_COLOR is set (https://no-color.org)."""
    if color == "auto":
        return stdout.isatty() and not os.environ.get("NO_COLOR")
    return color == "always"


def _print(
    events: Any, reader: Any, options: Any, stdout: IO[bytes], as_json: bool, coloured: bool, calls_view: bool = False,
    quick: _QuickView | None = None,
) -> int:
    first = next(events, None)  # detects the layout before renderers need it
    if first is None:
        return ExitStatus.OK
    encode: Callable[[str], bytes]
    render: Callable[[Any], str]
    if calls_view and as_json:
        from ktrace_cli.render.calls_json import CallsJson  # loads the STRU decoders

        render = CallsJson(options, reader.arch).render
        encode = _ascii
    elif calls_view:
        from ktrace_cli.render.calls_text import CallsText

        # The quick path's view when select_calls made one: one set of caches.
        view = quick.view if quick is not None and quick.view is not None else CallsText(options, reader.arch)
        render = view.render
        encode = _latin1
        if not options.follow:
            return _print_calls(first, events, view, stdout)
    elif as_json:
        from ktrace_cli.render.json_lines import JsonLines

        render = JsonLines(options, reader.arch).render
        encode = _ascii
    else:
        from ktrace_cli.render.kdump_text import KdumpText

        text = KdumpText(options, reader.arch)
        render = text.render
        encode = _latin1
        if coloured:
            from ktrace_cli.render.color import ColorKdump

            render = ColorKdump(text).render
            encode = terminal_encoder()
    write = stdout.write
    write(encode(render(first)))
    if options.follow:
        stdout.flush()
        for event in events:
            write(encode(render(event)))
            stdout.flush()
    else:
        # Whole batches per write(2): a line per write would dominate the cost.
        # The batch is written even when the file turns out damaged: kdump
        # prints every record before its "data too short".
        batch: list[str] = []
        try:
            for event in events:
                batch.append(render(event))
                if len(batch) >= 4096:
                    write(encode("".join(batch)))
                    batch.clear()
        finally:
            write(encode("".join(batch)))
    stdout.flush()
    return ExitStatus.OK


def _print_calls(first: Any, events: Any, view: Any, stdout: IO[bytes]) -> int:
    """_print's batch loop for --calls text: lines the quick path made as they
    are, Calls straight to the line builder (CallsText.render is one more frame)."""
    from ktrace_cli.decode.calls import Call

    line, render = view.line, view.render
    write = stdout.write
    batch: list[str] = [first if first.__class__ is str else render(first)]
    append = batch.append
    try:
        for event in events:
            kind = event.__class__
            # select_calls' quick path gives its lines made.
            append(event if kind is str else line(event) if kind is Call else render(event))
            if len(batch) >= 4096:
                write("".join(batch).encode("latin-1"))
                batch.clear()
    finally:
        write("".join(batch).encode("latin-1"))
    stdout.flush()
    return ExitStatus.OK


def _ascii(text: str) -> bytes:
    return text.encode("ascii")


def _latin1(text: str) -> bytes:
    return text.encode("latin-1")


def terminal_encoder() -> Callable[[str], bytes]:
    """Recorded bytes shown as the UTF-8 they most likely are, in the terminal's encoding.

    Bytes that are not UTF-8 become U+FFFD, and what the terminal's encoding
    cannot show becomes '?': a latin-1 or ASCII terminal gets no traceback.
    """
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"

    def encode(text: str) -> bytes:
        return text.encode("latin-1").decode("utf-8", "replace").encode(encoding, "replace")

    return encode


def _summary(
    items: Any,
    reader: Any,
    stdout: IO[bytes],
    color: str,
    terminal: bool,
    histogram: bool = False,
    sort_key: str | None = None,
    detail: bool = False,
) -> int:
    from ktrace_cli.format.layouts import AMD64
    from ktrace_cli.format.reader import NotATrace, TraceFormatError
    from ktrace_cli.render import summary_more
    from ktrace_cli.render.summary import Summary, plain_text, print_rich

    # The calls feed the added tables, and (counted as their CALL and RET) the per-process ones.
    more = summary_more.CallStats()
    events = iter(items)

    # A damaged or torn trace still gets the table of the records before the
    # damage, then the error, as kdump prints those records then the error.
    error: TraceFormatError | None = None
    try:
        first = next(events, None)
    except NotATrace:
        raise  # not a trace at all: no table
    except TraceFormatError as e:
        first, error = None, e
    stats = summary_more.sorting(Summary, sort_key)(reader.arch or AMD64, terminal=terminal)
    stats.call_sink = more.add
    if first is not None:
        try:
            stats.add([first])
            stats.add(events)
        except TraceFormatError as e:
            error = e
    if use_color(color, stdout):
        from rich.console import Console

        # no_color=False: --color=always wins over NO_COLOR, which rich would read itself.
        console = Console(file=_console_file(), highlight=False, force_terminal=True, no_color=False)
        print_rich(stats, console)
        summary_more.print_rich(more, sort_key, detail, histogram, console)
    else:
        stdout.write(plain_text(stats).encode("utf-8"))
        stdout.write(summary_more.plain_text(more, sort_key, detail, histogram).encode("utf-8", "surrogateescape"))
        stdout.flush()
    if error is not None:
        raise error
    return ExitStatus.OK


def main(argv: list[str] | None = None) -> int:
    """Entry point: kdump's exit codes and messages, never a traceback."""
    if argv is None:
        # As a command, `pykdump | head` ends quietly as kdump does. An
        # in-process caller (a test runner, a library user) keeps its own
        # SIGPIPE disposition: SIG_DFL there would let any later write to a
        # closed socket kill the whole caller.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = sys.argv[1:] if argv is None else argv
    try:
        kw: dict[str, Any] | int | None = _fast(args)
        if kw is None:
            kw = _click(args)
        if not isinstance(kw, dict):
            return int(kw or 0)  # --help, --version, or click's refusal
        status = run(**kw)
    except UsageFailure as e:
        return _usage(str(e))
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except MemoryError:
        # A record too large for the memory left: kdump's malloc fails the same way.
        fail("out of memory")
        return ExitStatus.ERROR
    return int(status or 0)


# The click command's options that need no conversion (cli/pykdump_click.py), for cli/fastargs.py;
# --diff, --sort and --color are left to click.
OPTIONS = {
    "-A": ("abi_column", FLAG), "-c": ("cpu", FLAG), "-d": ("decimal", FLAG), "-E": ("elapsed", FLAG),
    "-f": ("trfile", VALUE), "-H": ("tid", FLAG), "-l": ("follow", FLAG), "-m": ("maxdata", VALUE),
    "-n": ("plain", FLAG), "-p": ("pid", MULTIPLE), "-R": ("relative", FLAG), "-r": ("resolve", FLAG),
    "-S": ("syscall_numbers", FLAG), "-s": ("suppress", FLAG), "-T": ("timestamps", FLAG),
    "-t": ("trstr", VALUE), "--json": ("as_json", FLAG), "--summary": ("summary", FLAG),
    "--calls": ("calls_view", FLAG), "-e": ("trace_sets", MULTIPLE), "--failed": ("failed", FLAG),
    "--successful": ("successful", FLAG), "--errno": ("errnos", MULTIPLE), "--path": ("paths", MULTIPLE),
    "--fd": ("fds", MULTIPLE), "--comm": ("comms", MULTIPLE), "--since": ("since", VALUE),
    "--until": ("until", VALUE), "--tree": ("tree", FLAG), "--errors": ("errors_view", FLAG),
    "--timeline": ("timeline", VALUE), "--detail": ("detail", FLAG), "--histogram": ("histogram", FLAG),
}  # fmt: skip
DEFAULTS: dict[str, object] = {"trfile": K.DEF_TRACEFILE, "color": "auto", "diff_files": None,
                               "sort_key": None, "extra": ()}  # fmt: skip


def _fast(args: list[str]) -> dict[str, Any] | None:
    """The parameters of a plain command line, read without click; None: ask click."""
    kw = fastargs.parse("pykdump", args, OPTIONS, DEFAULTS, None)
    if kw is None:
        return None
    trfile = str(kw["trfile"])
    # click.Path() refuses an existing file it may not read, with its own message.
    if trfile != "-" and os.path.exists(trfile) and not os.access(trfile, os.R_OK):
        return None
    return kw


def _click(args: list[str]) -> dict[str, Any] | int:
    """click's reading of the command line: the parameters, or the status after --help,
    --version or a usage error (reported here)."""
    from ktrace_cli.cli import pykdump_click  # lazy: start-up (click only when needed)

    click = pykdump_click.click
    try:
        return pykdump_click.command.main(args=args, prog_name="pykdump", standalone_mode=False)
    except click.UsageError as e:
        return _usage(_sentence(e.format_message()))
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.exceptions.Abort:
        return ExitStatus.INTERRUPTED


def _usage(problem: str) -> int:
    fail(problem)
    sys.stderr.write(USAGE)
    return ExitStatus.ERROR


def _sentence(message: str) -> str:
    """click's "No such option: -x." in the lower-case, unpunctuated style of kdump's messages."""
    message = message.strip().rstrip(".")
    return message[:1].lower() + message[1:]


if __name__ == "__main__":
    sys.exit(main())

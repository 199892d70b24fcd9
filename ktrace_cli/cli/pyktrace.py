"""pyktrace: FreeBSD ktrace(1) for Linux: its options, messages and exit codes; the client is trace/client.py."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ktrace_cli import __version__
from ktrace_cli.cli.exit_status import ExitStatus
from ktrace_cli.cli.options import ENGINES, Options
from ktrace_cli.format import constants as K

if TYPE_CHECKING:
    from ktrace_cli.trace.client import TraceTarget
    from ktrace_cli.trace.protocol import Reply

T = TypeVar("T")
USAGE = (
    "usage: pyktrace [-aCcdi] [-f trfile] [-g pgrp | -p pid] [-t trstr]\n"
    "       pyktrace [-adi] [-f trfile] [-t trstr] command\n"
)
UNOBSERVABLE = "fp"  # trace points ptrace cannot see on Linux


class Fatal(Exception):
    """A one-line diagnostic; the process exits 1 after printing it."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def _parse_id(text: str) -> int:
    """strtoimax(3) base 10 as ktrace(1) checks it: digits only, 1 to INT_MAX."""
    body = text.strip().lstrip("+")
    if not body.isdigit() or not body.isascii() or not 1 <= int(body) <= 0x7FFFFFFF:
        raise Fatal("invalid process or group id", usage=True)
    return int(body)


class _State:
    """What the option callbacks saw, in command-line order (getopt's loop in ktrace.c)."""

    def __init__(self) -> None:
        self.clear = ""
        self.pid = 0


def _state(ctx: click.Context) -> _State:
    state = ctx.meta.get("pyktrace")
    if state is None:
        state = ctx.meta["pyktrace"] = _State()
    return state


def _on_clear(ctx: click.Context, param: click.Parameter, count: int) -> int:
    # click calls these in the order the options first appear, so the
    # messages come out in ktrace(1)'s order for the same command line.
    st = _state(ctx)
    for _ in range(count):
        if st.clear:
            raise Fatal("only one -c or -C flag is permitted", usage=True)
        st.clear = str(param.name)
    return count


def _on_id(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    st = _state(ctx)
    for text in values:
        if st.pid:
            raise Fatal("only one -g or -p flag is permitted", usage=True)
        st.pid = _parse_id(text) * (-1 if param.name == "g" else 1)
    return values


def _on_points(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for text in values:
        if K.parse_trace_points(text) is None:
            raise Fatal(f"unknown facility in {text}", usage=True)
    return values


def _on_genio(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not (value.isascii() and value.isdigit()):
        raise Fatal(f"invalid --genio-size: {value}")
    if value is not None:
        from ktrace_cli.format.writer import GENIO_SIZE_MAX

        if int(value) > GENIO_SIZE_MAX:
            raise Fatal(f"invalid --genio-size: {value} (at most {GENIO_SIZE_MAX})", usage=True)
    return value


EPILOG = """\b
Examples:
  pyktrace ls -l                trace a command into ktrace.out
  pyktrace -p 1234              trace a running process (returns at once)
  pyktrace -di -p 1234          ... with its descendants and future children
  pyktrace -t n -g 77           path lookups of every process of group 77
  pyktrace -c -p 1234           stop tracing it (it runs on, untraced)
  pyktrace -c -f trace.out      stop everything tracing to trace.out
  pyktrace -C                   stop all your tracing
  pyktrace --live ls            print ls's records on stderr as it runs
  pyktrace --live --calls -f t.out ls  ... a line per call, and write t.out too
"""


@click.command(
    context_settings={"help_option_names": ["--help"], "allow_interspersed_args": False},
    epilog=EPILOG,
    options_metavar="[-aCcdi] [-f trfile] [-g pgrp | -p pid] [-t trstr]",
)
@click.option("-a", "append", is_flag=True, help="Append to the trace file.")
@click.option("-C", "C", count=True, callback=_on_clear, help="Clear all your tracing.")
@click.option("-c", "c", count=True, callback=_on_clear,
              help="Clear the trace points of -p/-g, or all tracing to trfile.")  # fmt: skip
@click.option("-d", "descend", is_flag=True, help="Also every current descendant.")
@click.option("-f", "trfile", default=None, metavar="trfile",
              help="Trace file (default ktrace.out).")  # fmt: skip
@click.option("-g", "g", multiple=True, metavar="pgrp", callback=_on_id, help="A process group.")
@click.option("-i", "inherit", is_flag=True, help="Future children inherit the tracing.")
@click.option("-p", "p", multiple=True, metavar="pid", callback=_on_id, help="A process.")
@click.option("-t", "t", multiple=True, metavar="trstr", callback=_on_points,
              help="Trace points: c i n s t u w y, a e (exec args, env) (default +).")  # fmt: skip
@click.option("--genio-size", "genio_size", metavar="BYTES", callback=_on_genio,
              help="Bytes of data per GIO record (default 4096).")  # fmt: skip
@click.option("--header-version", "header_version", metavar="0|1",
              help="Record header version (default 1).")  # fmt: skip
@click.option("--engine", "engine", metavar="auto|ptrace|bpf",
              help="Capture backend (default ptrace, or $PYKTRACE_ENGINE).")  # fmt: skip
@click.option("--seccomp", "seccomp", metavar="on|off",
              help="Command mode: stop only at syscalls that can make a record "
                   "(default off; see CAVEATS in pyktrace(1)).")  # fmt: skip
@click.option("--live", "live", is_flag=True,
              help="Print the records on stderr while tracing, as kdump would "
                   "(no trace file unless -f is given).")  # fmt: skip
@click.option("--live-file", "live_file", metavar="FILE", help="--live, printing into FILE.")
@click.option("--live-fd", "live_fd", metavar="N", help="--live, printing on descriptor N.")
@click.option("--calls", "calls", is_flag=True, help="With --live: one line per call, as pykdump --calls.")
@click.option("--color", "color", metavar="auto|always|never",
              help="With --live: colour (default auto: on a terminal, unless NO_COLOR is set).")  # fmt: skip
@click.version_option(__version__, "--version", prog_name="pyktrace",
                      message="%(prog)s %(version)s", help="Print the version and exit.")  # fmt: skip
@click.argument("command_args", nargs=-1, type=click.UNPROCESSED, metavar="[command [args]]")
@click.pass_context
def command(ctx: click.Context, **kw: Any) -> Options:
    """Trace processes into a FreeBSD ktrace file, as ktrace(1) does."""
    return _options(_state(ctx), **kw)


def _options(st: _State, *, append: bool, descend: bool, trfile: str, inherit: bool,
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


def _live_options(st: _State, *, live: bool, live_file: str | None, live_fd: str | None,
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


def parse(argv: list[str]) -> Options:
    """ktrace(1)'s option rules and messages; Fatal on any error (--help prints and exits 0)."""
    try:
        result = command.main(args=list(argv), prog_name="pyktrace", standalone_mode=False)
    except click.NoSuchOption as e:
        name = e.option_name
        if name.startswith("--"):
            raise Fatal(f"unrecognized option '{name}'", usage=True) from None
        raise Fatal(f"illegal option -- {name[1:]}", usage=True) from None
    except click.BadOptionUsage as e:
        name = e.option_name or ""
        if name.startswith("--"):
            raise Fatal(f"option '{name}' requires an argument", usage=True) from None
        raise Fatal(f"option requires an argument -- {name[1:]}", usage=True) from None
    except click.exceptions.Exit as e:
        raise HelpShown(int(e.exit_code or 0)) from None
    except click.ClickException as e:
        raise Fatal(e.format_message(), usage=True) from None
    if isinstance(result, int):  # --help under standalone_mode=False
        raise HelpShown(result)
    assert isinstance(result, Options)
    return result


class HelpShown(Exception):
    """--help printed click's help; exit with this status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _opened(how: Callable[..., T], *args: object) -> T:
    """A trace-file opener's result; its refusal as pyktrace's one-line error."""
    from ktrace_cli.trace.client import TraceError

    try:
        return how(*args)
    except TraceError as e:
        raise Fatal(e.text) from None


def _ktrace(opts: Options, ops: int, facs: int, pid: int, fd: int | None, command: bool,
            rename: list[object] | None = None) -> Reply | None:  # fmt: skip
    """One ktrace(2)-like request to the engine; None if a clear found no engine running."""
    from ktrace_cli.trace import client

    # Clearing everything, or a file, with no engine running has nothing to
    # clear: no need to start one (clearing a pid still asks, for ESRCH/EPERM).
    start = not (K.ktrop(ops) == K.KTROP_CLEARFILE or (opts.clear == "C"))
    try:
        return client.ktrace(ops, facs, pid, fd, command=command, seccomp=opts.seccomp,
                             genio_size=opts.genio_size, version=opts.version, rename=rename,
                             start=start)  # fmt: skip
    except client.TraceError as e:
        raise Fatal(e.text) from None


def _refused(opts: Options, reply: Reply | None) -> Fatal | None:
    """The error a reply carries, as ktrace(1) words it; None if the request succeeded."""
    err = reply.error if reply is not None else 0
    if not err:
        return None
    assert reply is not None
    itself = reply.itself
    if itself:
        return Fatal(str(itself))
    why = reply.why
    if why:
        # ktrace(1)'s own line, then the cause Linux hides behind EPERM.
        sys.stderr.write(f"pyktrace: {opts.trfile}: {os.strerror(err)}\n")
        return Fatal(str(why))
    return Fatal(f"{opts.trfile}: {os.strerror(err)}")


def run(opts: Options) -> int:
    if opts.engine == "auto":
        from ktrace_cli.trace.bpf import client as bpf

        opts = dataclasses.replace(opts, engine=bpf.resolve_auto())  # bpf where it loads, else ptrace and why
    if opts.engine == "ptrace" and opts.letters and any(c in UNOBSERVABLE for c in opts.letters):
        sys.stderr.write(
            "pyktrace: warning: trace points f and p (page faults, capability failures) "
            "cannot be observed through ptrace on Linux; not recorded\n"
        )
    if opts.live and opts.engine == "bpf":
        raise Fatal("--live works with the ptrace engine only (the bpf engine writes regular files)")
    if opts.live:  # records printed while tracing, through a pipe (cli/live.py)
        from ktrace_cli.cli import live

        return live.run(opts)
    facs = opts.facs
    if opts.inherit:
        facs |= K.KTRFAC_INHERIT
    ops = K.KTRFLAG_DESCEND if opts.descend else 0
    from ktrace_cli.trace import client

    fd: int | None = None
    target: TraceTarget | None = None
    if opts.clear == "C":
        ops, facs, pid = K.KTROP_CLEAR | K.KTRFLAG_DESCEND, K.ALL_POINTS, 1
    elif opts.clear:
        if opts.pid:
            ops |= K.KTROP_CLEAR
            pid = opts.pid
        else:
            ops = K.KTROP_CLEARFILE
            pid = 0
            fd = _opened(client.open_clear_file, opts.trfile)
    else:
        facs |= K.PROC_ABI_POINTS
        target = _opened(client.open_trace_file, opts.trfile, opts.append)
        fd = target.fd
        pid = opts.pid or os.getpid()
    if opts.engine == "bpf":
        from ktrace_cli.trace.bpf import client as bpf

        try:
            return bpf.run(opts, ops, facs, pid, fd, target)  # the eBPF capture backend
        except client.TraceError as e:
            raise Fatal(e.text) from None
    command = bool(opts.command)
    if command:
        from ktrace_cli.trace.ptrace import set_comm

        set_comm(b"pyktrace")
        if opts.seccomp == "on":
            # Everything is imported before the engine attaches: from its
            # answer to the exec the trace holds only what ktrace(1) does.
            from ktrace_cli.trace import seccomp
    try:
        reply = _ktrace(opts, ops, facs, pid, fd, command,
                        target.rename_request() if target is not None else None)  # fmt: skip
        refused = _refused(opts, reply)
    except BaseException:
        if target is not None:
            target.abandon()
        raise
    if opts.clear and os.geteuid() == 0:  # only root runs a bpf engine: nobody else loads its client
        from ktrace_cli.trace.bpf import client as bpf

        bpf.clear_too(opts, ops, facs, pid)  # "clear all your tracing" covers both engines
    if refused is not None:
        if target is not None:
            target.abandon()
        raise refused
    if target is not None and reply is not None:
        target.settle(reply.result())
    if not command or reply is None:
        if target is not None:
            target.close()
        elif fd is not None:
            os.close(fd)
        return ExitStatus.OK
    # Command mode: the descriptors are close-on-exec; closing them here
    # would put two more calls into the command's trace.
    nrs = reply.filter
    if nrs is not None and opts.seccomp == "on":
        seccomp.install([int(n) for n in nrs], no_new_privs=os.geteuid() != 0)
    # Python ignores SIGPIPE and SIGXFSZ at start-up; an ignored signal stays
    # ignored across exec, so give the command the defaults a shell would.
    for signo in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signo, signal.SIG_DFL)
    try:
        os.execvp(opts.command[0], opts.command)
    except OSError as e:
        raise Fatal(f"exec of '{opts.command[0]}' failed: {os.strerror(e.errno or 0)}") from None
    return ExitStatus.ERROR


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        return run(parse(args))
    except HelpShown as e:
        return e.status
    except Fatal as e:
        if str(e):
            sys.stderr.write(f"pyktrace: {e}\n")
        if e.usage:
            sys.stderr.write(USAGE)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except Exception as e:  # never a traceback for a user
        sys.stderr.write(f"pyktrace: internal error: {e}\n")
        return ExitStatus.ERROR


if __name__ == "__main__":
    sys.exit(main())

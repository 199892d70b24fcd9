"""pyktrace's click command: --help, --version and every message about a bad command line.

cli/pyktrace_args.py holds the rules the callbacks apply; a plain command
line is read there without loading this module (cli/fastargs.py).
"""

from __future__ import annotations

from typing import Any

import click

from ktrace_cli import __version__
from ktrace_cli.cli.options import Options
from ktrace_cli.cli.pyktrace_args import Fatal, HelpShown, State, check_genio, check_points, options


def _state(ctx: click.Context) -> State:
    state = ctx.meta.get("pyktrace")
    if state is None:
        state = ctx.meta["pyktrace"] = State()
    return state


def _on_clear(ctx: click.Context, param: click.Parameter, count: int) -> int:
    # click calls these in the order the options first appear, so the
    # messages come out in ktrace(1)'s order for the same command line.
    _state(ctx).on_clear(str(param.name), count)
    return count


def _on_id(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    _state(ctx).on_id(str(param.name), values)
    return values


def _on_points(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    check_points(values)
    return values


def _on_genio(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    check_genio(value)
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
    return options(_state(ctx), **kw)



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




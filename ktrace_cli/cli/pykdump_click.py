"""pykdump's click command: --help, --version and every message about a bad command line.

The command hands its parameters back to cli/pykdump.py's main, which
runs them; a plain command line is read there without loading this
module (cli/fastargs.py).
"""

from __future__ import annotations

from typing import Any

import click

from ktrace_cli import __version__
from ktrace_cli.format import constants as K


@click.command(
    context_settings={"help_option_names": ["--help"], "ignore_unknown_options": False},
    epilog="""\b
Examples:
  pykdump                       print ktrace.out as kdump does
  pykdump -f trace.out -HT      with thread ids and absolute times
  pykdump -t n                  only path name lookups (NAMI)
  pykdump -l -f ktrace.out      follow a trace as it grows
  pykdump --json | jq .syscall  one JSON object per record
  pykdump --summary             calls, errors and time per syscall
  pykdump --calls -e trace=%file --failed
                                failed file calls, one line each
  pykdump --calls --json --path '/etc/*'
                                calls on /etc files as JSON objects
  pykdump --tree                which processes ran, how they ended
  pykdump --errors              why it failed: unexpected failures first
  pykdump --timeline run.json   open run.json in ui.perfetto.dev
  pykdump --diff good.out bad.out
                                where two runs of a program part ways
  pykdump --summary --detail --sort=errors
                                percentiles, errnos, threads, files
""",
)
@click.option("-A", "abi_column", is_flag=True, help="Show the process ABI (F64, L64, ...).")
@click.option("-c", "cpu", is_flag=True, help="Show the CPU of each record (v1 headers).")
@click.option("-d", "decimal", is_flag=True, help="Print numbers in decimal.")
@click.option("-E", "elapsed", is_flag=True, help="Show time elapsed since the first record.")
@click.option("-f", "trfile", default=K.DEF_TRACEFILE, type=click.Path(), metavar="trfile", help="Trace file ('-' = stdin).")
@click.option("-H", "tid", is_flag=True, help="Show the thread id of each record.")
@click.option("-l", "follow", is_flag=True, help="Keep reading as the file grows.")
@click.option("-m", "maxdata", default=None, metavar="maxdata", help="Show at most maxdata bytes of I/O.")
@click.option("-n", "plain", is_flag=True, help="No decoding of arguments, flags or errno.")
@click.option("-p", "pid", multiple=True, metavar="pid", help="Only records of this process or thread id (repeatable).")
@click.option("-R", "relative", is_flag=True, help="Show time since the previous record.")
@click.option("-r", "resolve", is_flag=True, help="Show stat modes, users and times symbolically.")
@click.option("-S", "syscall_numbers", is_flag=True, help="Show syscall numbers after names.")
@click.option("-s", "suppress", is_flag=True, help="Do not show I/O data.")
@click.option("-T", "timestamps", is_flag=True, help="Show absolute timestamps.")
@click.option("-t", "trstr", default=None, metavar="trstr", help="Record types to show (cfinpstuwyae+).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per record (NDJSON).")
@click.option("--summary", is_flag=True, help="A table of calls, errors and time per syscall.")
@click.option("--calls", "calls_view", is_flag=True, help="One line (or JSON object) per system call.")
@click.option("-e", "trace_sets", multiple=True, metavar="trace=SET",
              help="Only these calls: names, globs, %class or @class, !negation.")
@click.option("--failed", is_flag=True, help="Only calls that returned an error.")
@click.option("--successful", is_flag=True, help="Only calls that returned without an error.")
@click.option("--errno", "errnos", multiple=True, metavar="LIST", help="Only calls that failed with these errors.")
@click.option("--path", "paths", multiple=True, metavar="GLOB", help="Only calls on paths or descriptors matching GLOB.")
@click.option("--fd", "fds", multiple=True, metavar="N", help="Only calls on these descriptors.")
@click.option("--comm", "comms", multiple=True, metavar="NAME", help="Only records of processes with this name.")
@click.option("--since", default=None, metavar="TIME", help="Only from TIME (epoch seconds, or +S.s after the first record).")
@click.option("--until", default=None, metavar="TIME", help="Only up to TIME (epoch seconds, or +S.s).")
@click.option("--tree", is_flag=True, help="The process tree: argv, exit status, times, calls.")
@click.option("--errors", "errors_view", is_flag=True, help="A digest of failed calls per process, noise collapsed.")
@click.option("--timeline", default=None, metavar="OUT.json", help="Write a Chrome/Perfetto trace-event timeline.")
@click.option("--diff", "diff_files", nargs=2, default=None, metavar="A B", help="Compare two traces of one program.")
@click.option("--detail", is_flag=True,
              help="With --summary: call-time percentiles, errors by errno, threads and files.")
@click.option("--histogram", is_flag=True, help="With --summary: log2 histograms of call times.")
@click.option("--sort", "sort_key", type=click.Choice(["time", "count", "errors", "name"]), default=None,
              help="With --summary: order of the rows (default time).")
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour the text output (auto: only on a terminal).",
)
@click.version_option(__version__, "--version", prog_name="pykdump", message="%(prog)s %(version)s")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="")
def command(**kw: Any) -> dict[str, Any]:
    """Print a ktrace trace file as FreeBSD's kdump(1) does."""
    return kw  # run by cli/pykdump.py's main, as the parameters cli/fastargs.py reads

"""pyktrace: FreeBSD ktrace(1) for Linux: its options, messages and exit codes; the client is trace/client.py."""

from __future__ import annotations

import _signal as signal  # not signal.py: its enum conversions cost start-up
import os
import sys

from ktrace_cli.cli import pyktrace_args
from ktrace_cli.cli.exit_status import ExitStatus
from ktrace_cli.cli.options import Options
from ktrace_cli.cli.pyktrace_args import Fatal, HelpShown
from ktrace_cli.format import constants as K

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from ktrace_cli.trace.client import TraceTarget
    from ktrace_cli.trace.protocol import Reply

    T = TypeVar("T")
USAGE = (
    "usage: pyktrace [-aCcdi] [-f trfile] [-g pgrp | -p pid] [-t trstr]\n"
    "       pyktrace [-adi] [-f trfile] [-t trstr] command\n"
)
UNOBSERVABLE = "fp"  # trace points ptrace cannot see on Linux
__all__ = ["Fatal", "HelpShown", "main", "parse", "run"]


def parse(argv: list[str]) -> Options:
    """ktrace(1)'s option rules and messages; Fatal on any error (--help prints and exits 0).

    A plain command line is read without click (cli/pyktrace_args.py); any
    other goes to the click command, whose help and messages are the
    reference.
    """
    opts = pyktrace_args.fast(argv)
    if opts is not None:
        return opts
    from ktrace_cli.cli import pyktrace_click  # lazy: start-up (click only when needed)

    return pyktrace_click.parse(argv)


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

        opts = opts.replace(engine=bpf.resolve_auto())  # bpf where it loads, else ptrace and why
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
        _set_comm(b"pyktrace")
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
    if opts.clear:  # root's or a CAP_BPF holder's: clear_too asks only where a bpf engine may run
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


def _set_comm(name: bytes) -> None:
    """The name the command's records carry up to its exec: prctl(PR_SET_NAME) through /proc,
    which needs no ctypes (a few ms of start-up); through prctl where /proc does not allow it."""
    try:
        with open("/proc/thread-self/comm", "wb", buffering=0) as f:
            f.write(name)
    except OSError:
        from ktrace_cli.trace.ptrace import set_comm

        set_comm(name)


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

"""pyktrace --live: records printed as they are made, as NetBSD's ktruss(1) prints them.

The engine is handed the write end of a pipe instead of a trace file; this
process reads the other end and decodes it with pykdump's own pipeline,
printing each read's worth of records at once. With -f the bytes read are
also written to the trace file, so the file and the printed text come from
the same stream. The engine's end closes when nothing traces into the pipe
any more (the traced processes exited, or their tracing was cleared), which
is the end of the output. If this reader dies, the engine's next write fails
with EPIPE and it stops tracing, as on any write failure: the traced
processes run on untraced.

In command mode the process forks, as ktruss does: the child asks for
itself to be traced and executes the command; the parent reads, and at the
end exits with the command's status (or dies of its fatal signal).
"""

from __future__ import annotations

import errno as E
import fcntl
import os
import resource
import signal
import stat
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ktrace_cli.format import constants as K
from ktrace_cli.trace import client

if TYPE_CHECKING:
    from ktrace_cli.cli.options import Options
    from ktrace_cli.trace.protocol import Reply

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_MAX_SIZE = "/proc/sys/fs/pipe-max-size"
PIPE_MIN_GROWN = 1 << 16  # the default size: below it, growing is not worth a message
PIPE_MAX_DEFAULT = 1 << 20
BATCH_LINES = 4096  # rendered lines held at most before a write(2)
READ_CHUNK = 1 << 20
SIGINT_STATUS = 128 + signal.SIGINT


class Fatal(Exception):
    """A one-line diagnostic; pyktrace exits 1 after it.

    Not pyktrace's own class: run as `python -m`, that module is __main__,
    and an exception class imported from it under its name would be another.
    """


def grow_pipe(fd: int) -> int:
    """Make the pipe as large as this user may (fewer engine stalls on a slow reader); its size."""
    try:
        with open(PIPE_MAX_SIZE) as f:
            size = int(f.read().strip())
    except (OSError, ValueError):
        size = PIPE_MAX_DEFAULT
    while size >= PIPE_MIN_GROWN:
        try:
            return int(fcntl.fcntl(fd, F_SETPIPE_SZ, size))
        except OSError:
            size //= 2  # over this user's pipe-user-pages limits: take what is left
    return PIPE_MIN_GROWN


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Output:
    """The descriptor the decoded text goes to, written in batches."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd, self.name = fd, name
        self.pending: list[str] = []
        self.encode: Callable[[str], bytes] = _latin1
        self.failed = False

    def add(self, text: str) -> None:
        self.pending.append(text)
        if len(self.pending) >= BATCH_LINES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        data = self.encode("".join(self.pending))
        self.pending.clear()
        if not self.failed:
            try:
                _write_all(self.fd, data)
            except OSError as e:
                self.failed = True
                raise _OutputFailed(f"{self.name}: {e.strerror}") from None


class _OutputFailed(Exception):
    """The live output could not be written (its reader went away, the disk is full...)."""


def _latin1(text: str) -> bytes:
    return text.encode("latin-1")


class _Source:
    """The pipe as the trace reader's stream: prints what was decoded before each read blocks,
    and copies what it reads into the trace file of -f."""

    def __init__(self, fd: int, out: _Output, tee: _Tee | None) -> None:
        self.fd, self.out, self.tee = fd, out, tee
        self.seen = 0

    def fileno(self) -> int:
        return self.fd

    def read(self, n: int = READ_CHUNK) -> bytes:
        self.out.flush()  # the records of the last read are shown before waiting for more
        data = os.read(self.fd, min(max(n, 1), READ_CHUNK))
        if data:
            self.seen += len(data)
            if self.tee is not None:
                self.tee.write(data)
        return data


class _Tee:
    """The trace file of -f, written with what the pipe brings."""

    def __init__(self, target: client.TraceTarget, path: str) -> None:
        self.target, self.path = target, path
        self.failed = False

    def write(self, data: bytes) -> None:
        if self.failed:
            return
        try:
            _write_all(self.target.fd, data)
        except OSError as e:
            self.failed = True  # the live output goes on; the file stops here
            sys.stderr.write(f"pyktrace: {self.path}: {e.strerror}; the trace file is incomplete\n")


def _open_output(opts: Options) -> _Output:
    if opts.live_fd >= 0:
        try:
            os.fstat(opts.live_fd)
        except OSError as e:
            raise Fatal(f"--live-fd {opts.live_fd}: {e.strerror}") from None
        return _Output(opts.live_fd, f"descriptor {opts.live_fd}")
    if opts.live_file:
        path = opts.live_file
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOCTTY | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise Fatal(f"{path}: {e.strerror}") from None
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.ftruncate(fd, 0)  # only a file is emptied: a terminal or a FIFO is written to as it is
        return _Output(fd, path)
    return _Output(sys.stderr.fileno(), "stderr")


def _request(opts: Options, ops: int, facs: int, pid: int, fd: int, command: bool) -> Reply | None:
    """One ktrace(2)-like request naming the pipe; a pipe has no size limit nor a name to settle."""
    start = K.ktrop(ops) != K.KTROP_CLEARFILE
    try:
        return client.ktrace(ops, facs, pid, fd, command=command, seccomp=opts.seccomp,
                             genio_size=opts.genio_size, version=opts.version, rename=None,
                             start=start)  # fmt: skip
    except client.TraceError as e:
        raise Fatal(e.text) from None


def _refusal(reply: Reply | None, what: str) -> Fatal | None:
    err = reply.error if reply is not None else E.ESRCH
    if not err:
        return None
    if reply is not None and reply.itself:
        return Fatal(str(reply.itself))
    if reply is not None and reply.why:
        sys.stderr.write(f"pyktrace: {what}: {os.strerror(err)}\n")
        return Fatal(str(reply.why))
    return Fatal(f"{what}: {os.strerror(err)}")


def _points(opts: Options) -> tuple[int, int]:
    facs = opts.facs | K.PROC_ABI_POINTS | (K.KTRFAC_INHERIT if opts.inherit else 0)
    ops = K.KTROP_SET | (K.KTRFLAG_DESCEND if opts.descend else 0)
    return ops, facs


def _show(rfd: int, out: _Output, tee: _Tee | None, calls: bool, color: str) -> _Source:
    """Decode and print the pipe until its end (or until the output fails)."""
    from ktrace_cli.cli.pykdump import pipeline, screenwidth, terminal_encoder, use_color
    from ktrace_cli.format.layouts import AMD64
    from ktrace_cli.format.reader import TraceFormatError, TraceReader
    from ktrace_cli.render.options import KdumpOptions

    class _Tty:
        @staticmethod
        def isatty() -> bool:
            return os.isatty(out.fd)

    coloured = use_color(color, _Tty)  # type: ignore[arg-type]
    options = KdumpOptions(screenwidth=screenwidth(True, _Tty),  # type: ignore[arg-type]
                           terminal=coloured or _Tty.isatty())  # fmt: skip
    source = _Source(rfd, out, tee)
    # The engine writes amd64 records: no need to wait for 64 KiB to tell.
    reader = TraceReader(source, arch=AMD64)  # type: ignore[arg-type]
    events: Any = pipeline(reader, options, frozenset(), None, calls)
    render: Callable[[Any], str]
    if calls:
        from ktrace_cli.render.calls_text import CallsText

        render = CallsText(options, AMD64).render
    else:
        from ktrace_cli.render.kdump_text import KdumpText

        text = KdumpText(options, AMD64)
        render = text.render
        if coloured:
            from ktrace_cli.render.color import ColorKdump

            render = ColorKdump(text).render
            out.encode = terminal_encoder()
    try:
        for event in events:
            out.add(render(event))
        out.flush()
    except TraceFormatError as e:
        out.flush()
        sys.stderr.write(f"pyktrace: live: {e.message}\n")
    except _OutputFailed as e:
        if out.fd != sys.stderr.fileno():
            sys.stderr.write(f"pyktrace: {e}\n")
    return source


def _tee_target(opts: Options) -> client.TraceTarget | None:
    if not opts.trfile_given:
        return None
    try:
        return client.open_trace_file(opts.trfile, opts.append)
    except client.TraceError as e:
        raise Fatal(e.text) from None


def run(opts: Options) -> int:
    """pyktrace --live: trace a command, or -p/-g, printing the records as they come."""
    try:
        return _run(opts)
    except Fatal as e:
        sys.stderr.write(f"pyktrace: {e}\n")
        return 1


def _run(opts: Options) -> int:
    out = _open_output(opts)
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    grow_pipe(wfd)
    target = _tee_target(opts)
    try:
        if opts.command:
            return _run_command(opts, out, rfd, wfd, target)
        return _run_attached(opts, out, rfd, wfd, target)
    except BaseException:
        if target is not None and target.fd >= 0:
            target.abandon()
        raise


def _run_command(opts: Options, out: _Output, rfd: int, wfd: int,
                 target: client.TraceTarget | None) -> int:  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        status = 1
        try:
            os.close(rfd)
            if target is not None:
                target.close()  # the parent writes the file; the command never sees it
            _become_command(opts, wfd)
        except Fatal as e:
            if str(e):
                sys.stderr.write(f"pyktrace: {e}\n")
        except BaseException as e:  # never a traceback, never back into the parent's code
            sys.stderr.write(f"pyktrace: internal error: {e}\n")
        finally:
            sys.stderr.flush()
            os._exit(status)
    os.close(wfd)
    # The terminal's ^C and ^\ are the command's to act on; the output goes
    # on to the end of its records, as a shell waits for its child.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    tee = _Tee(target, opts.trfile) if target is not None else None
    source = _Source(rfd, out, tee)  # what was seen, should printing fail at once
    try:
        source = _show(rfd, out, tee, opts.calls, opts.color)
    finally:
        os.close(rfd)  # a reader that stopped early: the engine's next write fails and tracing stops
    if target is not None:
        # Records came only if the engine accepted the request (the command's
        # exec is the first): otherwise leave no file behind, as ktrace(1) does.
        if source.seen:
            target.settle({})
            target.close()
        else:
            target.abandon()
    _, status = os.waitpid(child, 0)
    return _exit_status(status)


def _become_command(opts: Options, wfd: int) -> None:
    """The child: ask to be traced into the pipe, then execute the command (as pyktrace does)."""
    from ktrace_cli.trace.ptrace import set_comm

    set_comm(b"pyktrace")
    if opts.seccomp == "on":
        from ktrace_cli.trace import seccomp
    ops, facs = _points(opts)
    reply = _request(opts, ops, facs, os.getpid(), wfd, True)
    refused = _refusal(reply, opts.command[0])
    if refused is not None:
        raise refused
    assert reply is not None
    nrs = reply.filter
    if nrs is not None and opts.seccomp == "on":
        seccomp.install([int(n) for n in nrs], no_new_privs=os.geteuid() != 0)
    for signo in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signo, signal.SIG_DFL)  # a shell's defaults for the command
    try:
        os.execvp(opts.command[0], opts.command)
    except OSError as e:
        raise Fatal(f"exec of '{opts.command[0]}' failed: {os.strerror(e.errno or 0)}") from None


def _exit_status(status: int) -> int:
    """The command's exit status; its fatal signal raised again on ourselves, as a shell expects."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    sig = os.WTERMSIG(status)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the command's core, not ours
    except (OSError, ValueError):
        pass
    if sig not in (signal.SIGKILL, signal.SIGSTOP):  # the two that cannot be caught or ignored
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
    os.kill(os.getpid(), sig)
    return 128 + sig  # a signal that does not kill (SIGCHLD...) or could not be raised


def _run_attached(opts: Options, out: _Output, rfd: int, wfd: int,
                  target: client.TraceTarget | None) -> int:  # fmt: skip
    """-p/-g: print until the traced processes are gone, or ^C clears their tracing."""
    ops, facs = _points(opts)
    try:
        reply = _request(opts, ops, facs, opts.pid, wfd, False)
    finally:
        os.close(wfd)  # the engine holds its own end; the pipe ends when it lets go
    what = opts.trfile if opts.trfile_given else f"{'process group' if opts.pid < 0 else 'pid'} {abs(opts.pid)}"
    refused = _refusal(reply, what)
    if refused is not None:
        raise refused
    if target is not None:
        target.settle(reply.result() if reply is not None else {})
    stopper = _Stopper(opts, rfd)
    old = signal.signal(signal.SIGINT, stopper.on_signal)
    try:
        _show(rfd, out, _Tee(target, opts.trfile) if target is not None else None, opts.calls, opts.color)
    finally:
        signal.signal(signal.SIGINT, old)
        stopper.wait()
        os.close(rfd)
        if target is not None:
            target.close()
    if stopper.error:
        sys.stderr.write(f"pyktrace: {stopper.error}\n")
    return SIGINT_STATUS if stopper.asked else 0


class _Stopper:
    """^C with -p/-g: clear everything tracing into our pipe, then read on to its end.

    The clear is sent from a thread: the engine may be waiting for room in
    the pipe, which only this process's reading makes.
    """

    def __init__(self, opts: Options, rfd: int) -> None:
        self.opts, self.rfd = opts, rfd
        self.asked = False
        self.error = ""
        self.thread: threading.Thread | None = None

    def on_signal(self, signum: int, frame: object) -> None:
        if self.asked:
            return
        self.asked = True
        self.thread = threading.Thread(target=self._clear, daemon=True)
        self.thread.start()

    def _clear(self) -> None:
        try:
            # The pipe's read end names the same pipe the engine writes to.
            reply = _request(self.opts, K.KTROP_CLEARFILE, K.ALL_POINTS, 0, self.rfd, False)
        except Fatal as e:
            self.error = str(e)
            return
        if reply is not None and reply.error:
            self.error = f"clearing the live trace: {os.strerror(reply.error)}"

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()

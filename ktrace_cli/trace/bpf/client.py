"""pyktrace's side of the bpf engine: the request, and command mode.

Command mode is ktrace(1)'s, as with the ptrace engine: pyktrace asks the
engine to trace its own pid, and once the answer says the kernel traces
it, execs the command in place, so the trace shows the command with the
pid pyktrace had. The records are written by the daemon asynchronously:
the engine drains the moment the traced process exits (it watches a pidfd
of it), and pykdump asks it to `flush` before it reads (trace/bpf/flush.py;
docs/DESIGN.md, "The daemon and the client").
"""

from __future__ import annotations

import _signal as signal  # not signal.py: its enum conversions cost start-up
import errno as E
import os
import resource
import sys
import time

from ktrace_cli.format import constants as K
from ktrace_cli.trace import protocol
from ktrace_cli.trace.bpf import wire
from ktrace_cli.trace.client import (
    REPLY_TIMEOUT,
    RETRY_PAUSE,
    START_TIMEOUT,
    TraceError,
    TraceTarget,
    connect,
    engine_alive,
    start_daemon,
)  # fmt: skip
from ktrace_cli.trace.runtime import Runtime

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from typing import Protocol

    class Options(Protocol):
        """What the bpf client reads of pyktrace's parsed command line (cli/options.py)."""

        @property
        def clear(self) -> str: ...
        @property
        def letters(self) -> str: ...
        @property
        def command(self) -> list[str]: ...
        @property
        def genio_size(self) -> int: ...
        @property
        def version(self) -> int: ...
        @property
        def trfile(self) -> str: ...


# Trace points the bpf engine does not record (p: no engine can on Linux).
NOT_YET = "p"
COMM = b"pyktrace"  # our records before the exec carry this name, as with the ptrace engine


def _name_thread(name: bytes) -> None:
    """prctl(PR_SET_NAME) without ctypes: the comm file of this thread."""
    try:
        with open("/proc/thread-self/comm", "wb") as f:
            f.write(name)
    except OSError:
        pass  # only the name of our few records before the exec


def _start(rt: Runtime) -> bool:
    from ktrace_cli.trace.bpf import service  # lazy: the daemon's imports only when it starts

    return start_daemon(rt, service.spawn)


def call(message: dict[str, object], fd: int | None = None, start: bool = True) -> dict[str, object] | None:
    """One request to the bpf engine, starting it on demand; None if start=False and none runs.

    The runtime directory is closed before the request goes out: in
    command mode the trace begins at the engine's answer, and nothing of
    the client's own is left to close but the socket.
    """
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        rt = wire.runtime(create=start)
        if rt is None:
            return None  # no bpf engine has ever run here: nothing to ask
        try:
            sock = connect(rt)
            log = rt.log
            if sock is None:
                if not start and not engine_alive(rt):
                    return None
                started = _start(rt)
        finally:
            rt.close()
        if sock is None:
            if not started:
                if time.monotonic() > deadline:
                    raise protocol.EngineUnavailable(E.ETIMEDOUT, "the bpf engine did not start")
                time.sleep(RETRY_PAUSE)  # another client is starting it, or the old one is exiting
            continue
        with sock:
            sock.settimeout(REPLY_TIMEOUT)
            try:
                protocol.send_bytes(sock, wire.message(message), fd)
                line, extra = protocol.recv_line(sock)
            except TimeoutError:
                raise protocol.EngineUnavailable(E.ETIMEDOUT, f"the bpf engine did not answer (see {log})") from None
            except OSError:
                line, extra = None, None
            if extra is not None:
                os.close(extra)
        reply = wire.parse(line)
        if reply is not None:
            return reply
        if time.monotonic() > deadline:
            raise protocol.EngineUnavailable(E.ETIMEDOUT, "the bpf engine did not answer")


def exec_command(argv: list[str]) -> int:
    """Become the command (ktrace(1)'s execvp); returns only if the exec failed, with the status."""
    # Python ignores SIGPIPE and SIGXFSZ at start-up; an ignored signal stays
    # ignored across exec, so give the command the defaults a shell would.
    for signo in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signo, signal.SIG_DFL)
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        raise TraceError(e.errno or E.ENOEXEC, f"exec of '{argv[0]}' failed: {os.strerror(e.errno or 0)}") from None
    return 1


def why_not() -> str | None:
    """None when the bpf engine can load here, else why not."""
    return wire.why_unavailable()


def resolve_auto() -> str:
    """--engine=auto: the engine to use, bpf where it can load, else ptrace (saying why on stderr)."""
    why = why_not()
    if why:
        sys.stderr.write(f"pyktrace: --engine=auto: using ptrace: {why}\n")
        return "ptrace"
    return "bpf"


def run(opts: Options, ops: int, facs: int, pid: int, fd: int | None,
        target: TraceTarget | None = None) -> int:  # fmt: skip
    """pyktrace's run() for the bpf engine: the request, or command mode; the exit status.

    A request that cannot be made or is refused raises TraceError, as the
    ptrace engine's client does.

    `fd` is the trace file (owned by `target` when there is one, else ours
    to close). The engine renames a new file into place once it accepts
    the request, as the ptrace engine does; a refused one is undone. In
    command mode this returns only if the exec failed.
    """

    def answered(reply: dict[str, object]) -> None:
        if target is not None:
            if int(reply.get("error", 0)):  # type: ignore[call-overload]
                target.abandon()
            else:
                target.settle(reply)

    closed = False

    def done() -> None:
        nonlocal closed
        if closed:
            return
        closed = True
        if target is not None:
            target.close()
        elif fd is not None:
            os.close(fd)

    why = why_not()
    if why:
        if target is not None:
            target.abandon()
        done()
        raise TraceError(E.EOPNOTSUPP, why)
    missing = sorted({c for c in opts.letters if c in NOT_YET})
    if missing and not opts.clear:
        sys.stderr.write(f"pyktrace: warning: the bpf engine does not record trace points "
                         f"{' '.join(missing)} yet; not recorded\n")  # fmt: skip
    request: dict[str, object] = {
        "op": "ktrace", "ops": ops, "facs": facs, "pid": pid,
        "genio_size": opts.genio_size, "version": opts.version,
        "fsize_limit": resource.getrlimit(resource.RLIMIT_FSIZE)[0],
    }  # fmt: skip
    start = not (K.ktrop(ops) == K.KTROP_CLEARFILE or opts.clear == "C")
    if target is not None:
        request["rename"] = target.rename_request()  # the engine names the file: no rename in the trace
    if opts.command:
        request["command"] = True  # pid is ours: the engine checks it is the caller's
        _name_thread(COMM)
    try:
        answer = call(request, fd, start=start)
        if answer is not None:
            answered(answer)
    except OSError as e:
        if target is not None:
            target.abandon()
        done()
        raise TraceError(e.errno or E.EIO, f"bpf engine: {e.strerror or e}") from None
    if not opts.command:
        done()
    if answer is not None:
        try:
            _check(opts, answer)
        except TraceError:
            done()
            raise
    if opts.command:
        # The trace file and its directory are close-on-exec: closing them
        # here would put two more calls into the command's trace.
        return exec_command(opts.command)
    return 0


def _check(opts: Options, reply: dict[str, object]) -> None:
    err = int(reply.get("error", 0))  # type: ignore[call-overload]
    if err and reply.get("self"):
        raise TraceError(err, str(reply["self"]))  # the whole story, as the ptrace engine tells it
    if err and reply.get("why"):
        # ktrace(1)'s own line, then the cause, as the ptrace engine's client says them.
        sys.stderr.write(f"pyktrace: {opts.trfile}: {os.strerror(err)}\n")
        raise TraceError(err, str(reply["why"]))
    if err:
        raise TraceError(err, f"{opts.trfile}: {os.strerror(err)}")


def clear_too(opts: Options, ops: int, facs: int, pid: int) -> None:
    """A clear under the ptrace engine also clears what a running bpf engine traces (best effort).

    Only root and holders of CAP_BPF and CAP_PERFMON can run the bpf
    engine, so only their clears ask it (each its own engine).
    """
    if not wire.may_load():
        return
    request: dict[str, object] = {"op": "ktrace", "ops": ops, "facs": facs, "pid": pid}
    fd: int | None = None
    try:
        if K.ktrop(ops) == K.KTROP_CLEARFILE:
            fd = os.open(opts.trfile, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)  # as client.open_clear_file
        call(request, fd, start=False)
    except OSError:
        pass
    finally:
        if fd is not None:
            os.close(fd)

"""pyktrace's side of the bpf engine: the request, and command mode.

Command mode differs from the ptrace engine's in one way: the command runs
in a child of pyktrace, not in pyktrace's own process.  Records are made in
the kernel and written by the daemon, asynchronously; only a process that
waits for the command and then asks the daemon to drain (a barrier) can
promise that the trace file is complete when its parent sees it exit.
"""

from __future__ import annotations

import errno as E
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from typing import Protocol

from ktrace_cli.format import constants as K
from ktrace_cli.trace import protocol
from ktrace_cli.trace.bpf import service
from ktrace_cli.trace.bpf.loader import why_unavailable
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


# The words to the forked command: go on and exec, or give up.
GO, STOP = signal.SIGUSR1, signal.SIGUSR2
# Signals the waiting pyktrace passes on to the command; a terminal's
# SIGINT and SIGQUIT reach the command through its process group already.
# Trace points the bpf engine does not record (p: no engine can on Linux).
NOT_YET = "p"
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def _start(rt: Runtime) -> bool:
    return start_daemon(rt, service.spawn)


def call(message: dict[str, object], fd: int | None = None, start: bool = True) -> dict[str, object] | None:
    """One request to the bpf engine, starting it on demand; None if start=False and none runs."""
    rt = service.runtime(create=start)
    if rt is None:
        return None  # no bpf engine has ever run here: nothing to ask
    try:
        return _call(rt, message, fd, start)
    finally:
        rt.close()


def _call(rt: Runtime, message: dict[str, object], fd: int | None, start: bool) -> dict[str, object] | None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        sock = connect(rt)
        if sock is None:
            if not start and not engine_alive(rt):
                return None
            if not _start(rt):
                if time.monotonic() > deadline:
                    raise protocol.EngineUnavailable(E.ETIMEDOUT, "the bpf engine did not start")
                time.sleep(RETRY_PAUSE)  # another client is starting it, or the old one is exiting
            continue
        with sock:
            sock.settimeout(REPLY_TIMEOUT)
            try:
                protocol.send_bytes(sock, service.message(message), fd)
                line, extra = protocol.recv_line(sock)
            except TimeoutError:
                raise protocol.EngineUnavailable(E.ETIMEDOUT, f"the bpf engine did not answer (see {rt.log})") from None
            except OSError:
                line, extra = None, None
            if extra is not None:
                os.close(extra)
        reply = service.parse(line)
        if reply is not None:
            return reply
        if time.monotonic() > deadline:
            raise protocol.EngineUnavailable(E.ETIMEDOUT, "the bpf engine did not answer")


def run_command(argv: list[str], request: dict[str, object], fd: int,
                answered: Callable[[dict[str, object]], None]) -> tuple[int, dict[str, object]]:  # fmt: skip
    """Fork the command, have the engine trace it before it execs, wait, drain; (status, reply).

    The reply is the engine's answer to the trace request; when it is an
    error the command is not run (status 1).
    """
    # The child waits in sigwait() for the parent's word: a signal, unlike a
    # pipe, leaves no GIO record of pyktrace's own in the trace. Blocked
    # before the fork, so the word cannot arrive before the child waits.
    words = {GO, STOP}
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, words)
    pid = os.fork()
    if pid == 0:
        word = signal.sigwait(words)  # the parent says when the kernel traces us
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # exec keeps the mask
        if word != GO:
            os._exit(1)
        for signo in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(signo, signal.SIG_DFL)
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            os.write(2, f"pyktrace: exec of '{argv[0]}' failed: {os.strerror(e.errno or 0)}\n".encode())
        os._exit(1)  # as ktrace(1) exits when its exec fails
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    try:
        reply = call({**request, "pid": pid, "command": True}, fd) or {"error": E.EIO}
    except BaseException:
        os.kill(pid, STOP)
        os.waitpid(pid, 0)
        raise
    ok = not int(reply.get("error", 0))  # type: ignore[call-overload]
    try:
        answered(reply)  # the new file gets its name before the command runs
    finally:
        os.kill(pid, GO if ok else STOP)
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGQUIT, *FORWARDED)}
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    for s in FORWARDED:
        signal.signal(s, lambda signo, _f: os.kill(pid, signo))
    try:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if ok:
        call({"op": "sync"}, start=False)
    return status, reply


def exit_like(status: int) -> int:
    """Exit as the command did: its code, or its signal (without a core file of our own)."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except (OSError, ValueError):
            pass
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those keep their default anyway
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.waitstatus_to_exitcode(status)


def why_not() -> str | None:
    """None when the bpf engine can load here, else why not."""
    return why_unavailable()


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
    to close). The bpf engine does not rename a new file into place: once
    the request is accepted, `target.settle` does; a refused one is undone.
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
    try:
        if opts.command:
            assert fd is not None
            status, reply = run_command(opts.command, request, fd, answered)
            done()
            _check(opts, reply)
            return exit_like(status)
        answer = call(request, fd, start=start)
        if answer is not None:
            answered(answer)
    except OSError as e:
        if target is not None:
            target.abandon()
        raise TraceError(e.errno or E.EIO, f"bpf engine: {e.strerror or e}") from None
    finally:
        done()
    if answer is not None:
        _check(opts, answer)
    return 0


def _check(opts: Options, reply: dict[str, object]) -> None:
    err = int(reply.get("error", 0))  # type: ignore[call-overload]
    if err and reply.get("self"):
        raise TraceError(err, str(reply["self"]))  # the whole story, as the ptrace engine tells it
    if err:
        raise TraceError(err, f"{opts.trfile}: {os.strerror(err)}")


def clear_too(opts: Options, ops: int, facs: int, pid: int) -> None:
    """A clear under the ptrace engine also clears what a running bpf engine traces (best effort).

    Only root can run the bpf engine, so only root's clear asks it.
    """
    if os.geteuid() != 0:
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

"""pyktrace: FreeBSD ktrace(1) for Linux, a thin client of the per-user trace engine."""

from __future__ import annotations

import errno
import getopt
import os
import stat
import sys
from dataclasses import dataclass, field

from ktrace_cli.format import constants as K

USAGE = (
    "usage: pyktrace [-aCcdi] [-f trfile] [-g pgrp | -p pid] [-t trstr]\n"
    "       pyktrace [-adi] [-f trfile] [-t trstr] command\n"
)
LONG_OPTIONS = ["genio-size=", "header-version=", "seccomp=", "help"]
UNOBSERVABLE = "fp"  # trace points ptrace cannot see on Linux
PR_SET_NAME = 15
PR_SET_PTRACER = 0x59616D61


class Fatal(Exception):
    """A one-line diagnostic; the process exits 1 after printing it."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class Options:
    """The parsed command line (the flags of ktrace(1) plus the long extensions)."""

    append: bool = False
    clear: str = ""  # "", "c" or "C"
    descend: bool = False
    inherit: bool = False
    trfile: str = K.DEF_TRACEFILE
    pid: int = 0  # > 0 process, < 0 process group
    facs: int = K.DEF_POINTS
    letters: str = ""
    command: list[str] = field(default_factory=list)
    genio_size: int = K.GENIO_SIZE_DEFAULT
    version: int = K.KTR_VERSION1
    seccomp: str = "auto"


def _parse_id(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = 0
    if value < 1 or value > 0x7FFFFFFF or not text.strip().lstrip("+").isdigit():
        raise Fatal("invalid process or group id", usage=True)
    return value


def parse(argv: list[str]) -> Options:
    """ktrace(1)'s option rules and messages (getopt "aCcdf:g:ip:t:", stop at the command)."""
    try:
        opts, rest = getopt.getopt(argv, "aCcdf:g:ip:t:", LONG_OPTIONS)
    except getopt.GetoptError as e:
        if e.opt and len(e.opt) == 1:
            what = "option requires an argument" if "requires" in e.msg else "illegal option"
            raise Fatal(f"{what} -- {e.opt}", usage=True) from None
        raise Fatal(e.msg, usage=True) from None
    o: dict[str, object] = {}
    clear = ""
    pid = 0
    facs = K.DEF_POINTS
    letters = ""
    for opt, arg in opts:
        if opt == "-a":
            o["append"] = True
        elif opt in ("-C", "-c"):
            if clear:
                raise Fatal("only one -c or -C flag is permitted", usage=True)
            clear = opt[1]
        elif opt == "-d":
            o["descend"] = True
        elif opt == "-i":
            o["inherit"] = True
        elif opt == "-f":
            o["trfile"] = arg
        elif opt in ("-g", "-p"):
            if pid:
                raise Fatal("only one -g or -p flag is permitted", usage=True)
            pid = _parse_id(arg) * (-1 if opt == "-g" else 1)
        elif opt == "-t":
            parsed = K.parse_trace_points(arg)
            if parsed is None:
                raise Fatal(f"unknown facility in {arg}", usage=True)
            facs, letters = parsed, arg
        elif opt == "--help":
            raise Fatal("", usage=True)
        elif opt == "--genio-size":
            if not arg.isdigit():
                raise Fatal(f"invalid --genio-size: {arg}")
            o["genio_size"] = int(arg)
        elif opt == "--header-version":
            if arg not in ("0", "1"):
                raise Fatal(f"invalid --header-version: {arg} (0 or 1)")
            o["version"] = int(arg)
        elif opt == "--seccomp":
            if arg not in ("auto", "on", "off"):
                raise Fatal(f"invalid --seccomp: {arg} (auto, on or off)")
            o["seccomp"] = arg
    if clear == "C" and pid:
        raise Fatal("the -C flag may not be combined with -g or -p", usage=True)
    if not clear and not pid and not rest:
        raise Fatal("", usage=True)
    if pid and rest:
        raise Fatal("", usage=True)
    if clear and rest:
        raise Fatal("", usage=True)
    return Options(clear=clear, pid=pid, facs=facs, letters=letters, command=rest,
                   **o)  # type: ignore[arg-type]  # fmt: skip


def open_trace_file(path: str, append: bool) -> int:
    """Open the trace file as ktrace(1) does (spec §4.4); Fatal with its messages."""
    old = os.umask(0o077)
    try:
        if not append:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise Fatal(f"unlink {path}: {os.strerror(e.errno or 0)}") from None
            flags = os.O_CREAT | os.O_EXCL
        else:
            flags = os.O_CREAT | os.O_NONBLOCK
        try:
            fd = os.open(path, flags | os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o666)  # fmt: skip
        except OSError as e:
            raise Fatal(f"{path}: {os.strerror(e.errno or 0)}") from None
    finally:
        os.umask(old)
    if append:
        try:
            st = os.fstat(fd)
        except OSError:
            st = None
        if st is None or st.st_uid != os.getuid():
            os.close(fd)
            raise Fatal(f"refuse to append to {path} not owned by you")
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise Fatal(f"{path} not regular file")
    return fd


def _allow_engine(engine_pid: int) -> None:
    """Yama ptrace_scope 1 lets only ancestors trace us unless we name the tracer."""
    if os.getuid() == 0:
        return
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return
    if scope == 1:
        from ktrace_cli.trace.ptrace import prctl

        prctl(PR_SET_PTRACER, engine_pid)


def _ktrace(opts: Options, ops: int, facs: int, pid: int, fd: int | None,
            command: bool) -> dict[str, object]:  # fmt: skip
    from ktrace_cli.trace import control

    message: dict[str, object] = {
        "op": "ktrace", "ops": ops, "facs": facs, "pid": pid, "command": command,
        "seccomp": opts.seccomp, "genio_size": opts.genio_size, "version": opts.version,
    }  # fmt: skip
    try:
        return control.call(message, fd, before_send=_allow_engine if command else None)
    except OSError as e:
        raise Fatal(f"trace engine: {e.strerror or e}") from None


def run(opts: Options) -> int:
    if opts.letters and any(c in UNOBSERVABLE for c in opts.letters):
        sys.stderr.write(
            "pyktrace: warning: trace points f and p (page faults, capability failures) "
            "cannot be observed through ptrace on Linux; not recorded\n"
        )
    facs = opts.facs
    if opts.inherit:
        facs |= K.KTRFAC_INHERIT
    ops = K.KTRFLAG_DESCEND if opts.descend else 0
    fd: int | None = None
    if opts.clear == "C":
        ops, facs, pid = K.KTROP_CLEAR | K.KTRFLAG_DESCEND, K.ALL_POINTS, 1
    elif opts.clear:
        if opts.pid:
            ops |= K.KTROP_CLEAR
            pid = opts.pid
        else:
            ops = K.KTROP_CLEARFILE
            pid = 0
            try:
                fd = os.open(opts.trfile, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError as e:
                raise Fatal(f"{opts.trfile}: {os.strerror(e.errno or 0)}") from None
    else:
        facs |= K.PROC_ABI_POINTS
        fd = open_trace_file(opts.trfile, opts.append)
        pid = opts.pid or os.getpid()
    command = bool(opts.command)
    if command:
        _set_comm(b"pyktrace")
        if opts.seccomp != "off":
            # Imported before the engine attaches, so the trace starts with
            # pyktrace's last syscalls, not with its module loading.
            from ktrace_cli.trace import seccomp  # noqa: F401
    reply = _ktrace(opts, ops, facs, pid, fd, command)
    if fd is not None:
        os.close(fd)
    err = int(reply.get("error", 0))  # type: ignore[call-overload]
    if err and not (opts.clear == "C" and err == errno.EPERM):
        raise Fatal(f"{opts.trfile}: {os.strerror(err)}")
    if not command:
        return 0
    nrs = reply.get("filter")
    if isinstance(nrs, list):
        from ktrace_cli.trace import seccomp

        seccomp.install([int(n) for n in nrs], no_new_privs=os.geteuid() != 0)
    try:
        os.execvp(opts.command[0], opts.command)
    except OSError as e:
        raise Fatal(f"exec of '{opts.command[0]}' failed: {os.strerror(e.errno or 0)}") from None
    return 1


def _set_comm(name: bytes) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        return run(parse(args))
    except Fatal as e:
        if str(e):
            sys.stderr.write(f"pyktrace: {e}\n")
        if e.usage:
            sys.stderr.write(USAGE)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # never a traceback for a user
        sys.stderr.write(f"pyktrace: internal error: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())

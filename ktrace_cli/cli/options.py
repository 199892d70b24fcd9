"""pyktrace's parsed command line, shared by the command (cli/pyktrace.py) and --live (cli/live.py)."""

from __future__ import annotations

from ktrace_cli.format import constants as K
from ktrace_cli.value import Value


class Options(Value):
    """The parsed command line (the flags of ktrace(1) plus the long extensions)."""

    __slots__ = ("append", "clear", "descend", "inherit", "trfile", "pid", "facs", "letters", "command",
                 "genio_size", "version", "seccomp", "live", "live_file", "live_fd", "calls", "color",
                 "trfile_given", "engine")  # fmt: skip
    append: bool
    clear: str  # "", "c" or "C"
    descend: bool
    inherit: bool
    trfile: str
    pid: int  # > 0 process, < 0 process group
    facs: int
    letters: str
    command: list[str]
    genio_size: int
    version: int
    seccomp: str
    # --live (cli/live.py): print the records while tracing, to stderr or elsewhere.
    live: bool
    live_file: str
    live_fd: int
    calls: bool
    color: str
    trfile_given: bool  # -f named: with --live, the only case a trace file is written
    engine: str  # the capture backend: ptrace or bpf (auto is resolved in run())

    def __init__(self, append: bool = False, clear: str = "", descend: bool = False, inherit: bool = False,
                 trfile: str = K.DEF_TRACEFILE, pid: int = 0, facs: int = K.DEF_POINTS, letters: str = "",
                 command: list[str] | None = None, genio_size: int = K.GENIO_SIZE_DEFAULT,
                 version: int = K.KTR_VERSION1, seccomp: str = "off", live: bool = False,
                 live_file: str = "", live_fd: int = -1, calls: bool = False, color: str = "auto",
                 trfile_given: bool = False, engine: str = "ptrace") -> None:  # fmt: skip
        self._set(append=append, clear=clear, descend=descend, inherit=inherit, trfile=trfile, pid=pid,
                  facs=facs, letters=letters, command=[] if command is None else command,
                  genio_size=genio_size, version=version, seccomp=seccomp, live=live,
                  live_file=live_file, live_fd=live_fd, calls=calls, color=color,
                  trfile_given=trfile_given, engine=engine)  # fmt: skip


ENGINES = ("auto", "ptrace", "bpf")  # --engine's values (and $PYKTRACE_ENGINE's)

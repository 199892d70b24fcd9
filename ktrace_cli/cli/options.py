"""pyktrace's parsed command line, shared by the command (cli/pyktrace.py) and --live (cli/live.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ktrace_cli.format import constants as K


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
    seccomp: str = "off"
    # --live (cli/live.py): print the records while tracing, to stderr or elsewhere.
    live: bool = False
    live_file: str = ""
    live_fd: int = -1
    calls: bool = False
    color: str = "auto"
    trfile_given: bool = False  # -f named: with --live, the only case a trace file is written
    engine: str = "ptrace"  # the capture backend: ptrace or bpf (auto is resolved in run())


ENGINES = ("auto", "ptrace", "bpf")  # --engine's values (and $PYKTRACE_ENGINE's)

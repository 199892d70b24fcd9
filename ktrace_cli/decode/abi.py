"""The process ABI of each record, from PROCCTOR sv_flags, and what depends on it.

FreeBSD's kdump keys syscall names, argument decoding, errno and signal
printing on the ABI the kernel recorded in the PROCCTOR record of each pid;
a pid without one (sv_flags 0) gets FreeBSD names but no decoding.
"""

from __future__ import annotations

from ktrace_cli.abi import freebsd, linux, linux_i386
from ktrace_cli.decode.cfmt import signal_text
from ktrace_cli.format import constants as K
from ktrace_cli.value import Value

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from typing import ClassVar


class Abi:
    """A process ABI: one of four singletons, compared (and hashed) by identity.

    What an enum.Enum of them gave, without importing enum (a tenth of a
    plain pykdump's start-up): the members, their name and value, and
    identity kept through copy and pickle.
    """

    __slots__ = ("name", "value")
    FREEBSD: ClassVar[Abi]
    LINUX: ClassVar[Abi]
    LINUX32: ClassVar[Abi]
    UNKNOWN: ClassVar[Abi]

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"<Abi.{self.name}: {self.value!r}>"

    def __reduce__(self) -> str:
        return f"Abi.{self.name}"  # the member itself, as copy and pickle find it


Abi.FREEBSD = Abi("FREEBSD", "freebsd")
Abi.LINUX = Abi("LINUX", "linux")
Abi.LINUX32 = Abi("LINUX32", "linux32")
Abi.UNKNOWN = Abi("UNKNOWN", "unknown")


def syscall_abi(sv_flags: int) -> Abi:
    """kdump's syscallabi(): which name table a process uses."""
    if sv_flags == 0:
        return Abi.FREEBSD
    abi = sv_flags & K.SV_ABI_MASK
    if abi == K.SV_ABI_FREEBSD:
        return Abi.FREEBSD
    if abi == K.SV_ABI_LINUX:
        return Abi.LINUX32 if sv_flags & K.SV_ILP32 else Abi.LINUX
    return Abi.UNKNOWN


def abi_column(sv_flags: int) -> str:
    """The -A column: F64, F32, L64, L32, U00..."""
    abi = sv_flags & K.SV_ABI_MASK
    letter = "L" if abi == K.SV_ABI_LINUX else "F" if abi == K.SV_ABI_FREEBSD else "U"
    if sv_flags & K.SV_LP64:
        return letter + "64"
    if sv_flags & K.SV_ILP32:
        return letter + "32"
    return letter + "00"


def json_abi(sv_flags: int) -> str:
    """The "abi" member of a JSON record: "freebsd", "linux" or "unknown"."""
    abi = sv_flags & K.SV_ABI_MASK
    if sv_flags and abi == K.SV_ABI_FREEBSD:
        return "freebsd"
    if sv_flags and abi == K.SV_ABI_LINUX:
        return "linux"
    return "unknown"


_FREEBSD_NAMES: dict[int, str | None] = {}
_LINUX_NAMES: dict[int, str | None] = {}
_LINUX32_NAMES: dict[int, str | None] = {}


def syscall_name(abi: Abi, code: int) -> str | None:
    """The name kdump prints for syscall `code`, None when the table has none."""
    if abi is Abi.FREEBSD:
        name = _FREEBSD_NAMES.get(code, "")
        if name == "":
            name = _FREEBSD_NAMES[code] = freebsd.syscall_name(code)
        return name
    if abi is Abi.LINUX:
        name = _LINUX_NAMES.get(code, "")
        if name == "":
            name = _LINUX_NAMES[code] = linux.syscall_name(code)
        return name
    if abi is Abi.LINUX32:
        name = _LINUX32_NAMES.get(code, "")
        if name == "":
            name = _LINUX32_NAMES[code] = linux_i386.syscall_name(code)
        return name
    return None


class ErrorInfo(Value):
    """A failed syscall's error in the numbering of the process's ABI."""

    __slots__ = ("number", "name", "text")
    number: int  # what kdump prints after "errno"
    name: str | None  # ENOENT, ...
    text: str  # strerror

    def __init__(self, number: int, name: str | None, text: str) -> None:
        self._set(number=number, name=name, text=text)


INT_MAX = 2**31 - 1


def error_info(abi: Abi, ktr_error: int) -> ErrorInfo:
    """The errno a RET record shows for `ktr_error` (a FreeBSD errno as stored)."""
    if abi is Abi.FREEBSD:
        return ErrorInfo(ktr_error, freebsd.errno_name(ktr_error), freebsd.strerror(ktr_error))
    if abi is Abi.LINUX or abi is Abi.LINUX32:
        number = linux.linux_errno_from_freebsd(ktr_error)
        return ErrorInfo(number, linux.errno_name(number), linux.strerror(number))
    return ErrorInfo(INT_MAX, None, freebsd.strerror(ktr_error))


def signal_name(abi: Abi, signo: int) -> str:
    """A PSIG signal as kdump prints it; Linux processes get Linux names."""
    if abi is Abi.LINUX or abi is Abi.LINUX32:
        lsig = linux.linux_signal_from_freebsd(signo)
        name = linux.signal_name(lsig) if lsig is not None else None
        return signal_text(name, lsig if lsig is not None else signo)
    return signal_text(freebsd.signal_name(signo), signo)


def sigcode_name(abi: Abi, signo: int, code: int) -> str | None:
    if abi is Abi.LINUX or abi is Abi.LINUX32:
        from ktrace_cli.abi.linuxulator import linux_sigcode

        lsig = linux.linux_signal_from_freebsd(signo)
        return linux.sigcode_name(lsig if lsig is not None else signo, linux_sigcode(signo, code))
    return freebsd.sigcode_name(signo, code)


class ProcessTable:
    """pid -> sv_flags from PROCCTOR/PROCDTOR records, as kdump keeps it."""

    def __init__(self) -> None:
        self.sv_flags: dict[int, int] = {}

    def ctor(self, pid: int, sv_flags: int) -> None:
        self.sv_flags[pid] = sv_flags

    def dtor(self, pid: int) -> None:
        self.sv_flags.pop(pid, None)

    def get(self, pid: int) -> int:
        return self.sv_flags.get(pid, 0)

"""Linux-ABI CALL argument text: FreeBSD kdump's Linux decoder (docs/FORMAT.md, CALL text), and rows beyond it.

kdump decodes a few Linux syscalls in three passes over the argument slots
(usr.bin/kdump/linux.c): a leading directory fd, a per-syscall template, a
trailing *at() flags word; every slot left over is printed as a plain number.
The primitives are kdump's (docs/FORMAT.md, Number primitives): N is `%#jx` (`%jd` with -d), D is
always `%jd`, MASK is `%#x<NAMES>`, INT is a name or `<invalid=%#x>`, and so
on.  Syscalls are keyed by their plain Linux names ("openat", not
"linux_openat").

By default the decoding goes further than kdump, in kdump's syntax: the
rows of decode/linux_calls.py decode the arguments strace users read first
(mmap, socket, fcntl, ioctl, futex, ...), and an argument the prototype
declares `int` or `pid_t` prints signed (`kill(-472,SIGCONT)`).  Every
syscall printed differently from kdump is listed, with the reason, in
linux_calls.KDUMP_OVERRIDES; `kdump=True` prints exactly kdump's text.

Beyond kdump in both modes (documented divergences): faccessat2, fchmodat2
and renameat2 are decoded like their older forms; unlinkat prints 0x200 as
AT_REMOVEDIR (kdump says AT_EACCESS); clone's exit signal does not count as
a printed flag, so a bare `clone(SIGCHLD)` ends in `<invalid>0` as kdump's
code would with its flag initialised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

from ktrace_cli.abi import linux_flags as F
from ktrace_cli.abi import sysdecode
from ktrace_cli.abi.linux import signal_name, syscall_prototype
from ktrace_cli.decode.cfmt import c_hex, c_int32, c_int64

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF


# The C-format helpers, under the names the Linux rows use (decode/cfmt.py).
int32 = c_int32  # a slot truncated to a C int, as kdump passes it to its int decoders
_int64 = c_int64
hex_alt = c_hex  # %#x / %#jx


class MaskTable:
    """A libsysdecode mask table: walked in order, each matching entry printed once."""

    __slots__ = ("entries", "_cache")

    def __init__(self, entries: F.Table) -> None:
        self.entries = entries
        self._cache: dict[int, tuple[str, int]] = {}

    def names(self, value: int) -> tuple[str, int]:
        """(names joined by "|", undecoded bits) for an unsigned value."""
        hit = self._cache.get(value)
        if hit is not None:
            return hit
        rem = value
        parts = []
        for bit, name in self.entries:
            if bit & rem == bit and (bit or not value):
                parts.append(name)
                rem &= ~bit
        hit = ("|".join(parts), rem)
        if len(self._cache) < 4096:
            self._cache[value] = hit
        return hit

    def mask(self, value: int) -> str:
        """kdump's print_mask_arg of a C int: `%#x<names>`, `<invalid>%u` if none."""
        value &= _U32
        names, rem = self.names(value)
        if names:
            return f"{hex_alt(value)}<{names}>"
        return f"{hex_alt(value)}<><invalid>{rem}"

    def mask0(self, value: int) -> str:
        """kdump's print_mask_arg0: `0` for zero, else as mask()."""
        return "0" if not value & _U32 else self.mask(value)


def lookup(table: F.Table) -> dict[int, str]:
    """A value -> name dict keeping the first name of each value, as lookup_value does."""
    out: dict[int, str] = {}
    for value, name in table:
        out.setdefault(value, name)
    return out


AT_FLAGS = MaskTable(F.AT_FLAGS)
AT_UNLINKAT_FLAGS = MaskTable(F.AT_UNLINKAT_FLAGS)
# kdump prints access modes and file modes with FreeBSD's tables; the values
# are the same on Linux (include/uapi/linux/stat.h, unistd.h).
ACCESS_MODES = MaskTable(sysdecode.table("accessmode").rows)
FILE_MODES = MaskTable(sysdecode.table("filemode").rows)
CLOCK_FLAGS = MaskTable(F.CLOCK_FLAGS)
OPEN_FLAGS = MaskTable(F.OPEN_FLAGS)
CLONE_FLAGS = MaskTable(F.CLONE_FLAGS)
_CLOCK_IDS = lookup(F.CLOCK_IDS)
_CPUCLOCK_IDS = lookup(F.CPUCLOCK_IDS)
_SIGPROCMASK_HOW = lookup(F.SIGPROCMASK_HOW)
_ITIMER_WHICH = lookup(F.ITIMER_WHICH)
_OPEN_ACCESS = lookup(F.OPEN_ACCESS_MODES)


def linux_signal(signo: int) -> str:
    """kdump's print_linux_signal: the Linux name, or `SIG %d`."""
    name = signal_name(signo)
    return name if name is not None else f"SIG {signo}"


def filemode(value: int) -> str:
    """kdump's decode_filemode: `0`, or `%#o<names>` (`<invalid>%u` if none)."""
    value &= _U32
    if not value:
        return "0"
    names, rem = FILE_MODES.names(value)
    if names:
        return f"0{value:o}<{names}>"
    return f"0{value:o}<><invalid>{rem}"


def open_flags(value: int) -> str:
    """MASK with sysdecode_linux_open_flags: the access mode first, then the flags."""
    value &= _U32
    mode = value & F.O_ACCMODE
    access = _OPEN_ACCESS.get(mode)
    names, rem = OPEN_FLAGS.names(value & ~F.O_ACCMODE)
    if access is not None:
        # Something was printed, so kdump drops any undecoded bits silently.
        return f"{hex_alt(value)}<{access}|{names}>" if names else f"{hex_alt(value)}<{access}>"
    if names:
        return f"{hex_alt(value)}<{names}>"
    return f"{hex_alt(value)}<><invalid>{rem | mode}"


def clone_flags(value: int) -> str:
    """MASK with sysdecode_linux_clone_flags: `(SIGNAME)` of the low byte, then the flags."""
    value &= _U32
    sig = value & F.CLONE_CSIGNAL
    # sysdecode prints a NULL name with %s, which FreeBSD's libc shows as (null).
    signame = f"({signal_name(sig) or '(null)'})" if sig else ""
    names, rem = CLONE_FLAGS.names(value & ~F.CLONE_CSIGNAL)
    if names:
        return f"{hex_alt(value)}<{signame}{names}>"
    return f"{hex_alt(value)}<{signame}><invalid>{rem}"


def clockid(value: int) -> str:
    """sysdecode_linux_clockid: a name, UNKNOWN(%d), or a CPU clock with its pid."""
    which = int32(value)
    if which >= 0:
        name = _CLOCK_IDS.get(which)
        return name if name is not None else f"UNKNOWN({which})"
    pid = int32(~(which >> 3))
    if which & F.CLOCKFD_MASK == F.CLOCKFD_MASK:
        return f"INVALID PERTHREAD|CLOCKFD({pid})"
    kind = "THREAD|" if which & F.CPUCLOCK_PERTHREAD_MASK else "PROCESS|"
    ci = which & F.CPUCLOCK_WHICH_MASK
    name = _CPUCLOCK_IDS.get(ci)
    if name is None:
        name = "CLOCKFD" if ci == F.CLOCKFD else f"UNKNOWN({which})"
    return f"{kind}{name}({pid})"


# Prototype types whose value is a signed C integer: "pid" prints in decimal
# (as kdump prints kill's pid), "int" and "long" print a negative value with
# a minus sign and any other in the N format.
_SIGNED_KINDS = {"pid_t": "pid", "int": "int", "off_t": "long", "loff_t": "long", "long": "long"}


@cache
def slot_kinds(name: str) -> tuple[str, ...]:
    """Per argument slot of syscall NAME: "pid", "int", "long" or "" (unsigned), from its prototype."""
    proto = syscall_prototype(name)
    if proto is None:
        return ()
    return tuple(_SIGNED_KINDS.get(" ".join(argtype.split()), "") for argtype, _name in proto[1])


class Args:
    """The running state of kdump's argument printer: slots, position, separator."""

    __slots__ = ("slots", "i", "sep", "out", "decimal", "ilp32", "kinds", "kdump")

    def __init__(self, slots: Sequence[int], decimal: bool, ilp32: bool,
                 kinds: tuple[str, ...] | None = None) -> None:  # fmt: skip
        self.slots = slots
        self.i = 0
        self.sep = "("
        self.out: list[str] = []
        self.decimal = decimal
        self.ilp32 = ilp32
        # None in kdump mode: every slot is then printed as kdump prints it.
        self.kdump = kinds is None
        self.kinds = kinds or ()

    def more(self) -> bool:
        return self.i < len(self.slots)

    def take(self) -> int:
        value = self.slots[self.i]
        self.i += 1
        return value

    def number(self) -> None:
        """N: print_number, or a signed value where the prototype declares one."""
        if self.more():
            kind = self.kinds[self.i] if self.i < len(self.kinds) else ""
            value = self.take()
            if kind:
                text = self.signed(value, kind)
            else:
                text = str(_int64(value)) if self.decimal else hex_alt(value & _U64)
            self.out.append(self.sep + text)
            self.sep = ","

    def signed(self, value: int, kind: str) -> str:
        """A signed C value: pid_t in decimal; int or long negative as -N, else as N."""
        # off_t and long are 32 bits wide on an ILP32 ABI.
        n = _int64(value) if kind == "long" and not self.ilp32 else int32(value)
        if kind == "pid" or n < 0 or self.decimal:
            return str(n)
        return hex_alt(n)

    def put(self, text: str) -> None:
        """One argument's text after the separator."""
        self.out.append(self.sep + text)
        self.sep = ","

    def arg(self, decode: Callable[[int], str]) -> None:
        """The next slot, if any, through a decoder."""
        if self.more():
            self.put(decode(self.take()))

    def decimal_number(self) -> None:
        """D: print_decimal_number."""
        if self.more():
            self.out.append(f"{self.sep}{_int64(self.take())}")
            self.sep = ","

    def number64(self) -> None:
        """N64: one slot, or two (low word first) on an ILP32 ABI."""
        if not self.more():
            return
        value = self.take() & _U64
        if self.ilp32:
            high = self.take() & _U32 if self.more() else 0
            value = (value & _U32) | high << 32
        text = str(_int64(value)) if self.decimal else hex_alt(value)
        self.out.append(self.sep + text)
        self.sep = ","

    def open_paren(self, text: str) -> None:
        """`(` then a decoded first argument; later arguments follow a comma."""
        self.out.append("(" + text)
        self.sep = ","

    def comma(self, decode: Callable[[int], str]) -> None:
        """`,` then one slot through a decoder (the separator is left alone)."""
        if self.more():
            self.out.append("," + decode(self.take()))

    def atfd(self, value: int) -> str:
        """print_integer_arg_valid(sysdecode_atfd)."""
        fd = int32(value)
        if fd == F.AT_FDCWD:
            return "AT_FDCWD"
        if fd < 0 and not self.kdump:
            return str(fd)
        return str(fd) if self.decimal else hex_alt(fd & _U32)

    def integer(self, names: dict[int, str], value: int) -> str:
        """print_integer_arg: a name, or `<invalid=%#x>` (`<invalid=%d>` with -d)."""
        n = int32(value)
        name = names.get(n)
        if name is not None:
            return name
        return f"<invalid={n}>" if self.decimal else f"<invalid={hex_alt(n & _U32)}>"


def _first(a: Args, decode: Callable[[int], str]) -> None:
    if a.more():
        a.open_paren(decode(a.take()))


def _access(a: Args) -> None:
    a.number()
    a.comma(ACCESS_MODES.mask)


def _filemode(a: Args) -> None:
    a.number()
    a.comma(filemode)


def _link(a: Args) -> None:
    a.number()
    a.comma(a.atfd)
    a.number()


def _numbers(count: int) -> Callable[[Args], None]:
    def template(a: Args) -> None:
        for _ in range(count):
            a.number()

    return template


def _clock(a: Args) -> None:
    _first(a, clockid)


def _clock_nanosleep(a: Args) -> None:
    _first(a, clockid)
    a.comma(CLOCK_FLAGS.mask0)


def _clone(a: Args) -> None:
    _first(a, clone_flags)


def _kill(a: Args) -> None:
    a.decimal_number()
    a.comma(linux_signal)


def _tgkill(a: Args) -> None:
    a.decimal_number()
    a.decimal_number()
    a.comma(linux_signal)


def _open(a: Args) -> None:
    a.number()
    if not a.more():
        return
    flags = a.take()
    a.out.append("," + open_flags(flags))
    if flags & F.O_CREAT and a.more():
        a.out.append("," + filemode(a.take()))
    elif a.more():
        a.i += 1  # kdump consumes the mode slot even when it does not print it


def _sigaction(a: Args) -> None:
    _first(a, linux_signal)


def _truncate(a: Args) -> None:
    a.number()
    a.number64()


def _itimer(a: Args) -> None:
    _first(a, lambda v: a.integer(_ITIMER_WHICH, v))


def _sigprocmask(a: Args) -> None:
    _first(a, lambda v: a.integer(_SIGPROCMASK_HOW, v))


# Pass A: syscalls whose first argument is a directory fd.
_DIRFD_FIRST = frozenset(
    {
        "faccessat", "faccessat2", "fchmodat", "fchmodat2", "fchownat", "newfstatat",
        "fstatat64", "futimesat", "linkat", "mkdirat", "mknodat", "openat",
        "readlinkat", "renameat", "renameat2", "unlinkat", "utimensat",
    }
)  # fmt: skip

# Pass B: the per-syscall template.
_TEMPLATES: dict[str, Callable[[Args], None]] = {
    "access": _access,
    "faccessat": _access,
    "faccessat2": _access,
    "chmod": _filemode,
    "fchmodat": _filemode,
    "fchmodat2": _filemode,
    "mknodat": _filemode,
    "mkdir": _filemode,
    "mkdirat": _filemode,
    "linkat": _link,
    "renameat": _link,
    "renameat2": _link,
    "symlinkat": _link,
    "fchownat": _numbers(3),
    "newfstatat": _numbers(2),
    "fstatat64": _numbers(2),
    "utimensat": _numbers(2),
    "unlinkat": _numbers(1),
    "clock_gettime": _clock,
    "clock_settime": _clock,
    "clock_getres": _clock,
    "timer_create": _clock,
    "clock_nanosleep": _clock_nanosleep,
    "clone": _clone,
    "kill": _kill,
    "tkill": _kill,
    "rt_sigqueueinfo": _kill,
    "tgkill": _tgkill,
    "rt_tgsigqueueinfo": _tgkill,
    "open": _open,
    "openat": _open,
    "rt_sigaction": _sigaction,
    "truncate": _truncate,
    "ftruncate": _truncate,
    "getitimer": _itimer,
    "setitimer": _itimer,
    "rt_sigprocmask": _sigprocmask,
}

# linux32 (ILP32) has a few more entries in kdump's table.
_TEMPLATES_ILP32: dict[str, Callable[[Args], None]] = {
    **_TEMPLATES,
    "fchmod": _filemode,
    "clock_gettime64": _clock,
    "clock_settime64": _clock,
    "clock_getres_time64": _clock,
    "signal": _sigaction,
    "sigaction": _sigaction,
    "sigprocmask": _sigprocmask,
}

# Pass C: a trailing *at() flags word.
_AT_FLAGS_LAST: dict[str, MaskTable] = {
    "fchownat": AT_FLAGS,
    "faccessat": AT_FLAGS,
    "faccessat2": AT_FLAGS,
    "fchmodat": AT_FLAGS,
    "fchmodat2": AT_FLAGS,
    "newfstatat": AT_FLAGS,
    "fstatat64": AT_FLAGS,
    "linkat": AT_FLAGS,
    "unlinkat": AT_UNLINKAT_FLAGS,
    "utimensat": AT_FLAGS,
}


def format_args(name: str, args: Sequence[int], *, decimal: bool, ilp32: bool,
                kinds: tuple[str, ...] | None = None) -> str:
    """The text after a Linux syscall's name as FreeBSD's kdump prints it: `(...)`, or '' with no slots.

    `kinds` (slot_kinds) prints signed slots as their C types say; the
    per-call rows over this module's cursor are in linux_calls.
    """
    if not args:
        return ""
    a = Args(args, decimal, ilp32, kinds)
    if name in _DIRFD_FIRST:
        a.open_paren(a.atfd(a.take()))
    template = (_TEMPLATES_ILP32 if ilp32 else _TEMPLATES).get(name)
    if template is not None:
        template(a)
    flags = _AT_FLAGS_LAST.get(name)
    if flags is not None:
        a.comma(flags.mask0)
    while a.more():
        a.number()
    a.out.append(")")
    return "".join(a.out)

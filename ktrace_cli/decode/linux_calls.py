"""Linux CALL argument rows beyond kdump's: the calls strace decodes and kdump prints as numbers.

One row per syscall (x86_64 argument order), built from decode/linux_args.py's
printer and the generated tables of abi/linux_flags.py.  The text keeps
kdump's syntax: a mask is `%#x<NAME|NAME>`, a value is its name, an unknown
value `<invalid=%#x>`.  Unlike kdump, a mask with names *and* unknown bits
keeps the unknown bits (`0x103<PROT_READ|PROT_WRITE|0x100>`); a mask with no
name at all is `%#x<><invalid>%u` as kdump prints it.

KDUMP_OVERRIDES lists every syscall whose CALL text differs from what
FreeBSD's kdump prints for the same Linuxulator record, with the reason;
ROWS holds the decoders.  pykdump applies them unless asked for kdump's
exact text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ktrace_cli.abi import linux_flags as F
from ktrace_cli.decode.linux_args import (
    Args,
    MaskTable,
    clockid,
    format_args,
    hex_alt,
    int32,
    linux_signal,
    lookup,
    open_flags,
    slot_kinds,
)

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF

Row = Callable[[Args], None]


def _mask(name: str) -> MaskTable:
    return MaskTable(F.table(name))


def compose(value: int, parts: list[str], rest: int) -> str:
    """`%#x<A|B|0xREST>`; `0` for zero with no name; `%#x<><invalid>%u` when nothing has a name."""
    if parts:
        if rest:
            parts = [*parts, hex(rest)]
        return f"{hex_alt(value)}<{'|'.join(parts)}>"
    if not value:
        return "0"
    return f"{hex_alt(value)}<><invalid>{rest}"


def flags(table: MaskTable, bits: int = 32) -> Callable[[int], str]:
    """A mask decoder that keeps unknown bits; zero prints a zero-valued name (PROT_NONE) or `0`."""
    width = _U32 if bits == 32 else _U64

    def decode(value: int) -> str:
        value &= width
        names, rest = table.names(value)
        return compose(value, [names] if names else [], rest)

    return decode


def plain_flags(table: MaskTable) -> Callable[[int], str]:
    """Names without the hex prefix, as kdump prints fcntl's F_SETFD argument (`FD_CLOEXEC`)."""

    def decode(value: int) -> str:
        value &= _U32
        names, rest = table.names(value)
        if not names:
            return hex_alt(value)
        return names + (f"|{rest:#x}" if rest else "")

    return decode


def _value(a: Args, names: dict[int, str]) -> Callable[[int], str]:
    return lambda v: a.integer(names, v)


def _signed(a: Args, kind: str = "int") -> Callable[[int], str]:
    return lambda v: a.signed(v, kind)


def _n(a: Args, count: int = 1) -> None:
    for _ in range(count):
        a.number()


# prot and flags are unsigned long in the kernel: bits above 31 are kept (and
# shown); for int arguments the kernel itself ignores them, and so do we.
PROT = flags(_mask("mmap_prot"), bits=64)
MAP_TYPES = lookup(F.table("mmap_type"))
MAP_FLAGS = _mask("mmap_flags")
MAP_TYPE_MASK = 0x0F  # MAP_TYPE in asm-generic/mman-common.h


def mmap_flags(value: int) -> str:
    """The mapping type (low four bits) by name, then the flags: `0x22<MAP_PRIVATE|MAP_ANONYMOUS>`."""
    value &= _U64
    kind = MAP_TYPES.get(value & MAP_TYPE_MASK)
    parts = [] if kind is None else [kind]
    names, rest = MAP_FLAGS.names(value & ~MAP_TYPE_MASK if kind else value)
    if names:
        parts.append(names)
    return compose(value, parts, rest)


def _mmap(a: Args) -> None:
    _n(a, 2)
    a.arg(PROT)
    a.arg(mmap_flags)
    a.arg(_signed(a))  # the fd is an int; -1 for anonymous maps
    a.number()


def _mprotect(a: Args) -> None:
    _n(a, 2)
    a.arg(PROT)


def _after(count: int, decode_of: Callable[[Args], Callable[[int], str]]) -> Row:
    """count plain slots, then one decoded slot."""

    def row(a: Args) -> None:
        _n(a, count)
        a.arg(decode_of(a))

    return row


def _first_value(table: str) -> Row:
    names = lookup(F.table(table))
    return _after(0, lambda a: _value(a, names))


def _first_flags(table: str) -> Row:
    decode = flags(_mask(table))
    return _after(0, lambda a: decode)


# --- sockets ---------------------------------------------------------------

DOMAINS = lookup(F.table("socket_domain"))
SOCK_TYPES = lookup(F.table("socket_type"))
SOCK_FLAGS = _mask("socket_flags")
SOCK_TYPE_MASK = 0x0F  # SOCK_TYPE_MASK in include/linux/net.h
IPPROTO = lookup(F.table("ipproto"))
AF_INET = F.value("socket_domain", "AF_INET")
AF_INET6 = F.value("socket_domain", "AF_INET6")
SOL_SOCKET = F.value("sockopt_level", "SOL_SOCKET")
LEVELS = lookup(F.table("sockopt_level"))
OPTIONS = {
    SOL_SOCKET: lookup(F.table("sockopt_socket")),
    F.value("sockopt_level", "SOL_IP"): lookup(F.table("sockopt_ip")),
    F.value("sockopt_level", "SOL_TCP"): lookup(F.table("sockopt_tcp")),
    F.value("sockopt_level", "SOL_IPV6"): lookup(F.table("sockopt_ipv6")),
}
MSG = flags(_mask("msg_flags"))


def socket_type(value: int) -> str:
    """The type (low four bits) by name, then SOCK_CLOEXEC/SOCK_NONBLOCK: `0x80001<SOCK_STREAM|SOCK_CLOEXEC>`."""
    value &= _U32
    kind = SOCK_TYPES.get(value & SOCK_TYPE_MASK)
    parts = [] if kind is None else [kind]
    names, rest = SOCK_FLAGS.names(value & ~SOCK_TYPE_MASK if kind else value)
    if names:
        parts.append(names)
    return compose(value, parts, rest)


def _socket(a: Args) -> None:
    if not a.more():
        return
    domain = int32(a.take())
    a.put(a.integer(DOMAINS, domain))
    a.arg(socket_type)
    if domain in (AF_INET, AF_INET6):
        a.arg(_value(a, IPPROTO))  # the protocol is an IPPROTO_ value only for IP sockets


def _sockopt(a: Args) -> None:
    a.number()
    if not a.more():
        return
    level = int32(a.take())
    a.put(a.integer(LEVELS, level))
    names = OPTIONS.get(level)
    if names is not None:
        a.arg(_value(a, names))


def _then(count: int, decode: Callable[[int], str]) -> Row:
    """count plain slots, then one slot through a fixed decoder."""
    return _after(count, lambda a: decode)


# --- files -----------------------------------------------------------------

FCNTL_CMDS = lookup(F.table("fcntl_cmd"))
F_SETFD = F.value("fcntl_cmd", "F_SETFD")
F_SETFL = F.value("fcntl_cmd", "F_SETFL")
F_SETSIG = F.value("fcntl_cmd", "F_SETSIG")
F_ADD_SEALS = F.value("fcntl_cmd", "F_ADD_SEALS")
# Commands whose argument is an int (a minimum fd, a pid or process group).
F_SIGNED_ARG = frozenset(F.value("fcntl_cmd", c) for c in ("F_DUPFD", "F_DUPFD_CLOEXEC", "F_SETOWN"))
FD_FLAGS = plain_flags(_mask("fcntl_fd_flags"))
SEALS = flags(_mask("fcntl_seals"))
IOCTLS = lookup(F.table("ioctl_tty") + F.table("ioctl_misc"))
WHENCE = lookup(F.table("seek_whence"))


def _fcntl(a: Args) -> None:
    a.number()
    if not a.more():
        return
    cmd = int32(a.take())
    a.put(a.integer(FCNTL_CMDS, cmd))
    if cmd == F_SETFD:
        a.arg(FD_FLAGS)
    elif cmd == F_SETFL:
        a.arg(open_flags)
    elif cmd == F_SETSIG:
        a.arg(lambda v: linux_signal(int32(v)) if int32(v) else "0")
    elif cmd == F_ADD_SEALS:
        a.arg(SEALS)
    elif cmd in F_SIGNED_ARG:
        a.arg(_signed(a))


def _ioctl(a: Args) -> None:
    a.number()
    a.arg(lambda v: IOCTLS.get(v & _U32) or hex_alt(v & _U32))  # kdump prints an unknown request as a number


def _lseek(a: Args) -> None:
    a.number()
    a.arg(_signed(a, "long"))
    a.arg(_value(a, WHENCE))


STATX_AT = MaskTable(F.pick("at_flags", "AT_SYMLINK_NOFOLLOW", "AT_NO_AUTOMOUNT", "AT_EMPTY_PATH",
                            "AT_STATX_FORCE_SYNC", "AT_STATX_DONT_SYNC"))  # fmt: skip
STATX_MASK = flags(_mask("statx_mask"))


STATX_FLAGS = flags(STATX_AT)


def _statx(a: Args) -> None:
    a.arg(a.atfd)
    a.number()
    a.arg(STATX_FLAGS)
    a.arg(STATX_MASK)


# --- memory ----------------------------------------------------------------

MADVICE = lookup(F.table("madvise_advice"))

# --- processes and signals -------------------------------------------------

FUTEX_CMDS = lookup(F.table("futex_cmd"))
FUTEX_PRIVATE_FLAG = F.value("futex_flags", "FUTEX_PRIVATE_FLAG")
FUTEX_CLOCK_REALTIME = F.value("futex_flags", "FUTEX_CLOCK_REALTIME")


def futex_op(a: Args, value: int) -> str:
    """The command, `_PRIVATE` appended as the kernel's own names do, then FUTEX_CLOCK_REALTIME."""
    op = value & _U32
    cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
    name = FUTEX_CMDS.get(cmd)
    if name is None:
        return a.integer({}, op)
    if op & FUTEX_PRIVATE_FLAG:
        name += "_PRIVATE"
    if op & FUTEX_CLOCK_REALTIME:
        name += "|FUTEX_CLOCK_REALTIME"
    return name


def _futex(a: Args) -> None:
    a.number()
    a.arg(lambda v: futex_op(a, v))


PRCTL = lookup(F.table("prctl_option"))
PR_SET_PDEATHSIG = F.value("prctl_option", "PR_SET_PDEATHSIG")


def _prctl(a: Args) -> None:
    if not a.more():
        return
    option = int32(a.take())
    a.put(a.integer(PRCTL, option))
    if option == PR_SET_PDEATHSIG:
        a.arg(lambda v: linux_signal(int32(v)) if int32(v) else "0")


RLIMITS = lookup(F.table("rlimit_resource"))
WAIT = flags(_mask("wait_options"))
IDTYPES = lookup(F.table("waitid_idtype"))


def _wait4(a: Args) -> None:
    a.arg(_signed(a, "pid"))
    a.number()
    a.arg(WAIT)


def _waitid(a: Args) -> None:
    a.arg(_value(a, IDTYPES))
    a.arg(_signed(a))
    a.number()
    a.arg(WAIT)


def _prlimit64(a: Args) -> None:
    a.arg(_signed(a, "pid"))
    a.arg(_value(a, RLIMITS))


def _kill(a: Args) -> None:
    a.arg(_signed(a, "pid"))
    a.arg(lambda v: linux_signal(int32(v)))


def _tgkill(a: Args) -> None:
    a.arg(_signed(a, "pid"))
    a.arg(_signed(a, "pid"))
    a.arg(lambda v: linux_signal(int32(v)))


CLONE = MaskTable(F.CLONE_FLAGS)
CLONE3 = flags(_mask("clone3_flags"), bits=64)


def clone_flags(value: int) -> str:
    """strace's order: the flags, then the exit signal of the low byte (`CLONE_VM|...|SIGCHLD`)."""
    value &= _U64
    sig = value & F.CLONE_CSIGNAL
    names, rest = CLONE.names(value & ~F.CLONE_CSIGNAL)
    parts = [names] if names else []
    if sig:
        parts.append(linux_signal(sig))
    return compose(value, parts, rest)


def _clone(a: Args) -> None:
    a.arg(clone_flags)


# --- descriptors with flags ------------------------------------------------

PIPE2 = flags(MaskTable(F.pick("open_flags", "O_NONBLOCK", "O_DIRECT", "O_CLOEXEC")))
DUP3 = flags(MaskTable(F.pick("open_flags", "O_CLOEXEC")))


EPOLL_OPS = lookup(F.table("epoll_ctl_op"))
TIMERFD_CREATE = flags(_mask("timerfd_create_flags"))


def _timerfd_create(a: Args) -> None:
    a.arg(clockid)
    a.arg(TIMERFD_CREATE)


# Syscall -> (row, why its text differs from kdump's).
KDUMP_OVERRIDES: dict[str, tuple[Row, str]] = {
    "kill": (_kill, "pid is a C int: -472, not the register's 4294966824"),
    "tkill": (_kill, "tid is a C int, printed as one"),
    "rt_sigqueueinfo": (_kill, "pid is a C int, printed as one"),
    "tgkill": (_tgkill, "tgid and tid are C ints, printed as such"),
    "rt_tgsigqueueinfo": (_tgkill, "tgid and tid are C ints, printed as such"),
    "clone": (_clone, "the exit signal is printed last, as strace does, and no <invalid> follows it"),
    "unshare": (_then(0, CLONE3), "kdump prints a number: CLONE_NEW* names"),
    "setns": (_then(1, CLONE3), "kdump prints a number: the namespace type"),
    "mmap": (_mmap, "kdump prints numbers: protection, map type and flags, and the fd signed"),
    "mprotect": (_mprotect, "kdump prints a number: the protection"),
    "pkey_mprotect": (_mprotect, "kdump prints a number: the protection"),
    "mremap": (_then(3, flags(_mask("mremap_flags"), bits=64)), "kdump prints a number: MREMAP_* flags"),
    "madvise": (_after(2, lambda a: _value(a, MADVICE)), "kdump prints a number: the advice"),
    "msync": (_then(2, flags(_mask("msync_flags"))), "kdump prints a number: MS_* flags"),
    "mlockall": (_first_flags("mlockall_flags"), "kdump prints a number: MCL_* flags"),
    "socket": (_socket, "kdump prints numbers: domain, type with its flags, and the IP protocol"),
    "socketpair": (_socket, "kdump prints numbers: domain, type with its flags, and the IP protocol"),
    "setsockopt": (_sockopt, "kdump prints numbers: the level and the option name"),
    "getsockopt": (_sockopt, "kdump prints numbers: the level and the option name"),
    "sendto": (_then(3, MSG), "kdump prints a number: MSG_* flags"),
    "recvfrom": (_then(3, MSG), "kdump prints a number: MSG_* flags"),
    "sendmsg": (_then(2, MSG), "kdump prints a number: MSG_* flags"),
    "recvmsg": (_then(2, MSG), "kdump prints a number: MSG_* flags"),
    "sendmmsg": (_then(3, MSG), "kdump prints a number: MSG_* flags"),
    "recvmmsg": (_then(3, MSG), "kdump prints a number: MSG_* flags"),
    "accept4": (_then(3, flags(SOCK_FLAGS)), "kdump prints a number: SOCK_* flags"),
    "fcntl": (_fcntl, "kdump prints numbers: the command and, for the common ones, its argument"),
    "ioctl": (_ioctl, "kdump prints a number: the request's name"),
    "lseek": (_lseek, "kdump prints numbers: the offset signed and the whence"),
    "statx": (_statx, "kdump prints numbers: the dirfd, AT_* flags and STATX_* mask"),
    "pipe2": (_then(1, PIPE2), "kdump prints a number: O_* flags"),
    "dup3": (_then(2, DUP3), "kdump prints a number: O_CLOEXEC"),
    "futex": (_futex, "kdump prints a number: the operation"),
    "prctl": (_prctl, "kdump prints numbers: the option (and PR_SET_PDEATHSIG's signal)"),
    "arch_prctl": (_first_value("arch_prctl_option"), "kdump prints a number: the option"),
    "prlimit64": (_prlimit64, "kdump prints numbers: the pid signed and the resource"),
    "getrlimit": (_first_value("rlimit_resource"), "kdump prints a number: the resource"),
    "setrlimit": (_first_value("rlimit_resource"), "kdump prints a number: the resource"),
    "wait4": (_wait4, "kdump prints numbers: the pid signed and W* options"),
    "waitid": (_waitid, "kdump prints numbers: the id type, the id signed and W* options"),
    "getrandom": (_then(2, flags(_mask("getrandom_flags"))), "kdump prints a number: GRND_* flags"),
    "epoll_create1": (_first_flags("epoll_create_flags"), "kdump prints a number: EPOLL_CLOEXEC"),
    "epoll_ctl": (_after(1, lambda a: _value(a, EPOLL_OPS)), "kdump prints a number: the operation"),
    "memfd_create": (_then(1, flags(_mask("memfd_flags"))), "kdump prints a number: MFD_* flags"),
    "eventfd2": (_then(1, flags(_mask("eventfd_flags"))), "kdump prints a number: EFD_* flags"),
    "timerfd_create": (_timerfd_create, "kdump prints numbers: the clock and TFD_* flags"),
    "timerfd_settime": (_then(1, flags(_mask("timerfd_settime_flags"))),
                        "kdump prints a number: TFD_TIMER_* flags"),
    "signalfd4": (_then(3, flags(_mask("signalfd_flags"))), "kdump prints a number: SFD_* flags"),
    "inotify_init1": (_first_flags("inotify_init_flags"), "kdump prints a number: IN_* flags"),
}

ROWS: dict[str, Row] = {name: row for name, (row, _why) in KDUMP_OVERRIDES.items()}

# Beyond the rows, in every syscall an argument the prototype declares int,
# pid_t or off_t prints signed where kdump prints the 64-bit register.
SIGNED_ARGUMENTS_NOTE = "int, pid_t and off_t arguments print signed, from the syscall prototypes"


def format_linux_args(name: str, args: Sequence[int], *, decimal: bool, ilp32: bool, kdump: bool = False) -> str:
    """The text after a Linux syscall's name in a CALL line: `(...)`, or '' with no slots.

    kdump=True prints exactly what FreeBSD's kdump prints for the record;
    the default also applies the rows of KDUMP_OVERRIDES.
    """
    if not args:
        return ""
    if kdump:
        return format_args(name, args, decimal=decimal, ilp32=ilp32)
    row = ROWS.get(name)
    if row is None:
        return format_args(name, args, decimal=decimal, ilp32=ilp32, kinds=slot_kinds(name))
    a = Args(args, decimal, ilp32, slot_kinds(name))
    row(a)
    while a.more():
        a.number()
    a.out.append(")")
    return "".join(a.out)

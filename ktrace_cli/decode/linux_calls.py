"""Linux CALL argument rows beyond kdump's: the calls strace decodes and kdump prints as numbers.

One row per syscall (x86_64 argument order) of the primitives every ABI
prints with (decode/kdump_args.py), over the generated tables of
abi/linux_flags.py.  The text keeps
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
from ktrace_cli.abi.sysdecode import NameTable
from ktrace_cli.decode.cfmt import c_hex, c_int32
from ktrace_cli.decode.kdump_args import (
    ATFD,
    INT,
    PID,
    SINT,
    SLONG,
    VAL,
    Args,
    C,
    N,
    Op,
    P,
    S,
    invalid_text,
    run,
)
from ktrace_cli.decode.linux_args import (
    CLOCKID,
    CLONE_FLAGS,
    SIGNAL,
    cursor,
    format_args,
    linux_signal,
    open_flags,
    slot_kinds,
)

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF

Row = tuple[Op, ...]


def _mask(name: str) -> NameTable:
    return NameTable(F.table(name))


def _names(name: str) -> NameTable:
    return NameTable(F.table(name))


def compose(value: int, parts: list[str], rest: int) -> str:
    """`%#x<A|B|0xREST>`; `0` for zero with no name; `%#x<><invalid>%u` when nothing has a name."""
    if parts:
        if rest:
            parts = [*parts, hex(rest)]
        return f"{c_hex(value)}<{'|'.join(parts)}>"
    if not value:
        return "0"
    return f"{c_hex(value)}<><invalid>{rest}"


def flags(table: NameTable, bits: int = 32) -> Callable[[int], str]:
    """A mask decoder that keeps unknown bits; zero prints a zero-valued name (PROT_NONE) or `0`."""
    width = _U32 if bits == 32 else _U64

    def decode(value: int) -> str:
        value &= width
        names, rest = table.names(value)
        return compose(value, [names] if names else [], rest)

    return decode


def FLAGS(table: NameTable | str, bits: int = 32) -> Op:  # noqa: N802
    """One slot through flags(): names, and the unknown bits beside them."""
    return VAL(flags(_mask(table) if isinstance(table, str) else table, bits))


def plain_flags(table: NameTable) -> Callable[[int], str]:
    """Names without the hex prefix, as kdump prints fcntl's F_SETFD argument (`FD_CLOEXEC`)."""

    def decode(value: int) -> str:
        value &= _U32
        names, rest = table.names(value)
        if not names:
            return c_hex(value)
        return names + (f"|{rest:#x}" if rest else "")

    return decode


def after(count: int, op: Op) -> Row:
    """count plain slots, then one decoded slot: `(op)` first, `,op` later."""
    return (N,) * count + (C, op) if count else (P, op, S)


def ENUM(table: str) -> Op:  # noqa: N802
    """One slot by name from a generated table, <invalid=...> otherwise."""
    return INT(_names(table).first.get)


# prot and flags are unsigned long in the kernel: bits above 31 are kept (and
# shown); for int arguments the kernel itself ignores them, and so do we.
PROT = flags(_mask("mmap_prot"), bits=64)
MAP_TYPES = _names("mmap_type")
MAP_FLAGS = _mask("mmap_flags")
MAP_TYPE_MASK = 0x0F  # MAP_TYPE in asm-generic/mman-common.h


def mmap_flags(value: int) -> str:
    """The mapping type (low four bits) by name, then the flags: `0x22<MAP_PRIVATE|MAP_ANONYMOUS>`."""
    value &= _U64
    kind = MAP_TYPES.first.get(value & MAP_TYPE_MASK)
    parts = [] if kind is None else [kind]
    names, rest = MAP_FLAGS.names(value & ~MAP_TYPE_MASK if kind else value)
    if names:
        parts.append(names)
    return compose(value, parts, rest)


# The fd of mmap is an int: -1 for anonymous maps.
_MMAP = (N, N, C, VAL(PROT), C, VAL(mmap_flags), SINT, N)
_MPROTECT = (N, N, C, VAL(PROT))


# --- sockets ---------------------------------------------------------------

SOCK_TYPES = _names("socket_type")
SOCK_FLAGS = _mask("socket_flags")
SOCK_TYPE_MASK = 0x0F  # SOCK_TYPE_MASK in include/linux/net.h
IPPROTO = _names("ipproto")
AF_INET = F.value("socket_domain", "AF_INET")
AF_INET6 = F.value("socket_domain", "AF_INET6")
SOL_SOCKET = F.value("sockopt_level", "SOL_SOCKET")
LEVELS = _names("sockopt_level")
OPTIONS = {
    SOL_SOCKET: _names("sockopt_socket"),
    F.value("sockopt_level", "SOL_IP"): _names("sockopt_ip"),
    F.value("sockopt_level", "SOL_TCP"): _names("sockopt_tcp"),
    F.value("sockopt_level", "SOL_IPV6"): _names("sockopt_ipv6"),
}
MSG = FLAGS("msg_flags")


def socket_type(value: int) -> str:
    """The type (low four bits) by name, then SOCK_CLOEXEC/SOCK_NONBLOCK: `0x80001<SOCK_STREAM|SOCK_CLOEXEC>`."""
    value &= _U32
    kind = SOCK_TYPES.first.get(value & SOCK_TYPE_MASK)
    parts = [] if kind is None else [kind]
    names, rest = SOCK_FLAGS.names(value & ~SOCK_TYPE_MASK if kind else value)
    if names:
        parts.append(names)
    return compose(value, parts, rest)


_IP_PROTO = INT(IPPROTO.first.get)


def IP_PROTOCOL(a: Args) -> None:  # noqa: N802
    """socket's protocol is an IPPROTO_ value only for IP sockets (the domain is two slots back)."""
    if a.pos < a.n and c_int32(a.peek(-2)) in (AF_INET, AF_INET6):
        a.emit(",")
        _IP_PROTO(a)


_SOCKET = (P, ENUM("socket_domain"), S, C, VAL(socket_type), IP_PROTOCOL)


_OPTION_OPS = {level: INT(names.first.get) for level, names in OPTIONS.items()}


def SOCKOPT_NAME(a: Args) -> None:  # noqa: N802
    """The option by name where the level (the slot before) has a table of them."""
    op = _OPTION_OPS.get(c_int32(a.peek(-1)))
    if op is not None and a.pos < a.n:
        a.out.append(",")
        op(a)


_SOCKOPT = (N, C, INT(LEVELS.first.get), SOCKOPT_NAME)


# --- files -----------------------------------------------------------------

FCNTL_CMDS = _names("fcntl_cmd")
F_SETFD = F.value("fcntl_cmd", "F_SETFD")
F_SETFL = F.value("fcntl_cmd", "F_SETFL")
F_SETSIG = F.value("fcntl_cmd", "F_SETSIG")
F_ADD_SEALS = F.value("fcntl_cmd", "F_ADD_SEALS")
# Commands whose argument is an int (a minimum fd, a pid or process group).
F_SIGNED_ARG = frozenset(F.value("fcntl_cmd", c) for c in ("F_DUPFD", "F_DUPFD_CLOEXEC", "F_SETOWN"))
FD_FLAGS = plain_flags(_mask("fcntl_fd_flags"))
SEALS = flags(_mask("fcntl_seals"))
IOCTLS = NameTable(F.table("ioctl_tty") + F.table("ioctl_misc"))


def signal_or_zero(value: int) -> str:
    """A signal number where 0 means none (F_SETSIG, PR_SET_PDEATHSIG)."""
    return linux_signal(c_int32(value)) if c_int32(value) else "0"


# fcntl's argument by command; a command not listed leaves it a number.
_FCNTL_ARG: dict[int, Op] = {
    F_SETFD: VAL(FD_FLAGS),
    F_SETFL: VAL(open_flags),
    F_SETSIG: VAL(signal_or_zero),
    F_ADD_SEALS: VAL(SEALS),
    **{cmd: SINT for cmd in F_SIGNED_ARG},
}


def FCNTL_ARG(a: Args) -> None:  # noqa: N802
    """fcntl's argument as its command (the slot before) says."""
    op = _FCNTL_ARG.get(c_int32(a.peek(-1)))
    if op is not None and a.pos < a.n:
        if op is not SINT:
            a.emit(",")
        op(a)


_FCNTL = (N, C, INT(FCNTL_CMDS.first.get), FCNTL_ARG)
# kdump prints an unknown request as a number.
_IOCTL = (N, C, VAL(lambda v: IOCTLS.first.get(v & _U32) or c_hex(v & _U32)))
_LSEEK = (N, SLONG, C, ENUM("seek_whence"))

STATX_AT = NameTable(F.pick("at_flags", "AT_SYMLINK_NOFOLLOW", "AT_NO_AUTOMOUNT", "AT_EMPTY_PATH",
                            "AT_STATX_FORCE_SYNC", "AT_STATX_DONT_SYNC"))  # fmt: skip
STATX_MASK = flags(_mask("statx_mask"))
STATX_FLAGS = flags(STATX_AT)
_STATX = (P, ATFD, S, N, C, VAL(STATX_FLAGS), C, VAL(STATX_MASK))


# --- processes and signals -------------------------------------------------

FUTEX_CMDS = _names("futex_cmd")
FUTEX_PRIVATE_FLAG = F.value("futex_flags", "FUTEX_PRIVATE_FLAG")
FUTEX_CLOCK_REALTIME = F.value("futex_flags", "FUTEX_CLOCK_REALTIME")


def FUTEX_OP(a: Args) -> None:  # noqa: N802
    """The command, `_PRIVATE` appended as the kernel's own names do, then FUTEX_CLOCK_REALTIME."""
    value = a.take()
    if value is None:
        return
    op = value & _U32
    name = FUTEX_CMDS.first.get(op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME))
    if name is None:
        a.emit(invalid_text(op, a.decimal))
        return
    if op & FUTEX_PRIVATE_FLAG:
        name += "_PRIVATE"
    if op & FUTEX_CLOCK_REALTIME:
        name += "|FUTEX_CLOCK_REALTIME"
    a.emit(name)


PRCTL = _names("prctl_option")
PR_SET_PDEATHSIG = F.value("prctl_option", "PR_SET_PDEATHSIG")
_PDEATHSIG = VAL(signal_or_zero)


def PRCTL_ARG(a: Args) -> None:  # noqa: N802
    """PR_SET_PDEATHSIG's signal."""
    if c_int32(a.peek(-1)) == PR_SET_PDEATHSIG and a.pos < a.n:
        a.emit(",")
        _PDEATHSIG(a)


WAIT = FLAGS("wait_options")
_KILL = (PID, C, SIGNAL)
_TGKILL = (PID, PID, C, SIGNAL)

CLONE3 = FLAGS("clone3_flags", bits=64)


def clone_flags(value: int) -> str:
    """strace's order: the flags, then the exit signal of the low byte (`CLONE_VM|...|SIGCHLD`)."""
    value &= _U64
    sig = value & F.CLONE_CSIGNAL
    names, rest = CLONE_FLAGS.names(value & ~F.CLONE_CSIGNAL)
    parts = [names] if names else []
    if sig:
        parts.append(linux_signal(sig))
    return compose(value, parts, rest)


# --- descriptors with flags ------------------------------------------------

PIPE2 = FLAGS(NameTable(F.pick("open_flags", "O_NONBLOCK", "O_DIRECT", "O_CLOEXEC")))
DUP3 = FLAGS(NameTable(F.pick("open_flags", "O_CLOEXEC")))

# Syscall -> (row, why its text differs from kdump's).
KDUMP_OVERRIDES: dict[str, tuple[Row, str]] = {
    "kill": (_KILL, "pid is a C int: -472, not the register's 4294966824"),
    "tkill": (_KILL, "tid is a C int, printed as one"),
    "rt_sigqueueinfo": (_KILL, "pid is a C int, printed as one"),
    "tgkill": (_TGKILL, "tgid and tid are C ints, printed as such"),
    "rt_tgsigqueueinfo": (_TGKILL, "tgid and tid are C ints, printed as such"),
    "clone": ((P, VAL(clone_flags), S),
              "the exit signal is printed last, as strace does, and no <invalid> follows it"),
    "unshare": (after(0, CLONE3), "kdump prints a number: CLONE_NEW* names"),
    "setns": (after(1, CLONE3), "kdump prints a number: the namespace type"),
    "mmap": (_MMAP, "kdump prints numbers: protection, map type and flags, and the fd signed"),
    "mprotect": (_MPROTECT, "kdump prints a number: the protection"),
    "pkey_mprotect": (_MPROTECT, "kdump prints a number: the protection"),
    "mremap": (after(3, FLAGS("mremap_flags", bits=64)), "kdump prints a number: MREMAP_* flags"),
    "madvise": (after(2, ENUM("madvise_advice")), "kdump prints a number: the advice"),
    "msync": (after(2, FLAGS("msync_flags")), "kdump prints a number: MS_* flags"),
    "mlockall": (after(0, FLAGS("mlockall_flags")), "kdump prints a number: MCL_* flags"),
    "socket": (_SOCKET, "kdump prints numbers: domain, type with its flags, and the IP protocol"),
    "socketpair": (_SOCKET, "kdump prints numbers: domain, type with its flags, and the IP protocol"),
    "setsockopt": (_SOCKOPT, "kdump prints numbers: the level and the option name"),
    "getsockopt": (_SOCKOPT, "kdump prints numbers: the level and the option name"),
    "sendto": (after(3, MSG), "kdump prints a number: MSG_* flags"),
    "recvfrom": (after(3, MSG), "kdump prints a number: MSG_* flags"),
    "sendmsg": (after(2, MSG), "kdump prints a number: MSG_* flags"),
    "recvmsg": (after(2, MSG), "kdump prints a number: MSG_* flags"),
    "sendmmsg": (after(3, MSG), "kdump prints a number: MSG_* flags"),
    "recvmmsg": (after(3, MSG), "kdump prints a number: MSG_* flags"),
    "accept4": (after(3, FLAGS(SOCK_FLAGS)), "kdump prints a number: SOCK_* flags"),
    "fcntl": (_FCNTL, "kdump prints numbers: the command and, for the common ones, its argument"),
    "ioctl": (_IOCTL, "kdump prints a number: the request's name"),
    "lseek": (_LSEEK, "kdump prints numbers: the offset signed and the whence"),
    "statx": (_STATX, "kdump prints numbers: the dirfd, AT_* flags and STATX_* mask"),
    "pipe2": (after(1, PIPE2), "kdump prints a number: O_* flags"),
    "dup3": (after(2, DUP3), "kdump prints a number: O_CLOEXEC"),
    "futex": (after(1, FUTEX_OP), "kdump prints a number: the operation"),
    "prctl": ((P, INT(PRCTL.first.get), S, PRCTL_ARG),
              "kdump prints numbers: the option (and PR_SET_PDEATHSIG's signal)"),
    "arch_prctl": (after(0, ENUM("arch_prctl_option")), "kdump prints a number: the option"),
    "prlimit64": ((PID, C, ENUM("rlimit_resource")), "kdump prints numbers: the pid signed and the resource"),
    "getrlimit": (after(0, ENUM("rlimit_resource")), "kdump prints a number: the resource"),
    "setrlimit": (after(0, ENUM("rlimit_resource")), "kdump prints a number: the resource"),
    "wait4": ((PID, N, C, WAIT), "kdump prints numbers: the pid signed and W* options"),
    "waitid": ((P, ENUM("waitid_idtype"), S, SINT, N, C, WAIT),
               "kdump prints numbers: the id type, the id signed and W* options"),
    "getrandom": (after(2, FLAGS("getrandom_flags")), "kdump prints a number: GRND_* flags"),
    "epoll_create1": (after(0, FLAGS("epoll_create_flags")), "kdump prints a number: EPOLL_CLOEXEC"),
    "epoll_ctl": (after(1, ENUM("epoll_ctl_op")), "kdump prints a number: the operation"),
    "memfd_create": (after(1, FLAGS("memfd_flags")), "kdump prints a number: MFD_* flags"),
    "eventfd2": (after(1, FLAGS("eventfd_flags")), "kdump prints a number: EFD_* flags"),
    "timerfd_create": ((P, CLOCKID, S, C, FLAGS("timerfd_create_flags")),
                       "kdump prints numbers: the clock and TFD_* flags"),
    "timerfd_settime": (after(1, FLAGS("timerfd_settime_flags")),
                        "kdump prints a number: TFD_TIMER_* flags"),
    "signalfd4": (after(3, FLAGS("signalfd_flags")), "kdump prints a number: SFD_* flags"),
    "inotify_init1": (after(0, FLAGS("inotify_init_flags")), "kdump prints a number: IN_* flags"),
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
    return run(row, cursor(args, decimal, ilp32, slot_kinds(name)))

"""FreeBSD libsysdecode name tables and the lookup/mask rules kdump prints with."""

from __future__ import annotations

import os
from functools import cache

_DATA = "sysdecode_freebsd.tsv"
# The ioctl names are a file of their own (tools/gen_ioctls.py), read on the first
# ioctl decoded, so that a trace without one never pays for the biggest table.
_IOCTL_DATA = "freebsd_ioctls.tsv"
_U32 = 0xFFFFFFFF


class NameTable:
    """One libsysdecode table: (value, name) rows in header order; equal when the rows are.

    A plain class, not a dataclass: a dataclass here loaded dataclasses and
    inspect into every pykdump run, a third of its start-up.
    """

    __slots__ = ("rows", "first", "_names")

    def __init__(self, rows: tuple[tuple[int, str], ...]) -> None:
        self.rows = rows
        first: dict[int, str] = {}
        for value, name in rows:
            first.setdefault(value, name)
        self.first = first  # the first name of each value, for lookup
        # names() of the values seen, bounded: a trace repeats a few flag words.
        self._names: dict[int, tuple[str, int]] = {}

    def __eq__(self, other: object) -> bool:
        return self.rows == other.rows if isinstance(other, NameTable) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.rows)

    def __repr__(self) -> str:
        return f"NameTable(rows={self.rows!r})"

    def lookup(self, value: int) -> str | None:
        """lookup_value(): the first row whose value equals `value`."""
        return self.first.get(value)

    def names(self, value: int) -> tuple[str, int]:
        """The mask walk of an unsigned value: (names joined by "|", bits no row accounted for)."""
        hit = self._names.get(value)
        if hit is None:
            names: list[str] = []
            rem = self.mask_part(value, names)
            hit = ("|".join(names), rem)
            if len(self._names) < 4096:
                self._names[value] = hit
        return hit

    def mask_part(self, value: int, names: list[str]) -> int:
        """print_mask_part(): append each row whose bits are all in what is left.

        A zero-valued row is printed only when the whole value is zero.  Returns the
        bits no row accounted for.
        """
        rem = value
        for bits, name in self.rows:
            if bits & rem == bits:
                if bits == 0 and value != 0:
                    continue
                names.append(name)
                rem &= ~bits
        return rem


EMPTY = NameTable(())


@cache
def _blocks() -> dict[str, str]:
    """Each table's rows as text, cut at the '%table NAME' lines that start them.

    The rows of a table are parsed the first time it is used: a trace needs
    a few of the tables, and parsing all of them cost pykdump's start-up more
    than printing a short trace. A plain path beside the module, as
    abi/freebsd.py reads its tables (importlib.resources would load tempfile,
    shutil and zipfile).
    """
    with open(os.path.join(os.path.dirname(__file__), "data", _DATA), encoding="utf-8") as f:
        text = f.read()
    blocks: dict[str, str] = {}
    for part in text.split("\n%table\t")[1:]:
        name, _, body = part.partition("\n")
        blocks[name] = body
    return blocks


@cache
def table(name: str) -> NameTable:
    """The named table; tables the data file does not carry are empty."""
    body = _blocks().get(name)
    if body is None:
        return EMPTY
    entries: list[tuple[int, str]] = []
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        owner, value, text = line.split("\t")
        if owner != name:
            raise ValueError(f"{_DATA}: a row of {owner} under %table {name}")
        entries.append((int(value, 16), text))
    return NameTable(tuple(entries))


def table_names() -> frozenset[str]:
    return frozenset(_blocks())


# A mask decoder returns (text between the angle brackets, printed?, leftover bits),
# mirroring libsysdecode's bool return and *rem out-parameter.
MaskResult = tuple[str, bool, int]


def mask_int(name: str, value: int) -> MaskResult:
    """print_mask_int(): the table walk over the value as a C unsigned int."""
    names: list[str] = []
    rem = table(name).mask_part(value & _U32, names)
    return "|".join(names), bool(names), rem


def mask_0(name: str, value: int) -> MaskResult:
    """print_mask_0(): like mask_int, but 0 prints "0"."""
    if value & _U32 == 0:
        return "0", True, 0
    return mask_int(name, value)


def mask_0ul(name: str, value: int) -> MaskResult:
    """print_mask_0ul(): print_mask_0 over an unsigned long (no 32-bit truncation)."""
    if value == 0:
        return "0", True, 0
    names: list[str] = []
    rem = table(name).mask_part(value, names)
    return "|".join(names), bool(names), rem


def open_flags(value: int) -> MaskResult:
    """sysdecode_open_flags(): the access mode first, then the other O_ flags."""
    flags = value & _U32
    mode = flags & 3
    flags &= ~3
    names: list[str] = []
    if mode == 0:
        if flags & 0x40000:  # O_EXEC shares the O_RDONLY access mode
            flags &= ~0x40000
            names.append("O_EXEC")
        else:
            names.append("O_RDONLY")
        mode = 0
    elif mode == 1:
        names.append("O_WRONLY")
        mode = 0
    elif mode == 2:
        names.append("O_RDWR")
        mode = 0
    rem = table("openflags").mask_part(flags, names)
    return "|".join(names), bool(names), rem | mode


def fcntl_fileflags(value: int) -> MaskResult:
    """sysdecode_fcntl_fileflags(): open flags, with two bits repurposed for F_SETFL."""
    flags = value & _U32
    text, printed, rem = open_flags(flags & ~(0x100 | 0x200))
    parts = [text] if printed else []
    if flags & 0x100:  # O_NOFOLLOW; libsysdecode spells its F_SETFL meaning this way
        parts.append("FPOIXSHM")
    if flags & 0x200:  # O_CREAT doubles as FRDAHEAD
        parts.append("FRDAHEAD")
    return "|".join(parts), bool(parts), rem


def mmap_prot(value: int) -> MaskResult:
    """sysdecode_mmap_prot(): PROT_MAX(...)| first when max-protection bits are set."""
    prot = value & _U32
    protm = (prot >> 16) & 7
    prot &= ~(protm << 16)
    prefix = ""
    printed_max = False
    if protm:
        inner, printed_max, _ = mask_int("mmapprot", protm)
        prefix = f"PROT_MAX({inner})|"
    text, printed, rem = mask_int("mmapprot", prot)
    return prefix + text, printed or printed_max, rem


def mmap_flags(value: int) -> MaskResult:
    """sysdecode_mmap_flags(): flags, then MAP_ALIGNED_SUPER or MAP_ALIGNED(n)."""
    flags = value & _U32
    align = flags & (0xFF << 24)
    names: list[str] = []
    rem = table("mmapflags").mask_part(flags & ~(0xFF << 24), names)
    if align:
        names.append("MAP_ALIGNED_SUPER" if align == 1 << 24 else f"MAP_ALIGNED({align >> 24})")
    return "|".join(names), bool(names), rem


def reboot_howto(value: int) -> MaskResult:
    """sysdecode_reboot_howto(): RB_AUTOBOOT| when no halt/poweroff/reroot/cycle bit."""
    howto = value & _U32
    prefix = ""
    # RB_HALT | RB_POWEROFF | RB_REROOT | RB_POWERCYCLE
    if howto != 0 and howto & (0x8 | 0x4000 | 0x200000 | 0x400000) == 0:
        prefix = "RB_AUTOBOOT|"
    text, printed, rem = mask_int("rebootopt", howto)
    return prefix + text, printed or bool(prefix), rem


def wait4_options(value: int) -> MaskResult:
    """sysdecode_wait4_options(): WEXITED/WTRAPPED are implicit and left undecoded."""
    options = value & _U32
    if options == 0:
        return "0", True, 0
    implicit = options & (0x10 | 0x20)
    text, printed, rem = mask_int("wait6opt", options & ~implicit)
    return text, printed, rem | implicit


def socket_type(value: int) -> MaskResult:
    """sysdecode_socket_type(): the SOCK_ type, then SOCK_CLOEXEC/SOCK_NONBLOCK."""
    stype = value & _U32
    creation = 0
    for bits, _ in table("sockflags").rows:
        creation |= bits
    names: list[str] = []
    base = table("socktype").lookup(stype & ~creation)
    if base is not None:
        names.append(base)
        rem = 0
    else:
        rem = stype & ~creation
    table("sockflags").mask_part(stype & creation, names)
    return "|".join(names), bool(names), rem


def umtx_op_flags(value: int) -> MaskResult:
    """sysdecode_umtx_op_flags(): the UMTX_OP__ flag bits; leftover is the op itself."""
    names: list[str] = []
    rem = table("umtxopflags").mask_part(value & _U32, names)
    return "|".join(names), bool(names), rem


def fcntl_arg(cmd: int, arg: int, decimal: bool) -> str:
    """sysdecode_fcntl_arg() for the commands kdump hands it (not F_SETFL)."""
    if cmd == 2:  # F_SETFD
        name = table("fcntl_fd_arg").lookup(arg)
        if name is not None:
            return name
        return c_integer(arg, decimal)
    if cmd in (11, 12, 13):  # F_GETLK, F_SETLK, F_SETLKW: "%p"
        return f"{arg:#x}"
    return c_integer(arg, decimal)


def c_integer(value: int, decimal: bool) -> str:
    """print_integer() with base 10 ("%d") or 16 ("0x%x") of a C int."""
    value &= _U32
    if decimal:
        return str(value - (1 << 32) if value & 0x80000000 else value)
    return f"0x{value:x}"


def quotactl_cmd(cmd: int) -> str | None:
    """sysdecode_quotactl_cmd(): QCMD(<cmd>,<type>), or None when the command is unknown."""
    cmd &= _U32
    primary = table("quotactlcmds").lookup(cmd >> 8)
    if primary is None:
        return None
    qtype = {0: "USRQUOTA", 1: "GRPQUOTA"}.get(cmd & 0xFF)
    return f"QCMD({primary},{qtype if qtype is not None else f'{cmd & 0xFF:#x}'})"


@cache
def ioctl_table() -> NameTable:
    """The ioctl requests, (value, name) rows in macro-name order."""
    rows = []
    with open(os.path.join(os.path.dirname(__file__), "data", _IOCTL_DATA), encoding="utf-8") as f:
        text = f.read()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            value, name = line.split("\t")
            rows.append((int(value, 16), name))
    return NameTable(tuple(rows))


def ioctlname(value: int) -> str | None:
    """sysdecode_ioctlname(): the ioctl's name; of two sharing a value, the one first
    in macro-name order (the order mkioctls' if/else chain has)."""
    return ioctl_table().lookup(value)


def atfd(fd: int) -> str | None:
    """sysdecode_atfd(): AT_FDCWD for the C int -100."""
    return "AT_FDCWD" if fd & _U32 == (-100) & _U32 else None


def sockopt_level(level: int) -> str | None:
    """sysdecode_sockopt_level(): SOL_SOCKET, else an IP protocol name."""
    level &= _U32
    if level == 0xFFFF:
        return "SOL_SOCKET"
    name = table("ngbtsolevel").lookup(level)
    return name if name is not None else table("sockipproto").lookup(level)


# sysdecode_sockopt_name(): the option table for each level (IPPROTO_IP also covers
# UNIX-domain options, whose level is 0 too).
_SOCKOPT_TABLES = {
    0xFFFF: "sockopt",  # SOL_SOCKET
    0: "sockoptip",  # IPPROTO_IP
    41: "sockoptipv6",  # IPPROTO_IPV6
    132: "sockoptsctp",  # IPPROTO_SCTP
    6: "sockopttcp",  # IPPROTO_TCP
    17: "sockoptudp",  # IPPROTO_UDP
    136: "sockoptudplite",  # IPPROTO_UDPLITE
}


def sockopt_name(level: int, optname: int) -> str | None:
    """sysdecode_sockopt_name(): the option's name in its level's table, else None."""
    name = _SOCKOPT_TABLES.get(level & _U32)
    return None if name is None else table(name).lookup(optname & _U32)


def socket_protocol(domain: int, protocol: int) -> str | None:
    """sysdecode_ipproto() as kdump uses it for socket(PF_INET/PF_INET6, ...)."""
    return table("sockipproto").lookup(protocol & _U32)


def int_name(table_name: str, value: int, decimal: bool) -> str:
    """print_integer_arg(): the name from `table_name`, else <invalid=%#x> (%d with -d)."""
    value &= _U32
    signed = value - (1 << 32) if value & 0x80000000 else value
    name = table(table_name).lookup(signed) if table_name in table_names() else None
    if name is not None:
        return name
    return f"<invalid={signed}>" if decimal else f"<invalid={value:#x}>" if value else "<invalid=0>"

"""One argument printer for the CALL records of both ABIs: a cursor over the slots, kdump's primitives, one row runner.

kdump prints a call's arguments by walking its slots with a handful of
helpers (docs/FORMAT.md, Number primitives): a number carries the separator
before it (`(` for the first argument, `,` after), a decoded value follows
a literal `(` or `,` the template prints itself.  A syscall's template is a
row of those primitives, as truss keeps one table of decode rows; the
FreeBSD rows are in decode/freebsd_args.py, the Linux ones in
decode/linux_args.py (kdump's) and decode/linux_calls.py (strace's
meanings), all over this cursor.  Every slot a row leaves is printed as a
number.

The ABIs differ in three settings of the cursor, not in their primitives:
`pad` (a FreeBSD row reads zeros past a short record as kdump reads past
it; a Linux row stops where the slots stop), `bits` (the width of a
FreeBSD slot in the file; Linux slots are 64-bit) and `kinds` (the
prototype's signed C types, which Linux's default text honours).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

from ktrace_cli.abi import sysdecode as sd
from ktrace_cli.decode.cfmt import c_hex, c_int32, c_int64, signal_text

_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF


class Args:
    """The running state of one CALL's printer: slots, position, separator and text.

    The settings an ABI prints with are class attributes of the subclass
    settings() makes, so that a cursor per call costs five stores.
    """

    # Defaults: 64-bit slots, stop where they stop, print as kdump does.
    bits = 64
    mask = _U64
    # True: read 0 past the last slot, as kdump reads past a short record.
    pad = False
    # True: print beyond kdump (a negative descriptor signed).
    beyond = False

    __slots__ = ("slots", "n", "pos", "sep", "out", "decimal", "ilp32", "kinds")

    def __init__(self, slots: Sequence[int], decimal: bool, ilp32: bool, kinds: tuple[str, ...] = ()) -> None:
        self.slots = slots
        self.n = len(slots)
        self.pos = 0
        self.sep = "("
        self.out: list[str] = []
        self.decimal = decimal
        self.ilp32 = ilp32
        # Per slot: "pid", "int", "long" or "" (unsigned), from the syscall's prototype.
        self.kinds = kinds

    def take(self) -> int | None:
        """The next slot, masked to the slot width; None past the end unless padding."""
        i = self.pos
        if i < self.n:
            self.pos = i + 1
            return self.slots[i] & self.mask
        if self.pad:
            self.pos = i + 1
            return 0
        return None

    def peek(self, offset: int = 0) -> int:
        """The slot at pos+offset without moving; 0 outside the record."""
        i = self.pos + offset
        return self.slots[i] & self.mask if 0 <= i < self.n else 0

    def signed(self, value: int) -> int:
        """A slot as the signed register it is (register_t)."""
        return value - (1 << self.bits) if value >> (self.bits - 1) & 1 else value

    def emit(self, text: str) -> None:
        self.out.append(text)

    def put(self, text: str) -> None:
        """A number: the separator, then its text; later arguments follow a comma."""
        self.out.append(self.sep + text)
        self.sep = ","


@cache
def settings(*, bits: int = 64, pad: bool = False, beyond: bool = False) -> type[Args]:
    """The cursor class of one way of printing: slot width, reading past the end, beyond kdump."""
    name = f"Args{bits}{'Pad' if pad else ''}{'Beyond' if beyond else ''}"
    attrs = {"__slots__": (), "bits": bits, "mask": (1 << bits) - 1, "pad": pad, "beyond": beyond}
    return type(name, (Args,), attrs)


Op = Callable[[Args], None]
Decoder = Callable[[int], str]
Lookup = Callable[[int], "str | None"]


def run(ops: Sequence[Op], a: Args) -> str:
    """A row's ops, then every slot left as a number (N), then `)`."""
    for op in ops:
        op(a)
    out = a.out
    if a.pos < a.n:
        if a.kinds or a.decimal:
            while a.pos < a.n:
                N(a)
        else:
            # N written out for the common case: most slots of a trace are left to it.
            sep, mask = a.sep, a.mask
            for value in a.slots[a.pos :]:
                value &= mask
                out.append(sep + (f"{value:#x}" if value else "0"))
                sep = ","
    out.append(")")
    return "".join(out)


# -- numbers: each prints the separator before it ----------------------------------------


def _kind_text(a: Args, value: int, kind: str) -> str:
    """A signed C value: pid_t in decimal; int or long negative as -N, else as N."""
    # off_t and long are 32 bits wide on an ILP32 ABI.
    n = c_int64(value) if kind == "long" and not a.ilp32 else c_int32(value)
    if kind == "pid" or n < 0 or a.decimal:
        return str(n)
    return c_hex(n)


def N(a: Args) -> None:  # noqa: N802 - kdump's name for the primitive
    """print_number: %#jx, %jd with -d; signed where the prototype says so."""
    i = a.pos
    if i < a.n:
        value = a.slots[i] & a.mask
    elif a.pad:
        value = 0
    else:
        return
    a.pos = i + 1
    kinds = a.kinds
    if kinds and i < len(kinds) and kinds[i]:
        text = _kind_text(a, value, kinds[i])
    elif a.decimal:
        text = str(value - (1 << a.bits) if value >> (a.bits - 1) & 1 else value)
    else:
        text = f"{value:#x}" if value else "0"
    a.out.append(a.sep + text)
    a.sep = ","


def D(a: Args) -> None:  # noqa: N802
    """print_decimal_number: always %jd."""
    value = a.take()
    if value is not None:
        a.put(str(a.signed(value)))


def _number64(a: Args, decimal: bool) -> None:
    value = a.take()
    if value is None:
        return
    if a.ilp32:  # two slots, low word first
        high = a.take()
        value = (value & _U32) | (high or 0) << 32 & (_U32 << 32)
    a.put(str(c_int64(value)) if decimal else c_hex(value))


def N64(a: Args) -> None:  # noqa: N802
    """print_number64: a 64-bit argument, two slots on ILP32."""
    _number64(a, a.decimal)


def D64(a: Args) -> None:  # noqa: N802
    _number64(a, True)


def PID(a: Args) -> None:  # noqa: N802
    """A pid_t: the slot narrowed to a C int, in decimal (kill, wait4)."""
    value = a.take()
    if value is not None:
        a.put(str(c_int32(value)))


def SIGNED(kind: str) -> Op:  # noqa: N802
    """A number of C type `kind` ("int" or "long"): negative as -N, else as N."""

    def op(a: Args) -> None:
        value = a.take()
        if value is not None:
            a.put(_kind_text(a, value, kind))

    return op


SINT = SIGNED("int")
SLONG = SIGNED("long")


# -- literals ----------------------------------------------------------------------------


def lit(text: str) -> Op:
    """A literal of kdump's template, printed while there is a slot left to follow it."""

    def op(a: Args) -> None:
        if a.pad or a.pos < a.n:
            a.out.append(text)

    return op


C = lit(",")
P = lit("(")


def S(a: Args) -> None:  # noqa: N802
    """The separator after a template that opened with a literal `(`."""
    a.sep = ","


# -- decoded values: printed after a literal, without a separator -----------------------


def invalid_text(value: int, decimal: bool) -> str:
    """print_integer_arg's fallback: <invalid=%#x> (<invalid=%d> with -d) of a C int."""
    return f"<invalid={c_int32(value)}>" if decimal else f"<invalid={c_hex(value & _U32)}>"


def int_text(name: str | None, value: int, decimal: bool, valid: bool) -> str:
    """A value's name; else the number when any value is valid, else <invalid=...>."""
    if name is not None:
        return name
    if valid:
        return str(c_int32(value)) if decimal else c_hex(value & _U32)
    return invalid_text(value, decimal)


def INT(lookup: Lookup | str) -> Op:  # noqa: N802
    """print_integer_arg(): the C int's name, else <invalid=%#x>.

    A string names a libsysdecode table, read when the first call needs it;
    a table the data file does not carry (a documented subset) prints the
    bare number instead of claiming the value is invalid.
    """
    if isinstance(lookup, str):
        table = lookup

        def op_table(a: Args) -> None:
            value = a.take()
            if value is not None:
                name = sd.table(table).lookup(c_int32(value))
                a.out.append(int_text(name, value, a.decimal, table not in sd.table_names()))

        return op_table

    def op(a: Args) -> None:
        value = a.take()
        if value is not None:
            name = lookup(c_int32(value))
            a.out.append(name if name is not None else invalid_text(value, a.decimal))

    return op


def INTV(lookup: Lookup) -> Op:  # noqa: N802
    """print_integer_arg_valid(): the C int's name, else the number."""

    def op(a: Args) -> None:
        value = a.take()
        if value is not None:
            a.out.append(int_text(lookup(c_int32(value)), value, a.decimal, True))

    return op


def ATFD(a: Args) -> None:  # noqa: N802
    """A directory descriptor: AT_FDCWD, else the number (signed when beyond kdump)."""
    value = a.take()
    if value is None:
        return
    fd = c_int32(value)
    if fd == -100:  # AT_FDCWD on both systems
        a.out.append("AT_FDCWD")
    elif fd < 0 and a.beyond:
        a.out.append(str(fd))
    else:
        a.out.append(str(fd) if a.decimal else c_hex(value & _U32))


def mask_text(value: int, result: sd.MaskResult) -> str:
    """print_mask_arg's text: %#x<names>, <invalid>%u after it when no name was printed."""
    text, printed, rem = result
    return f"{c_hex(value)}<{text}>" + ("" if printed else f"<invalid>{rem & _U32}")


def table_mask(table: sd.NameTable, value: int) -> str:
    """mask_text of a C unsigned int walked over one table."""
    value &= _U32
    names, rem = table.names(value)
    return mask_text(value, (names, bool(names), rem))


def table_mask0(table: sd.NameTable, value: int) -> str:
    """print_mask_arg0's text: `0` for zero, else table_mask."""
    return "0" if not value & _U32 else table_mask(table, value)


MaskDecoder = Callable[[int], sd.MaskResult]


def _mask_of(decoder: MaskDecoder | sd.NameTable) -> MaskDecoder:
    if isinstance(decoder, sd.NameTable):
        table = decoder

        def result(value: int) -> sd.MaskResult:
            names, rem = table.names(value)
            return names, bool(names), rem

        return result
    return decoder


def MASK(decoder: MaskDecoder | sd.NameTable) -> Op:  # noqa: N802
    """print_mask_arg(): %#x<names>, <invalid>%u when nothing was printed."""
    decode = _mask_of(decoder)

    def op(a: Args) -> None:
        value = a.take()
        if value is not None:
            value &= _U32
            a.out.append(mask_text(value, decode(value)))

    return op


def MASK0(decoder: MaskDecoder | sd.NameTable) -> Op:  # noqa: N802
    """print_mask_arg0(): as MASK, but 0 prints as 0."""
    decode = _mask_of(decoder)

    def op(a: Args) -> None:
        value = a.take()
        if value is not None:
            value &= _U32
            a.out.append("0" if value == 0 else mask_text(value, decode(value)))

    return op


def filemode_text(value: int) -> str:
    """decode_filemode(): 0, or %#o<S_ names> (the same bits on both systems)."""
    value &= _U32
    if value == 0:
        return "0"
    text, printed, rem = sd.mask_0("filemode", value)
    return f"0{value:o}<{text}>" + ("" if printed else f"<invalid>{rem}")


def FILEMODE(a: Args) -> None:  # noqa: N802
    value = a.take()
    if value is not None:
        a.out.append(filemode_text(value))


def SIG(namer: Lookup) -> Op:  # noqa: N802
    """print_signal() of the slot as a C int, with the ABI's signal names."""

    def op(a: Args) -> None:
        value = a.take()
        if value is not None:
            signo = c_int32(value)
            a.out.append(signal_text(namer(signo), signo))

    return op


def VAL(decode: Decoder) -> Op:  # noqa: N802
    """One slot through a decoder of its own (a sysdecode function that prints)."""

    def op(a: Args) -> None:
        value = a.take()
        if value is not None:
            a.out.append(decode(value))

    return op

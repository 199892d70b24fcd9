"""C printf and integer-cast helpers shared by every argument and struct printer.

kdump builds its text with printf; these give the same digits in Python, so
that each format is written once.
"""

from __future__ import annotations

_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF


def c_hex(value: int) -> str:
    """printf("%#x") of an unsigned value: "0" for zero (no prefix), else "0x..."."""
    return f"{value:#x}" if value else "0"


def c_int32(value: int) -> int:
    """A value cast to a C int: its low 32 bits, two's complement."""
    value &= _U32
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def c_int64(value: int) -> int:
    """A value cast to a 64-bit signed integer: its low 64 bits, two's complement."""
    value &= _U64
    return value - 0x1_0000_0000_0000_0000 if value & 0x8000_0000_0000_0000 else value


def c_ptr(value: int) -> str:
    """FreeBSD printf("%p"): 0x and lower-case hex, 0x0 for NULL."""
    return f"0x{value:x}"


def c_string(raw: bytes) -> str:
    """A C string for kdump text: up to the first NUL, one latin-1 character per byte.

    Text lines are latin-1 `str` that encode back to the recorded bytes.
    """
    return raw.split(b"\0", 1)[0].decode("latin-1")


def signal_text(name: str | None, signo: int) -> str:
    """kdump's print_signal: the signal's name, else "SIG %d"."""
    return name if name is not None else f"SIG {signo}"

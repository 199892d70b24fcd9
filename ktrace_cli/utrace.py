"""utrace(2) for Linux programs traced by pyktrace: the `u` trace point's documented convention.

A program records up to 2048 bytes of its own as a KTR_USER record with

    prctl(0x6b747275 /* "ktru" */, (unsigned long)addr, (unsigned long)len, 0, 0);

The kernel rejects the unknown prctl option with EINVAL, so the call is
harmless when the program is not traced; the pyktrace engine sees the call
at syscall entry and writes the bytes when the `u` trace point is on.
"""

from __future__ import annotations

import ctypes

UTRACE_PRCTL = 0x6B747275
KTR_USER_MAXLEN = 2048

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.restype = ctypes.c_int


def utrace(data: bytes) -> None:
    """Record `data` (at most 2048 bytes) in the trace, as utrace(2) does on FreeBSD."""
    if len(data) > KTR_USER_MAXLEN:
        raise ValueError(f"utrace data of {len(data)} bytes, at most {KTR_USER_MAXLEN}")
    buf = ctypes.create_string_buffer(data, len(data))
    _prctl(UTRACE_PRCTL, ctypes.c_ulong(ctypes.addressof(buf)), ctypes.c_ulong(len(data)),
           ctypes.c_ulong(0), ctypes.c_ulong(0))  # fmt: skip

"""Byte layouts of ktrace headers and payloads for amd64 and i386, declared once.

Every structure here is used both to pack (the writer, pyktrace) and to
unpack (the reader, pykdump), so the two cannot drift apart.  Field names are
FreeBSD's (sys/sys/ktrace.h); the spec's section 2 gives the offsets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Arch:
    """The word size of a trace file's producer: amd64 (LP64) or i386 (ILP32)."""

    name: str
    word: int  # bytes in a long / register_t / pointer
    header_v0: struct.Struct  # len, type, pid, comm, sec, usec, tid
    header_v1: struct.Struct  # len, type, version, pid, comm, sec, nsec, tid, cpu
    syscall_fixed: struct.Struct  # code, narg
    sysret: struct.Struct  # code, eosys, error, retval
    genio_fixed: struct.Struct  # fd, rw
    psig: struct.Struct  # signo, action, code, mask[4]
    capfail_old: struct.Struct  # cap_type, cap_needed, cap_held
    capfail_new: struct.Struct  # cap_type, cap_code, cap_svflags, cap_data
    fault: struct.Struct  # vaddr, type
    struct_array_fixed: struct.Struct  # struct_size
    word_char: str  # struct code of one unsigned register_t

    @property
    def header_size(self) -> int:
        """The size kdump reads first: always that of the v1 header."""
        return self.header_v1.size

    @property
    def v0_shortfall(self) -> int:
        """How much shorter a v0 header is than a v1 header (-KTR_OFFSET_V0)."""
        return self.header_v1.size - self.header_v0.size

    def args_struct(self, narg: int) -> struct.Struct:
        return _args_struct(self.word_char, narg)


_ARGS_CACHE: dict[tuple[str, int], struct.Struct] = {}


def _args_struct(word_char: str, narg: int) -> struct.Struct:
    key = (word_char, narg)
    s = _ARGS_CACHE.get(key)
    if s is None:
        s = _ARGS_CACHE[key] = struct.Struct(f"<{narg}{word_char}")
    return s


AMD64 = Arch(
    name="amd64",
    word=8,
    header_v0=struct.Struct("<ih2xi20sqqq"),
    header_v1=struct.Struct("<ihhi20sqqqi4x"),
    syscall_fixed=struct.Struct("<hh4x"),
    sysret=struct.Struct("<hhiq"),
    genio_fixed=struct.Struct("<ii"),
    psig=struct.Struct("<i4xQi4I4x"),
    capfail_old=struct.Struct("<i4x16s16s"),
    capfail_new=struct.Struct("<ih2xI4x1024s"),
    fault=struct.Struct("<Qi4x"),
    struct_array_fixed=struct.Struct("<Q"),
    word_char="Q",
)

I386 = Arch(
    name="i386",
    word=4,
    header_v0=struct.Struct("<ih2xi20siii"),
    header_v1=struct.Struct("<ihhi20siiii"),
    syscall_fixed=struct.Struct("<hh"),
    sysret=struct.Struct("<hhii"),
    genio_fixed=struct.Struct("<ii"),
    psig=struct.Struct("<iIi4I"),
    capfail_old=struct.Struct("<i16s16s"),
    capfail_new=struct.Struct("<ih2xI1024s"),
    fault=struct.Struct("<Ii"),
    struct_array_fixed=struct.Struct("<I"),
    word_char="I",
)

ARCHES = {AMD64.name: AMD64, I386.name: I386}

# Word-size independent payloads.
CSW_OLD = struct.Struct("<ii")
CSW_NEW = struct.Struct("<ii8s")
PROCCTOR = struct.Struct("<I")
FAULTEND = struct.Struct("<i")
# struct uexterror: ver, error, cat, src_line, flags, rsrv0; p1, p2; rsrv1[4]; msg[128].
EXTERR = struct.Struct("<6I2Q4Q128s")

assert AMD64.header_v0.size == 56 and AMD64.header_v1.size == 64
assert I386.header_v0.size == 44 and I386.header_v1.size == 48
assert AMD64.psig.size == 40 and I386.psig.size == 28
assert AMD64.capfail_new.size == 1040 and AMD64.capfail_old.size == 40
assert EXTERR.size == 200

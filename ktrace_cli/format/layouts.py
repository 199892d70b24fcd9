"""Byte layouts of ktrace headers and payloads for amd64 and i386, declared once.

Every structure here is used both to pack (the writer, pyktrace) and to
unpack (the reader, pykdump), so the two cannot drift apart.  Field names are
FreeBSD's (sys/sys/ktrace.h); the spec's section 2 gives the offsets.
"""

from __future__ import annotations

import struct

from ktrace_cli.value import Value

# struct ktr_header's fields, in order (sys/sys/ktrace.h); the per-arch
# Structs below pack exactly these, padding aside.
HEADER_V0_FIELDS = ("ktr_len", "ktr_type", "ktr_pid", "ktr_comm", "ktr_time_sec", "ktr_time_usec", "ktr_tid")
HEADER_V1_FIELDS = ("ktr_len", "ktr_type", "ktr_version", "ktr_pid", "ktr_comm", "ktr_time_sec",
                    "ktr_time_nsec", "ktr_tid", "ktr_cpu")  # fmt: skip


def offsets(layout: struct.Struct, fields: tuple[str, ...]) -> dict[str, int]:
    """Each field's byte offset in `layout` (pad bytes skipped, a `20s` is one field)."""
    fmt = layout.format
    order, body = (fmt[0], fmt[1:]) if fmt[:1] in "<>=!@" else ("", fmt)
    out: dict[str, int] = {}
    names = iter(fields)
    prefix, count = "", ""
    for ch in body.replace(" ", ""):
        if ch.isdigit():
            count += ch
            continue
        n = int(count or 1)
        if ch == "x":
            pass
        elif ch in "sp":
            out[next(names)] = struct.calcsize(order + prefix)
        else:
            for i in range(n):
                out[next(names)] = struct.calcsize(order + prefix + f"{i}{ch}")
        prefix += count + ch
        count = ""
    return out


class Arch(Value):
    """The word size of a trace file's producer: amd64 (LP64) or i386 (ILP32)."""

    __slots__ = ("name", "word", "header_v0", "header_v1", "syscall_fixed", "sysret", "genio_fixed", "psig",
                 "capfail_old", "capfail_new", "fault", "struct_array_fixed", "word_char")  # fmt: skip
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

    def __init__(self, *, name: str, word: int, header_v0: struct.Struct, header_v1: struct.Struct,
                 syscall_fixed: struct.Struct, sysret: struct.Struct, genio_fixed: struct.Struct,
                 psig: struct.Struct, capfail_old: struct.Struct, capfail_new: struct.Struct,
                 fault: struct.Struct, struct_array_fixed: struct.Struct, word_char: str) -> None:  # fmt: skip
        self._set(name=name, word=word, header_v0=header_v0, header_v1=header_v1, syscall_fixed=syscall_fixed,
                  sysret=sysret, genio_fixed=genio_fixed, psig=psig, capfail_old=capfail_old,
                  capfail_new=capfail_new, fault=fault, struct_array_fixed=struct_array_fixed,
                  word_char=word_char)  # fmt: skip

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

# Where kdump and the writer find these fields: the same in both header
# versions and on both architectures (they precede the first long).
HEADER_OFFSETS = offsets(AMD64.header_v1, HEADER_V1_FIELDS)
TYPE_OFFSET = HEADER_OFFSETS["ktr_type"]
PID_OFFSET = HEADER_OFFSETS["ktr_pid"]
COMM_OFFSET = HEADER_OFFSETS["ktr_comm"]
COMM_SIZE = 20  # MAXCOMLEN + 1
HEADER_SIZES = (AMD64.header_v0.size, I386.header_v0.size, AMD64.header_v1.size, I386.header_v1.size)

# Word-size independent payloads.
CSW_OLD = struct.Struct("<ii")
CSW_NEW = struct.Struct("<ii8s")
PROCCTOR = struct.Struct("<I")
FAULTEND = struct.Struct("<i")
# struct stat, FreeBSD amd64 >= 12 (224 bytes; docs/FORMAT.md, STRU records): st_dev,
# st_ino, st_nlink, st_mode, (st_bsdflags pad), st_uid, st_gid, (pad), st_rdev,
# st_atim, st_mtim, st_ctim, st_birthtim (sec, nsec each), st_size, st_blocks,
# st_blksize, st_flags, (st_gen, st_spare[10]). The writer and the decoder use this one.
FREEBSD_STAT = struct.Struct("<QQQH2xII4xQ qq qq qq qq qqiI8x80x")
# struct uexterror: ver, error, cat, src_line, flags, rsrv0; p1, p2; rsrv1[4]; msg[128].
EXTERR = struct.Struct("<6I2Q4Q128s")
# STRU `fdpair` (ours, docs/FORMAT.md): int fd[2], u_int kind, u_int family
# (FreeBSD numbering, 0 for a pipe), uint64_t ino[2] (0: not known).
FDPAIR = struct.Struct("<iiIIQQ")
FDPAIR_PIPE, FDPAIR_SOCKET = 1, 2  # its kinds: pipe(2) and pipe2(2), socketpair(2)

assert AMD64.header_v0.size == 56 and AMD64.header_v1.size == 64
assert I386.header_v0.size == 44 and I386.header_v1.size == 48
assert AMD64.psig.size == 40 and I386.psig.size == 28
assert AMD64.capfail_new.size == 1040 and AMD64.capfail_old.size == 40
assert EXTERR.size == 200 and FREEBSD_STAT.size == 224 and FDPAIR.size == 32
for _arch in ARCHES.values():
    assert offsets(_arch.header_v0, HEADER_V0_FIELDS)["ktr_comm"] == COMM_OFFSET
    assert offsets(_arch.header_v1, HEADER_V1_FIELDS)["ktr_pid"] == PID_OFFSET

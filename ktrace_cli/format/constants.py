"""Numbers of the FreeBSD ktrace format (sys/sys/ktrace.h), with FreeBSD's names."""

from __future__ import annotations

# Record types (ktr_type & ~KTR_TYPE).
KTR_SYSCALL = 1
KTR_SYSRET = 2
KTR_NAMEI = 3
KTR_GENIO = 4
KTR_PSIG = 5
KTR_CSW = 6
KTR_USER = 7
KTR_STRUCT = 8
KTR_SYSCTL = 9
KTR_PROCCTOR = 10
KTR_PROCDTOR = 11
KTR_CAPFAIL = 12
KTR_FAULT = 13
KTR_FAULTEND = 14
KTR_STRUCT_ARRAY = 15
KTR_ARGS = 16
KTR_ENVS = 17
KTR_EXTERR = 18

KTR_TYPE_NAMES = {
    KTR_SYSCALL: "SYSCALL",
    KTR_SYSRET: "SYSRET",
    KTR_NAMEI: "NAMEI",
    KTR_GENIO: "GENIO",
    KTR_PSIG: "PSIG",
    KTR_CSW: "CSW",
    KTR_USER: "USER",
    KTR_STRUCT: "STRUCT",
    KTR_SYSCTL: "SYSCTL",
    KTR_PROCCTOR: "PROCCTOR",
    KTR_PROCDTOR: "PROCDTOR",
    KTR_CAPFAIL: "CAPFAIL",
    KTR_FAULT: "FAULT",
    KTR_FAULTEND: "FAULTEND",
    KTR_STRUCT_ARRAY: "STRUCT_ARRAY",
    KTR_ARGS: "ARGS",
    KTR_ENVS: "ENVS",
    KTR_EXTERR: "EXTERR",
}

# Flag bits of ktr_type.
KTR_DROP = 0x8000
KTR_VERSIONED = 0x4000
KTR_TYPE = KTR_DROP | KTR_VERSIONED

KTR_VERSION0 = 0
KTR_VERSION1 = 1

# Facility bits: KTRFAC_x = 1 << KTR_x.
KTRFAC_SYSCALL = 1 << KTR_SYSCALL
KTRFAC_SYSRET = 1 << KTR_SYSRET
KTRFAC_NAMEI = 1 << KTR_NAMEI
KTRFAC_GENIO = 1 << KTR_GENIO
KTRFAC_PSIG = 1 << KTR_PSIG
KTRFAC_CSW = 1 << KTR_CSW
KTRFAC_USER = 1 << KTR_USER
KTRFAC_STRUCT = 1 << KTR_STRUCT
KTRFAC_SYSCTL = 1 << KTR_SYSCTL
KTRFAC_PROCCTOR = 1 << KTR_PROCCTOR
KTRFAC_PROCDTOR = 1 << KTR_PROCDTOR
KTRFAC_CAPFAIL = 1 << KTR_CAPFAIL
KTRFAC_FAULT = 1 << KTR_FAULT
KTRFAC_FAULTEND = 1 << KTR_FAULTEND
KTRFAC_STRUCT_ARRAY = 1 << KTR_STRUCT_ARRAY
KTRFAC_ARGS = 1 << KTR_ARGS
KTRFAC_ENVS = 1 << KTR_ENVS
KTRFAC_EXTERR = 1 << KTR_EXTERR

KTRFAC_MASK = 0x00FFFFFF
KTRFAC_DROP = 0x20000000
KTRFAC_INHERIT = 0x40000000
KTRFAC_ROOT = 0x80000000

# ktrace(2) ops.
KTROP_SET = 0
KTROP_CLEAR = 1
KTROP_CLEARFILE = 2
KTRFLAG_DESCEND = 4


def ktrop(ops: int) -> int:
    """The operation part of a ktrace(2) ops word (KTROP() in ktrace.h)."""
    return ops & 3


# usr.bin/ktrace/ktrace.h, current FreeBSD.
PROC_ABI_POINTS = KTRFAC_PROCCTOR | KTRFAC_PROCDTOR
DEF_POINTS = (
    KTRFAC_SYSCALL
    | KTRFAC_SYSRET
    | KTRFAC_NAMEI
    | KTRFAC_GENIO
    | KTRFAC_PSIG
    | KTRFAC_USER
    | KTRFAC_STRUCT
    | KTRFAC_SYSCTL
    | KTRFAC_STRUCT_ARRAY
)
ALL_POINTS = DEF_POINTS | KTRFAC_CAPFAIL | KTRFAC_CSW | PROC_ABI_POINTS | KTRFAC_FAULT | KTRFAC_FAULTEND
DEF_TRACEFILE = "ktrace.out"

# The -t letters of ktrace(1) and kdump(1) (getpoints() in usr.bin/ktrace/subr.c).
TRACE_POINT_LETTERS = {
    "c": KTRFAC_SYSCALL | KTRFAC_SYSRET,
    "f": KTRFAC_FAULT | KTRFAC_FAULTEND,
    "i": KTRFAC_GENIO,
    "n": KTRFAC_NAMEI,
    "p": KTRFAC_CAPFAIL,
    "s": KTRFAC_PSIG,
    "t": KTRFAC_STRUCT | KTRFAC_STRUCT_ARRAY,
    "u": KTRFAC_USER,
    "w": KTRFAC_CSW,
    "y": KTRFAC_SYSCTL,
    "a": KTRFAC_ARGS,
    "e": KTRFAC_ENVS,
    # pykdump's letter for EERR records: FreeBSD's was not found in the sources read.
    "x": KTRFAC_EXTERR,
    "+": DEF_POINTS,
}


def parse_trace_points(letters: str) -> int | None:
    """The facility mask for a -t string, or None if it has an unknown letter."""
    facs = 0
    for letter in letters:
        bits = TRACE_POINT_LETTERS.get(letter)
        if bits is None:
            return None
        facs |= bits
    return facs


# PROCCTOR sv_flags (sys/sys/sysent.h).
SV_ABI_MASK = 0xFF
SV_ABI_LINUX = 3
SV_ABI_FREEBSD = 9
SV_ABI_UNDEF = 255
SV_ILP32 = 0x000100
SV_LP64 = 0x000200
SV_IA32 = 0x004000
SV_SHP = 0x010000
SV_TIMEKEEP = 0x040000
SV_SIG_DISCIGN = 0x200000
SV_SIG_WAITNDQ = 0x400000

# uio_rw of KTR_GENIO.
UIO_READ = 0
UIO_WRITE = 1

# ktr_error values that are not errnos.
ERESTART = -1
EJUSTRETURN = -2

KTR_USER_MAXLEN = 2048
GENIO_SIZE_DEFAULT = 4096
MAXCOMLEN = 19

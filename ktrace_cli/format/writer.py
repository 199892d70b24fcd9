"""The one writer of ktrace records: typed records for tests and tools, and the engine's TraceFile.

A TraceFile buffers whole records and writes them with one write(2) per
flush on an O_APPEND descriptor, so records of several writers sharing a
file interleave whole; a failed or short write leaves only whole records,
as kern_ktrace.c writes record by record. Its syscall() and sysret() pack
the two records of the hot path from precompiled Structs.
"""

from __future__ import annotations

import os
import stat
import struct
import time

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import (
    AMD64,
    CSW_NEW,
    HEADER_OFFSETS,
    PID_OFFSET,
    PROCCTOR,
    TYPE_OFFSET,
    Arch,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the engine's start-up)
if TYPE_CHECKING:
    from ktrace_cli.format.records import Payload, Record


def encode_header(
    arch: Arch,
    version: int,
    rtype: int,
    length: int,
    pid: int,
    tid: int,
    comm: bytes,
    sec: int,
    frac: int,
    cpu: int = 0,
    drop: bool = False,
) -> bytes:
    """One record header; `comm` is the 20-byte field (see comm_field)."""
    flags = K.KTR_DROP if drop else 0
    if version == K.KTR_VERSION0:
        return arch.header_v0.pack(length, _short(rtype | flags), pid, comm, sec, frac, tid)
    return arch.header_v1.pack(
        length, _short(rtype | flags | K.KTR_VERSIONED), version, pid, comm, sec, frac, tid, cpu
    )


def _short(value: int) -> int:
    """ktr_type is a signed short: DROP makes it negative."""
    return value - 0x10000 if value & 0x8000 else value


def encode_record(record: Record, arch: Arch = AMD64) -> bytes:
    """The bytes of one record, header then payload."""
    return (
        encode_header(
            arch, record.version, record.type, len(record.payload), record.pid, record.tid,
            record.comm, record.sec, record.frac, record.cpu, record.drop,
        )
        + record.payload
    )  # fmt: skip


def make_record(
    payload: Payload,
    *,
    pid: int,
    tid: int | None = None,
    comm: bytes | str = b"",
    sec: int | None = None,
    frac: int | None = None,
    version: int = K.KTR_VERSION1,
    cpu: int = 0,
    drop: bool = False,
    rtype: int | None = None,
    arch: Arch = AMD64,
) -> Record:
    """A Record for a typed payload; the time defaults to now (CLOCK_REALTIME)."""
    # lazy: start-up (the engine writes packed bytes, never a typed Record;
    # the records' classes were a few ms of its cold start)
    from ktrace_cli.format.records import PAYLOAD_TYPES, Record, comm_field

    if sec is None or frac is None:
        now = time.time_ns()
        sec, ns = divmod(now, 1_000_000_000)
        frac = ns if version else ns // 1000
    return Record(
        type=rtype if rtype is not None else PAYLOAD_TYPES[type(payload)],
        pid=pid,
        tid=pid if tid is None else tid,
        comm=comm_field(comm),
        sec=sec,
        frac=frac,
        payload=payload.pack(arch),
        version=version,
        cpu=cpu,
        drop=drop,
    )


H1 = AMD64.header_v1.pack
H0 = AMD64.header_v0.pack
SYSCALL_FIXED = AMD64.syscall_fixed.pack
SYSRET = AMD64.sysret.pack
GENIO_FIXED = AMD64.genio_fixed.pack
PSIG = AMD64.psig.pack
ARGS = [AMD64.args_struct(n).pack for n in range(7)]

VERSIONED = K.KTR_VERSIONED
T_SYSCALL = K.KTR_SYSCALL | VERSIONED
T_SYSRET = K.KTR_SYSRET | VERSIONED
SYSCALL_LEN = [8 + 8 * n for n in range(7)]
SV_FLAGS_LINUX64 = K.SV_ABI_LINUX | K.SV_LP64
# FreeBSD's linux32 sysentvec on amd64: ILP32 and IA32, with its shared page,
# timekeep page and Linux signal quirks (docs/FORMAT.md).
SV_FLAGS_LINUX32 = (K.SV_ABI_LINUX | K.SV_ILP32 | K.SV_IA32 | K.SV_SHP | K.SV_TIMEKEEP
                    | K.SV_SIG_DISCIGN | K.SV_SIG_WAITNDQ)  # fmt: skip
# The largest --genio-size: a GIO record's data is held in memory several
# times over while it is read, packed and written.
GENIO_SIZE_MAX = 1 << 20
# The CPU a thread last ran on is only in /proc/TID/stat, far too dear to read
# per record; FreeBSD's cpu field is therefore always -1 ("unknown").
CPU_UNKNOWN = -1
HEADER_V0_SIZE, HEADER_V1_SIZE = AMD64.header_v0.size, AMD64.header_v1.size
LEN_OFFSET = HEADER_OFFSETS["ktr_len"]
SYSRET_LEN = AMD64.sysret.size
NS = 1_000_000_000
# Whole v1 CALL (one per argument count) and RET records, header and payload
# in one pack: the engine writes one of them at every syscall stop.
_H1_FORMAT = AMD64.header_v1.format
CALL_RECORD = [
    struct.Struct(_H1_FORMAT + AMD64.syscall_fixed.format[1:] + AMD64.args_struct(n).format[1:]).pack
    for n in range(7)
]
RET_RECORD = struct.Struct(_H1_FORMAT + AMD64.sysret.format[1:]).pack


class TraceFile:
    """One open trace file shared by every process tracing to it."""

    __slots__ = ("fd", "buf", "version", "genio_size", "users", "failed", "ident", "fsize_limit",
                 "dropped", "pipe")  # fmt: skip

    def __init__(self, fd: int, version: int = K.KTR_VERSION1, genio_size: int = 4096) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.version = version
        self.genio_size = genio_size
        self.users = 0
        self.failed = 0  # errno of the write that failed, 0 while healthy
        # The tracer's RLIMIT_FSIZE captured at ktrace(2) time (-1: none), as
        # FreeBSD keeps it in ktr_io_params: the engine's own limit is not the user's.
        self.fsize_limit = -1
        self.dropped: set[int] = set()  # pids that lost records: their next one gets KTR_DROP
        st = os.fstat(fd)
        self.ident = (st.st_dev, st.st_ino)
        # pyktrace --live: a pipe to the user's reader (no size limit, no truncation).
        self.pipe = stat.S_ISFIFO(st.st_mode)

    def record(self, rtype: int, pid: int, tid: int, comm: bytes, ns: int, payload: bytes) -> None:
        """Append one record (header + payload) to the buffer."""
        sec, nsec = divmod(ns, 1_000_000_000)
        if self.version:
            self.buf += H1(len(payload), rtype | VERSIONED, 1, pid, comm, sec, nsec, tid,
                           CPU_UNKNOWN) + payload  # fmt: skip
        else:
            self.buf += H0(len(payload), rtype, pid, comm, sec, nsec // 1000, tid) + payload

    def syscall(self, pid: int, tid: int, comm: bytes, ns: int, nr: int, narg: int,
                args: tuple[int, ...]) -> None:  # fmt: skip
        """Append a KTR_SYSCALL record of `narg` of `args` (the hot path: one pack)."""
        if self.version:
            sec, nsec = divmod(ns, NS)
            self.buf += CALL_RECORD[narg](SYSCALL_LEN[narg], T_SYSCALL, 1, pid, comm, sec, nsec, tid,
                                          CPU_UNKNOWN, nr, narg, *args[:narg])  # fmt: skip
        else:
            self.record(K.KTR_SYSCALL, pid, tid, comm, ns, SYSCALL_FIXED(nr, narg) + ARGS[narg](*args[:narg]))

    def sysret(self, pid: int, tid: int, comm: bytes, ns: int, nr: int, error: int, rval: int) -> None:
        """Append a KTR_SYSRET record."""
        if self.version:
            sec, nsec = divmod(ns, NS)
            self.buf += RET_RECORD(SYSRET_LEN, T_SYSRET, 1, pid, comm, sec, nsec, tid, CPU_UNKNOWN, nr, 0,
                                   error, rval)  # fmt: skip
        else:
            self.record(K.KTR_SYSRET, pid, tid, comm, ns, SYSRET(nr, 0, error, rval))

    def flush(self) -> int:
        """Write the buffer with one write(2) per call; 0 or the errno of a failure.

        On failure the file keeps only whole records (kern_ktrace.c writes
        record by record, so a failed write never leaves a torn one).
        """
        if not self.buf or self.failed:
            self.buf.clear()
            return self.failed
        if self.dropped:
            self._flag_drops()
        data = bytes(self.buf)
        self.buf.clear()
        limit_err = 0
        if self.fsize_limit >= 0 and not self.pipe:  # RLIMIT_FSIZE limits files only
            try:
                room = self.fsize_limit - os.fstat(self.fd).st_size
            except OSError:
                room = len(data)
            if room < len(data):
                data = data[: self.whole(data, max(room, 0))]
                limit_err = 27  # EFBIG, as the kernel's vn_rlimit_fsize() check fails it
        n = 0
        try:
            if data:
                n = os.write(self.fd, data)
                # --live: a signal can cut a pipe write short; the rest follows
                # (a dead reader is EPIPE, which stops tracing like any failure).
                while self.pipe and 0 < n < len(data):
                    n += os.write(self.fd, memoryview(data)[n:])
        except OSError as e:
            self.failed = e.errno or 5
            return self.failed
        if n != len(data):
            whole = self.whole(data, n)
            try:
                os.ftruncate(self.fd, os.fstat(self.fd).st_size - (n - whole))
            except OSError:
                pass
            self.failed = 28  # ENOSPC: write(2) stops short only when the disk is full
        elif limit_err:
            self.failed = limit_err
        return self.failed

    def mark_drop(self, pid: int) -> None:
        """Process `pid` lost records: its next record carries KTR_DROP, as FreeBSD's KTRFAC_DROP does.

        Only a set is touched here: the records are flagged when the buffer
        is written, so the hot path that packs them pays nothing.
        """
        self.dropped.add(pid)

    def _flag_drops(self) -> None:
        """Set KTR_DROP on the first buffered record of each process in `dropped`."""
        head = HEADER_V1_SIZE if self.version else HEADER_V0_SIZE
        buf, off = self.buf, 0
        while self.dropped and off + head <= len(buf):
            pid = int.from_bytes(buf[off + PID_OFFSET : off + PID_OFFSET + 4], "little", signed=True)
            if pid in self.dropped:
                self.dropped.discard(pid)
                buf[off + TYPE_OFFSET + 1] |= K.KTR_DROP >> 8  # ktr_type's high byte (little-endian)
            off += head + int.from_bytes(buf[off + LEN_OFFSET : off + LEN_OFFSET + 4], "little", signed=True)

    def whole(self, data: bytes, n: int) -> int:
        """The length of the longest run of whole records in data[:n]."""
        head = HEADER_V1_SIZE if self.version else HEADER_V0_SIZE
        off = 0
        while off + head <= len(data):
            end = off + head + int.from_bytes(data[off : off + 4], "little", signed=True)
            if end > n:
                break
            off = end
        return off

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


def procctor(tf: TraceFile, pid: int, tid: int, comm: bytes, sv_flags: int = SV_FLAGS_LINUX64) -> None:
    tf.record(K.KTR_PROCCTOR, pid, tid, comm, time.time_ns(), PROCCTOR.pack(sv_flags))


def procdtor(tf: TraceFile, pid: int, tid: int, comm: bytes) -> None:
    tf.record(K.KTR_PROCDTOR, pid, tid, comm, time.time_ns(), b"")


def csw(out: int, wmesg: bytes) -> bytes:
    return CSW_NEW.pack(out, 0, wmesg[:7])

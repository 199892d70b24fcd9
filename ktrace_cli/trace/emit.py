"""Packing whole ktrace records into a trace file's buffer, and writing them out."""

from __future__ import annotations

import os
import stat
import time

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, CSW_NEW, PROCCTOR

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
# The largest --genio-size: a GIO record's data is held in memory several
# times over while it is read, packed and written.
GENIO_SIZE_MAX = 1 << 20
# The CPU a thread last ran on is only in /proc/TID/stat, far too dear to read
# per record; FreeBSD's cpu field is therefore always -1 ("unknown").
CPU_UNKNOWN = -1
HEADER_V0_SIZE, HEADER_V1_SIZE = AMD64.header_v0.size, AMD64.header_v1.size
TYPE_OFFSET, PID_OFFSET = 4, 8  # ktr_type and ktr_pid, in both header versions


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
                data = data[: self._whole(data, max(room, 0))]
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
            whole = self._whole(data, n)
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
            off += head + int.from_bytes(buf[off : off + 4], "little", signed=True)

    def _whole(self, data: bytes, n: int) -> int:
        """The length of the longest run of whole records in data[:n]."""
        head = 64 if self.version else 56
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


def procctor(tf: TraceFile, pid: int, tid: int, comm: bytes) -> None:
    tf.record(K.KTR_PROCCTOR, pid, tid, comm, time.time_ns(), PROCCTOR.pack(SV_FLAGS_LINUX64))


def procdtor(tf: TraceFile, pid: int, tid: int, comm: bytes) -> None:
    tf.record(K.KTR_PROCDTOR, pid, tid, comm, time.time_ns(), b"")


def csw(out: int, wmesg: bytes) -> bytes:
    return CSW_NEW.pack(out, 0, wmesg[:7])

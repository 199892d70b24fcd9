"""Appending whole ktrace records to a trace file, as the kernel does.

Each call to `TraceWriter.write` issues one write(2) of whole records on an
O_APPEND descriptor, so records from several writers sharing a file
interleave whole and a record is never split by another writer.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterable

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, Arch
from ktrace_cli.format.records import PAYLOAD_TYPES, Payload, Record, comm_field


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


class TraceWriteError(OSError):
    """A write to the trace file failed; records written before it are intact."""


class TraceWriter:
    """Appends records to an open trace file descriptor, one write per batch."""

    def __init__(self, fd: int, arch: Arch = AMD64) -> None:
        self.fd = fd
        self.arch = arch

    def write(self, data: bytes) -> None:
        """Append whole records (already encoded) with a single write(2)."""
        if not data:
            return
        try:
            written = os.write(self.fd, data)
        except OSError as e:
            raise TraceWriteError(e.errno, e.strerror) from None
        if written != len(data):
            # A short write (disk full, RLIMIT_FSIZE) leaves a torn record at
            # the end; cut it off so every record in the file stays whole.
            self._drop_torn_tail(written)
            raise TraceWriteError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def _drop_torn_tail(self, written: int) -> None:
        try:
            end = os.fstat(self.fd).st_size
            os.ftruncate(self.fd, end - written)
        except OSError:
            pass

    def write_records(self, records: Iterable[Record]) -> None:
        self.write(b"".join(encode_record(r, self.arch) for r in records))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

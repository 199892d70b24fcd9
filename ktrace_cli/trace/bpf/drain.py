"""The ring-buffer consumer: batches of finished records, written to their trace files as they are.

The kernel side (ktrace.bpf.c) puts whole FreeBSD records into per-CPU
batches, each for a single trace file, and sends a batch as one ring
sample: (u32 file index, u32 byte count, records).  So the Python work is
per batch (up to 16 KiB of records), never per record: the records are
handed to writev(2) as slices of the mapped ring, without a copy.

The ring is read through mmap as the kernel lays it out (linux/bpf.h,
BPF_MAP_TYPE_RINGBUF): a consumer page we write, then a producer page and
the data area mapped twice in a row, so a sample that wraps is contiguous.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable

BUSY = 1 << 31  # BPF_RINGBUF_BUSY_BIT: the producer is still writing it
DISCARD = 1 << 30  # BPF_RINGBUF_DISCARD_BIT
SAMPLE_HDR = 8  # BPF_RINGBUF_HDR_SZ
BATCH_HDR = struct.Struct("<II")  # file index, byte count
POS = struct.Struct("<Q")
IOV_MAX = 1024


class Ring:
    """A mapped BPF ring buffer and its consumer position."""

    def __init__(self, fd: int, size: int) -> None:
        page = mmap.PAGESIZE
        self.size, self.mask = size, size - 1
        self.cons = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.prod = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        self.view = memoryview(self.prod)
        self.page = page

    def drain(self, write: Callable[[int, list[memoryview]], None]) -> int:
        """Hand every finished batch to write(file index, slices); the bytes consumed."""
        cons = POS.unpack_from(self.cons, 0)[0]
        prod = POS.unpack_from(self.prod, 0)[0]
        start = cons
        base, mask, view = self.page, self.mask, self.view
        pending: dict[int, list[memoryview]] = {}
        while cons < prod:
            at = base + (cons & mask)
            (hdr,) = struct.unpack_from("<I", self.prod, at)
            if hdr & BUSY:
                break
            length = hdr & ~(BUSY | DISCARD)
            if not hdr & DISCARD and length >= BATCH_HDR.size:
                index, count = BATCH_HDR.unpack_from(self.prod, at + SAMPLE_HDR)
                body = at + SAMPLE_HDR + BATCH_HDR.size
                count = min(count, length - BATCH_HDR.size)
                chunks = pending.setdefault(index, [])
                chunks.append(view[body : body + count])
                if len(chunks) >= IOV_MAX:
                    write(index, chunks)
                    pending[index] = []
            cons += (length + SAMPLE_HDR + 7) & ~7
        for index, chunks in pending.items():
            if chunks:
                write(index, chunks)
        pending.clear()
        if cons != start:
            # The slices point into the ring: give the space back only now.
            POS.pack_into(self.cons, 0, cons)
        return cons - start

    def close(self) -> None:
        self.view.release()
        self.prod.close()
        self.cons.close()


def write_all(fd: int, chunks: list[memoryview], whole: Callable[[bytes, int], int]) -> int:
    """writev until done; 0 or the errno of the failure.

    A write that stops short (a full disk) is cut back to the last whole
    record, as kern_ktrace.c never leaves a torn one: `whole(data, n)` says
    where that is.
    """
    total = sum(len(c) for c in chunks)
    done = 0
    err = 0
    rest = chunks
    while done < total:
        try:
            n = os.writev(fd, rest)
        except OSError as e:
            err = e.errno or 5
            break
        if n <= 0:
            err = 28  # ENOSPC: write(2) stops short only when the disk is full
            break
        done += n
        if done < total:
            rest = _skip(rest, n)
    if err and done:
        data = b"".join(chunks)
        keep = whole(data, done)
        try:
            os.ftruncate(fd, os.fstat(fd).st_size - (done - keep))
        except OSError:
            pass
    return err


def _skip(chunks: list[memoryview], n: int) -> list[memoryview]:
    rest: list[memoryview] = []
    for c in chunks:
        if n >= len(c):
            n -= len(c)
            continue
        rest.append(c[n:])
        n = 0
    return rest

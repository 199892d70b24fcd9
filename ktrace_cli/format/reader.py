"""Reading FreeBSD trace files: record framing as kdump does it, in constant memory.

The reader detects per file whether it was written by an amd64 or an i386
kernel, follows kdump's header algorithm (read a v1-sized header, step back
for a v0 one), never trusts a length, and reads regular files, pipes and
growing files (follow mode) alike.  Files written by other BSDs are
recognised and refused with a message that names them.
"""

from __future__ import annotations

import os
import select
import stat
import struct
import time
from collections.abc import Iterator

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, COMM_OFFSET, COMM_SIZE, HEADER_SIZES, I386, Arch
from ktrace_cli.format.records import Record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from typing import BinaryIO

CHUNK = 1 << 20
SAMPLE = 1 << 16  # bytes examined to tell amd64 from i386 and FreeBSD from the rest
# The longest record read from a pipe or other stream.  A regular file
# shows at once when a length runs past its end; a stream would be read
# into memory up to the claimed length (2 GiB) first.  FreeBSD's kernel
# writes I/O in page-sized records, and pyktrace bounds its own.
MAX_STREAM_RECORD = 64 << 20
# A first header claiming more than this is no kernel's: a text or binary file.
MAX_FIRST_LENGTH = 1 << 24
MAX_TYPE = 0xFF  # FreeBSD has 18 record types; a new one will not be numbered past this
_ELF_MAGIC = b"\x7fELF"
_TEXT_BYTES = frozenset(b"\t\n\r") | frozenset(range(0x20, 0x7F))
_PREFIX = struct.Struct("<ihh")  # ktr_len, ktr_type, ktr_version: the same in every header


class TraceFormatError(Exception):
    """The input is not (or stops being) a well-formed FreeBSD trace.

    `header` is the record whose header was read before the error, if any,
    so a caller can still report its KTR_DROP flag as kdump does.
    """

    def __init__(self, message: str, header: Record | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.header = header


class BogusLength(TraceFormatError):
    def __init__(self, length: int, header: Record | None = None) -> None:
        super().__init__(f"bogus length {length & 0xFFFFFFFF:#x}", header)


class DataTooShort(TraceFormatError):
    def __init__(self, header: Record | None = None) -> None:
        super().__init__("data too short", header)


class FileTruncated(OSError):
    """A followed file shrank below what was already read: what comes next is not a record boundary."""

    def __init__(self) -> None:
        super().__init__(0, "file truncated")


class NotATrace(TraceFormatError):
    """The input is refused before any record: it is not a FreeBSD trace at all."""


class NotFreeBSD(NotATrace):
    def __init__(self, flavour: str) -> None:
        super().__init__(f"not a FreeBSD trace file: looks like {flavour} ktrace")
        self.flavour = flavour


# ---------------------------------------------------------------------------
# Telling the producer apart.

_FIXED_SIZES = {
    # type: function of arch -> exact payload size, for types whose size is fixed
    K.KTR_SYSRET: lambda a: a.sysret.size,
    K.KTR_PSIG: lambda a: a.psig.size,
    K.KTR_PROCCTOR: lambda a: 4,
    K.KTR_PROCDTOR: lambda a: 0,
    K.KTR_FAULT: lambda a: a.fault.size,
    K.KTR_FAULTEND: lambda a: 4,
}


def _walk_score(sample: bytes, arch: Arch, complete: bool) -> int:
    """How many records `arch` frames plausibly from the start of `sample`.

    The walk stops at the first implausible record and scores what came
    before it: a damaged or truncated file is still told by its good records
    (a hard -1 made every damaged i386 file read as amd64).
    """
    pos = 0
    count = 0
    n = len(sample)
    while pos + arch.header_size <= n or (complete and pos + arch.header_v0.size <= n):
        length, rtype, version = _PREFIX.unpack_from(sample, pos)
        versioned = rtype & K.KTR_VERSIONED
        base = rtype & ~K.KTR_TYPE & 0xFFFF
        if length < 0 or length > (1 << 24) or not 1 <= base <= 18:
            return count
        if versioned and version not in (0, 1):
            return count
        hsize = arch.header_v1.size if (versioned and version) else arch.header_v0.size
        # The two bytes after a v0 ktr_type are padding that FreeBSD 6 to 13 never
        # wrote (its request pool is not zeroed): they say nothing about the layout.
        comm = sample[pos + COMM_OFFSET : pos + COMM_OFFSET + COMM_SIZE]
        if b"\0" not in comm:
            return count
        if pos + hsize + length > n:
            break  # the sample ends inside this record
        fixed = _FIXED_SIZES.get(base)
        if fixed is not None and length != fixed(arch):
            return count
        if base == K.KTR_SYSCALL:
            if length < arch.syscall_fixed.size:
                return count
            narg = struct.unpack_from("<h", sample, pos + hsize + 2)[0]
            if length != arch.syscall_fixed.size + narg * arch.word:
                return count
        pos += hsize + length
        count += 1
    return count


def _other_bsd(sample: bytes) -> str | None:
    """The name of the system that wrote `sample`, when it is recognisably not FreeBSD."""
    if sample[:4] == b"KTR\0":
        return "OpenBSD"
    if len(sample) >= 8:
        length, rtype, version = _PREFIX.unpack_from(sample, 0)
        base = rtype & 0x3FFF
        # NetBSD: type 7 is KTR_EMUL, whose payload names the emulation.
        for hsize in HEADER_SIZES:
            payload = sample[hsize : hsize + max(0, length)]
            if base == 7 and payload.rstrip(b"\0 ") in (b"netbsd", b"netbsd32", b"linux", b"linux32"):
                return "NetBSD"
        if not rtype & K.KTR_VERSIONED and version == 2:
            return "NetBSD"
        be_len, be_type = struct.unpack_from(">ih", sample, 0)
        if (length < 0 or length > (1 << 24) or not 1 <= base <= 18) and 0 <= be_len < (1 << 24) and 1 <= be_type <= 12:
            return "big-endian Mac OS X"
    return None


def detect_arch(sample: bytes, complete: bool = False) -> Arch:
    """The layout of a FreeBSD trace starting with `sample`.

    `complete` says the sample is the whole file.  Raises NotFreeBSD for files
    of other BSDs; anything else unrecognisable is read as amd64, where the
    framing errors speak for themselves.
    """
    flavour = _other_bsd(sample)
    if flavour is not None:
        raise NotFreeBSD(flavour)
    amd64 = _walk_score(sample, AMD64, complete)
    i386 = _walk_score(sample, I386, complete)
    if amd64 == i386 == 0 and sample[:3] == b"\x1f\x8b\x08":
        # A first record that long never starts a trace; this is gzip's magic.
        raise NotATrace("not a ktrace file: looks like gzip data (gunzip it first)")
    if amd64 == i386 == 0:
        problem = _implausible_start(sample)
        if problem is not None:
            raise NotATrace(problem)
    if i386 > 0 and i386 > amd64:
        return I386
    return AMD64


def _implausible_start(sample: bytes) -> str | None:
    """Why `sample` cannot begin a FreeBSD trace, judging the first header's bytes present.

    Only what no kernel writes is refused: a length over MAX_FIRST_LENGTH,
    a type number beyond any table (kdump prints a small unknown type as
    UNKNOWN), a command name with no NUL.  A negative length is kdump's
    "bogus length" unless the file looks like text or a program; a type of
    0 gets the reader's own message.
    """
    if len(sample) < 4:
        return None  # too little to judge: kdump stops silently
    length = _PREFIX.unpack_from(sample + bytes(8), 0)[0]
    if length < 0:
        kind = _kind(sample)
        return None if kind is None else "not a ktrace file: " + kind
    implausible = length > MAX_FIRST_LENGTH
    if len(sample) >= 6 and not implausible:
        base = struct.unpack_from("<H", sample, 4)[0] & ~K.KTR_TYPE
        if base == 0:
            return None
        implausible = base > MAX_TYPE
    if len(sample) >= 32 and not implausible:
        implausible = b"\0" not in sample[COMM_OFFSET : COMM_OFFSET + COMM_SIZE]
    if not implausible:
        return None
    kind = _kind(sample)
    return "not a ktrace file" if kind is None else "not a ktrace file: " + kind


def _kind(sample: bytes) -> str | None:
    """What a file that is not a trace most likely is, for the message."""
    if sample.startswith(_ELF_MAGIC):
        return "looks like an ELF executable"
    if all(b in _TEXT_BYTES for b in sample[:512]) or _is_utf8_text(sample[:512]):
        return "looks like text"
    return None


def _is_utf8_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # The sample may end inside a character.
        try:
            text = data[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\t\n\r" for ch in text)


# ---------------------------------------------------------------------------
# Framing.


class TraceReader:
    """Iterates over the records of a binary stream.

    With `follow`, end of input means waiting for more (kdump -l).  `arch`
    forces a layout instead of detecting it.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        follow: bool = False,
        arch: Arch | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.stream = stream
        self.follow = follow
        self.arch = arch
        self.poll_interval = poll_interval
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._stream_input = self._left_in_file() >= 1 << 62  # a pipe, socket, terminal...

    def _fill(self, need: int) -> bool:
        """Make `need` bytes available at the read position; False at end of input."""
        have = len(self._buf) - self._pos
        if have >= need:
            return True
        if not self.follow and have + self._left_in_file() < need:
            self._eof = True  # a lying ktr_len: what reading to the end would find, at once
            return False
        # Chunks are joined once: appending each to the buffer copied it
        # again and again (quadratic time for a long record).
        chunks = [self._buf[self._pos :]]
        while have < need:
            # Never read(need): a lying ktr_len (0x7fffffff) would make
            # FileIO allocate that much before finding the file is short.
            chunk = self.stream.read(CHUNK)
            if not chunk:
                if not self.follow:
                    self._eof = True
                    self._buf, self._pos = b"", 0  # nothing is read after the end
                    return False
                if self._shrunk():
                    raise FileTruncated()
                time.sleep(self.poll_interval)
                continue
            chunks.append(chunk)
            have += len(chunk)
        self._buf = b"".join(chunks)
        self._pos = 0
        return True

    def _left_in_file(self) -> int:
        """Bytes between the read offset and the end of a regular file; unbounded otherwise."""
        try:
            st = os.fstat(self.stream.fileno())
            if stat.S_ISREG(st.st_mode):
                return max(st.st_size - self.stream.tell(), 0)
        except (AttributeError, OSError, ValueError):
            pass
        return 1 << 62

    def _shrunk(self) -> bool:
        """Whether a regular file is now shorter than the offset read up to (truncated)."""
        try:
            st = os.fstat(self.stream.fileno())
            return stat.S_ISREG(st.st_mode) and st.st_size < self.stream.tell()
        except (AttributeError, OSError, ValueError):
            return False

    def _ready(self) -> bool:
        """Whether a read would return at once (always so for a regular file)."""
        try:
            return bool(select.select([self.stream], [], [], 0)[0])
        except (OSError, TypeError, ValueError):
            return True

    def _detect(self) -> Arch:
        # Read up to SAMPLE bytes (or to end of input) before deciding.
        while len(self._buf) < SAMPLE:
            if self.follow and self._buf and not self._ready():
                break  # a pipe being followed: decide on what has come, not wait for 64 KiB
            chunk = self.stream.read(SAMPLE - len(self._buf))
            if not chunk:
                break
            self._buf += chunk
        complete = len(self._buf) < SAMPLE
        if complete and not self.follow:
            self._eof = True
        return detect_arch(self._buf, complete=complete and not self.follow)

    def unread(self) -> tuple[bytes, int]:
        """(buffer, offset): the bytes read and not yet framed start at offset.

        Between two records, a caller may frame whole records there itself
        (select_calls' quick path) and then skip_to past them; the next record
        iterated is the one after.
        """
        return self._buf, self._pos

    def skip_to(self, offset: int) -> None:
        """Continue at `offset` of unread()'s buffer, a record boundary the caller framed to."""
        self._pos = offset

    def __iter__(self) -> Iterator[Record]:
        arch = self.arch if self.arch is not None else self._detect()
        self.arch = arch
        hsize = arch.header_size
        v0 = arch.header_v0
        v1 = arch.header_v1
        shortfall = arch.v0_shortfall
        prefix = _PREFIX.unpack_from
        if self._fill(hsize) and not prefix(self._buf, self._pos)[1] & ~K.KTR_TYPE & 0xFFFF:
            # No kernel writes type 0, and kdump would skip such records
            # forever: /dev/zero, a sparse or zero-filled file.
            raise NotATrace("not a ktrace file: first record has type 0")
        v1_header = v1.unpack_from
        ktr_drop, ktr_versioned, type_bits = K.KTR_DROP, K.KTR_VERSIONED, ~K.KTR_TYPE
        while True:
            if len(self._buf) - self._pos < hsize and not self._fill(hsize):
                return  # fewer than a v1 header's bytes left: kdump stops silently
            buf = self._buf
            pos = self._pos
            # A v1 header's bytes are there (checked above): read it as one at
            # once, and again as v0 only when it is not one.
            length, rtype, version, pid, comm, sec, frac, tid, cpu = v1_header(buf, pos)
            rtype &= 0xFFFF
            drop = bool(rtype & ktr_drop)
            if rtype & ktr_versioned and version:
                start = pos + hsize
            else:
                version = 0
                _, _, pid, comm, sec, frac, tid = v0.unpack_from(buf, pos)
                cpu = 0
                start = pos + hsize - shortfall
            record = Record(rtype & type_bits, pid, tid, comm, sec, frac, b"", version, cpu, drop)
            if length < 0 or (length > MAX_STREAM_RECORD and self._stream_input):
                raise BogusLength(length, record)
            end = start + length
            if end > len(buf):
                self._pos = start
                if not self._fill(length):
                    raise DataTooShort(record)
                buf = self._buf
                start = self._pos
                end = start + length
            record.payload = buf[start:end]
            self._pos = end
            yield record


def open_trace(path: str) -> BinaryIO:
    """The trace file at `path` ('-' is standard input), unbuffered."""
    if path == "-":
        return os.fdopen(os.dup(0), "rb", buffering=0)
    return open(path, "rb", buffering=0)


def iter_records(source: str | BinaryIO, *, follow: bool = False) -> Iterator[Record]:
    """The records of a trace file path, '-', or open binary stream."""
    if isinstance(source, str):
        with open_trace(source) as stream:
            yield from TraceReader(stream, follow=follow)
    else:
        yield from TraceReader(source, follow=follow)

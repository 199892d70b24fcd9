"""Reading a stopped tracee's memory through a cached /proc/PID/mem descriptor."""

from __future__ import annotations

import errno as E
import os
from collections.abc import Callable

from ktrace_cli.trace.englog import log

PATH_MAX = 4096
_CHUNK = 256
_PTR = 8
_VECTOR_CHUNK = 64  # pointers read at a time from an argv/envp vector
_STRINGS_BLOCK = 4096  # bytes read at a time where the strings lie
# Errors that say the engine is short of something, not that the process is gone.
RESOURCE_ERRNOS = frozenset({E.EMFILE, E.ENFILE, E.ENOMEM})


def _nothing() -> None:
    pass


class ProcMem:
    """One process's address space, opened at its first read and dropped at exec (the fd pins the old mm).

    Opening on demand, not when the process is adopted: most stops need no
    memory (with `-t c` none does), and a shell's child that only execs
    would otherwise cost an open at the fork and a close and an open at the
    exec while it waits, stopped (docs/DESIGN.md, Speed).

    If /proc/PID/mem cannot be opened for lack of descriptors, every read
    that finds no descriptor tries again and, failing, calls on_loss (the
    owner marks its next record KTR_DROP); the log says why once. Any
    other failure (the process is gone) is not retried until the next exec.
    """

    __slots__ = ("pid", "fd", "short", "on_loss", "logged", "unopened")

    def __init__(self, pid: int, on_loss: Callable[[], None] = _nothing) -> None:
        self.pid = pid
        self.fd = -1
        self.short = 0  # errno of a failed open for lack of resources, 0 if none
        self.on_loss = on_loss
        self.logged = False
        self.unopened = True  # no open tried since adoption or the last exec

    def reopen(self, pid: int | None = None) -> None:
        """The process exec'd: the next read opens its new address space."""
        if pid is not None:
            self.pid = pid
        self.close()
        self.unopened = True

    def _open(self) -> bool:
        self.unopened = False
        try:
            self.fd = os.open(f"/proc/{self.pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            self.fd = -1
            if e.errno not in RESOURCE_ERRNOS:
                return False
            self.short = e.errno
            if not self.logged:
                self.logged = True
                log.warning("pid %d: cannot open /proc/%d/mem: %s; records needing its memory "
                            "are lost (marked KTR_DROP)", self.pid, self.pid, e.strerror)  # fmt: skip
            return False
        self.short = 0
        return True

    def _usable(self) -> bool:
        """Whether there is a descriptor to read through (opened now if none was tried, or they ran short)."""
        if self.fd >= 0:
            return True
        if (self.unopened or self.short) and self._open():
            return True
        if self.short:
            self.on_loss()
        return False

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1

    def read(self, addr: int, size: int) -> bytes:
        """Up to `size` bytes at `addr`; shorter where the mapping ends, b"" if unmapped."""
        if size <= 0 or addr == 0 or not self._usable():
            return b""
        try:
            return os.pread(self.fd, size, addr)
        except OSError:
            return b""

    def read_path(self, addr: int, limit: int = PATH_MAX) -> bytes | None:
        """The NUL-terminated string at `addr` (without the NUL), None if unreadable."""
        if addr == 0 or not self._usable():
            return None
        try:
            chunk = os.pread(self.fd, _CHUNK, addr)
        except OSError:
            return None
        end = chunk.find(b"\0")
        if end >= 0:
            return chunk[:end]
        if not chunk:
            return None
        parts = [chunk]
        total = len(chunk)
        while total < limit:
            try:
                chunk = os.pread(self.fd, min(1024, limit - total), addr + total)
            except OSError:
                break
            if not chunk:
                break
            end = chunk.find(b"\0")
            if end >= 0:
                parts.append(chunk[:end])
                break
            parts.append(chunk)
            total += len(chunk)
        return b"".join(parts)[:limit]

    def read_iov(self, iov_addr: int, iovcnt: int, total: int) -> bytes:
        """The first `total` bytes described by an array of struct iovec."""
        if total <= 0 or iovcnt <= 0:
            return b""
        raw = self.read(iov_addr, 16 * min(iovcnt, 1024))
        out = []
        need = total
        for i in range(0, len(raw) - 15, 16):
            base = int.from_bytes(raw[i : i + 8], "little")
            length = int.from_bytes(raw[i + 8 : i + 16], "little")
            if length == 0:
                continue
            take = min(length, need)
            data = self.read(base, take)
            out.append(data)
            need -= len(data)
            if need <= 0 or len(data) < take:
                break
        return b"".join(out)

    def read_strings(self, vec: int, budget: int, ptr: int = _PTR) -> bytes:
        """The NUL-terminated strings of a NULL-terminated pointer vector (argv, envp), concatenated.

        Strings are taken whole while they fit in `budget` bytes (NULs
        included); the first one that does not fit, or cannot be read,
        ends the list. The strings of an exec usually lie one after the
        other, so they are read a block at a time, not one by one.
        """
        out = bytearray()
        block, block_at = b"", 0
        while vec:
            raw = self.read(vec, ptr * _VECTOR_CHUNK)
            count = len(raw) // ptr
            if not count:
                break
            vec += count * ptr
            for k in range(count):
                addr = int.from_bytes(raw[k * ptr : (k + 1) * ptr], "little")
                if addr == 0:
                    return bytes(out)
                room = budget - len(out)
                start = addr - block_at
                if not 0 <= start < len(block) or block.find(b"\0", start, start + room) < 0:
                    block, block_at, start = self._block(addr, room), addr, 0
                end = block.find(b"\0", start, start + room)
                if end < 0:
                    return bytes(out)  # too long for the budget, or unreadable
                out += block[start : end + 1]
        return bytes(out)

    def _block(self, addr: int, room: int) -> bytes:
        """Bytes from `addr` on, up to `room`, reading on until a NUL appears."""
        data = self.read(addr, min(room, _STRINGS_BLOCK))
        while b"\0" not in data and 0 < len(data) < room:
            more = self.read(addr + len(data), min(room - len(data), 8 * _STRINGS_BLOCK))
            if not more:
                break
            data += more
        return data

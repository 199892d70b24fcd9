"""Reading a stopped tracee's memory through a cached /proc/PID/mem descriptor."""

from __future__ import annotations

import os

PATH_MAX = 4096
_CHUNK = 256


class ProcMem:
    """One process's address space; reopen() after exec (the fd pins the old mm)."""

    __slots__ = ("pid", "fd")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd = -1
        self.reopen()

    def reopen(self, pid: int | None = None) -> None:
        if pid is not None:
            self.pid = pid
        self.close()
        try:
            self.fd = os.open(f"/proc/{self.pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.fd = -1

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1

    def read(self, addr: int, size: int) -> bytes:
        """Up to `size` bytes at `addr`; shorter where the mapping ends, b"" if unmapped."""
        if size <= 0 or addr == 0 or self.fd < 0:
            return b""
        try:
            return os.pread(self.fd, size, addr)
        except OSError:
            return b""

    def read_path(self, addr: int, limit: int = PATH_MAX) -> bytes | None:
        """The NUL-terminated string at `addr` (without the NUL), None if unreadable."""
        if addr == 0 or self.fd < 0:
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

"""ProcMem.read_strings on real memory: this process's own, through /proc/self/mem."""

from __future__ import annotations

import ctypes
import mmap
import os

import pytest

from ktrace_cli.trace.memory import ProcMem

pytestmark = pytest.mark.both_engines


class Vector:
    """A NULL-terminated char *[] built in this process, with strings kept alive."""

    def __init__(self, *strings: bytes | int) -> None:
        self.keep = [ctypes.create_string_buffer(s) if isinstance(s, bytes) else None for s in strings]
        ptrs = [ctypes.addressof(b) if b is not None else int(s)  # type: ignore[arg-type]
                for b, s in zip(self.keep, strings, strict=True)]  # fmt: skip
        self.array = (ctypes.c_void_p * (len(ptrs) + 1))(*ptrs, None)

    @property
    def addr(self) -> int:
        return ctypes.addressof(self.array)


@pytest.fixture
def mem():  # type: ignore[no-untyped-def]
    m = ProcMem(os.getpid())
    yield m
    m.close()


def test_scattered_strings_in_order(mem: ProcMem) -> None:
    v = Vector(b"ls", b"", b"-l", b"x" * 5000, b"two words")
    assert mem.read_strings(v.addr, 1 << 20) == b"ls\0\0-l\0" + b"x" * 5000 + b"\0two words\0"


def test_an_empty_vector_and_a_null_one(mem: ProcMem) -> None:
    assert mem.read_strings(Vector().addr, 1 << 20) == b""
    assert mem.read_strings(0, 1 << 20) == b""


def test_the_budget_keeps_whole_strings(mem: ProcMem) -> None:
    v = Vector(b"aaaa", b"bbbb", b"cccc")
    assert mem.read_strings(v.addr, 10) == b"aaaa\0bbbb\0"  # "cccc\0" would make 15
    assert mem.read_strings(v.addr, 15) == b"aaaa\0bbbb\0cccc\0"
    assert mem.read_strings(v.addr, 4) == b""  # not even the first with its NUL


def test_many_pointers_past_one_read_of_the_vector(mem: ProcMem) -> None:
    strings = [b"arg%d" % i for i in range(200)]
    v = Vector(*strings)
    assert mem.read_strings(v.addr, 1 << 20) == b"".join(s + b"\0" for s in strings)


LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.mmap.restype = ctypes.c_void_p
LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]  # fmt: skip
LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20
PAGE = mmap.PAGESIZE


def _pages(n: int) -> int:
    """n fresh read-write pages (libc's mmap: each page is unmapped by us alone)."""
    addr = LIBC.mmap(None, n * PAGE, mmap.PROT_READ | mmap.PROT_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0)
    assert addr not in (None, ctypes.c_void_p(-1).value)
    return int(addr)


def _unmap(addr: int, n: int = 1) -> None:
    """A hole: /proc/PID/mem reads even PROT_NONE pages, which the kernel's exec cannot."""
    assert LIBC.munmap(addr, n * PAGE) == 0


def test_an_unreadable_string_ends_the_list(mem: ProcMem) -> None:
    hole = _pages(1)
    v = Vector(b"ok", hole, b"never")
    _unmap(hole)  # last: nothing allocated between this and the read
    assert mem.read_strings(v.addr, 1 << 20) == b"ok\0"


def test_a_string_running_into_a_hole_ends_the_list(mem: ProcMem) -> None:
    base = _pages(2)
    ctypes.memmove(base + PAGE - 3, b"abc", 3)  # no NUL before the end of the page
    v = Vector(b"first", base + PAGE - 3, b"never")
    _unmap(base + PAGE)
    try:
        assert mem.read_strings(v.addr, 1 << 20) == b"first\0"
    finally:
        _unmap(base)

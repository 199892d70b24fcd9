"""The interpreter names an exec looks up (trace/interp.py): #! lines and PT_INTERP."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from ktrace_cli.trace.interp import PT_INTERP, elf_interpreter, shebang


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"#!/bin/sh\necho\n", b"/bin/sh"),
        (b"#! /usr/bin/env python3\n", b"/usr/bin/env"),
        (b"#!\t/bin/bash -e\n", b"/bin/bash"),
        (b"#!/bin/sh", b"/bin/sh"),  # no newline: the whole buffer is the line
        (b"#!\n/bin/sh\n", None),  # an empty #! line names nothing
        (b"#!   \n", None),
        (b"\x7fELF\x02\x01", None),
        (b"echo hi\n", None),
    ],
)
def test_shebang(head: bytes, name: bytes | None) -> None:
    assert shebang(head) == name


def _elf(tmp_path: Path, elf_class: int, interp: bytes | None) -> Path:
    """A minimal little-endian ELF image with a PT_LOAD and, if given, a PT_INTERP."""
    path = tmp_path / "image"
    if elf_class == 2:
        ehdr_size, phdr = 64, struct.Struct("<IIQQQQQQ")
        ehdr = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 64, 0, 0,
                                                                   64, phdr.size, 2, 0, 0, 0)  # fmt: skip
    else:
        ehdr_size, phdr = 52, struct.Struct("<IIIIIIII")
        ehdr = b"\x7fELF\x01\x01\x01" + bytes(9) + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0, 52, 0, 0,
                                                                   52, phdr.size, 2, 0, 0, 0)  # fmt: skip
    assert len(ehdr) == ehdr_size
    name_at = ehdr_size + 2 * phdr.size
    name = (interp or b"") + b"\0"
    load = (1, 0, 0, 0, 0, 0, 0, 0)
    if elf_class == 2:
        second = (PT_INTERP, 4, name_at, 0, 0, len(name), len(name), 1) if interp else load
    else:
        second = (PT_INTERP, name_at, 0, 0, len(name), len(name), 4, 1) if interp else load
    path.write_bytes(ehdr + phdr.pack(*load) + phdr.pack(*second) + name)
    return path


@pytest.mark.parametrize("elf_class", [2, 1])
@pytest.mark.parametrize("interp", [b"/lib64/ld-linux-x86-64.so.2", b"/lib/ld-linux.so.2", None])
def test_elf_interpreter(tmp_path: Path, elf_class: int, interp: bytes | None) -> None:
    fd = os.open(_elf(tmp_path, elf_class, interp), os.O_RDONLY)
    try:
        assert elf_interpreter(fd) == interp
    finally:
        os.close(fd)


def test_not_an_elf_image(tmp_path: Path) -> None:
    path = tmp_path / "script"
    path.write_bytes(b"#!/bin/sh\n" + bytes(100))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert elf_interpreter(fd) is None
    finally:
        os.close(fd)

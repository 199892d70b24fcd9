"""The interpreters an exec looked up, for the NAMI records FreeBSD's image activators write.

FreeBSD's exec looks up, after the program's own path, the `#!` interpreter
of a script (imgact_shell, then kern_exec's namei) and the ELF interpreter
of a dynamic image (imgact_elf's PT_INTERP), each through namei(), so each
gets a NAMI record before the exec's RET. Linux does the same lookups
without telling a tracer; they are read back once the exec has succeeded:
the name execve was given is the new image's AT_EXECFN, its first line says
whether it was a script, and /proc/PID/exe is the ELF image that runs.
"""

from __future__ import annotations

import os
import struct

from ktrace_cli.trace.memory import ProcMem

AT_EXECFN = 31  # auxv: the file name execve was given
SHEBANG_MAX = 256  # Linux's BINPRM_BUF_SIZE: the part of a script's first line it reads
ELF_MAGIC = b"\x7fELF"
ELFCLASS64, ELFCLASS32 = 2, 1
PT_INTERP = 3
PHDRS_MAX = 256  # far beyond any real image; bounds the read of a bogus header
_AUXV = struct.Struct("<QQ")


def _execfn(tgid: int, mem: ProcMem) -> bytes | None:
    try:
        with open(f"/proc/{tgid}/auxv", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    for key, value in _AUXV.iter_unpack(raw[: len(raw) - len(raw) % _AUXV.size]):
        if key == AT_EXECFN:
            return mem.read_path(value)
    return None


def _open_in(tgid: int, path: bytes) -> int:
    """Open `path` as the process sees it (relative to its cwd), read-only; -1 if impossible."""
    where = path if path.startswith(b"/") else b"/proc/%d/cwd/" % tgid + path
    try:
        return os.open(where, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return -1


def shebang(head: bytes) -> bytes | None:
    """The interpreter path of a script's first line, as Linux's binfmt_script parses it."""
    if not head.startswith(b"#!"):
        return None
    line = head[2:SHEBANG_MAX].split(b"\n", 1)[0].lstrip(b" \t")
    name = line.split(None, 1)[0] if line.strip() else b""
    return name or None


def elf_interpreter(fd: int) -> bytes | None:
    """PT_INTERP of the ELF image open on `fd` (32- or 64-bit, little-endian), None if static."""
    try:
        ident = os.pread(fd, 64, 0)
        if len(ident) < 52 or not ident.startswith(ELF_MAGIC):
            return None
        if ident[4] == ELFCLASS64:
            phoff, = struct.unpack_from("<Q", ident, 32)
            phentsize, phnum = struct.unpack_from("<HH", ident, 54)
            phdr = struct.Struct("<IIQQQQQQ")
        elif ident[4] == ELFCLASS32:
            phoff, = struct.unpack_from("<I", ident, 28)
            phentsize, phnum = struct.unpack_from("<HH", ident, 42)
            phdr = struct.Struct("<IIIIIIII")
        else:
            return None
        if phentsize < phdr.size or phnum > PHDRS_MAX:
            return None
        table = os.pread(fd, phentsize * phnum, phoff)
        for i in range(len(table) // phentsize):
            fields = phdr.unpack_from(table, i * phentsize)
            if fields[0] != PT_INTERP:
                continue
            offset, size = (fields[2], fields[5]) if ident[4] == ELFCLASS64 else (fields[1], fields[4])
            name = os.pread(fd, min(size, 4096), offset).split(b"\0", 1)[0]
            return name or None
    except OSError:
        return None
    return None


def looked_up(tgid: int, mem: ProcMem) -> list[bytes]:
    """The interpreter names the exec that just succeeded looked up, in FreeBSD's order."""
    names: list[bytes] = []
    execfn = _execfn(tgid, mem)
    if execfn:
        fd = _open_in(tgid, execfn)
        if fd >= 0:
            try:
                interp = shebang(os.pread(fd, SHEBANG_MAX, 0))
            except OSError:
                interp = None
            finally:
                os.close(fd)
            if interp is not None:
                names.append(interp)
    try:
        fd = os.open(f"/proc/{tgid}/exe", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return names
    try:
        interp = elf_interpreter(fd)
    finally:
        os.close(fd)
    if interp is not None:
        names.append(interp)
    return names

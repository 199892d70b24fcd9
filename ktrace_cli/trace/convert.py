"""Linux structures converted to the FreeBSD amd64 layouts STRU records carry."""

from __future__ import annotations

import struct

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import FREEBSD_STAT

# struct stat, x86_64 Linux (144 bytes).
LINUX_STAT = struct.Struct("<QQQIII4xQqqq9q")
# struct statx (the fields we use, 144 of its 256 bytes).
STATX = struct.Struct("<IIQIIIH2xQQQQ4q4qIIII")

assert LINUX_STAT.size == 144

# Linux address family -> FreeBSD (sys/sys/socket.h). Families FreeBSD lacks
# (AF_PACKET, ...) have no FreeBSD form, so no STRU record is written for them.
FAMILY_TO_FREEBSD = {0: 0, 1: 1, 2: 2, 10: 28, 16: 38, 31: 36}
SOCKADDR_MAX = 255  # sa_len is one byte
SUN_PATH_FREEBSD = 104
# Linux's kernel-internal "restart me" codes, seen by a tracer at syscall exit:
# FreeBSD's ERESTART in a record.
RESTART_ERRNOS = frozenset({512, 513, 514, 516})
ERRNO_LIMIT = 4096  # a syscall's error return is -1 .. -4095


def errno_map() -> list[int]:
    """FreeBSD's errno for each Linux one below ERRNO_LIMIT, as a capture backend records it."""
    from ktrace_cli.abi import linux as abi  # lazy: start-up (only the engine maps errnos)

    # Above Linux's last errno no FreeBSD twin exists: the rest is arithmetic
    # (4096 look-ups were a measurable part of the engine's start).
    known = abi.LINUX_ERRNO_MAX + 1
    out = [abi.freebsd_errno_from_linux(e) for e in range(known)]
    out.extend(range(abi.LINUX_ONLY_BASE + known, abi.LINUX_ONLY_BASE + ERRNO_LIMIT))
    for e in RESTART_ERRNOS:
        out[e] = K.ERESTART
    return out


def freebsd_makedev(major: int, minor: int) -> int:
    """dev_t in FreeBSD's encoding (sys/sys/types.h makedev)."""
    return (
        ((major & 0xFFFFFF00) << 32)
        | ((major & 0xFF) << 8)
        | ((minor & 0xFF00) << 24)
        | (minor & 0xFFFF00FF)
    )


def _linux_split(dev: int) -> tuple[int, int]:
    major = ((dev >> 32) & 0xFFFFF000) | ((dev >> 8) & 0xFFF)
    minor = ((dev >> 12) & 0xFFFFFF00) | (dev & 0xFF)
    return major, minor


def freebsd_dev(linux_dev: int) -> int:
    return freebsd_makedev(*_linux_split(linux_dev))


def stat_from_linux(raw: bytes) -> bytes | None:
    """FreeBSD struct stat from a Linux x86_64 struct stat; None if too short."""
    if len(raw) < LINUX_STAT.size:
        return None
    (dev, ino, nlink, mode, uid, gid, rdev, size, blksize, blocks,
     asec, ansec, msec, mnsec, csec, cnsec, _r0, _r1, _r2) = LINUX_STAT.unpack_from(raw)  # fmt: skip
    return FREEBSD_STAT.pack(
        freebsd_dev(dev), ino, nlink, mode & 0xFFFF, uid, gid, freebsd_dev(rdev),
        asec, ansec, msec, mnsec, csec, cnsec, -1, 0,  # no birth time in Linux stat
        size, blocks, blksize & 0xFFFFFFFF, 0,
    )  # fmt: skip


def stat_from_statx(raw: bytes) -> bytes | None:
    """FreeBSD struct stat from a Linux struct statx; None if too short."""
    if len(raw) < STATX.size:
        return None
    v = STATX.unpack_from(raw)
    mask, blksize, _attrs, nlink, uid, gid, mode, ino, size, blocks, _amask = v[:11]
    asec, ansec, bsec, bnsec = v[11], v[12] & 0xFFFFFFFF, v[13], v[14] & 0xFFFFFFFF
    csec, cnsec, msec, mnsec = v[15], v[16] & 0xFFFFFFFF, v[17], v[18] & 0xFFFFFFFF
    rmaj, rmin, dmaj, dmin = v[19:23]
    if not mask & 0x800:  # STATX_BTIME
        bsec, bnsec = -1, 0
    return FREEBSD_STAT.pack(
        freebsd_makedev(dmaj, dmin), ino, nlink, mode, uid, gid, freebsd_makedev(rmaj, rmin),
        asec, ansec, msec, mnsec, csec, cnsec, bsec, bnsec,
        size, blocks, blksize, 0,
    )  # fmt: skip


def sockaddr_from_linux(raw: bytes) -> bytes | None:
    """A FreeBSD sockaddr (sa_len, sa_family, data) from a Linux one of len(raw) bytes."""
    if len(raw) < 2:
        return None
    family = FAMILY_TO_FREEBSD.get(int.from_bytes(raw[:2], "little"))
    if family is None:
        return None
    data = raw[2:]
    if family == 1:
        data = data[:SUN_PATH_FREEBSD]
    data = data[: SOCKADDR_MAX - 2]
    return bytes((len(data) + 2, family)) + data

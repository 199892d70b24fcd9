"""STRU records (KTR_STRUCT, KTR_STRUCT_ARRAY) decoded once into fields: one registry of struct decoders.

Every output starts here: JSON prints the fields, render/stru_text.py
builds kdump's text from the same fields.  A decoder takes the record's
data and the file's word size (8: amd64, 4: i386) and returns the members
as plain JSON values, or INVALID when the size is not one of the
structure's layouts (kdump's "invalid record").  A name with no decoder is
UNKNOWN ("unknown structure").

Layouts are FreeBSD's, little endian.  Besides the current 224-byte amd64
`struct stat` this also reads the pre-ino64 `struct freebsd11_stat` (120
bytes on amd64, 96 on i386) that FreeBSD 11 and older kernels recorded,
which current kdump rejects, and the 208-byte i386 ino64 stat (4-byte
alignment, a 32-bit pad before each timespec).
"""

from __future__ import annotations

import enum
import socket
import struct
from collections.abc import Callable
from functools import cache

from ktrace_cli.abi import freebsd, sysdecode
from ktrace_cli.abi.linux import signal_name as linux_signal_name
from ktrace_cli.decode.cfmt import signal_text
from ktrace_cli.format.layouts import FDPAIR, FDPAIR_PIPE, FDPAIR_SOCKET, FREEBSD_STAT

SOCK_MAXADDRLEN = 128  # sizeof(struct sockaddr_storage): the largest sockaddr kdump accepts
NAME_MAX = 255
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 28, 38


class Verdict(enum.Enum):
    """Why a STRU record has no fields, in kdump's words."""

    INVALID = "invalid record"
    UNKNOWN = "unknown structure"


INVALID, UNKNOWN = Verdict.INVALID, Verdict.UNKNOWN
Fields = dict[str, object]
Decoded = Fields | Verdict


def c_str(raw: bytes) -> str:
    """A C string member: up to the first NUL, undecodable bytes as surrogate escapes (lossless)."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _bits(data: bytes) -> list[int]:
    """Bit numbers set in a little-endian bitset."""
    value = int.from_bytes(data, "little")
    out = []
    n = 0
    while value:
        if value & 1:
            out.append(n)
        value >>= 1
        n += 1
    return out


# -- struct stat -------------------------------------------------------------------

STAT_TIMES = ("atime", "mtime", "ctime", "birthtime")
# sys/sys/stat.h struct stat (ino64): amd64 224 bytes (declared once, with the writer); i386 208.
_ST_I386 = struct.Struct("<QQQH2xII4xQ 4xil 4xil 4xil 4xil qqiI8x80x")
# struct freebsd11_stat: amd64 120 bytes, i386 96 bytes (8 bytes of padding
# after st_birthtim pad it to 16 bytes).  st_gen and st_lspare are skipped.
_ST11_AMD64 = struct.Struct("<IIHHIII qq qq qq qqiI8x qq")
_ST11_I386 = struct.Struct("<IIHHIII il il il qqiI8x il8x")
# freebsd11_stat keeps st_birthtim after st_flags; move it beside the other times.
_ST11_ORDER = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 17, 18, 13, 14, 15, 16)


def _stat_current(layout: struct.Struct) -> Callable[[bytes], tuple[int, ...]]:
    def unpack(b: bytes) -> tuple[int, ...]:
        dev, ino, nlink, mode, uid, gid, rdev, *t, size, blocks, blksize, flags = layout.unpack(b)
        return (dev, ino, mode, nlink, uid, gid, rdev, *t, size, blocks, blksize, flags)

    return unpack


def _stat11(layout: struct.Struct) -> Callable[[bytes], tuple[int, ...]]:
    def unpack(b: bytes) -> tuple[int, ...]:
        v = layout.unpack(b)
        return tuple([v[i] for i in _ST11_ORDER])

    return unpack


# (word, size) -> members in one order: dev, ino, mode, nlink, uid, gid, rdev,
# four (sec, nsec) times, size, blocks, blksize, flags.
STAT_LAYOUTS: dict[tuple[int, int], Callable[[bytes], tuple[int, ...]]] = {
    (8, FREEBSD_STAT.size): _stat_current(FREEBSD_STAT),
    (4, _ST_I386.size): _stat_current(_ST_I386),
    (8, _ST11_AMD64.size): _stat11(_ST11_AMD64),
    (4, _ST11_I386.size): _stat11(_ST11_I386),
}
assert sorted(size for _w, size in STAT_LAYOUTS) == [96, 120, 208, 224]


def _stat(data: bytes, word: int) -> Decoded:
    unpack = STAT_LAYOUTS.get((word, len(data)))
    if unpack is None:
        return INVALID
    dev, ino, mode, nlink, uid, gid, rdev, a, an, m, mn, c, cn, b, bn, size, blocks, blksize, flags = unpack(data)
    return {
        "dev": dev, "ino": ino, "mode": mode, "nlink": nlink, "uid": uid, "gid": gid, "rdev": rdev,
        "atime": {"sec": a, "nsec": an}, "mtime": {"sec": m, "nsec": mn},
        "ctime": {"sec": c, "nsec": cn}, "birthtime": {"sec": b, "nsec": bn},
        "size": size, "blocks": blocks, "blksize": blksize, "flags": flags,
    }  # fmt: skip


# -- sockaddr ----------------------------------------------------------------------

_SIN = struct.Struct("!H4s")  # port, address (after sin_len, sin_family)
_SIN6 = struct.Struct("!HI16sI")  # port, flowinfo, address, scope id
_SNL = struct.Struct("<2xII")  # nl_pad, nl_pid, nl_groups


def sockaddr_fields(data: bytes) -> Fields:
    """The members of a sockaddr whose first sa_len bytes are `data`'s (missing bytes read as zero)."""
    sa_len = data[0] if data else 0
    family = data[1] if len(data) > 1 else 0
    sa = data[:sa_len]
    if len(sa) < sa_len:
        sa = sa.ljust(sa_len, b"\0")
    out: Fields = {"len": sa_len, "family": family, "family_name": _families().get(family)}
    if family == AF_INET and len(sa) >= 16:
        port, addr = _SIN.unpack_from(sa, 2)
        out["address"] = socket.inet_ntop(socket.AF_INET, addr)
        out["port"] = port
    elif family == AF_INET6 and len(sa) >= 28:
        port, flow, addr, scope = _SIN6.unpack_from(sa, 2)
        out.update(address=socket.inet_ntop(socket.AF_INET6, addr), port=port, flowinfo=flow, scope_id=scope)
    elif family == AF_UNIX:
        out["path"] = c_str(sa[2:106])
    elif family == AF_NETLINK:
        pid, groups = _SNL.unpack_from(sa.ljust(12, b"\0"), 2)
        out.update(pid=pid, groups=groups)
    return out


@cache
def _families() -> dict[int, str]:
    """sys/sys/socket.h families in header order, as mktables builds sockfamily (1 is AF_LOCAL)."""
    return sysdecode.table("sockfamily").first


def _sockaddr(data: bytes, word: int) -> Decoded:
    if len(data) > SOCK_MAXADDRLEN or len(data) != data[0]:
        return INVALID
    return sockaddr_fields(data)


# -- the others ----------------------------------------------------------------------

ITIMERVAL = {8: struct.Struct("<4q"), 4: struct.Struct("<4i")}
SPLICE = {8: struct.Struct("<i4xqqq"), 4: struct.Struct("<iqii")}  # fd, max, idle sec/usec
# struct thr_param: start_func, arg, stack_base, stack_size, tls_base,
# tls_size, child_tid, parent_tid, flags, rtp, spare[3].
THR_PARAM = {8: struct.Struct("<8Qi4xQ24x"), 4: struct.Struct("<8IiI12x")}
THR_PARAM_FIELDS = ("start_func", "arg", "stack_base", "stack_size", "tls_base", "tls_size",
                    "child_tid", "parent_tid", "flags", "rtp")  # fmt: skip
INOTIFY = struct.Struct("<iIII")
_RIGHTS = struct.Struct("<QQ")


def _caprights(data: bytes, word: int) -> Decoded:
    if len(data) != _RIGHTS.size:
        return INVALID
    words = _RIGHTS.unpack(data)
    return {"rights": list(words), "text": freebsd.cap_rights_text(words)}


def _itimerval(data: bytes, word: int) -> Decoded:
    layout = ITIMERVAL.get(word)
    if layout is None or len(data) != layout.size:
        return INVALID
    isec, iusec, vsec, vusec = layout.unpack(data)
    return {"interval": {"sec": isec, "usec": iusec}, "value": {"sec": vsec, "usec": vusec}}


def _cpuset(data: bytes, word: int) -> Decoded:
    return {"cpus": _bits(data)}


def _linux_signal(signo: int) -> str:
    return signal_text(linux_signal_name(signo), signo)


def _sigset(data: bytes, word: int) -> Decoded:
    # kdump decodes a Linux sigset of one or two words only; other sizes are not one.
    if not 4 <= len(data) <= 8:
        return UNKNOWN
    return {"signals": [_linux_signal(bit + 1) for bit in _bits(data)]}


def _inotify(data: bytes, word: int) -> Decoded:
    if not INOTIFY.size <= len(data) <= INOTIFY.size + NAME_MAX + 1:
        return INVALID
    wd, mask, cookie, length = INOTIFY.unpack_from(data)
    return {"wd": wd, "mask": mask, "cookie": cookie, "len": length, "name": c_str(data[INOTIFY.size :])}


def _splice(data: bytes, word: int) -> Decoded:
    layout = SPLICE.get(word)
    if layout is None or len(data) != layout.size:
        return INVALID
    fd, maxlen, sec, usec = layout.unpack(data)
    return {"fd": fd, "max": maxlen, "idle": {"sec": sec, "usec": usec}}


def _thrparam(data: bytes, word: int) -> Decoded:
    layout = THR_PARAM.get(word)
    if layout is None or len(data) != layout.size:
        return INVALID
    return dict(zip(THR_PARAM_FIELDS, layout.unpack(data), strict=True))


# -- ours --------------------------------------------------------------------------
# Structures pyktrace records that FreeBSD has not: kdump prints them as an
# unknown structure (so does the default text), JSON prints their fields.


def fdpair_target(kind: int, family: int, ino: int) -> str:
    """What /proc/PID/fd names one of the pair: `pipe:[N]`, `socket:[N]`, or the kind alone."""
    if kind == FDPAIR_PIPE:
        return f"pipe:[{ino}]" if ino else "pipe"
    if ino:
        return f"socket:[{ino}]"
    name = _families().get(family) or f"AF_{family}"
    return f"socket:[{'AF_UNIX' if name == 'AF_LOCAL' else name}]"


def _fdpair(data: bytes, word: int) -> Decoded:
    if len(data) != FDPAIR.size:
        return INVALID
    fd0, fd1, kind, family, ino0, ino1 = FDPAIR.unpack(data)
    if kind not in (FDPAIR_PIPE, FDPAIR_SOCKET):
        return INVALID
    return {
        "fds": [fd0, fd1], "kind": "pipe" if kind == FDPAIR_PIPE else "socket", "family": family,
        "ino": [ino0, ino1], "targets": [fdpair_target(kind, family, ino0), fdpair_target(kind, family, ino1)],
    }  # fmt: skip


# The registry: structure name (as the kernel records it) -> decoder.
STRUCTS: dict[str, Callable[[bytes, int], Decoded]] = {
    "stat": _stat,
    "sockaddr": _sockaddr,
    "caprights": _caprights,
    "itimerval": _itimerval,
    "cpuset_t": _cpuset,
    "l_sigset_t": _sigset,
    "inotify": _inotify,
    "splice": _splice,
    "thrparam": _thrparam,
    "fdpair": _fdpair,
}


def layout_sizes(word: int) -> list[int]:
    """Every fixed size a decoder accepts for `word` (what a fuzzer should aim at)."""
    sizes = [size for (w, size) in STAT_LAYOUTS if w == word]
    sizes += [ITIMERVAL[word].size, SPLICE[word].size, THR_PARAM[word].size]
    return sizes + [INOTIFY.size, _RIGHTS.size, FDPAIR.size]


def valid_name(raw: bytes, alnum: bool) -> str | None:
    """kdump's sanity check of a structure name: letters and '_' (and digits for arrays)."""
    for ch in raw:
        if not (65 <= ch <= 90 or 97 <= ch <= 122 or ch == 95 or (alnum and 48 <= ch <= 57)):
            return None
    return raw.decode("ascii")


def decode_struct(raw_name: bytes, data: bytes, word: int) -> tuple[str, Decoded]:
    """(structure name, its fields or the Verdict) of a KTR_STRUCT's name and data."""
    name = valid_name(raw_name, alnum=False)
    if name is None:
        return c_str(raw_name), INVALID
    if not data:
        return name, INVALID
    decode = STRUCTS.get(name)
    if decode is None:
        return name, UNKNOWN
    return name, decode(data, word)


def struct_fields_of(raw_name: bytes, data: bytes, *, word: int) -> tuple[str, Fields | None]:
    """(structure name, decoded members as plain JSON values); None when not decodable."""
    name, fields = decode_struct(raw_name, data, word)
    return name, None if isinstance(fields, Verdict) else fields


def struct_fields(payload: bytes, *, word: int) -> tuple[str, Fields | None]:
    """struct_fields_of a whole KTR_STRUCT payload (name, NUL, data)."""
    nul = payload.find(b"\0")
    if nul < 0:
        return c_str(payload), None
    return struct_fields_of(payload[:nul], payload[nul + 1 :], word=word)


# -- KTR_STRUCT_ARRAY ------------------------------------------------------------------

_KEVENT_KEYS = ("ident", "filter", "flags", "fflags", "data", "udata")
_KEVENT_LAYOUTS: dict[tuple[str, int], struct.Struct] = {
    # ident, filter, flags, fflags, data (or its two halves), udata
    ("kevent", 8): struct.Struct("<QhHIqQ32x"),
    ("kevent", 4): struct.Struct("<IhHIqI32x"),
    ("freebsd11_kevent", 8): struct.Struct("<QhHIqQ"),
    ("freebsd11_kevent", 4): struct.Struct("<IhHIiI"),
    ("kevent32", 8): struct.Struct("<IhHIIII32x"),
    ("kevent32", 4): struct.Struct("<IhHIIII32x"),
    ("freebsd11_kevent32", 8): struct.Struct("<IhHIiI"),
    ("freebsd11_kevent32", 4): struct.Struct("<IhHIiI"),
}
_POLLFD = struct.Struct("<ihh")


def element_layout(name: str, word: int) -> tuple[str, struct.Struct] | None:
    """(kind, layout) of an array element: kind "pollfd" or "kevent"; None for an unknown name."""
    if name == "pollfd":
        return "pollfd", _POLLFD
    layout = _KEVENT_LAYOUTS.get((name, word))
    return None if layout is None else ("kevent", layout)


def element_fields(name: str, layout: struct.Struct, item: bytes) -> Fields:
    """One array element's members (kevent32's data joined from its two halves)."""
    if name == "pollfd":
        fd, events, revents = layout.unpack(item)
        return {"fd": fd, "events": events, "revents": revents}
    if name == "kevent32":
        ident, filt, flags, fflags, lo, hi, udata = layout.unpack(item)
        return dict(zip(_KEVENT_KEYS, (ident, filt, flags, fflags, lo | hi << 32, udata), strict=True))
    return dict(zip(_KEVENT_KEYS, layout.unpack(item), strict=True))

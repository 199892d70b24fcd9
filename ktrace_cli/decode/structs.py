"""STRU record text (KTR_STRUCT, KTR_STRUCT_ARRAY) as FreeBSD kdump prints it, and as JSON.

Layouts are FreeBSD's for the file's word size (8: amd64, 4: i386).  Besides
the current 224-byte amd64 `struct stat` this also reads the pre-ino64
`struct freebsd11_stat` (120 bytes on amd64, 96 on i386) that FreeBSD 11 and
older kernels recorded, which current kdump rejects as "invalid record", and
the 208-byte i386 ino64 stat (4-byte alignment, a 32-bit pad before each
timespec).  Tables of names follow FreeBSD's headers in header order
(libsysdecode's lookup returns the first name of a value); their sources are
named beside them.
"""

from __future__ import annotations

import grp
import pwd
import socket
import struct
import time
from collections.abc import Callable

from ktrace_cli.abi import freebsd, sysdecode
from ktrace_cli.abi.linux import signal_name as linux_signal_name
from ktrace_cli.decode.cfmt import c_hex
from ktrace_cli.decode.linux_args import MaskTable, lookup

SOCK_MAXADDRLEN = 128  # sizeof(struct sockaddr_storage): the largest sockaddr kdump accepts
NAME_MAX = 255
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 28, 38

# sys/sys/socket.h address families in header order, as mktables builds sockfamily
# (family 1 prints as AF_LOCAL; AF_INET_SDP and AF_INET6_SDP do not match its pattern).
_AF_FAMILIES = lookup(sysdecode.table("sockfamily").rows)

# sys/sys/event.h: filters, EV_ flags (minus EV_SYSFLAGS, EV_DROP, EV_FLAG1/2
# as libsysdecode's mktables excludes them) and the per-filter NOTE_ tables
# libsysdecode's flags.c lists.
EVFILT_READ, EVFILT_WRITE, EVFILT_VNODE, EVFILT_PROC, EVFILT_SIGNAL = -1, -2, -4, -5, -6
EVFILT_TIMER, EVFILT_PROCDESC, EVFILT_USER, EVFILT_EMPTY = -7, -8, -11, -13
_EVFILT_NAMES = lookup(
    (
        (-1, "EVFILT_READ"), (-2, "EVFILT_WRITE"), (-3, "EVFILT_AIO"), (-4, "EVFILT_VNODE"),
        (-5, "EVFILT_PROC"), (-6, "EVFILT_SIGNAL"), (-7, "EVFILT_TIMER"),
        (-8, "EVFILT_PROCDESC"), (-9, "EVFILT_FS"), (-10, "EVFILT_LIO"), (-11, "EVFILT_USER"),
        (-12, "EVFILT_SENDFILE"), (-13, "EVFILT_EMPTY"), (-14, "EVFILT_JAIL"),
    )
)  # fmt: skip
_IDENT_IS_NUMBER = frozenset(
    {EVFILT_READ, EVFILT_WRITE, EVFILT_VNODE, EVFILT_PROC, EVFILT_TIMER, EVFILT_PROCDESC,
     EVFILT_EMPTY}
)  # fmt: skip
_EV_FLAGS = MaskTable(
    (
        (0x0001, "EV_ADD"), (0x0002, "EV_DELETE"), (0x0004, "EV_ENABLE"), (0x0008, "EV_DISABLE"),
        (0x0100, "EV_FORCEONESHOT"), (0x0200, "EV_KEEPUDATA"), (0x0010, "EV_ONESHOT"),
        (0x0020, "EV_CLEAR"), (0x0040, "EV_RECEIPT"), (0x0080, "EV_DISPATCH"),
        (0x8000, "EV_EOF"), (0x4000, "EV_ERROR"),
    )
)  # fmt: skip
_NOTE_RDWR = MaskTable(((0x0001, "NOTE_LOWAT"), (0x0002, "NOTE_FILE_POLL")))
_NOTE_VNODE = MaskTable(
    (
        (0x0001, "NOTE_DELETE"), (0x0002, "NOTE_WRITE"), (0x0004, "NOTE_EXTEND"),
        (0x0008, "NOTE_ATTRIB"), (0x0010, "NOTE_LINK"), (0x0020, "NOTE_RENAME"),
        (0x0040, "NOTE_REVOKE"), (0x0080, "NOTE_OPEN"), (0x0100, "NOTE_CLOSE"),
        (0x0200, "NOTE_CLOSE_WRITE"), (0x0400, "NOTE_READ"),
    )
)  # fmt: skip
_NOTE_PROC = MaskTable(
    (
        (0x80000000, "NOTE_EXIT"), (0x40000000, "NOTE_FORK"), (0x20000000, "NOTE_EXEC"),
        (0x00000001, "NOTE_TRACK"), (0x00000002, "NOTE_TRACKERR"), (0x00000004, "NOTE_CHILD"),
    )
)  # fmt: skip
_NOTE_TIMER = MaskTable(
    (
        (0x01, "NOTE_SECONDS"), (0x02, "NOTE_MSECONDS"), (0x04, "NOTE_USECONDS"),
        (0x08, "NOTE_NSECONDS"), (0x10, "NOTE_ABSTIME"),
    )
)  # fmt: skip
_NOTE_FFILTER = {
    EVFILT_READ: _NOTE_RDWR, EVFILT_WRITE: _NOTE_RDWR, EVFILT_VNODE: _NOTE_VNODE,
    EVFILT_PROC: _NOTE_PROC, EVFILT_PROCDESC: _NOTE_PROC, EVFILT_TIMER: _NOTE_TIMER,
}  # fmt: skip
_NOTE_USER_CTRL = lookup(
    ((0, "NOTE_FFNOP"), (0x40000000, "NOTE_FFAND"), (0x80000000, "NOTE_FFOR"),
     (0xC0000000, "NOTE_FFCOPY"))
)  # fmt: skip
NOTE_FFCTRLMASK, NOTE_FFLAGSMASK, NOTE_TRIGGER = 0xC0000000, 0x00FFFFFF, 0x01000000

# sys/sys/poll.h, header order (POLLWRNORM aliases POLLOUT and never prints).
_POLL_EVENTS = MaskTable(
    (
        (0x0001, "POLLIN"), (0x0002, "POLLPRI"), (0x0004, "POLLOUT"), (0x0040, "POLLRDNORM"),
        (0x0004, "POLLWRNORM"), (0x0080, "POLLRDBAND"), (0x0100, "POLLWRBAND"),
        (0x2000, "POLLINIGNEOF"), (0x4000, "POLLRDHUP"), (0x0008, "POLLERR"),
        (0x0010, "POLLHUP"), (0x0020, "POLLNVAL"),
    )
)  # fmt: skip
_THR_CREATE_FLAGS = MaskTable(sysdecode.table("thrcreateflags").rows)

# Layouts, little endian.  stat: (dev, ino, mode, nlink, uid, gid, rdev,
# atime s/ns, mtime s/ns, ctime s/ns, birthtime s/ns, size, blocks, blksize, flags).
_STAT_FIELDS = ("dev", "ino", "mode", "nlink", "uid", "gid", "rdev")
_TIMES = ("atime", "mtime", "ctime", "birthtime")


def _stat_current_amd64(b: bytes) -> tuple[int, ...]:
    dev, ino, nlink, mode, uid, gid, rdev, *t, size, blocks, blksize, flags = _ST_AMD64.unpack(b)
    return (dev, ino, mode, nlink, uid, gid, rdev, *t, size, blocks, blksize, flags)


def _stat_current_i386(b: bytes) -> tuple[int, ...]:
    dev, ino, nlink, mode, uid, gid, rdev, *t, size, blocks, blksize, flags = _ST_I386.unpack(b)
    return (dev, ino, mode, nlink, uid, gid, rdev, *t, size, blocks, blksize, flags)


# freebsd11_stat keeps st_birthtim after st_flags; move it beside the other times.
_ST11_ORDER = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 17, 18, 13, 14, 15, 16)


def _stat11(layout: struct.Struct) -> Callable[[bytes], tuple[int, ...]]:
    def unpack(b: bytes) -> tuple[int, ...]:
        v = layout.unpack(b)
        return tuple([v[i] for i in _ST11_ORDER])

    return unpack


# sys/sys/stat.h struct stat (ino64): amd64 224 bytes; i386 208 bytes.
from ktrace_cli.format.layouts import FREEBSD_STAT as _ST_AMD64  # noqa: E402, I001  (declared once)
_ST_I386 = struct.Struct("<QQQH2xII4xQ 4xil 4xil 4xil 4xil qqiI8x80x")
# struct freebsd11_stat: amd64 120 bytes, i386 96 bytes (8 bytes of padding
# after st_birthtim pad it to 16 bytes).  st_gen and st_lspare are skipped.
_ST11_AMD64 = struct.Struct("<IIHHIII qq qq qq qqiI8x qq")
_ST11_I386 = struct.Struct("<IIHHIII il il il qqiI8x il8x")
_STAT_LAYOUTS: dict[tuple[int, int], Callable[[bytes], tuple[int, ...]]] = {
    (8, _ST_AMD64.size): _stat_current_amd64,
    (4, _ST_I386.size): _stat_current_i386,
    (8, _ST11_AMD64.size): _stat11(_ST11_AMD64),
    (4, _ST11_I386.size): _stat11(_ST11_I386),
}
assert (_ST_AMD64.size, _ST_I386.size, _ST11_AMD64.size, _ST11_I386.size) == (224, 208, 120, 96)

_ITIMERVAL = {8: struct.Struct("<4q"), 4: struct.Struct("<4i")}
_SPLICE = {8: struct.Struct("<i4xqqq"), 4: struct.Struct("<iqii")}  # fd, max, idle sec/usec
# struct thr_param: start_func, arg, stack_base, stack_size, tls_base,
# tls_size, child_tid, parent_tid, flags, rtp, spare[3].
_THR_PARAM = {8: struct.Struct("<8Qi4xQ24x"), 4: struct.Struct("<8IiI12x")}
_INOTIFY = struct.Struct("<iIII")
_SIN = struct.Struct("!H4s")  # port, address (after sin_len, sin_family)
_SIN6 = struct.Struct("!HI16sI")  # port, flowinfo, address, scope id
_SNL = struct.Struct("<2xII")  # nl_pad, nl_pid, nl_groups
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

_U64 = 0xFFFFFFFFFFFFFFFF


def _c_text(raw: bytes) -> str:
    """A C string field for kdump text: up to the first NUL, one latin-1 character per byte.

    Text lines are latin-1 `str` that encode back to the recorded bytes; a
    UTF-8 decoding here made any path outside latin-1 (or not UTF-8) unprintable.
    """
    return raw.split(b"\0", 1)[0].decode("latin-1")


def _c_str(raw: bytes) -> str:
    """A C string field for JSON: up to the first NUL, undecodable bytes as surrogate escapes."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _ptr(value: int) -> str:
    """FreeBSD printf %p: 0x followed by lower-case hex, 0x0 for NULL."""
    return f"0x{value:x}"


def _freebsd_signal(signo: int) -> str:
    name = freebsd.signal_name(signo)
    return name if name is not None else f"SIG {signo}"


# -- struct stat -------------------------------------------------------------

_PW_CACHE: dict[int, str | None] = {}
_GR_CACHE: dict[int, str | None] = {}


def _user(uid: int) -> str | None:
    if uid not in _PW_CACHE:
        try:
            _PW_CACHE[uid] = pwd.getpwuid(uid).pw_name
        except (KeyError, OverflowError):
            _PW_CACHE[uid] = None
    return _PW_CACHE[uid]


def _group(gid: int) -> str | None:
    if gid not in _GR_CACHE:
        try:
            _GR_CACHE[gid] = grp.getgrgid(gid).gr_name
        except (KeyError, OverflowError):
            _GR_CACHE[gid] = None
    return _GR_CACHE[gid]


_FILE_TYPE_CHAR = {
    0o010000: "p", 0o020000: "c", 0o040000: "d", 0o060000: "b", 0o100000: "-",
    0o120000: "l", 0o140000: "s", 0o160000: "w",
}  # fmt: skip


def strmode(mode: int) -> str:
    """FreeBSD strmode(3): type, nine permission characters and a trailing space."""
    out = [_FILE_TYPE_CHAR.get(mode & 0o170000, "?")]
    for shift, special, set_x, set_nox in (
        (6, 0o4000, "s", "S"),
        (3, 0o2000, "s", "S"),
        (0, 0o1000, "t", "T"),
    ):
        bits = mode >> shift
        out.append("r" if bits & 4 else "-")
        out.append("w" if bits & 2 else "-")
        if mode & special:
            out.append(set_x if bits & 1 else set_nox)
        else:
            out.append("x" if bits & 1 else "-")
    return "".join(out) + " "


def _time_text(sec: int, resolve: bool) -> str:
    if resolve:
        try:
            return '"' + time.strftime("%b %e %T %Y", time.localtime(sec)) + '"'
        except (OverflowError, OSError, ValueError):
            pass
    return str(sec)


def _stat_text(v: tuple[int, ...], resolve: bool) -> str:
    dev, ino, mode, nlink, uid, gid, rdev = v[:7]
    parts = [f"struct stat {{dev={dev}, ino={ino}, "]
    parts.append(f"mode={strmode(mode)}, " if resolve else f"mode=0{mode:o}, ")
    parts.append(f"nlink={nlink}, ")
    user = _user(uid) if resolve else None
    parts.append(f'uid="{user}", ' if user is not None else f"uid={uid}, ")
    group = _group(gid) if resolve else None
    parts.append(f'gid="{group}", ' if group is not None else f"gid={gid}, ")
    parts.append(f"rdev={rdev}, ")
    for k, label in enumerate(_TIMES):
        sec, nsec = v[7 + 2 * k], v[8 + 2 * k]
        parts.append(f"{label}={_time_text(sec, resolve)}")
        parts.append(f".{nsec:09d}, " if nsec else ", ")
    size, blocks, blksize, flags = v[15:19]
    # blksize is a signed 32-bit blksize_t printed with %ju after widening.
    parts.append(f"size={size}, blksize={blksize & _U64}, blocks={blocks}, flags={flags:#x} }}")
    return "".join(parts)


# -- sockaddr ----------------------------------------------------------------


def _sockaddr_body(family: int, sa: bytes) -> str:
    """The address after the family name; `sa` holds exactly sa_len bytes."""
    if family == AF_INET:
        if len(sa) < 16:
            return "invalid"
        port, addr = _SIN.unpack_from(sa, 2)
        return f"{socket.inet_ntop(socket.AF_INET, addr)}:{port}"
    if family == AF_INET6:
        if len(sa) < 28:
            return "invalid"
        port, _flow, addr, scope = _SIN6.unpack_from(sa, 2)
        text = socket.inet_ntop(socket.AF_INET6, addr)
        # getnameinfo(NI_NUMERICHOST) appends the zone of a link-local address;
        # the trace host's interface names are unknown here, so it is numeric.
        if scope and (
            addr[0] == 0xFE and addr[1] & 0xC0 == 0x80 or addr[0] == 0xFF and addr[1] & 0x0F == 2
        ):
            text += f"%{scope}"
        return f"[{text}]:{port}"
    if family == AF_UNIX:
        return _c_text(sa[2:106])
    if family == AF_NETLINK:
        pid, groups = _SNL.unpack_from(sa.ljust(12, b"\0"), 2)
        return f"netlink[pid={pid}, groups={groups:#x}]"
    return "unknown address family"


def format_sockaddr(data: bytes) -> str:
    """kdump's ktrsockaddr: `struct sockaddr { AF_INET, 0.0.0.0:5000 }`.

    The first sa_len bytes of `data` are the address (missing bytes read as
    zero); validity against the record length is format_struct's business.
    """
    sa_len = data[0] if data else 0
    family = data[1] if len(data) > 1 else 0
    sa = data[:sa_len].ljust(sa_len, b"\0")
    name = _AF_FAMILIES.get(family)
    name = name if name is not None else f"<invalid={family}>"
    return f"struct sockaddr {{ {name}, {_sockaddr_body(family, sa)} }}"


def _sockaddr_fields(data: bytes) -> dict[str, object]:
    sa = data[: data[0]]
    family = data[1] if len(data) > 1 else 0
    out: dict[str, object] = {
        "len": data[0],
        "family": family,
        "family_name": _AF_FAMILIES.get(family),
    }
    if family == AF_INET and len(sa) >= 16:
        port, addr = _SIN.unpack_from(sa, 2)
        out.update(address=socket.inet_ntop(socket.AF_INET, addr), port=port)
    elif family == AF_INET6 and len(sa) >= 28:
        port, flow, addr, scope = _SIN6.unpack_from(sa, 2)
        out.update(
            address=socket.inet_ntop(socket.AF_INET6, addr),
            port=port,
            flowinfo=flow,
            scope_id=scope,
        )
    elif family == AF_UNIX:
        out["path"] = _c_str(sa[2:106])
    elif family == AF_NETLINK:
        pid, groups = _SNL.unpack_from(sa.ljust(12, b"\0"), 2)
        out.update(pid=pid, groups=groups)
    return out


# -- sets ----------------------------------------------------------------------


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


def _cpuset_text(data: bytes) -> str:
    cpus = _bits(data)
    if not cpus:
        return "cpuset_t [  empty ]"
    return "cpuset_t [ " + ", ".join(map(str, cpus)) + " ]"


def _linux_signal_text(signo: int) -> str:
    return linux_signal_name(signo) or f"SIG {signo}"


def _sigset_text(data: bytes) -> str:
    signals = [_linux_signal_text(bit + 1) for bit in _bits(data)]
    if not signals:
        return "l_sigset_t [ empty ]"
    return "l_sigset_t [ " + ", ".join(signals) + " ]"


# -- KTR_STRUCT ------------------------------------------------------------------


def format_struct(payload: bytes, *, word: int, resolve: bool, linux: bool) -> str:
    """The text after `STRU  ` for a KTR_STRUCT payload, without the newline."""
    nul = payload.find(b"\0")
    if nul < 0:
        return "invalid record"
    return struct_text(payload[:nul], payload[nul + 1 :], word=word, resolve=resolve, linux=linux)


def _valid_name(raw: bytes, alnum: bool) -> str | None:
    """kdump's sanity check of a structure name: letters and '_' (and digits for arrays)."""
    for ch in raw:
        if not (65 <= ch <= 90 or 97 <= ch <= 122 or ch == 95 or (alnum and 48 <= ch <= 57)):
            return None
    return raw.decode("ascii")


def struct_text(raw_name: bytes, data: bytes, *, word: int, resolve: bool, linux: bool) -> str:
    """The text after `STRU  ` for a KTR_STRUCT's name and data, without the newline."""
    name = _valid_name(raw_name, alnum=False)
    if name is None or not data:
        return "invalid record"
    n = len(data)
    if name == "caprights":
        if n != 16:
            return "invalid record"
        return "cap_rights_t " + freebsd.cap_rights_text(struct.unpack("<QQ", data))
    if name == "inotify":
        if not _INOTIFY.size <= n <= _INOTIFY.size + NAME_MAX + 1:
            return "invalid record"
        wd, mask, cookie, length = _INOTIFY.unpack_from(data)
        return (
            f"inotify {{ .wd = {wd}, .mask = {c_hex(mask)}, .cookie = {cookie}, "
            f".len = {length}, .name = {_c_text(data[_INOTIFY.size :])} }}"
        )
    if name == "itimerval":
        layout = _ITIMERVAL.get(word)
        if layout is None or n != layout.size:
            return "invalid record"
        isec, iusec, vsec, vusec = layout.unpack(data)
        return f"itimerval {{ .interval = {{{isec}, {iusec}}}, .value = {{{vsec}, {vusec}}} }}"
    if name == "stat":
        unpack = _STAT_LAYOUTS.get((word, n))
        if unpack is None:
            return "invalid record"
        return _stat_text(unpack(data), resolve)
    if name == "sockaddr":
        if n > SOCK_MAXADDRLEN or n != data[0]:
            return "invalid record"
        return format_sockaddr(data)
    if name == "cpuset_t":
        return _cpuset_text(data)
    if name == "splice":
        layout = _SPLICE.get(word)
        if layout is None or n != layout.size:
            return "invalid record"
        fd, maxlen, sec, usec = layout.unpack(data)
        return f"struct splice {{ fd={fd}, max={c_hex(maxlen & _U64)}, idle={sec}.{usec:06d} }}"
    if name == "thrparam":
        layout = _THR_PARAM.get(word)
        if layout is None or n != layout.size:
            return "invalid record"
        start, arg, stack, stack_size, tls, tls_size, child, parent, flags, rtp = layout.unpack(
            data
        )
        return (
            f"thr param {{ start={_ptr(start)} arg={_ptr(arg)} stack_base={_ptr(stack)} "
            f"stack_size={c_hex(stack_size)} tls_base={_ptr(tls)} tls_size={c_hex(tls_size)} "
            f"child_tidp={_ptr(child)} parent_tidp={_ptr(parent)} "
            f"flags={_THR_CREATE_FLAGS.mask(flags)} rtp={_ptr(rtp)} }}"
        )
    if linux and name == "l_sigset_t" and 4 <= n <= 8:
        return _sigset_text(data)
    return "unknown structure"


def struct_fields(payload: bytes, *, word: int) -> tuple[str, dict[str, object] | None]:
    """(structure name, decoded members as plain JSON values); None when not decodable."""
    nul = payload.find(b"\0")
    if nul < 0:
        return _c_str(payload), None
    return struct_fields_of(payload[:nul], payload[nul + 1 :], word=word)


def struct_fields_of(raw_name: bytes, data: bytes, *, word: int) -> tuple[str, dict[str, object] | None]:
    """(structure name, decoded members) of a KTR_STRUCT's name and data."""
    name = _valid_name(raw_name, alnum=False)
    if name is None:
        return _c_str(raw_name), None
    n = len(data)
    if not n:
        return name, None
    if name == "stat":
        unpack = _STAT_LAYOUTS.get((word, n))
        if unpack is None:
            return name, None
        v = unpack(data)
        out: dict[str, object] = dict(zip(_STAT_FIELDS, v[:7], strict=True))
        for k, label in enumerate(_TIMES):
            out[label] = {"sec": v[7 + 2 * k], "nsec": v[8 + 2 * k]}
        out.update(size=v[15], blocks=v[16], blksize=v[17], flags=v[18])
        return name, out
    if name == "sockaddr":
        if n > SOCK_MAXADDRLEN or n != data[0]:
            return name, None
        return name, _sockaddr_fields(data)
    if name == "caprights" and n == 16:
        words = struct.unpack("<QQ", data)
        return name, {"rights": list(words), "text": freebsd.cap_rights_text(words)}
    if name == "itimerval" and word in _ITIMERVAL and n == _ITIMERVAL[word].size:
        isec, iusec, vsec, vusec = _ITIMERVAL[word].unpack(data)
        return name, {
            "interval": {"sec": isec, "usec": iusec},
            "value": {"sec": vsec, "usec": vusec},
        }
    if name == "cpuset_t":
        return name, {"cpus": _bits(data)}
    if name == "l_sigset_t" and 4 <= n <= 8:
        return name, {"signals": [_linux_signal_text(b + 1) for b in _bits(data)]}
    if name == "inotify" and _INOTIFY.size <= n <= _INOTIFY.size + NAME_MAX + 1:
        wd, mask, cookie, length = _INOTIFY.unpack_from(data)
        return name, {"wd": wd, "mask": mask, "cookie": cookie, "len": length,
                      "name": _c_str(data[_INOTIFY.size :])}  # fmt: skip
    if name == "splice" and word in _SPLICE and n == _SPLICE[word].size:
        fd, maxlen, sec, usec = _SPLICE[word].unpack(data)
        return name, {"fd": fd, "max": maxlen, "idle": {"sec": sec, "usec": usec}}
    if name == "thrparam" and word in _THR_PARAM and n == _THR_PARAM[word].size:
        keys = ("start_func", "arg", "stack_base", "stack_size", "tls_base", "tls_size",
                "child_tid", "parent_tid", "flags", "rtp")  # fmt: skip
        return name, dict(zip(keys, _THR_PARAM[word].unpack(data), strict=True))
    return name, None


# -- KTR_STRUCT_ARRAY --------------------------------------------------------------


def _kevent_fflags(filt: int, fflags: int, decimal: bool) -> str:
    """sysdecode_kevent_fflags: names per filter, undecoded bits as `|%#x`."""
    if not fflags:
        return "0"
    table = _NOTE_FFILTER.get(filt)
    if table is not None:
        names, rem = table.names(fflags)
        if not names:
            return c_hex(rem)
        return names + (f"|{rem:#x}" if rem else "")
    if filt == EVFILT_USER:
        ctrl = fflags & NOTE_FFCTRLMASK
        data = fflags & NOTE_FFLAGSMASK
        prefix = ""
        if fflags & NOTE_TRIGGER:
            if fflags == NOTE_TRIGGER:
                return "NOTE_TRIGGER"
            prefix = "NOTE_TRIGGER|"
        if ctrl or fflags & NOTE_TRIGGER:
            return f"{prefix}{_NOTE_USER_CTRL[ctrl]}|{c_hex(data)}"
        return prefix + (str(data) if decimal else f"0x{data:x}")
    signed = fflags - 0x100000000 if fflags & 0x80000000 else fflags
    return str(signed) if decimal else f"0x{fflags:x}"


def _kevent_text(
    ident: int, filt: int, flags: int, fflags: int, data: int, udata: int, decimal: bool
) -> str:
    if filt in _IDENT_IS_NUMBER:
        ident_text = str(ident)
    elif filt == EVFILT_SIGNAL:
        signo = ident & 0xFFFFFFFF  # print_signal takes an int
        ident_text = _freebsd_signal(signo - (1 << 32) if signo & 0x80000000 else signo)
    else:
        ident_text = _ptr(ident)
    name = _EVFILT_NAMES.get(filt)
    if name is None:
        name = f"<invalid={filt}>" if decimal else f"<invalid={filt & 0xFFFFFFFF:#x}>"
    return (
        f"{{ ident={ident_text}, filter={name}, flags={_EV_FLAGS.mask0(flags)}, "
        f"fflags={_kevent_fflags(filt, fflags, decimal)}, data={c_hex(data & _U64)}, "
        f"udata={_ptr(udata)} }}"
    )


def _element(name: str, word: int, size: int, item: bytes, decimal: bool) -> str | None:
    """One array element's text; None for an unknown name; '' for a size mismatch."""
    if name == "pollfd":
        if size != _POLLFD.size:
            return ""
        fd, events, revents = _POLLFD.unpack(item)
        return f"{{ fd={fd}, events={_POLL_EVENTS.mask0(events)}, revents={_POLL_EVENTS.mask0(revents)}}}"
    layout = _KEVENT_LAYOUTS.get((name, word))
    if layout is None:
        return None
    if size != layout.size:
        return ""
    if name == "kevent32":
        ident, filt, flags, fflags, lo, hi, udata = layout.unpack(item)
        data = lo | hi << 32
    else:
        ident, filt, flags, fflags, data, udata = layout.unpack(item)
    return _kevent_text(ident, filt, flags, fflags, data, udata, decimal)


def format_struct_array(payload: bytes, *, word: int, decimal: bool) -> str:
    """The text after `STRU  ` for a KTR_STRUCT_ARRAY payload, without the newline."""
    if len(payload) < word:
        return "invalid record"
    size = int.from_bytes(payload[:word], "little")
    rest = payload[word:]
    nul = rest.find(b"\0")
    if nul < 0:
        return "invalid record"
    return struct_array_text(size, rest[:nul], rest[nul + 1 :], word=word, decimal=decimal)


def struct_array_text(size: int, raw_name: bytes, data: bytes, *, word: int, decimal: bool) -> str:
    """The text after `STRU  ` for a KTR_STRUCT_ARRAY's element size, name and data."""
    name = _valid_name(raw_name, alnum=True)
    if name is None:
        return "invalid record"
    parts = [f"struct {name}[] = {{ "]
    offset = 0
    while len(data) - offset >= size:
        if offset:
            parts.append("\n             ")
        text = _element(name, word, size, data[offset : offset + size], decimal)
        if text is None:
            return "".join(parts) + "<unknown structure> }"
        if not text:
            return "".join(parts) + "<bad size> }"
        parts.append(text)
        offset += size
    return "".join(parts) + " }"

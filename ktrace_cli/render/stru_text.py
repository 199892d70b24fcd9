"""kdump's STRU text (KTR_STRUCT, KTR_STRUCT_ARRAY), built from the fields of decode/stru.py.

One text function per structure of the registry, each over the fields the
JSON prints, so that the two outputs cannot disagree on a member.  Tables
of names follow FreeBSD's headers in header order (libsysdecode's lookup
returns the first name of a value); their sources are named beside them.
"""

from __future__ import annotations

import grp
import pwd
import socket
import time
from collections.abc import Callable
from typing import Any

from ktrace_cli.abi import freebsd, sysdecode
from ktrace_cli.abi.sysdecode import NameTable
from ktrace_cli.decode import stru
from ktrace_cli.decode.cfmt import c_hex, c_ptr, signal_text
from ktrace_cli.decode.kdump_args import table_mask, table_mask0

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF


def _latin1(text: str) -> str:
    """A C string member for kdump text: the recorded bytes, one latin-1 character per byte.

    Text lines are latin-1 `str` that encode back to the recorded bytes; the
    fields hold the bytes losslessly (surrogate escapes), so this is exact.
    """
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


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


def _times(f: dict[str, Any], resolve: bool) -> str:
    parts = []
    for label in stru.STAT_TIMES:
        t = f[label]
        sec, nsec = t["sec"], t["nsec"]
        text = _time_text(sec, resolve) if resolve else sec
        parts.append(f"{label}={text}.{nsec:09d}, " if nsec else f"{label}={text}, ")
    return "".join(parts)


def _stat(f: dict[str, Any], resolve: bool) -> str:
    mode, uid, gid = f["mode"], f["uid"], f["gid"]
    if resolve:
        user, group = _user(uid), _group(gid)
        mode_text = strmode(mode)
        uid_text = f'"{user}"' if user is not None else str(uid)
        gid_text = f'"{group}"' if group is not None else str(gid)
    else:
        mode_text, uid_text, gid_text = f"0{mode:o}", str(uid), str(gid)
    # blksize is a signed 32-bit blksize_t printed with %ju after widening.
    return (
        f"struct stat {{dev={f['dev']}, ino={f['ino']}, mode={mode_text}, nlink={f['nlink']}, "
        f"uid={uid_text}, gid={gid_text}, rdev={f['rdev']}, {_times(f, resolve)}"
        f"size={f['size']}, blksize={f['blksize'] & _U64}, blocks={f['blocks']}, flags={f['flags']:#x} }}"
    )


# -- sockaddr ----------------------------------------------------------------


def _sockaddr_body(f: dict[str, Any]) -> str:
    """The address after the family name."""
    family = f["family"]
    if family == stru.AF_INET:
        return f"{f['address']}:{f['port']}" if "address" in f else "invalid"
    if family == stru.AF_INET6:
        if "address" not in f:
            return "invalid"
        text, scope = f["address"], f["scope_id"]
        addr = socket.inet_pton(socket.AF_INET6, text)
        # getnameinfo(NI_NUMERICHOST) appends the zone of a link-local address;
        # the trace host's interface names are unknown here, so it is numeric.
        if scope and (addr[0] == 0xFE and addr[1] & 0xC0 == 0x80 or addr[0] == 0xFF and addr[1] & 0x0F == 2):
            text += f"%{scope}"
        return f"[{text}]:{f['port']}"
    if family == stru.AF_UNIX:
        return _latin1(f["path"])
    if family == stru.AF_NETLINK:
        return f"netlink[pid={f['pid']}, groups={f['groups']:#x}]"
    return "unknown address family"


def _sockaddr(f: dict[str, Any], resolve: bool) -> str:
    name = f["family_name"]
    name = name if name is not None else f"<invalid={f['family']}>"
    return f"struct sockaddr {{ {name}, {_sockaddr_body(f)} }}"


def format_sockaddr(data: bytes) -> str:
    """kdump's ktrsockaddr: `struct sockaddr { AF_INET, 0.0.0.0:5000 }`.

    The first sa_len bytes of `data` are the address (missing bytes read as
    zero); validity against the record length is struct_text's business.
    """
    return _sockaddr(stru.sockaddr_fields(data), False)


# -- the others ----------------------------------------------------------------------

def _thrparam(f: dict[str, Any], resolve: bool) -> str:
    return (
        f"thr param {{ start={c_ptr(f['start_func'])} arg={c_ptr(f['arg'])} stack_base={c_ptr(f['stack_base'])} "
        f"stack_size={c_hex(f['stack_size'])} tls_base={c_ptr(f['tls_base'])} tls_size={c_hex(f['tls_size'])} "
        f"child_tidp={c_ptr(f['child_tid'])} parent_tidp={c_ptr(f['parent_tid'])} "
        f"flags={table_mask(sysdecode.table('thrcreateflags'), f['flags'])} rtp={c_ptr(f['rtp'])} }}"
    )


def _cpuset(f: dict[str, Any], resolve: bool) -> str:
    cpus = f["cpus"]
    return "cpuset_t [ " + ", ".join(map(str, cpus)) + " ]" if cpus else "cpuset_t [  empty ]"


def _sigset(f: dict[str, Any], resolve: bool) -> str:
    signals = f["signals"]
    return "l_sigset_t [ " + ", ".join(signals) + " ]" if signals else "l_sigset_t [ empty ]"


def _itimerval(f: dict[str, Any], resolve: bool) -> str:
    i, v = f["interval"], f["value"]
    return f"itimerval {{ .interval = {{{i['sec']}, {i['usec']}}}, .value = {{{v['sec']}, {v['usec']}}} }}"


def _inotify(f: dict[str, Any], resolve: bool) -> str:
    return (
        f"inotify {{ .wd = {f['wd']}, .mask = {c_hex(f['mask'])}, .cookie = {f['cookie']}, "
        f".len = {f['len']}, .name = {_latin1(f['name'])} }}"
    )


def _splice(f: dict[str, Any], resolve: bool) -> str:
    idle = f["idle"]
    return f"struct splice {{ fd={f['fd']}, max={c_hex(f['max'] & _U64)}, idle={idle['sec']}.{idle['usec']:06d} }}"


def _caprights(f: dict[str, Any], resolve: bool) -> str:
    return "cap_rights_t " + f["text"]


# Structure name -> its text from its fields; every name of decode/stru.STRUCTS has one.
TEXT: dict[str, Callable[[dict[str, Any], bool], str]] = {
    "stat": _stat,
    "sockaddr": _sockaddr,
    "caprights": _caprights,
    "itimerval": _itimerval,
    "cpuset_t": _cpuset,
    "l_sigset_t": _sigset,
    "inotify": _inotify,
    "splice": _splice,
    "thrparam": _thrparam,
    "fdpair": lambda f, resolve: stru.UNKNOWN.value,  # ours: as kdump prints a name it does not know
}
assert TEXT.keys() == stru.STRUCTS.keys()


def struct_text(raw_name: bytes, data: bytes, *, word: int, resolve: bool, linux: bool) -> str:
    """The text after `STRU  ` for a KTR_STRUCT's name and data, without the newline."""
    name, fields = stru.decode_struct(raw_name, data, word)
    if isinstance(fields, dict):
        if name == "l_sigset_t" and not linux:
            return stru.UNKNOWN.value  # only a kdump built with Linux support knows it
        return TEXT[name](fields, resolve)
    return fields.value


def format_struct(payload: bytes, *, word: int, resolve: bool, linux: bool) -> str:
    """The text after `STRU  ` for a KTR_STRUCT payload, without the newline."""
    nul = payload.find(b"\0")
    if nul < 0:
        return stru.INVALID.value
    return struct_text(payload[:nul], payload[nul + 1 :], word=word, resolve=resolve, linux=linux)


# -- KTR_STRUCT_ARRAY --------------------------------------------------------------
# sys/sys/event.h: filters, EV_ flags (minus EV_SYSFLAGS, EV_DROP, EV_FLAG1/2
# as libsysdecode's mktables excludes them) and the per-filter NOTE_ tables
# libsysdecode's flags.c lists.

EVFILT_READ, EVFILT_WRITE, EVFILT_VNODE, EVFILT_PROC, EVFILT_SIGNAL = -1, -2, -4, -5, -6
EVFILT_TIMER, EVFILT_PROCDESC, EVFILT_USER, EVFILT_EMPTY = -7, -8, -11, -13
_EVFILT_NAMES = NameTable(
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
_EV_FLAGS = NameTable(
    (
        (0x0001, "EV_ADD"), (0x0002, "EV_DELETE"), (0x0004, "EV_ENABLE"), (0x0008, "EV_DISABLE"),
        (0x0100, "EV_FORCEONESHOT"), (0x0200, "EV_KEEPUDATA"), (0x0010, "EV_ONESHOT"),
        (0x0020, "EV_CLEAR"), (0x0040, "EV_RECEIPT"), (0x0080, "EV_DISPATCH"),
        (0x8000, "EV_EOF"), (0x4000, "EV_ERROR"),
    )
)  # fmt: skip
_NOTE_RDWR = NameTable(((0x0001, "NOTE_LOWAT"), (0x0002, "NOTE_FILE_POLL")))
_NOTE_VNODE = NameTable(
    (
        (0x0001, "NOTE_DELETE"), (0x0002, "NOTE_WRITE"), (0x0004, "NOTE_EXTEND"),
        (0x0008, "NOTE_ATTRIB"), (0x0010, "NOTE_LINK"), (0x0020, "NOTE_RENAME"),
        (0x0040, "NOTE_REVOKE"), (0x0080, "NOTE_OPEN"), (0x0100, "NOTE_CLOSE"),
        (0x0200, "NOTE_CLOSE_WRITE"), (0x0400, "NOTE_READ"),
    )
)  # fmt: skip
_NOTE_PROC = NameTable(
    (
        (0x80000000, "NOTE_EXIT"), (0x40000000, "NOTE_FORK"), (0x20000000, "NOTE_EXEC"),
        (0x00000001, "NOTE_TRACK"), (0x00000002, "NOTE_TRACKERR"), (0x00000004, "NOTE_CHILD"),
    )
)  # fmt: skip
_NOTE_TIMER = NameTable(
    (
        (0x01, "NOTE_SECONDS"), (0x02, "NOTE_MSECONDS"), (0x04, "NOTE_USECONDS"),
        (0x08, "NOTE_NSECONDS"), (0x10, "NOTE_ABSTIME"),
    )
)  # fmt: skip
_NOTE_FFILTER = {
    EVFILT_READ: _NOTE_RDWR, EVFILT_WRITE: _NOTE_RDWR, EVFILT_VNODE: _NOTE_VNODE,
    EVFILT_PROC: _NOTE_PROC, EVFILT_PROCDESC: _NOTE_PROC, EVFILT_TIMER: _NOTE_TIMER,
}  # fmt: skip
_NOTE_USER_CTRL = {0: "NOTE_FFNOP", 0x40000000: "NOTE_FFAND", 0x80000000: "NOTE_FFOR", 0xC0000000: "NOTE_FFCOPY"}
NOTE_FFCTRLMASK, NOTE_FFLAGSMASK, NOTE_TRIGGER = 0xC0000000, 0x00FFFFFF, 0x01000000

# sys/sys/poll.h, header order (POLLWRNORM aliases POLLOUT and never prints).
_POLL_EVENTS = NameTable(
    (
        (0x0001, "POLLIN"), (0x0002, "POLLPRI"), (0x0004, "POLLOUT"), (0x0040, "POLLRDNORM"),
        (0x0004, "POLLWRNORM"), (0x0080, "POLLRDBAND"), (0x0100, "POLLWRBAND"),
        (0x2000, "POLLINIGNEOF"), (0x4000, "POLLRDHUP"), (0x0008, "POLLERR"),
        (0x0010, "POLLHUP"), (0x0020, "POLLNVAL"),
    )
)  # fmt: skip


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


def _kevent(f: dict[str, Any], decimal: bool) -> str:
    ident, filt = f["ident"], f["filter"]
    if filt in _IDENT_IS_NUMBER:
        ident_text = str(ident)
    elif filt == EVFILT_SIGNAL:
        signo = ident & _U32  # print_signal takes an int
        signo = signo - (1 << 32) if signo & 0x80000000 else signo
        ident_text = signal_text(freebsd.signal_name(signo), signo)
    else:
        ident_text = c_ptr(ident)
    name = _EVFILT_NAMES.lookup(filt)
    if name is None:
        name = f"<invalid={filt}>" if decimal else f"<invalid={filt & _U32:#x}>"
    return (
        f"{{ ident={ident_text}, filter={name}, flags={table_mask0(_EV_FLAGS, f['flags'])}, "
        f"fflags={_kevent_fflags(filt, f['fflags'], decimal)}, data={c_hex(f['data'] & _U64)}, "
        f"udata={c_ptr(f['udata'])} }}"
    )


def _pollfd(f: dict[str, Any], decimal: bool) -> str:
    events, revents = table_mask0(_POLL_EVENTS, f["events"]), table_mask0(_POLL_EVENTS, f["revents"])
    return f"{{ fd={f['fd']}, events={events}, revents={revents}}}"


_ELEMENT_TEXT = {"pollfd": _pollfd, "kevent": _kevent}


def struct_array_text(size: int, raw_name: bytes, data: bytes, *, word: int, decimal: bool) -> str:
    """The text after `STRU  ` for a KTR_STRUCT_ARRAY's element size, name and data."""
    name = stru.valid_name(raw_name, alnum=True)
    if name is None:
        return stru.INVALID.value
    parts = [f"struct {name}[] = {{ "]
    kind = stru.element_layout(name, word)
    offset = 0
    while len(data) - offset >= size:
        if offset:
            parts.append("\n             ")
        if kind is None:
            return "".join(parts) + "<unknown structure> }"
        if size != kind[1].size:
            return "".join(parts) + "<bad size> }"
        fields = stru.element_fields(name, kind[1], data[offset : offset + size])
        parts.append(_ELEMENT_TEXT[kind[0]](fields, decimal))
        offset += size
    return "".join(parts) + " }"


def format_struct_array(payload: bytes, *, word: int, decimal: bool) -> str:
    """The text after `STRU  ` for a KTR_STRUCT_ARRAY payload, without the newline."""
    if len(payload) < word:
        return stru.INVALID.value
    size = int.from_bytes(payload[:word], "little")
    rest = payload[word:]
    nul = rest.find(b"\0")
    if nul < 0:
        return stru.INVALID.value
    return struct_array_text(size, rest[:nul], rest[nul + 1 :], word=word, decimal=decimal)

"""STRU text for KTR_STRUCT and KTR_STRUCT_ARRAY payloads, against the spec and real files."""

from __future__ import annotations

import os
import pwd
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrace_cli.abi import freebsd
from ktrace_cli.decode.structs import (
    format_sockaddr,
    format_struct,
    format_struct_array,
    strmode,
    struct_fields,
)
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, I386
from ktrace_cli.format.records import Struct, StructArray

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"


def stru(
    name: bytes, data: bytes, *, word: int = 8, resolve: bool = False, linux: bool = True
) -> str:
    payload = Struct(name, data).pack(AMD64 if word == 8 else I386)
    return format_struct(payload, word=word, resolve=resolve, linux=linux)


def amd64_stat(**f: int) -> bytes:
    """A 224-byte FreeBSD amd64 struct stat built from the offsets in docs/FORMAT.md, STRU records."""
    b = bytearray(224)
    struct.pack_into("<QQQ", b, 0, f.get("dev", 0), f.get("ino", 0), f.get("nlink", 0))
    struct.pack_into("<H2xII", b, 24, f.get("mode", 0), f.get("uid", 0), f.get("gid", 0))
    struct.pack_into("<Q", b, 40, f.get("rdev", 0))
    for offset, key in ((48, "atime"), (64, "mtime"), (80, "ctime"), (96, "birthtime")):
        struct.pack_into("<qq", b, offset, f.get(key, 0), f.get(key + "_ns", 0))
    struct.pack_into(
        "<qqiI",
        b,
        112,
        f.get("size", 0),
        f.get("blocks", 0),
        f.get("blksize", 0),
        f.get("flags", 0),
    )
    return bytes(b)


SPEC_STAT = dict(
    dev=16777305, ino=2, mode=0o40755, nlink=20, uid=0, gid=0, rdev=0,
    atime=1700000000, atime_ns=123456789, mtime=1700000000, ctime=1700000000,
    birthtime=1690000000, size=26, blksize=4096, blocks=8, flags=0,
)  # fmt: skip


def test_stat_spec_example() -> None:
    # The STRU line of kdump's stat text (docs/FORMAT.md, STRU text).
    assert stru(b"stat", amd64_stat(**SPEC_STAT)) == (
        "struct stat {dev=16777305, ino=2, mode=040755, nlink=20, uid=0, gid=0, rdev=0, "
        "atime=1700000000.123456789, mtime=1700000000, ctime=1700000000, "
        "birthtime=1690000000, size=26, blksize=4096, blocks=8, flags=0x0 }"
    )


@pytest.fixture
def utc() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_stat_resolved(utc: None) -> None:
    # uid/gid 4000000000 have no names, so they stay numeric; uid 0 always has one.
    fields = dict(SPEC_STAT, uid=4000000000, gid=4000000000, mode=0o100644, flags=0x20000)
    assert stru(b"stat", amd64_stat(**fields), resolve=True) == (
        "struct stat {dev=16777305, ino=2, mode=-rw-r--r-- , nlink=20, uid=4000000000, "
        'gid=4000000000, rdev=0, atime="Nov 14 22:13:20 2023".123456789, '
        'mtime="Nov 14 22:13:20 2023", ctime="Nov 14 22:13:20 2023", '
        'birthtime="Jul 22 04:26:40 2023", size=26, blksize=4096, blocks=8, flags=0x20000 }'
    )
    root = pwd.getpwuid(0).pw_name
    assert f'uid="{root}", ' in stru(b"stat", amd64_stat(**SPEC_STAT), resolve=True)


@pytest.mark.parametrize(
    ("mode", "text"),
    [
        (0o100644, "-rw-r--r-- "),
        (0o40755, "drwxr-xr-x "),
        (0o104755, "-rwsr-xr-x "),
        (0o102644, "-rw-r-Sr-- "),
        (0o41777, "drwxrwxrwt "),
        (0o41776, "drwxrwxrwT "),
        (0o120777, "lrwxrwxrwx "),
        (0o20620, "crw--w---- "),
        (0o140755, "srwxr-xr-x "),
        (0o10600, "prw------- "),
        (0o60640, "brw-r----- "),
        (0o160000, "w--------- "),
        (0o170000, "?--------- "),
    ],
)
def test_strmode(mode: int, text: str) -> None:
    assert strmode(mode) == text


def test_stat_sizes() -> None:
    assert stru(b"stat", amd64_stat()[:223]) == "invalid record"
    # The 224-byte amd64 layout is not an i386 one, and vice versa.
    assert stru(b"stat", amd64_stat(), word=4) == "invalid record"
    assert stru(b"stat", bytes(96), word=8) == "invalid record"
    assert stru(b"stat", bytes(96), word=4).startswith("struct stat {dev=0, ino=0, mode=00,")


def test_stat_freebsd11_amd64_layout() -> None:
    # struct freebsd11_stat (sys/sys/stat.h): u32 dev, ino; u16 mode, nlink;
    # u32 uid, gid, rdev; 3 timespecs; size, blocks; blksize, flags, gen,
    # lspare; birthtime.
    data = struct.pack(
        "<IIHHIII qq qq qq qqIIIi qq",
        75, 160512, 0o40755, 23, 0, 0, 325616,
        1445188301, 5, 1446830197, 0, 1446830197, 0,
        2048, 8, 32768, 0, 0, 0,
        1415739822, 0,
    )  # fmt: skip
    assert stru(b"stat", data) == (
        "struct stat {dev=75, ino=160512, mode=040755, nlink=23, uid=0, gid=0, rdev=325616, "
        "atime=1445188301.000000005, mtime=1446830197, ctime=1446830197, birthtime=1415739822, "
        "size=2048, blksize=32768, blocks=8, flags=0x0 }"
    )


def test_sockaddr_inet() -> None:
    sin = bytes([16, 2]) + struct.pack("!H4s", 5000, bytes(4)) + bytes(8)
    # kdump's CAP SOCKADDR example renders this sockaddr (docs/FORMAT.md, CAP text).
    assert format_sockaddr(sin) == "struct sockaddr { AF_INET, 0.0.0.0:5000 }"
    assert stru(b"sockaddr", sin) == "struct sockaddr { AF_INET, 0.0.0.0:5000 }"
    loop = bytes([16, 2]) + struct.pack("!H4s", 80, bytes([127, 0, 0, 1])) + bytes(8)
    assert stru(b"sockaddr", loop) == "struct sockaddr { AF_INET, 127.0.0.1:80 }"
    # A sin_len below sizeof(struct sockaddr_in) is reported, not decoded.
    assert (
        stru(b"sockaddr", bytes([8, 2, 0, 80, 127, 0, 0, 1]))
        == "struct sockaddr { AF_INET, invalid }"
    )


def test_sockaddr_other_families() -> None:
    sin6 = bytes([28, 28]) + struct.pack("!HI16sI", 443, 0, bytes(15) + b"\1", 0)
    assert stru(b"sockaddr", sin6) == "struct sockaddr { AF_INET6, [::1]:443 }"
    mapped = bytes([28, 28]) + struct.pack("!HI16sI", 1, 0, bytes(10) + b"\xff\xff\x0a\0\0\1", 0)
    assert stru(b"sockaddr", mapped) == "struct sockaddr { AF_INET6, [::ffff:10.0.0.1]:1 }"
    link = bytes([28, 28]) + struct.pack("!HI16sI", 1, 0, b"\xfe\x80" + bytes(13) + b"\1", 2)
    assert stru(b"sockaddr", link) == "struct sockaddr { AF_INET6, [fe80::1%2]:1 }"
    path = b"/var/run/log"
    sun = bytes([2 + len(path) + 1, 1]) + path + b"\0"
    # AF_LOCAL precedes AF_UNIX in sys/sys/socket.h, so kdump names family 1 so.
    assert stru(b"sockaddr", sun) == "struct sockaddr { AF_LOCAL, /var/run/log }"
    nl = bytes([12, 38, 0, 0]) + struct.pack("<II", 4242, 0x11)
    assert stru(b"sockaddr", nl) == "struct sockaddr { AF_NETLINK, netlink[pid=4242, groups=0x11] }"
    assert (
        stru(b"sockaddr", bytes([4, 18, 0, 0]))
        == "struct sockaddr { AF_LINK, unknown address family }"
    )
    assert (
        stru(b"sockaddr", bytes([4, 250, 0, 0]))
        == "struct sockaddr { <invalid=250>, unknown address family }"
    )


def test_sockaddr_validity() -> None:
    # sa_len must equal the data length, which must fit a sockaddr_storage.
    assert stru(b"sockaddr", bytes([15, 2]) + bytes(14)) == "invalid record"
    assert stru(b"sockaddr", bytes([129 & 0xFF, 1]) + bytes(127)) == "invalid record"


def test_name_rules() -> None:
    assert format_struct(b"stat", word=8, resolve=False, linux=True) == "invalid record"
    assert format_struct(b"stat\0", word=8, resolve=False, linux=True) == "invalid record"
    assert stru(b"stat2", amd64_stat()) == "invalid record"
    assert stru(b"st-at", b"x") == "invalid record"
    assert stru(b"mystery_thing", b"x") == "unknown structure"
    assert stru(b"", b"x") == "unknown structure"


def test_caprights_itimerval_splice_thrparam_inotify() -> None:
    words = freebsd.cap_rights_words("CAP_READ")
    assert stru(b"caprights", struct.pack("<QQ", *words)) == "cap_rights_t CAP_READ"
    assert stru(b"caprights", bytes(15)) == "invalid record"
    it = struct.pack("<4q", 1, 500000, 0, 250000)
    assert stru(b"itimerval", it) == "itimerval { .interval = {1, 500000}, .value = {0, 250000} }"
    assert stru(b"itimerval", struct.pack("<4i", 2, 0, -1, 7), word=4) == (
        "itimerval { .interval = {2, 0}, .value = {-1, 7} }"
    )
    assert stru(b"itimerval", it, word=4) == "invalid record"
    splice = struct.pack("<i4xqqq", 7, 4096, 3, 5)
    assert stru(b"splice", splice) == "struct splice { fd=7, max=0x1000, idle=3.000005 }"
    tp = struct.pack("<8Qi4xQ24x", 0x401000, 0, 0x7FFF0000, 0x10000, 0, 0, 0x6000, 0x6008, 0, 0)
    assert stru(b"thrparam", tp) == (
        "thr param { start=0x401000 arg=0x0 stack_base=0x7fff0000 stack_size=0x10000 "
        "tls_base=0x0 tls_size=0 child_tidp=0x6000 parent_tidp=0x6008 flags=0<><invalid>0 rtp=0x0 }"
    )
    tp1 = struct.pack("<8Qi4xQ24x", 1, 2, 3, 4, 5, 6, 7, 8, 1, 9)
    assert "flags=0x1<THR_SUSPENDED> rtp=0x9 }" in stru(b"thrparam", tp1)
    ino = struct.pack("<iIII", 1, 0x100, 0, 16) + b"file.txt".ljust(16, b"\0")
    assert stru(b"inotify", ino) == (
        "inotify { .wd = 1, .mask = 0x100, .cookie = 0, .len = 16, .name = file.txt }"
    )
    assert stru(b"inotify", bytes(15)) == "invalid record"


def test_cpuset_and_linux_sigset() -> None:
    assert stru(b"cpuset_t", bytes(16)) == "cpuset_t [  empty ]"
    assert stru(b"cpuset_t", bytes([0b1011]) + bytes(7)) == "cpuset_t [ 0, 1, 3 ]"
    assert stru(b"cpuset_t", bytes(8) + b"\1") == "cpuset_t [ 64 ]"
    # Linux signal n is bit n-1: SIGINT 2, SIGTERM 15.
    mask = (1 << 1) | (1 << 14)
    assert stru(b"l_sigset_t", struct.pack("<Q", mask)) == "l_sigset_t [ SIGINT, SIGTERM ]"
    assert stru(b"l_sigset_t", bytes(8)) == "l_sigset_t [ empty ]"
    assert stru(b"l_sigset_t", bytes(4)) == "l_sigset_t [ empty ]"
    assert stru(b"l_sigset_t", bytes(9)) == "unknown structure"
    assert stru(b"l_sigset_t", bytes(8), linux=False) == "unknown structure"


def stru_array(name: bytes, size: int, data: bytes, *, decimal: bool = False) -> str:
    payload = StructArray(size, name, data).pack(AMD64)
    return format_struct_array(payload, word=8, decimal=decimal)


def kevent(ident: int, filt: int, flags: int, fflags: int, data: int, udata: int) -> bytes:
    return struct.pack("<QhHIqQ32x", ident, filt, flags, fflags, data, udata)


def test_kevent_array() -> None:
    items = kevent(3, -1, 0x5, 0, 0, 0) + kevent(15, -6, 0x1, 0, 2, 0x1234)
    assert stru_array(b"kevent", 64, items) == (
        "struct kevent[] = { { ident=3, filter=EVFILT_READ, flags=0x5<EV_ADD|EV_ENABLE>, "
        "fflags=0, data=0, udata=0x0 }\n"
        "             { ident=SIGTERM, filter=EVFILT_SIGNAL, flags=0x1<EV_ADD>, "
        "fflags=0, data=0x2, udata=0x1234 } }"
    )


@pytest.mark.parametrize(
    ("filt", "fflags", "decimal", "text"),
    [
        (-4, 0x3, False, "NOTE_DELETE|NOTE_WRITE"),
        (-4, 0x10003, False, "NOTE_DELETE|NOTE_WRITE|0x10000"),
        (-4, 0x10000, False, "0x10000"),
        (-5, 0x80000000, False, "NOTE_EXIT"),
        (-7, 0x12, False, "NOTE_MSECONDS|NOTE_ABSTIME"),
        (-11, 0x01000000, False, "NOTE_TRIGGER"),
        (-11, 0x80000005, False, "NOTE_FFOR|0x5"),
        (-11, 0x01000000 | 0x40000001, False, "NOTE_TRIGGER|NOTE_FFAND|0x1"),
        (-11, 5, False, "0x5"),
        (-11, 5, True, "5"),
        (-3, 9, False, "0x9"),
        (-3, 9, True, "9"),
    ],
)
def test_kevent_fflags(filt: int, fflags: int, decimal: bool, text: str) -> None:
    out = stru_array(b"kevent", 64, kevent(1, filt, 0, fflags, 0, 0), decimal=decimal)
    assert f"fflags={text}, " in out


def test_kevent_ident_and_filter_forms() -> None:
    assert "ident=0x10, filter=EVFILT_USER" in stru_array(
        b"kevent", 64, kevent(16, -11, 0, 0, 0, 0)
    )
    out = stru_array(b"kevent", 64, kevent(1, -99, 0, 0, 0, 0))
    assert "filter=<invalid=0xffffff9d>, flags=0" in out
    out = stru_array(b"kevent", 64, kevent(1, -99, 0, 0, 0, 0), decimal=True)
    assert "filter=<invalid=-99>" in out
    old = struct.pack("<QhHIqQ", 4, -2, 0x8000, 0, 512, 0)
    assert stru_array(b"freebsd11_kevent", 32, old) == (
        "struct freebsd11_kevent[] = { { ident=4, filter=EVFILT_WRITE, flags=0x8000<EV_EOF>, "
        "fflags=0, data=0x200, udata=0x0 } }"
    )
    k32 = struct.pack("<IhHIIII32x", 5, -1, 0x4000, 0, 0x10, 0x1, 0x20)
    assert "data=0x100000010, udata=0x20 }" in stru_array(b"kevent32", 56, k32)


def test_pollfd_and_array_errors() -> None:
    pfds = struct.pack("<ihh", 3, 0x1, 0) + struct.pack("<ihh", 4, 0x4, 0x14)
    assert stru_array(b"pollfd", 8, pfds) == (
        "struct pollfd[] = { { fd=3, events=0x1<POLLIN>, revents=0}\n"
        "             { fd=4, events=0x4<POLLOUT>, revents=0x14<POLLOUT|POLLHUP>} }"
    )
    assert stru_array(b"pollfd", 16, bytes(16)) == "struct pollfd[] = { <bad size> }"
    assert stru_array(b"widget", 4, bytes(8)) == "struct widget[] = { <unknown structure> }"
    assert stru_array(b"kevent", 64, b"") == "struct kevent[] = {  }"
    assert stru_array(b"ke-vent", 64, bytes(64)) == "invalid record"
    assert (
        format_struct_array(struct.pack("<Q", 8) + b"pollfd", word=8, decimal=False)
        == "invalid record"
    )


def test_struct_fields() -> None:
    payload = Struct(b"stat", amd64_stat(**SPEC_STAT)).pack(AMD64)
    name, fields = struct_fields(payload, word=8)
    assert name == "stat"
    assert fields is not None
    assert fields["mode"] == 0o40755 and fields["nlink"] == 20
    assert fields["atime"] == {"sec": 1700000000, "nsec": 123456789}
    sin = Struct(b"sockaddr", bytes([16, 2]) + struct.pack("!H4s", 5000, bytes(4)) + bytes(8))
    assert struct_fields(sin.pack(AMD64), word=8) == (
        "sockaddr",
        {"len": 16, "family": 2, "family_name": "AF_INET", "address": "0.0.0.0", "port": 5000},
    )
    assert struct_fields(Struct(b"mystery", b"x").pack(AMD64), word=8) == ("mystery", None)
    assert struct_fields(b"noterminator", word=8) == ("noterminator", None)


# -- real FreeBSD trace files -------------------------------------------------------


def real_structs(folder: str) -> list[bytes]:
    from ktrace_cli.format.reader import iter_records

    path = REAL / folder / "ktrace.out"
    return [r.payload for r in iter_records(str(path)) if r.type == K.KTR_STRUCT]


def test_real_i386_freebsd9_stat_and_sockaddr() -> None:
    payloads = real_structs("freebsd-i386-v0-nfsp")
    # First STRU: a 101-byte record, "stat\0" + a 96-byte i386 freebsd11_stat.
    # Verified by hand from its hex (5b000000 e3e40a00 2481 0100 ...):
    # dev 0x5b, ino 0x0ae4e3, mode 0x8124 = 0100444 (a read-only file),
    # nlink 1, uid/gid 0, rdev 0x2ba3e0 (UFS reports the first block here),
    # atime 0x50222b58 = 2012-08-08 09:03:20 UTC, the day of the trace's own
    # headers; mtime and birthtime 2011-12-02, ctime 2012-06-21; size 40140
    # with 80 512-byte blocks (= 40960, one 32 KiB block plus a fragment);
    # blksize 32768; flags 0; 8 bytes of padding end the record.
    assert len(payloads[0]) == 101
    assert format_struct(payloads[0], word=4, resolve=False, linux=False) == (
        "struct stat {dev=91, ino=713955, mode=0100444, nlink=1, uid=0, gid=0, rdev=2860000, "
        "atime=1344416600, mtime=1322870370, ctime=1340305313, birthtime=1322870370, "
        "size=40140, blksize=32768, blocks=80, flags=0x0 }"
    )
    sockaddrs = [p for p in payloads if p.startswith(b"sockaddr\0")]
    # "sockaddr\0" + 10 02 0001 02020202 + 8 zero bytes: sa_len 16, AF_INET,
    # port 1 in network order, address 2.2.2.2.
    assert sockaddrs[0].hex() == "736f636b616464720010020001020202020000000000000000"
    assert format_struct(sockaddrs[0], word=4, resolve=False, linux=False) == (
        "struct sockaddr { AF_INET, 2.2.2.2:1 }"
    )
    # 1c 1c dfb8 00000000 ::1 00000000: sa_len 28, AF_INET6, port 57272.
    six = [p for p in sockaddrs if len(p) == 37]
    assert format_struct(six[1], word=4, resolve=False, linux=False) == (
        "struct sockaddr { AF_INET6, [::1]:57272 }"
    )
    # Every STRU record of the file decodes.
    for p in payloads:
        text = format_struct(p, word=4, resolve=False, linux=False)
        assert text.startswith(("struct stat {dev=91, ", "struct sockaddr { AF_INET")), text


def test_real_amd64_freebsd10_stat() -> None:
    payloads = real_structs("freebsd-amd64-v0-denoble")
    texts = [format_struct(p, word=8, resolve=False, linux=False) for p in payloads]
    # "stat\0" + the 120-byte amd64 freebsd11_stat: /'s 23 links, 2015 dates.
    assert texts[0] == (
        "struct stat {dev=75, ino=160512, mode=040755, nlink=23, uid=0, gid=0, rdev=325616, "
        "atime=1445188301, mtime=1446830197, ctime=1446830197, birthtime=1415739822, "
        "size=2048, blksize=32768, blocks=8, flags=0x0 }"
    )
    # The terminal: a devfs character device (020620, group tty 4) whose unset
    # birth time is -1, printed raw as kdump prints any time.
    assert texts[-1] == (
        "struct stat {dev=1895890688, ino=82, mode=020620, nlink=1, uid=1001, gid=4, rdev=82, "
        "atime=1462902311, mtime=1462902311, ctime=1462902311, birthtime=-1, "
        "size=0, blksize=4096, blocks=0, flags=0x0 }"
    )
    assert all(t.startswith("struct stat {dev=") for t in texts)

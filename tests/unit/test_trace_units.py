"""Unit tests of the tracing side that need no tracee: conversions, rules, filter, records, CLI parsing."""

from __future__ import annotations

import ctypes
import os
import socket
import struct
from pathlib import Path

import pytest

from ktrace_cli.abi import linux as abi
from ktrace_cli.cli import pyktrace as cli
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, FREEBSD_STAT
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import Syscall, unpack_payload
from ktrace_cli.format.writer import ARGS, H1, SYSCALL_FIXED, TraceFile
from ktrace_cli.trace import convert, seccomp
from ktrace_cli.trace import rules as R
from ktrace_cli.trace.memory import ProcMem
from ktrace_cli.trace.rules import rules


def test_stat_conversion_keeps_every_field(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"12345")
    st = os.stat(f)
    libc_stat = ctypes.create_string_buffer(144)
    # A Linux struct stat as the kernel fills it (fstatat via the raw syscall).
    fd = os.open(f, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.syscall(5, fd, libc_stat) == 0  # fstat
    finally:
        os.close(fd)
    out = convert.stat_from_linux(libc_stat.raw)
    assert out is not None and len(out) == 224
    v = FREEBSD_STAT.unpack(out)  # dev ino nlink mode uid gid rdev, 4 timespecs, size ...
    assert v[1] == st.st_ino and v[2] == st.st_nlink
    assert v[3] == st.st_mode & 0xFFFF and v[4] == st.st_uid and v[5] == st.st_gid
    assert v[15] == 5 and v[7] == int(st.st_atime) and v[11] == int(st.st_ctime)
    assert v[13] == -1  # no birth time in Linux's struct stat
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    assert v[0] == convert.freebsd_makedev(major, minor)


def test_freebsd_makedev_matches_freebsd_layout() -> None:
    assert convert.freebsd_makedev(0, 0) == 0
    assert convert.freebsd_makedev(1, 2) == 0x102
    assert convert.freebsd_makedev(0x1234, 0x56789A) == (0x1200 << 32) | (0x34 << 8) | (
        0x7800 << 24) | 0x56009A  # fmt: skip


def test_sockaddr_conversion() -> None:
    sin = struct.pack("<H", socket.AF_INET) + bytes([0, 80, 10, 0, 0, 1]) + bytes(8)
    assert convert.sockaddr_from_linux(sin) == bytes([16, 2, 0, 80, 10, 0, 0, 1]) + bytes(8)
    sin6 = struct.pack("<H", socket.AF_INET6) + bytes(26)
    out = convert.sockaddr_from_linux(sin6)
    assert out is not None and out[:2] == bytes([28, 28]) and len(out) == 28
    sun = struct.pack("<H", socket.AF_UNIX) + b"/tmp/s\0"
    assert convert.sockaddr_from_linux(sun) == bytes([9, 1]) + b"/tmp/s\0"
    assert convert.sockaddr_from_linux(struct.pack("<H", 17) + bytes(18)) is None  # AF_PACKET


def test_errno_map_is_the_translation_of_every_errno() -> None:
    m = convert.errno_map()
    assert len(m) == convert.ERRNO_LIMIT
    assert m == [K.ERESTART if e in convert.RESTART_ERRNOS else abi.freebsd_errno_from_linux(e)
                 for e in range(convert.ERRNO_LIMIT)]  # fmt: skip
    assert m[0] == 0 and m[2] == 2 and m[11] == 35 and m[61] == 87  # ENOENT, EAGAIN, ENODATA->ENOATTR
    assert m[abi.LINUX_ERRNO_MAX + 1] == abi.LINUX_ONLY_BASE + abi.LINUX_ERRNO_MAX + 1
    assert m[512] == K.ERESTART and m[4095] == abi.LINUX_ONLY_BASE + 4095


def test_rules_derive_paths_and_filter_sets() -> None:
    r = rules()
    openat = r.by_nr[abi.syscall_number("openat")]
    assert openat is not None and openat.paths == (1,) and openat.narg == 4
    assert r.filter_syscalls(K.DEF_POINTS, False) is None  # c needs every syscall
    names = {r.name(n) for n in r.filter_syscalls(K.KTRFAC_NAMEI, False) or []}
    assert {"openat", "execve", "newfstatat", "rename", "unlinkat"} <= names
    assert "getppid" not in names and "read" not in names
    gio = {r.name(n) for n in r.filter_syscalls(K.KTRFAC_GENIO, False) or []}
    assert {"read", "write", "readv", "sendmsg", "recvmmsg"} <= gio


def test_plain_stops_send_only_what_needs_more_than_call_and_ret_off_the_fast_path() -> None:
    r = rules()

    def slow(facs: int, name: str) -> tuple[int, int]:
        entry, exit_ = r.plain_stops(facs)
        nr = abi.syscall_number(name)
        return entry[nr], exit_[nr]

    c = K.KTRFAC_SYSCALL | K.KTRFAC_SYSRET
    for name in ("getppid", "read", "write", "openat", "newfstatat", "exit_group"):
        assert slow(c, name) == (0, 0), name  # -t c: nothing but CALL and RET
    for name in ("rt_sigaction", "prctl"):
        assert slow(c, name) == (1, 1), name  # followed whatever the facilities
    assert slow(c, "seccomp") == (0, 1)  # the filter goes live at its RET
    # Its RET is EJUSTRETURN: the C loop writes it, the Python loop takes the full path.
    assert slow(c, "rt_sigreturn") == (0, R.PLAIN_JUSTRETURN)
    # The set-id check at its entry, EJUSTRETURN on success at its exit.
    assert slow(c, "execve") == (R.PLAIN_UNLESS_SETID, R.PLAIN_EXEC_RET)
    assert slow(c, "execveat") == (R.PLAIN_UNLESS_SETID, R.PLAIN_EXEC_RET)
    for more in (K.KTRFAC_ARGS, K.KTRFAC_ENVS, K.KTRFAC_NAMEI):
        assert slow(c | more, "execve")[0] == 1  # what it reads at entry is Python's
    assert slow(c | K.KTRFAC_CSW, "execve") == (1, 1)
    assert slow(c | K.KTRFAC_CSW, "rt_sigreturn") == (1, 1)
    assert slow(c | K.KTRFAC_GENIO, "read") == (0, 1)
    assert slow(c | K.KTRFAC_NAMEI, "openat") == (1, 0)
    assert slow(c | K.KTRFAC_SYSCTL, "openat") == (1, 0)
    assert slow(c | K.KTRFAC_STRUCT, "newfstatat") == (1, 1)
    assert slow(c | K.KTRFAC_CSW, "getppid") == (1, 1)
    assert r.plain_stops(c) is r.plain_stops(c)  # built once per facilities


def test_seccomp_filter_program_shape() -> None:
    prog = seccomp.build_filter([0, 257])
    insns = [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]
    assert insns[0] == (0x20, 0, 0, 4)  # load arch
    assert insns[-1] == (0x06, 0, 0, seccomp.SECCOMP_RET_ALLOW)
    traced = [k for code, _, _, k in insns if code == 0x15][1:]
    assert traced == [0, 257]


def test_trace_file_records_decode(tmp_path: Path) -> None:
    path = tmp_path / "t.out"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
    tf = TraceFile(fd)
    comm = b"prog".ljust(20, b"\0")
    tf.buf += H1(32, K.KTR_SYSCALL | K.KTR_VERSIONED, 1, 42, comm, 1, 2, 43, -1) + SYSCALL_FIXED(
        257, 3) + ARGS[3](1, 2, 3)  # fmt: skip
    tf.record(K.KTR_NAMEI, 42, 43, comm, 5_000_000_001, b"/etc/passwd")
    assert tf.flush() == 0
    tf.close()
    recs = list(iter_records(str(path)))
    assert [r.type for r in recs] == [K.KTR_SYSCALL, K.KTR_NAMEI]
    assert unpack_payload(AMD64, recs[0].type, recs[0].payload) == Syscall(257, (1, 2, 3))
    assert (recs[1].pid, recs[1].tid, recs[1].sec, recs[1].frac, recs[1].cpu) == (42, 43, 5, 1, -1)


def test_proc_mem_reads_paths_and_iovecs() -> None:
    mem = ProcMem(os.getpid())
    s = ctypes.create_string_buffer(b"/some/path" + b"x" * 500 + b"\0")
    assert mem.read_path(ctypes.addressof(s)) == b"/some/path" + b"x" * 500
    a, b = ctypes.create_string_buffer(b"abc"), ctypes.create_string_buffer(b"defg")
    iov = struct.pack("<QQQQ", ctypes.addressof(a), 3, ctypes.addressof(b), 4)
    ib = ctypes.create_string_buffer(iov)
    assert mem.read_iov(ctypes.addressof(ib), 2, 6) == b"abcdef"
    assert mem.read_path(0) is None
    mem.close()


@pytest.mark.parametrize(
    ("argv", "check"),
    [
        (["ls", "-l"], lambda o: o.command == ["ls", "-l"] and o.facs == K.DEF_POINTS),
        (["-t", "cn", "-i", "cmd", "-a"], lambda o: o.inherit and o.command == ["cmd", "-a"]),
        (["-p", "12", "-d"], lambda o: o.pid == 12 and o.descend),
        (["-g", "7", "-c"], lambda o: o.pid == -7 and o.clear == "c"),
        (["--genio-size=16", "x"], lambda o: o.genio_size == 16),
        (["--header-version=0", "x"], lambda o: o.version == 0),
        (["-di", "-tcn", "-p5", "-fk.out"],
         lambda o: o.descend and o.inherit and o.facs == K.parse_trace_points("cn")
         and o.pid == 5 and o.trfile == "k.out"),
        (["-ci", "-g", "9"], lambda o: o.clear == "c" and o.inherit and o.pid == -9),
        (["-C"], lambda o: o.clear == "C" and not o.pid),
        (["-c"], lambda o: o.clear == "c" and not o.pid),
        (["--genio-size", "0", "--seccomp", "off", "cmd", "--genio-size"],
         lambda o: o.genio_size == 0 and o.seccomp == "off" and o.command == ["cmd", "--genio-size"]),
    ],
)
def test_cli_parse(argv: list[str], check) -> None:  # type: ignore[no-untyped-def]
    assert check(cli.parse(argv))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-dx"], "illegal option -- x"),
        (["-t"], "option requires an argument -- t"),
        (["--nope"], "unrecognized option '--nope'"),
        (["--genio-size=x", "cmd"], "invalid --genio-size: x"),
        (["--header-version=2", "cmd"], "invalid --header-version: 2 (0 or 1)"),
        (["-p", "2147483648"], "invalid process or group id"),
        (["-p", "-3"], "invalid process or group id"),
        (["-c", "-p", "1", "cmd"], ""),
    ],
)
def test_cli_parse_errors(argv: list[str], message: str) -> None:
    with pytest.raises(cli.Fatal) as e:
        cli.parse(argv)
    assert str(e.value) == message


def test_cli_help_is_clicks_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: pyktrace [-aCcdi] [-f trfile] [-g pgrp | -p pid] [-t trstr]")
    assert "-g pgrp" in out and "Examples:" in out

"""--calls, call filters and descriptor tables on traces built with the writer (exact output)."""

from __future__ import annotations

import json
import re
import socket
import struct
from pathlib import Path

import pytest

from ktrace_cli.decode import pipeline, stru
from ktrace_cli.decode.abi import Abi
from ktrace_cli.decode.calls import fd_arg_index
from ktrace_cli.format import constants as K
from ktrace_cli.format.records import Genio, Namei, Psig, Record, Struct, Syscall, Sysret
from tests.kdump_helpers import FREEBSD64, LINUX64, ctor, rec, run_pykdump

AT_FDCWD = (1 << 64) - 100
O_RDONLY_CLOEXEC = 0x100000  # FreeBSD
OPENAT, READ, CLOSE, FORK, EXECVE, DUP2, FCNTL = 499, 3, 6, 2, 59, 90, 92
SOCKET, CONNECT, ACCEPT, CLOSE_RANGE, GETPID = 97, 98, 30, 575, 20
ENOENT, EBADF = 2, 9
A, B = 100001, 100002  # thread ids


def at(ms: int) -> dict[str, int]:
    """Header time `ms` milliseconds after 1700000000."""
    return {"sec": 1700000000 + ms // 1000, "frac": ms % 1000 * 1_000_000}


def call(code: int, *args: int, tid: int = A, ms: int = 0, pid: int = 2035, comm: str = "cat") -> Record:
    return rec(Syscall(code, args), tid=tid, pid=pid, comm=comm, **at(ms))


def ret(code: int, value: int = 0, error: int = 0, tid: int = A, ms: int = 0, pid: int = 2035,
        comm: str = "cat") -> Record:  # fmt: skip
    return rec(Sysret(code, error, value), tid=tid, pid=pid, comm=comm, **at(ms))


def nami(path: bytes, tid: int = A, ms: int = 0, pid: int = 2035) -> Record:
    return rec(Namei(path), tid=tid, pid=pid, **at(ms))


def gio(fd: int, data: bytes, tid: int = A, ms: int = 0, pid: int = 2035) -> Record:
    return rec(Genio(fd, K.UIO_READ, data), tid=tid, pid=pid, **at(ms))


def sockaddr_in(addr: str, port: int) -> bytes:
    return struct.pack("<BBH4s8x", 16, 2, socket.htons(port), socket.inet_aton(addr))


def nodur(line: str) -> str:
    """A --calls line without its duration."""
    return re.sub(r" <\d+\.\d{6}>$", "", line)


def lines(tmp_path: Path, records: list[Record], *args: str) -> list[str]:
    result = run_pykdump(tmp_path, records, *args)
    assert result.status == 0, result.err
    return result.text.splitlines()


def interleaved() -> list[Record]:
    """Thread A opens a file while thread B reads fd 4: their records interleave."""
    return [
        ctor(FREEBSD64, **at(0)),
        call(OPENAT, AT_FDCWD, 0x1000, O_RDONLY_CLOEXEC, ms=0),
        call(READ, 4, 0x2000, 64, tid=B, ms=1),
        nami(b"/etc/hosts", ms=2),
        gio(4, b"abc", tid=B, ms=3),
        ret(READ, 3, tid=B, ms=4),
        ret(OPENAT, 3, ms=5),
        call(READ, 3, 0x2000, 64, ms=6),
        gio(3, b"127.0.0.1 localhost\n", ms=7),
        ret(READ, 20, ms=8),
        call(OPENAT, AT_FDCWD, 0x1000, 0, ms=9),
        nami(b"/nonexistent", ms=10),
        ret(OPENAT, 0, ENOENT, ms=11),
        call(CLOSE, 3, ms=12),
        ret(CLOSE, 0, ms=13),
        call(CLOSE, 3, ms=14),
        ret(CLOSE, 0, EBADF, ms=15),
    ]


def test_calls_join_interleaved_threads(tmp_path: Path) -> None:
    assert lines(tmp_path, interleaved(), "--calls", "-H") == [
        '  2035 100002 cat      read(4,"abc",0x40) = 3 <0.003000>',
        '  2035 100001 cat      openat(AT_FDCWD,"/etc/hosts",0x100000<O_RDONLY|O_CLOEXEC>) = 3</etc/hosts> <0.005000>',
        '  2035 100001 cat      read(3</etc/hosts>,"127.0.0.1 localhost\\n",0x40) = 20 <0.002000>',
        '  2035 100001 cat      openat(AT_FDCWD,"/nonexistent",0<O_RDONLY>) = -1 ENOENT (No such file or directory)'
        " <0.002000>",
        "  2035 100001 cat      close(3</etc/hosts>) = 0 <0.001000>",
        "  2035 100001 cat      close(3) = -1 EBADF (Bad file descriptor) <0.001000>",
    ]


def test_record_filters_keep_file_order_and_whole_calls(tmp_path: Path) -> None:
    assert lines(tmp_path, interleaved(), "--failed", "-H") == [
        "  2035 100001 cat      CALL  openat(AT_FDCWD,0x1000,0<O_RDONLY>)",
        '  2035 100001 cat      NAMI  "/nonexistent"',
        "  2035 100001 cat      RET   openat -1 errno 2 No such file or directory",
        "  2035 100001 cat      CALL  close(0x3)",
        "  2035 100001 cat      RET   close -1 errno 9 Bad file descriptor",
    ]
    # B's read ends first but started after A's open: file order is kept.
    assert lines(tmp_path, interleaved(), "--fd=4", "-H") == [
        "  2035 100002 cat      CALL  read(0x4,0x2000,0x40)",
        "  2035 100002 cat      GIO   fd 4 read 3 bytes",
        '       "abc"',
        "  2035 100002 cat      RET   read 3",
    ]
    assert lines(tmp_path, interleaved(), "--path=/etc/*", "-t", "c") == [
        "  2035 cat      CALL  openat(AT_FDCWD,0x1000,0x100000<O_RDONLY|O_CLOEXEC>)",
        "  2035 cat      RET   openat 3",
        "  2035 cat      CALL  read(0x3,0x2000,0x40)",
        "  2035 cat      RET   read 20/0x14",
        "  2035 cat      CALL  close(0x3)",
        "  2035 cat      RET   close 0",
    ]
    assert lines(tmp_path, interleaved(), "--calls", "--since=+0.006", "--until=+0.012", "-e", "!close") == [
        '  2035 cat      read(3</etc/hosts>,"127.0.0.1 localhost\\n",0x40) = 20 <0.002000>',
        '  2035 cat      openat(AT_FDCWD,"/nonexistent",0<O_RDONLY>) = -1 ENOENT (No such file or directory)'
        " <0.002000>",
    ]
    # Calls print as they end, dated by their start.
    assert lines(tmp_path, interleaved(), "--calls", "--until=1700000000.001") == [
        '  2035 cat      read(4,"abc",0x40) = 3 <0.003000>',
        '  2035 cat      openat(AT_FDCWD,"/etc/hosts",0x100000<O_RDONLY|O_CLOEXEC>) = 3</etc/hosts> <0.005000>',
    ]


def test_summary_and_json_follow_the_filters(tmp_path: Path) -> None:
    out = lines(tmp_path, interleaved(), "--summary", "-e", "trace=openat")
    assert out[:5] == [
        "process 2035 (cat)",
        "syscall                      calls    errors    total (s)     avg (us)",
        "------------------------ --------- --------- ------------ ------------",
        "openat                           2         1     0.007000      3500.00",
        "------------------------ --------- --------- ------------ ------------",
    ]
    objs = [json.loads(x) for x in lines(tmp_path, interleaved(), "--json", "--errno=ENOENT")]
    assert [(o["type"], o.get("syscall"), o.get("path"), o.get("errname")) for o in objs] == [
        ("CALL", "openat", None, None), ("NAMI", None, "/nonexistent", None), ("RET", "openat", None, "ENOENT"),
    ]  # fmt: skip


def test_descriptors_through_dup_fcntl_fork_and_exec(tmp_path: Path) -> None:
    child = 2036
    records = [
        ctor(FREEBSD64, **at(0)),
        call(OPENAT, AT_FDCWD, 0x1000, 0, ms=0), nami(b"/data/a"), ret(OPENAT, 3, ms=1),
        call(DUP2, 3, 7, ms=2), ret(DUP2, 7, ms=3),
        call(FCNTL, 3, 2, 1, ms=4), ret(FCNTL, 0, ms=5),  # F_SETFD FD_CLOEXEC on 3
        call(FCNTL, 7, 17, 9, ms=6), ret(FCNTL, 9, ms=7),  # F_DUPFD_CLOEXEC: 9
        call(FORK, ms=8), ret(FORK, child, ms=9),
        ctor(FREEBSD64, pid=child), ret(FORK, 0, pid=child, tid=B, ms=10),
        call(READ, 7, 0x2000, 1, pid=child, tid=B, ms=11), ret(READ, 0, pid=child, tid=B, ms=12),
        call(EXECVE, 0x3000, 0x4000, 0x5000, ms=13), nami(b"/bin/true"), ret(EXECVE, 0, K.EJUSTRETURN, ms=14),
        call(READ, 3, 0x2000, 1, ms=15), ret(READ, 0, EBADF, ms=16),
        call(READ, 7, 0x2000, 1, ms=17), ret(READ, 0, ms=18),
        call(READ, 9, 0x2000, 1, ms=19), ret(READ, 0, EBADF, ms=20),
    ]  # fmt: skip
    out = [nodur(line) for line in lines(tmp_path, records, "--calls", "-e", "!execve")]
    assert out == [
        '  2035 cat      openat(AT_FDCWD,"/data/a",0<O_RDONLY>) = 3</data/a>',
        "  2035 cat      dup2(3</data/a>,0x7) = 7</data/a>",
        "  2035 cat      fcntl(3</data/a>,F_SETFD,FD_CLOEXEC) = 0",
        "  2035 cat      fcntl(7</data/a>,F_DUPFD_CLOEXEC,0x9) = 9</data/a>",
        "  2035 cat      fork() = 2036",
        "  2036 cat      <... fork resumed> = 0",
        "  2036 cat      read(7</data/a>,0x2000,0x1) = 0",
        "  2035 cat      read(3,0x2000,0x1) = -1 EBADF (Bad file descriptor)",
        "  2035 cat      read(7</data/a>,0x2000,0x1) = 0",
        "  2035 cat      read(9,0x2000,0x1) = -1 EBADF (Bad file descriptor)",
    ]


def test_child_running_before_its_parents_return_inherits(tmp_path: Path) -> None:
    child = 2036
    records = [
        ctor(FREEBSD64, **at(0)),
        call(OPENAT, AT_FDCWD, 0x1000, 0), nami(b"/data/a"), ret(OPENAT, 3),
        call(FORK, ms=1),
        ctor(FREEBSD64, pid=child), ret(FORK, 0, pid=child, tid=B, ms=2),
        call(CLOSE, 3, pid=child, tid=B, ms=3), ret(CLOSE, 0, pid=child, tid=B, ms=4),
        ret(FORK, child, ms=5),
        call(CLOSE, 3, ms=6), ret(CLOSE, 0, ms=7),
    ]  # fmt: skip
    out = [nodur(line) for line in lines(tmp_path, records, "--calls", "-e", "close")]
    assert out == ["  2036 cat      close(3</data/a>) = 0", "  2035 cat      close(3</data/a>) = 0"]


def test_sockets_named_by_their_addresses(tmp_path: Path) -> None:
    records = [
        ctor(FREEBSD64, **at(0)),
        call(SOCKET, 2, 1, 0), ret(SOCKET, 3),
        call(CONNECT, 3, 0x1000, 16), rec(Struct(b"sockaddr", sockaddr_in("127.0.0.1", 80)), tid=A, **at(0)),
        ret(CONNECT, 0),
        call(SOCKET, 2, 1, 0), ret(SOCKET, 4),
        call(ACCEPT, 4, 0x1000, 0x2000), rec(Struct(b"sockaddr", sockaddr_in("10.0.0.2", 41234)), tid=A, **at(0)),
        ret(ACCEPT, 5),
        call(CLOSE, 3), ret(CLOSE, 0), call(CLOSE, 5), ret(CLOSE, 0),
    ]  # fmt: skip
    out = [nodur(line) for line in lines(tmp_path, records, "--calls", "-e", "close,accept")]
    assert out == [
        "  2035 cat      accept(4<socket:[AF_INET]>,0x1000,0x2000) = 5<socket:[AF_INET<-10.0.0.2:41234]>",
        "  2035 cat      close(3<socket:[AF_INET->127.0.0.1:80]>) = 0",
        "  2035 cat      close(5<socket:[AF_INET<-10.0.0.2:41234]>) = 0",
    ]


def test_close_range_cloexec_and_plain(tmp_path: Path) -> None:
    records = [ctor(FREEBSD64)]
    for fd in (3, 4, 5):
        records += [call(OPENAT, AT_FDCWD, 0x1000, 0), nami(b"/f%d" % fd), ret(OPENAT, fd)]
    records += [
        call(CLOSE_RANGE, 3, 3, 4), ret(CLOSE_RANGE, 0),  # CLOSE_RANGE_CLOEXEC on 3
        call(CLOSE_RANGE, 5, (1 << 32) - 1, 0), ret(CLOSE_RANGE, 0),
        call(EXECVE, 0, 0, 0), ret(EXECVE, 0, K.EJUSTRETURN),
        call(CLOSE, 3), ret(CLOSE, 0, EBADF), call(CLOSE, 4), ret(CLOSE, 0), call(CLOSE, 5), ret(CLOSE, 0, EBADF),
    ]  # fmt: skip
    out = [nodur(line).split("close(", 1)[1] for line in lines(tmp_path, records, "--calls", "-e", "close")]
    assert out == ["3) = -1 EBADF (Bad file descriptor)", "4</f4>) = 0", "5) = -1 EBADF (Bad file descriptor)"]


def test_unfinished_and_resumed_calls(tmp_path: Path) -> None:
    records = [ctor(FREEBSD64), ret(READ, 5), call(GETPID, tid=B), call(READ, 0, 0x10, 1)]
    assert lines(tmp_path, records, "--calls") == [
        "  2035 cat      <... read resumed> = 5",
        "  2035 cat      getpid() = ?",
        "  2035 cat      read(0,0x10,0x1) = ?",
    ]
    obj = json.loads(lines(tmp_path, records, "--calls", "--json", "-e", "read")[1])
    assert (obj["unfinished"], obj["ret"], obj["dur_ns"], obj["errno"]) == (True, None, None, None)


def test_held_calls_are_judged_when_too_many_records_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "HOLD_LIMIT", 3)
    records = [ctor(FREEBSD64), call(READ, 0, 0x10, 1)]
    records += [r for _ in range(3) for r in (call(GETPID, tid=B), ret(GETPID, 7, tid=B))]
    records += [ret(READ, 0, EBADF)]
    # Without the limit the failed read is selected; with it, it was judged while running.
    assert lines(tmp_path, records, "--failed") == []
    monkeypatch.setattr(pipeline, "HOLD_LIMIT", 1000)
    assert lines(tmp_path, records, "--failed") == [
        "  2035 cat      CALL  read(0,0x10,0x1)",
        "  2035 cat      RET   read -1 errno 9 Bad file descriptor",
    ]


def test_linux_errno_names_and_classes(tmp_path: Path) -> None:
    records = [
        ctor(LINUX64, comm="ls"),
        call(257, AT_FDCWD, 0x1000, 0, comm="ls"), nami(b"/x"), ret(257, 0, 35, comm="ls"),  # EAGAIN
        call(39, comm="ls"), ret(39, 2035, comm="ls"),
    ]  # fmt: skip
    out = lines(tmp_path, records, "--calls", "--errno=EAGAIN")
    assert [nodur(line) for line in out] == [
        '  2035 ls       openat(AT_FDCWD,"/x",0<O_RDONLY>) = -1 EAGAIN (Resource temporarily unavailable)'
    ]
    assert [line.split()[2] for line in lines(tmp_path, records, "--calls", "-e", "%process,getpid")] == ["getpid()"]
    assert lines(tmp_path, records, "--calls", "-e", "%file", "--successful") == []


def test_fdtable_record_names_descriptors_opened_before_the_trace(tmp_path: Path) -> None:
    snapshot = b"0\t/dev/pts/3\n1\tpipe:[4711]\n5\t/var/log/app.log\nbad line\n"
    records = [
        ctor(LINUX64, comm="app"),
        rec(Struct(b"fdtable", snapshot), comm="app", tid=A, **at(0)),
        call(1, 5, 0x1000, 3, comm="app"), rec(Genio(5, K.UIO_WRITE, b"ok\n"), comm="app", tid=A, **at(0)),
        ret(1, 3, comm="app"),
        call(1, 1, 0x1000, 3, comm="app"), ret(1, 3, comm="app"),
    ]  # fmt: skip
    assert [nodur(x) for x in lines(tmp_path, records, "--calls")] == [
        "  2035 app      --- STRU unknown structure ---",
        '  2035 app      write(5</var/log/app.log>,"ok\\n",0x3) = 3',
        "  2035 app      write(1<pipe:[4711]>,0x1000,0x3) = 3",
    ]
    assert lines(tmp_path, records, "-t", "t") == ["  2035 app      STRU  unknown structure"]


def fdpair(fds: tuple[int, int], kind: int, ino: tuple[int, int] = (0, 0), family: int = 0) -> Record:
    """pyktrace's STRU `fdpair` (docs/FORMAT.md), as its writer lays it out."""
    return rec(Struct(b"fdpair", stru.FDPAIR.pack(*fds, kind, family, *ino)), comm="app", tid=A, **at(0))


def test_fdpair_record_names_pipe_and_socketpair_descriptors(tmp_path: Path) -> None:
    # x86_64: pipe2 293, socketpair 53, write 1, read 0, execve 59, pipe 22.
    records = [
        ctor(LINUX64, comm="app"),
        call(293, 0x7FFC0000, 0o2000000, comm="app"), fdpair((3, 4), stru.FDPAIR_PIPE, (4711, 4711)),
        ret(293, 0, comm="app"),
        call(53, 1, 1, 0, 0x7FFC0010, comm="app"), fdpair((5, 6), stru.FDPAIR_SOCKET, (0, 0), family=1),
        ret(53, 0, comm="app"),
        call(22, 0x7FFC0020, comm="app"), fdpair((7, 8), stru.FDPAIR_PIPE),
        ret(22, 0, comm="app"),
        call(1, 4, 0x1000, 4, comm="app"), ret(1, 4, comm="app"),
        call(0, 5, 0x1000, 4, comm="app"), ret(0, 4, comm="app"),
        call(1, 8, 0x1000, 4, comm="app"), ret(1, 4, comm="app"),
        call(59, 0x1000, 0x2000, 0x3000, comm="app"), ret(59, 0, K.EJUSTRETURN, comm="app"),
        call(1, 4, 0x1000, 4, comm="app"), ret(1, 4, comm="app"),  # pipe2's O_CLOEXEC: gone at exec
        call(1, 8, 0x1000, 4, comm="app"), ret(1, 4, comm="app"),
    ]  # fmt: skip
    assert [nodur(x) for x in lines(tmp_path, records, "--calls", "-e", "!execve")] == [
        "  2035 app      pipe2([3<pipe:[4711]>,4<pipe:[4711]>],0x80000<O_CLOEXEC>) = 0",
        "  2035 app      socketpair(AF_UNIX,0x1<SOCK_STREAM>,0,[5<socket:[AF_UNIX]>,6<socket:[AF_UNIX]>]) = 0",
        "  2035 app      pipe([7<pipe>,8<pipe>]) = 0",
        "  2035 app      write(4<pipe:[4711]>,0x1000,0x4) = 4",
        "  2035 app      read(5<socket:[AF_UNIX]>,0x1000,0x4) = 4",
        "  2035 app      write(8<pipe>,0x1000,0x4) = 4",
        "  2035 app      write(4,0x1000,0x4) = 4",
        "  2035 app      write(8<pipe>,0x1000,0x4) = 4",
    ]
    objs = [json.loads(x) for x in lines(tmp_path, records[:4] + records[10:12], "--calls", "--json")]
    assert objs[0]["structs"] == [{"name": "fdpair", "fields": {
        "fds": [3, 4], "kind": "pipe", "family": 0, "ino": [4711, 4711], "targets": ["pipe:[4711]", "pipe:[4711]"],
    }}]  # fmt: skip
    assert (objs[0]["fd"], objs[0]["fd_path"]) == (None, None)
    assert (objs[1]["syscall"], objs[1]["fd"], objs[1]["fd_path"]) == ("write", 4, "pipe:[4711]")
    # --fd and --path see the two descriptors the call made.
    assert [x.split()[2][:6] for x in lines(tmp_path, records, "--calls", "--fd=6")] == ["socket"]
    assert [x.split()[2][:6] for x in lines(tmp_path, records, "--calls", "--path=pipe*")] == [
        "pipe2(", "pipe([", "write(", "write(", "write(",
    ]  # fmt: skip
    # Byte-faithful text: kdump knows no `fdpair`, as it knows no `fdtable`.
    assert lines(tmp_path, records[:4], "-t", "t") == ["  2035 app      STRU  unknown structure"]
    # A damaged record (a kind pyktrace does not write) names nothing.
    bad = [ctor(LINUX64, comm="app"), call(22, 0x7FFC0020, comm="app"), fdpair((7, 8), 9), ret(22, 0, comm="app"),
           call(1, 8, 0x1000, 4, comm="app"), ret(1, 4, comm="app")]  # fmt: skip
    assert [nodur(x) for x in lines(tmp_path, bad, "--calls", "-e", "write")] == [
        "  2035 app      write(8,0x1000,0x4) = 4"
    ]
    # Without the record (FreeBSD's files, older pyktrace's): as before, a pointer and bare numbers.
    none = [ctor(LINUX64, comm="app"), call(293, 0x7FFC0000, 0, comm="app"), ret(293, 0, comm="app"),
            call(1, 4, 0x1000, 4, comm="app"), ret(1, 4, comm="app")]  # fmt: skip
    assert [nodur(x) for x in lines(tmp_path, none, "--calls")] == [
        "  2035 app      pipe2(0x7ffc0000,0) = 0", "  2035 app      write(4,0x1000,0x4) = 4",
    ]  # fmt: skip


def test_damaged_file_still_prints_the_held_records_first(tmp_path: Path) -> None:
    from tests.kdump_helpers import trace_bytes

    good = trace_bytes([ctor(FREEBSD64), call(OPENAT, AT_FDCWD, 0x1000, 0), nami(b"/etc/passwd")])
    torn = trace_bytes([ret(OPENAT, 3)])[:-4]  # the RET is cut short
    result = run_pykdump(tmp_path, good + torn, "--path=/etc/*")
    assert (result.status, result.err) == (1, "pykdump: data too short\n")
    assert result.text.splitlines() == [
        "  2035 cat      CALL  openat(AT_FDCWD,0x1000,0<O_RDONLY>)",
        '  2035 cat      NAMI  "/etc/passwd"',
    ]
    result = run_pykdump(tmp_path, good + torn, "--calls")
    assert (result.status, result.text) == (1, '  2035 cat      openat(AT_FDCWD,"/etc/passwd",0<O_RDONLY>) = ?\n')


def test_unknown_names_warn_and_match_nothing(tmp_path: Path) -> None:
    result = run_pykdump(tmp_path, interleaved(), "--calls", "--errno=ENOENT,ENOSUCH", "-e", "trace=openat,opne*")
    assert result.status == 0
    assert result.err == "pykdump: warning: no such syscall: opne*\npykdump: warning: no such errno: ENOSUCH\n"
    assert [nodur(x) for x in result.text.splitlines()] == [
        '  2035 cat      openat(AT_FDCWD,"/nonexistent",0<O_RDONLY>) = -1 ENOENT (No such file or directory)'
    ]
    assert lines(tmp_path, interleaved(), "--comm=ls", "--calls") == []
    assert len(lines(tmp_path, interleaved(), "--comm=c?t", "--calls")) == 6


def test_signals_during_a_call_are_marked(tmp_path: Path) -> None:
    """A PSIG inside a call marks its line, alone or beside the call's GIO and NAMI records."""
    sig = rec(Psig(2, 0, 0), tid=A, **at(1))  # SIGINT
    records = [
        ctor(),
        call(READ, 0, 0x1000, 0x40, ms=0), sig, ret(READ, error=4, ms=2),  # EINTR
        call(READ, 0, 0x1000, 0x40, ms=3), gio(0, b"y\n", ms=3), rec(Psig(14, 0, 0), tid=A, **at(3)),
        ret(READ, 2, ms=4),
        call(GETPID, ms=5), rec(Psig(2, 0, 0), tid=A, **at(5)), ret(GETPID, 2035, ms=6),
    ]
    assert lines(tmp_path, records, "--calls") == [
        "  2035 cat      read(0,0x1000,0x40) [SIGINT] = -1 EINTR (Interrupted system call) <0.002000>",
        '  2035 cat      read(0,"y\\n",0x40) [SIGALRM] = 2 <0.001000>',
        "  2035 cat      getpid() [SIGINT] = 2035 <0.001000>",
    ]


@pytest.mark.parametrize("abi", [Abi.LINUX, Abi.FREEBSD])
def test_descriptor_arguments_are_integers_never_pipe_s_array(abi: Abi) -> None:
    """pipe(2)'s `fildes` is named like a descriptor but is the array the new ones are
    written to: --calls printed its address's low half as a descriptor (`pipe2(1255955256,0)`)."""
    assert fd_arg_index(abi, "pipe2") == (-1, -1)
    assert fd_arg_index(abi, "read") == (0, -1)
    assert fd_arg_index(Abi.LINUX, "openat") == (-1, 0)

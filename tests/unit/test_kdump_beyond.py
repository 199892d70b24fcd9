"""What pykdump adds to kdump: JSON lines, summaries, colour, stdin and follow mode."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

from ktrace_cli.format import constants as K
from ktrace_cli.format.records import Csw, Genio, Namei, Psig, Struct, Syscall, Sysctl, Sysret, User
from tests.kdump_helpers import LINUX64, ctor, rec, run_pykdump, trace_bytes

PYKDUMP = [sys.executable, "-m", "ktrace_cli.cli.pykdump"]
COMMON = {"pid": 2035, "tid": 100113, "comm": "cat", "sec": 1700000000, "nsec": 123456789, "cpu": 0, "drop": False}


def json_lines(tmp_path: Path, records: list, *args: str) -> list[dict]:
    result = run_pykdump(tmp_path, records, "--json", *args)
    assert (result.status, result.err) == (0, "")
    return [json.loads(line) for line in result.text.splitlines()]


def test_json_call_and_ret(tmp_path: Path) -> None:
    got = json_lines(
        tmp_path,
        [ctor(), rec(Syscall(499, (0xFFFFFF9C, 0x80104A00C, 0x100000))), rec(Sysret(499, 2, 0)), rec(Sysret(499, 0, -5))],
    )
    assert got == [
        {**COMMON, "type": "CALL", "abi": "freebsd", "code": 499, "syscall": "openat", "args": [4294967196, 34376818700, 1048576]},
        {**COMMON, "type": "RET", "abi": "freebsd", "code": 499, "syscall": "openat", "retval": 0, "error": 2, "errno": 2, "errname": "ENOENT"},
        {**COMMON, "type": "RET", "abi": "freebsd", "code": 499, "syscall": "openat", "retval": -5, "error": 0, "errno": None, "errname": None},
    ]


def test_json_linux_errno_and_signal(tmp_path: Path) -> None:
    got = json_lines(tmp_path, [ctor(LINUX64), rec(Sysret(0, 35, 0)), rec(Psig(30, 0x401000, 0, (1, 0, 0, 0)))])
    assert got[0] == {**COMMON, "type": "RET", "abi": "linux", "code": 0, "syscall": "read", "retval": 0, "error": 35, "errno": 11, "errname": "EAGAIN"}
    assert got[1] == {**COMMON, "type": "PSIG", "abi": "linux", "signo": 30, "signame": "SIGUSR1", "action": 0x401000, "code": 0, "mask": [1, 0, 0, 0]}


def test_json_v0_record_has_null_cpu_and_nsec_from_usec(tmp_path: Path) -> None:
    # A v0 record shorter than 8 bytes is dropped at the very end (kdump's
    # 64-byte header read fails), so another record follows it.
    got, _ = json_lines(tmp_path, [rec(Namei(b"/\xff"), version=0, sec=5, frac=7), rec(Syscall(20, ()))])
    assert got == {**COMMON, "sec": 5, "nsec": 7000, "cpu": None, "type": "NAMI", "abi": "unknown", "path": "/\udcff"}


def test_json_gio_respects_maxdata_and_other_types(tmp_path: Path) -> None:
    records = [
        rec(Genio(1, K.UIO_WRITE, b"hello world")),
        rec(Sysctl(b"kern.ostype")),
        rec(Csw(1, 0, b"select")),
        rec(User(b"\x01\x02")),
        rec(Struct(b"sockaddr", struct.pack("!BBH4s8x", 16, 2, 80, socket.inet_aton("127.0.0.1")))),
    ]
    got = json_lines(tmp_path, records, "-m", "5", "-t", "+w")
    assert got[0] == {**COMMON, "type": "GIO", "abi": "unknown", "fd": 1, "rw": "wrote", "len": 11, "data": base64.b64encode(b"hello").decode()}
    assert got[1] == {**COMMON, "type": "SCTL", "abi": "unknown", "path": "kern.ostype"}
    assert got[2] == {**COMMON, "type": "CSW", "abi": "unknown", "out": True, "user": False, "wmesg": "select"}
    assert got[3] == {**COMMON, "type": "USER", "abi": "unknown", "data": "AQI="}
    assert got[4]["type"] == "STRU" and got[4]["name"] == "sockaddr"
    assert base64.b64decode(got[4]["data"])[:4] == bytes([16, 2, 0, 80])
    assert got[4]["fields"] is not None


def test_summary_pairs_call_and_ret_per_thread(tmp_path: Path) -> None:
    records = [
        ctor(),
        rec(Syscall(3, (0, 0, 0)), tid=1, sec=10, frac=0),
        rec(Syscall(3, (0, 0, 0)), tid=2, sec=10, frac=1000),
        rec(Sysret(3, 0, 5), tid=2, sec=10, frac=4000),  # 3 us
        rec(Sysret(3, 4, 0), tid=1, sec=10, frac=9000),  # 9 us, EINTR
        rec(Syscall(20, ()), tid=1, sec=11, frac=0),
        rec(Sysret(20, 0, 2035), tid=1, sec=11, frac=1000),
    ]
    result = run_pykdump(tmp_path, records, "--summary")
    rule = "------------------------ --------- --------- ------------ ------------"
    table = [
        "syscall                      calls    errors    total (s)     avg (us)",
        rule,
        "read                             2         1     0.000012         6.00",
        "getpid                           1         0     0.000001         1.00",
        rule,
        "total                            3         1     0.000013         4.33",
        "",
    ]
    assert result.text.split("\n") == ["process 2035 (cat)", *table, "all processes", *table, ""][:-1]


def test_color_always_adds_ansi_and_never_keeps_kdump_bytes(tmp_path: Path) -> None:
    records = [ctor(), rec(Sysret(5, 2, 0))]
    plain = "  2035 cat      RET   open -1 errno 2 No such file or directory\n"
    assert run_pykdump(tmp_path, records, "--color=never").text == plain
    assert run_pykdump(tmp_path, records).text == plain  # auto, not a terminal
    coloured = run_pykdump(tmp_path, records, "--color=always").text
    assert "\x1b[" in coloured
    stripped = __import__("re").sub("\x1b\\[[0-9;]*m", "", coloured)
    assert stripped == plain


def test_stdin_reads_v0_from_a_pipe(tmp_path: Path) -> None:
    data = trace_bytes([rec(Namei(b"/etc/passwd"), version=0), rec(Syscall(20, ()), version=0)])
    out = subprocess.run(PYKDUMP + ["-f", "-"], input=data, capture_output=True, check=True)
    assert out.stdout == b'  2035 cat      NAMI  "/etc/passwd"\n  2035 cat      CALL  getpid\n'


def test_follow_prints_records_appended_later(tmp_path: Path) -> None:
    path = tmp_path / "grow.out"
    path.write_bytes(trace_bytes([rec(Namei(b"/first"))]))
    proc = subprocess.Popen(PYKDUMP + ["-l", "-f", str(path)], stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b'  2035 cat      NAMI  "/first"\n'
        with path.open("ab") as f:
            f.write(trace_bytes([rec(Namei(b"/second"))]))
        assert proc.stdout.readline() == b'  2035 cat      NAMI  "/second"\n'
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_output_errors_name_stdout_not_the_trace(tmp_path: Path) -> None:
    path = tmp_path / "t.out"
    path.write_bytes(trace_bytes([rec(Namei(b"/x")) for _ in range(3)]))
    with open("/dev/full", "wb") as full:
        out = subprocess.run(PYKDUMP + ["-f", str(path)], stdout=full, stderr=subprocess.PIPE)
    assert (out.returncode, out.stderr) == (1, b"pykdump: stdout: No space left on device\n")


def test_exterr_message_widths_are_bounded() -> None:
    from ktrace_cli.render.bodies import _printf

    assert _printf("%5d|%-4x|%s", (42, 255)) == "   42|ff  |0"
    assert len(_printf("%999999999d", (1,))) == 1024

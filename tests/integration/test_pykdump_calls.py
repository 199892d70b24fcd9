"""pykdump's call filters, --calls (text and JSON) and descriptor paths on a real trace.

One run of progs/fdcalls.c under `pyktrace -i` is decoded many ways; every
expectation is an exact line (or object) of pykdump's output.  Only what the
machine decides is taken from the trace itself: pids, user-space addresses
(masked) and durations (cut off).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ktrace_cli.decode.linux_calls import format_linux_args
from ktrace_cli.render.calls_text import split_args
from tests.integration.conftest import PYKTRACE, TIMEOUT

PYKDUMP = [sys.executable, "-m", "ktrace_cli.cli.pykdump"]
_DURATION = re.compile(r" <\d+\.\d{6}>$")
_POINTER = re.compile(r"0x[0-9a-f]{9,}")  # user-space addresses (ASLR)


@dataclass
class FdTrace:
    path: Path  # the trace file
    dir: str  # the directory the program worked in
    prog: str
    pid: int


@pytest.fixture(scope="module")
def fdtrace(session_env: dict[str, str], progs: Path, tmp_path_factory: pytest.TempPathFactory) -> FdTrace:
    work = tmp_path_factory.mktemp("fdcalls")
    (work / "data.txt").write_bytes(b"hello fd\n")
    trfile = work / "ktrace.out"
    prog = str(progs / "fdcalls")
    proc = subprocess.run([*PYKTRACE, "-i", "-f", str(trfile), prog, str(work)], env=session_env,
                          capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return FdTrace(trfile, str(work), prog, _first_pid(trfile))


def _first_pid(trfile: Path) -> int:
    from ktrace_cli.format.reader import iter_records

    return next(iter(iter_records(str(trfile)))).pid


def kdump(t: FdTrace, *args: str) -> tuple[list[str], str]:
    """pykdump's output lines (durations cut, addresses masked) and its standard error."""
    proc = subprocess.run([*PYKDUMP, "-f", str(t.path), *args], capture_output=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    lines = [_POINTER.sub("PTR", _DURATION.sub("", line)) for line in proc.stdout.decode("latin-1").splitlines()]
    return lines, proc.stderr.decode()


def arg(name: str, args: list[int], i: int) -> str:
    """The decoded text of one argument, as the Linux decoder prints it in a CALL line."""
    return split_args(format_linux_args(name, args, decimal=False, ilp32=False))[i]


def head(pid: int, comm: str = "fdcalls") -> str:
    return f"{pid:6d} {comm:<8} "


def child_pid(t: FdTrace) -> int:
    lines, _ = kdump(t, "--calls", "-e", "trace=clone", "--successful")
    parent = [line for line in lines if line.startswith(head(t.pid))]
    return int(parent[0].rsplit("= ", 1)[1])


def test_calls_join_records_and_show_descriptor_paths(fdtrace: FdTrace) -> None:
    t, d, h = fdtrace, fdtrace.dir, head(fdtrace.pid)
    child = child_pid(t)
    lines, _ = kdump(t, "--calls")
    expected = [
        f'{h}openat(AT_FDCWD,"{d}/data.txt",{arg("openat", [0, 0, 0], 2)}) = 3<{d}/data.txt>',
        f'{h}read(3<{d}/data.txt>,"hello fd\\n",0x40) = 9',
        f"{h}dup2(3<{d}/data.txt>,{arg('dup2', [3, 10], 1)}) = 10<{d}/data.txt>",
        f"{h}fcntl(3<{d}/data.txt>,{arg('fcntl', [3, 1030, 20], 1)},{arg('fcntl', [3, 1030, 20], 2)})"
        f" = 20<{d}/data.txt>",
        f"{h}close(3<{d}/data.txt>) = 0",
        f'{h}openat(AT_FDCWD,"{d}/missing",{arg("openat", [0, 0, 0], 2)}) = -1 ENOENT (No such file or directory)',
        f'{h}openat(AT_FDCWD,"{d}/data.txt/x",{arg("openat", [0, 0, 0], 2)}) = -1 ENOTDIR (Not a directory)',
        f"{h}socket({arg('socket', [1, 0x80001, 0], 0)},{arg('socket', [1, 0x80001, 0], 1)},0)"
        f" = 3<socket:[AF_UNIX]>",
        f"{h}bind(3<socket:[AF_UNIX]>,PTR,0x6e) = 0",
        f"{h}listen(3<socket:[AF_UNIX:{d}/sock]>,0x1) = 0",
        f"{h}eventfd2(0,{arg('eventfd2', [0, 0x80000], 1)}) = 4<anon_inode:[eventfd]>",
        f"{head(child)}<... clone resumed> = 0",
        f'{head(child)}pread64(10<{d}/data.txt>,"hello",0x5,0) = 5',
        f"{head(child)}exit_group(0) = ?",
        # After the exec: 10 survived, the close-on-exec 20 is gone.
        f'{h}pread64(10<{d}/data.txt>,"hello",0x5,0) = 5',
        f"{h}read(20,PTR,0x40) = -1 EBADF (Bad file descriptor)",
        f"{h}exit_group(0) = ?",
    ]
    found = [line for line in lines if line in expected]
    assert found == expected


def test_calls_json_objects(fdtrace: FdTrace) -> None:
    t, d = fdtrace, fdtrace.dir
    proc = subprocess.run([*PYKDUMP, "-f", str(t.path), "--calls", "--json", "--fd=3", "-e", "trace=read"],
                          capture_output=True, timeout=TIMEOUT, check=True)  # fmt: skip
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    ours = [o for o in objs if o["fd_path"] == f"{d}/data.txt"]
    assert len(ours) == 1
    o = ours[0]
    assert o["dur_ns"] >= 0 and o["sec"] > 0 and 0 <= o["nsec"] < 10**9
    for key in ("dur_ns", "sec", "nsec"):
        del o[key]
    assert o == {
        "schema": 1, "pid": t.pid, "tid": t.pid, "comm": "fdcalls", "abi": "linux",
        "syscall": "read", "code": 0,
        "args": [{"raw": 3, "decoded": f"3<{d}/data.txt>"}, {"raw": o["args"][1]["raw"], "decoded": '"hello fd\\n"'},
                 {"raw": 64, "decoded": "0x40"}],
        "paths": [], "ret": 9, "errno": None, "errno_number": None, "strerror": None,
        "fd": 3, "fd_path": f"{d}/data.txt", "ret_fd_path": None, "structs": [],
        "data": [{"fd": 3, "rw": "read", "len": 9, "data": base64.b64encode(b"hello fd\n").decode(),
                  "truncated": False}],
        "signals": [], "unfinished": False, "resumed": False,
    }  # fmt: skip
    failed = subprocess.run([*PYKDUMP, "-f", str(t.path), "--calls", "--json", "--errno=ENOTDIR"],
                            capture_output=True, timeout=TIMEOUT, check=True)  # fmt: skip
    (o,) = [json.loads(line) for line in failed.stdout.splitlines()]
    assert (o["syscall"], o["paths"], o["ret"], o["errno"], o["errno_number"], o["strerror"], o["fd_path"]) == (
        "openat", [f"{d}/data.txt/x"], -1, "ENOTDIR", 20, "Not a directory", None)


def test_filters_select_whole_calls_in_record_text(fdtrace: FdTrace) -> None:
    t, d, h = fdtrace, fdtrace.dir, head(fdtrace.pid)
    lines, _ = kdump(t, "-e", "trace=openat", "--failed", f"--path={d}/*")
    flags = arg("openat", [0, 0, 0], 2)
    assert lines == [
        f"{h}CALL  openat(AT_FDCWD,PTR,{flags})",
        f'{h}NAMI  "{d}/missing"',
        f"{h}RET   openat -1 errno 2 No such file or directory",
        f"{h}CALL  openat(AT_FDCWD,PTR,{flags})",
        f'{h}NAMI  "{d}/data.txt/x"',
        f"{h}RET   openat -1 errno 20 Not a directory",
    ]


def test_errno_successful_fd_and_pids(fdtrace: FdTrace) -> None:
    t, d, h = fdtrace, fdtrace.dir, head(fdtrace.pid)
    child = child_pid(t)
    lines, _ = kdump(t, "--calls", "--errno=ENOTDIR,EISDIR")
    assert lines == [f'{h}openat(AT_FDCWD,"{d}/data.txt/x",{arg("openat", [0, 0, 0], 2)}) = -1 ENOTDIR (Not a directory)']
    lines, _ = kdump(t, "--calls", "--successful", "-e", "trace=dup*")
    assert lines == [f"{h}dup2(3<{d}/data.txt>,{arg('dup2', [3, 10], 1)}) = 10<{d}/data.txt>"]
    lines, _ = kdump(t, "--calls", "--fd=10")
    assert lines == [
        f"{h}dup2(3<{d}/data.txt>,{arg('dup2', [3, 10], 1)}) = 10<{d}/data.txt>",
        f'{head(child)}pread64(10<{d}/data.txt>,"hello",0x5,0) = 5',
        f'{h}pread64(10<{d}/data.txt>,"hello",0x5,0) = 5',
    ]
    lines, _ = kdump(t, "--calls", "-e", "trace=pread64", "-p", str(child))
    assert lines == [f'{head(child)}pread64(10<{d}/data.txt>,"hello",0x5,0) = 5']
    lines, _ = kdump(t, "--calls", "-e", "trace=pread64", "--fd=10", "-p", str(child), "-p", str(t.pid))
    assert lines == [f'{head(child)}pread64(10<{d}/data.txt>,"hello",0x5,0) = 5',
                          f'{h}pread64(10<{d}/data.txt>,"hello",0x5,0) = 5']  # fmt: skip


def test_classes_comm_and_unknown_names(fdtrace: FdTrace) -> None:
    t, d, h = fdtrace, fdtrace.dir, head(fdtrace.pid)
    lines, err = kdump(t, "--calls", "-e", "trace=%net,nosuchcall", "--comm=fdcalls")
    assert err == "pykdump: warning: no such syscall: nosuchcall\n"
    assert lines == [
        f"{h}socket({arg('socket', [1, 0x80001, 0], 0)},{arg('socket', [1, 0x80001, 0], 1)},0)"
        f" = 3<socket:[AF_UNIX]>",
        f"{h}bind(3<socket:[AF_UNIX]>,PTR,0x6e) = 0",
        f"{h}listen(3<socket:[AF_UNIX:{d}/sock]>,0x1) = 0",
    ]
    lines, _ = kdump(t, "--calls", "--comm=pyk*", "-e", "trace=execve")
    assert lines == [f'{head(t.pid, "pyktrace")}execve("{t.prog}",PTR,PTR) = 0']
    lines, _ = kdump(t, "--calls", "-e", "trace=@desc,!%file,!read,!pread64,!mmap,!close", "--path", f"{d}/*")
    assert lines == [
        f"{h}dup2(3<{d}/data.txt>,{arg('dup2', [3, 10], 1)}) = 10<{d}/data.txt>",
        f"{h}fcntl(3<{d}/data.txt>,{arg('fcntl', [3, 1030, 20], 1)},{arg('fcntl', [3, 1030, 20], 2)})"
        f" = 20<{d}/data.txt>",
    ]


def test_time_window_and_summary(fdtrace: FdTrace) -> None:
    t, d, h = fdtrace, fdtrace.dir, head(fdtrace.pid)
    proc = subprocess.run([*PYKDUMP, "-f", str(t.path), "--calls", "--json"], capture_output=True,
                          timeout=TIMEOUT, check=True)  # fmt: skip
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    dup = next(o for o in objs if o["syscall"] == "dup2")
    from ktrace_cli.format.reader import iter_records

    first = next(iter(iter_records(str(t.path))))  # the file's first record, shown or not
    start = {"sec": first.sec, "nsec": first.nsec}
    at = f"{dup['sec']}.{dup['nsec']:09d}"
    rel_ns = (dup["sec"] - start["sec"]) * 10**9 + dup["nsec"] - start["nsec"]
    rel = f"+{rel_ns // 10**9}.{rel_ns % 10**9:09d}"
    dup_line = f"{h}dup2(3<{d}/data.txt>,{arg('dup2', [3, 10], 1)}) = 10<{d}/data.txt>"
    assert kdump(t, "--calls", f"--since={at}", f"--until={at}")[0] == [dup_line]
    assert kdump(t, "--calls", f"--since={rel}", f"--until={rel}")[0] == [dup_line]
    lines, _ = kdump(t, "--summary", "--errno=ENOENT", f"--path={d}/*")
    assert lines[:5] == [
        f"process {t.pid} (fdcalls)",
        "syscall                      calls    errors    total (s)     avg (us)",
        "------------------------ --------- --------- ------------ ------------",
        lines[3],
        "------------------------ --------- --------- ------------ ------------",
    ]
    assert lines[3].split()[:3] == ["openat", "1", "1"]
    proc = subprocess.run([*PYKDUMP, "-f", str(t.path), "--json", "-e", "trace=dup2"], capture_output=True,
                          timeout=TIMEOUT, check=True)  # fmt: skip
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(o["type"], o["syscall"], o.get("args"), o.get("retval")) for o in objs] == [
        ("CALL", "dup2", [3, 10], None), ("RET", "dup2", None, 10)]


def test_bad_filter_values_are_one_line_errors(fdtrace: FdTrace) -> None:
    for args, message in [
        (("-e", "trace=%nosuch"), "pykdump: unknown syscall class: %nosuch\n"),
        (("--since", "yesterday"), "pykdump: --since: not a time in seconds: yesterday\n"),
        (("--fd", "x"), "pykdump: --fd: not a descriptor number: x\n"),
        (("--failed", "--successful"), "pykdump: --failed and --successful select no call together\n"),
        (("-e", "verbose=all"), "pykdump: unknown -e qualifier: verbose\n"),
    ]:
        proc = subprocess.run([*PYKDUMP, "-f", str(fdtrace.path), *args], capture_output=True, timeout=TIMEOUT)
        assert (proc.returncode, proc.stdout, proc.stderr.decode()) == (1, b"", message)

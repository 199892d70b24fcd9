"""--tree and --errors on traces built with the writer, and on real FreeBSD files."""

from __future__ import annotations

import json
from pathlib import Path

from ktrace_cli.format import constants as K
from ktrace_cli.format.records import (
    Namei,
    ProcCtor,
    ProcDtor,
    Psig,
    Strings,
    Struct,
    Syscall,
    Sysret,
)
from ktrace_cli.views import noise
from tests.kdump_helpers import LINUX64, rec, run_pykdump, run_pykdump_args

REAL = Path(__file__).parent.parent / "fixtures" / "real"
EXECVE, CLONE, EXIT_GROUP, OPENAT, IOCTL, LGETXATTR, CONNECT, WRITE = 59, 56, 231, 257, 16, 192, 42, 1
T0 = 1700000000


class Clock:
    """Records 1 ms apart, in the order they are made."""

    def __init__(self) -> None:
        self.ms = 0

    def __call__(self, payload: object, pid: int, comm: str = "sh", tid: int | None = None) -> object:
        self.ms += 1
        return rec(payload, pid=pid, comm=comm, tid=tid if tid is not None else pid,  # type: ignore[arg-type]
                   sec=T0, frac=self.ms * 1_000_000)  # fmt: skip


def call(t: Clock, pid: int, code: int, args: tuple[int, ...], error: int = 0, retval: int = 0,
         parts: tuple[object, ...] = (), comm: str = "sh", ret_comm: str | None = None) -> list[object]:  # fmt: skip
    return [t(Syscall(code, args), pid, comm), *(t(p, pid, comm) for p in parts),
            t(Sysret(code, error, retval if not error else -1), pid, ret_comm or comm)]  # fmt: skip


def family(t: Clock) -> list[object]:
    """make (100) runs `sh -c 'cc x.c'` (101), which forks 102, killed by SIGSEGV; make exits 2."""
    out: list[object] = [t(ProcCtor(LINUX64), 100, "make")]
    out += call(t, 100, EXECVE, (1, 2, 3), K.EJUSTRETURN,
                parts=(Namei(b"/usr/bin/make"), Strings([b"make", b"all"])), comm="pyktrace", ret_comm="make")  # fmt: skip
    out += [t(Syscall(CLONE, (0x1200011, 0, 0, 0, 0)), 100, "make"), t(ProcCtor(LINUX64), 101, "make"),
            t(Sysret(CLONE, 0, 0), 101, "make"), t(Sysret(CLONE, 0, 101), 100, "make")]  # fmt: skip
    # execvp: two PATH misses, then the hit.
    out += call(t, 101, EXECVE, (1, 2, 3), 2, parts=(Namei(b"/usr/local/bin/sh"),), comm="make")
    out += call(t, 101, EXECVE, (1, 2, 3), 2, parts=(Namei(b"/opt/other/cc"),), comm="make")
    out += call(t, 101, EXECVE, (1, 2, 3), K.EJUSTRETURN,
                parts=(Namei(b"/bin/sh"), Strings([b"sh", b"-c", b"cc x.c"])), comm="make")  # fmt: skip
    out += call(t, 101, OPENAT, (0xFFFFFF9C, 1, 0), 2, parts=(Namei(b"/usr/lib/locale/C.utf8/LC_CTYPE"),))
    out += call(t, 101, IOCTL, (0, 0x5401, 0), 25)
    out += call(t, 101, LGETXATTR, (1, 2, 3, 4), 87, parts=(Namei(b"x.c"),))
    nscd = bytes([23, 1]) + b"/var/run/nscd/socket\0"
    out += call(t, 101, CONNECT, (3, 1, 110), 2, parts=(Struct(b"sockaddr", nscd),))
    out += [t(Syscall(CLONE, (0x1200011, 0, 0, 0, 0)), 101), t(Sysret(CLONE, 0, 102), 101),
            t(ProcCtor(LINUX64), 102), t(Sysret(CLONE, 0, 0), 102)]  # fmt: skip
    out += call(t, 102, OPENAT, (0xFFFFFF9C, 1, 0), 13, parts=(Namei(b"/root/secret"),))
    out += [t(Psig(11, 0, 1), 102), t(ProcDtor(), 102)]
    out += [t(Syscall(EXIT_GROUP, (1,)), 101), t(ProcDtor(), 101)]
    out += call(t, 100, WRITE, (2, 1, 5), 32, comm="make")
    out += [t(Syscall(EXIT_GROUP, (2,)), 100, "make"), t(ProcDtor(), 100, "make")]
    return out


def test_tree_text_from_args_records(tmp_path: Path) -> None:
    res = run_pykdump(tmp_path, family(Clock()), "--tree")  # type: ignore[arg-type]
    assert res.status == 0, res.err
    assert res.text.splitlines() == [
        "100 make all  [exit 2]  +0.000000s  wall 0.044000s  4 calls",
        "  101 sh -c 'cc x.c'  [exit 1]  +0.006000s  wall 0.034000s  10 calls",
        "    102 sh -c 'cc x.c'  [killed by SIGSEGV]  +0.032000s  wall 0.006000s  2 calls",
    ]


def test_tree_json(tmp_path: Path) -> None:
    doc = json.loads(run_pykdump(tmp_path, family(Clock()), "--tree", "--json").out)  # type: ignore[arg-type]
    [make] = doc["processes"]
    [sh] = make["children"]
    [child] = sh["children"]
    assert make["execs"] == [{"ns": T0 * 10**9 + 5_000_000, "path": "/usr/bin/make", "argv": ["make", "all"]}]
    assert (sh["pid"], sh["ppid"], sh["argv"], sh["failed"], sh["threads"]) == (101, 100, ["sh", "-c", "cc x.c"], 6, 1)
    assert (child["status"], child["signal"], child["exit_status"], child["end_ns"]) == (
        "killed by SIGSEGV", "SIGSEGV", None, T0 * 10**9 + 39_000_000)  # fmt: skip


def test_errors_collapse_noise_and_put_last_failures_first(tmp_path: Path) -> None:
    res = run_pykdump(tmp_path, family(Clock()), "--errors")  # type: ignore[arg-type]
    assert res.text.splitlines() == [
        "process 100 make all  [exit 2]",
        "  last unexpected failures before its end:",
        "    +0.041000s  write EPIPE  -",
        "  failed calls:",
        "         1  write EPIPE  -",
        "",
        "process 101 sh -c 'cc x.c'  [exit 1]",
        "  last unexpected failures before its end:",
        "    +0.012000s  execve ENOENT  /opt/other/cc",
        "  failed calls:",
        "         1  execve ENOENT  /opt/other/cc",
        "  expected: 5 (execvp PATH search 1, isatty probe 1, locale lookup 1, nscd connect 1, xattr probe 1)",
        "",
        "process 102 sh -c 'cc x.c'  [killed by SIGSEGV]",
        "  last unexpected failures before its end:",
        "    +0.034000s  openat EACCES  /root/secret",
        "  failed calls:",
        "         1  openat EACCES  /root/secret",
    ]


def test_noise_rules_are_data() -> None:
    labels = [row[0] for row in noise.NOISE]
    assert labels[:1] == ["execvp PATH search"] and len(set(labels)) == len(labels)
    assert noise.match("openat", "ENOENT", "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libc.so.6").label == (  # type: ignore[union-attr]
        "dynamic loader search")  # fmt: skip
    assert noise.match("openat", "ENOENT", "/etc/hosts") is None
    assert noise.match("ioctl", "EBADF", None) is None


def test_freebsd_trees() -> None:
    out = run_pykdump_args("-f", str(REAL / "freebsd-i386-v0-rkhack" / "ktrace.out"), "--tree").text
    assert out == "1077 /bin/ls  [exit 0]  +0.000000s  wall 0.013475s  109 calls\n"
    out = run_pykdump_args("-f", str(REAL / "freebsd-amd64-v1-mcsh" / "ktrace.out"), "--tree").text
    assert out.splitlines() == [
        "56520 [mcsh]  [exit 1]  +0.000000s  wall 0.002442s  304 calls",
        "  56521 [mcsh]  [running]  +0.001963s  wall 0.000000s  0 calls",
    ]
    out = run_pykdump_args("-f", str(REAL / "freebsd-i386-v0-nfsp" / "ktrace.out"), "--tree").text
    assert out == "17990 MainNFSD/proxy.ganesha.nfsd  [killed by SIGINT]  +0.000000s  wall 7.681012s  576 calls\n"


def test_freebsd_errors() -> None:
    out = run_pykdump_args("-f", str(REAL / "freebsd-i386-v0-rkhack" / "ktrace.out"), "--errors").text
    assert out.splitlines() == [
        "process 1077 /bin/ls  [exit 0]",
        "  expected: 3 (dynamic loader search 1, execvp PATH search 1, malloc options probe 1)",
    ]


def test_view_options_are_exclusive(tmp_path: Path) -> None:
    cases = {
        ("--tree", "--errors"): "--tree and --errors cannot be combined",
        ("--tree", "--summary"): "--tree and --summary cannot be combined",
        ("--errors", "--calls"): "--errors and --calls cannot be combined",
        ("--tree", "-l"): "--tree and -l cannot be combined",
        ("--histogram",): "--detail, --histogram and --sort go with --summary",
        ("--timeline", "x.json", "--json"): "--timeline writes JSON itself: --json does not apply",
    }
    for args, message in cases.items():
        res = run_pykdump(tmp_path, family(Clock()), *args)  # type: ignore[arg-type]
        lines = res.err.splitlines()
        assert res.status == 1 and lines[0] == f"pykdump: {message}" and lines[1].startswith("usage: pykdump"), args
    assert not (tmp_path / "x.json").exists()


def test_damaged_file_gets_the_view_then_the_error(tmp_path: Path) -> None:
    from tests.kdump_helpers import trace_bytes

    data = trace_bytes(family(Clock()))  # type: ignore[arg-type]
    res = run_pykdump(tmp_path, data[: -64 - 5], "--tree")  # into the last CALL's arguments
    assert res.status == 1
    assert res.text.startswith("100 make all  [running]")
    assert res.err.count("\n") == 1 and res.err.startswith("pykdump: ")
    missing = run_pykdump_args("-f", str(tmp_path / "nope.out"), "--errors")
    assert (missing.status, missing.err) == (1, f"pykdump: {tmp_path / 'nope.out'}: No such file or directory\n")


def test_colour_on_request_and_other_systems_refused(tmp_path: Path) -> None:
    import re

    tree = run_pykdump(tmp_path, family(Clock()), "--tree", "--color=always").text  # type: ignore[arg-type]
    assert "\x1b[31m[killed by SIGSEGV]" in tree
    # rich draws ASCII guides on this latin-1 test stdout (box characters on a UTF-8 terminal).
    # Lines longer than the console (80 columns off a terminal) wrap.
    assert [line.rstrip() for line in re.sub(r"\x1b\[[0-9;]*m", "", tree).splitlines()] == [
        "processes",
        "`-- 100 make all  [exit 2]  +0.000000s  wall 0.044000s  4 calls",
        "    `-- 101 sh -c 'cc x.c'  [exit 1]  +0.006000s  wall 0.034000s  10 calls",
        "        `-- 102 sh -c 'cc x.c'  [killed by SIGSEGV]  +0.032000s  wall 0.006000s",
        "            2 calls",
    ]
    errors = run_pykdump(tmp_path, family(Clock()), "--errors", "--color=always").text  # type: ignore[arg-type]
    assert "\x1b[" in errors and "write EPIPE" in errors
    openbsd = run_pykdump_args("-f", str(REAL / "openbsd-amd64-pg" / "ktrace.out"), "--tree")
    assert (openbsd.status, openbsd.out) == (1, b"")
    assert openbsd.err == "pykdump: not a FreeBSD trace file: looks like OpenBSD ktrace\n"


def test_output_errors_name_stdout(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.kdump_helpers import trace_bytes

    path = tmp_path / "t.out"
    path.write_bytes(trace_bytes(family(Clock())))  # type: ignore[arg-type]
    pykdump = [sys.executable, "-m", "ktrace_cli.cli.pykdump"]
    for args in (["--tree", "-f", str(path)], ["--errors", "--json", "-f", str(path)],
                 ["--timeline", "-", "-f", str(path)], ["--diff", str(path), str(path)]):  # fmt: skip
        with open("/dev/full", "wb") as full:
            out = subprocess.run(pykdump + args, stdout=full, stderr=subprocess.PIPE, timeout=60)
        assert (out.returncode, out.stderr) == (1, b"pykdump: stdout: No space left on device\n"), args


def test_terminal_escaping_of_what_programs_chose(tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    from ktrace_cli.views.safe import terminal_line
    from tests.kdump_helpers import trace_bytes

    assert terminal_line("open \x1b]0;x\x07 café") == "open \\^[]0;x\\^G café"
    assert terminal_line("a\udcffb") == "a\\M-^?b"  # vis(3) of the byte 0xff
    t = Clock()
    records = [t(ProcCtor(LINUX64), 100)]
    records += call(t, 100, OPENAT, (0xFFFFFF9C, 1, 0), 2, parts=(Namei(b"/tmp/\x1b[2Jgone"),))
    records += [t(Syscall(EXIT_GROUP, (1,)), 100), t(ProcDtor(), 100)]
    path = tmp_path / "t.out"
    path.write_bytes(trace_bytes(records))  # type: ignore[arg-type]
    master, slave = pty.openpty()
    proc = subprocess.run([sys.executable, "-m", "ktrace_cli.cli.pykdump", "-f", str(path), "--errors",
                           "--color=never"], stdout=slave, stderr=subprocess.PIPE, timeout=60)  # fmt: skip
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert proc.returncode == 0 and b"\x1b" not in shown
    assert b"openat ENOENT  /tmp/\\^[[2Jgone" in shown
    # Off a terminal the bytes are the program's own.
    assert "/tmp/\x1b[2Jgone" in run_pykdump_args("-f", str(path), "--errors").text

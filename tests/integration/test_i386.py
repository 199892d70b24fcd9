"""int $0x80 calls are recorded under FreeBSD's linux32 ABI (progs/i386.s, i386pipe.s, int80.c).

A static i386 program and a 64-bit program issuing `int $0x80` are traced;
the tests assert the stored PROCCTOR flags and syscall records, and
pykdump's lines for them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, FDPAIR, FDPAIR_PIPE
from ktrace_cli.format.reader import iter_records
from ktrace_cli.format.records import ProcCtor

from .conftest import (
    TIMEOUT,
    assert_attached,
    kdump_lines,
    line_body,
    requested_interpreter,
    tracer,
)

pytestmark = pytest.mark.both_engines

# FreeBSD's linux32 sysentvec on amd64: Linux ABI, ILP32, IA32, shared page,
# timekeep, SIG_DISCIGN, SIG_WAITNDQ.
SV_LINUX32 = 0x3 | 0x100 | 0x4000 | 0x10000 | 0x40000 | 0x200000 | 0x400000
SV_LINUX64 = 0x3 | 0x200
NR32_EXIT, NR32_WRITE, NR32_OPEN, NR32_GETPID, NR32_PIPE = 1, 4, 5, 20, 42
_DURATION = re.compile(r" <\d+\.\d{6}>$")


def _symbol(program: Path, name: str) -> int:
    out = subprocess.run(["nm", str(program)], capture_output=True, text=True, check=True).stdout
    return next(int(f[0], 16) for f in map(str.split, out.splitlines()) if f[-1] == name)


def _ctors(t) -> list[int]:  # type: ignore[no-untyped-def]
    return [p.sv_flags for r, p in t.payloads(K.KTR_PROCCTOR) if r.pid == t.pid]


def test_static_i386_program(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "missing"
    path = tmp_path / "ktrace.out"
    t = trace([str(progs / "i386"), str(missing)], trfile=path)
    assert (t.returncode, t.stdout) == (0, b"hi\n")
    # pyktrace's process (x86_64) until its exec, then linux32 from the image's first call.
    assert _ctors(t) == [SV_LINUX64, SV_LINUX64, SV_LINUX32]
    calls = [(p.code, p.args) for r, p in t.payloads(K.KTR_SYSCALL) if r.comm_name == b"i386"]
    msg = _symbol(progs / "i386", "msg")
    argv1 = calls[2][1][0]
    assert calls == [(NR32_GETPID, ()), (NR32_WRITE, (1, msg, 3)), (NR32_OPEN, (argv1, 0, 0)),
                     (NR32_EXIT, (0,))]  # fmt: skip
    assert 0 < argv1 < 1 << 32
    lines = [line_body(line) for line in kdump_lines(path, "-A")]
    at = lines.index("RET   L64  execve JUSTRETURN")
    assert lines[at + 1:] == [
        "CALL  L32  getpid",
        f"RET   L32  getpid {t.pid}/{t.pid:#x}",
        f"CALL  L32  write(0x1,{msg:#x},0x3)",
        "GIO   L32  fd 1 wrote 3 bytes",
        '"hi',
        '"',
        "RET   L32  write 3",
        f"CALL  L32  open({argv1:#x},0<O_RDONLY>)",
        f'NAMI  L32  "{missing}"',
        "RET   L32  open -1 errno 2 No such file or directory",
        "CALL  L32  exit(0)",
    ]
    # FreeBSD's kdump prints the same numbers (its linux32 names carry a linux_ prefix).
    assert line_body(kdump_lines(path, "-n")[-1]) == "CALL  exit(0)"


def test_int80_from_a_64bit_program(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ktrace.out"
    t = trace([str(progs / "int80")], trfile=path)
    assert t.returncode == 0
    out = t.stdout.split(b"\n")
    assert out[:2] == [b"i386", b"i386"]
    assert out[2] == f"pid={t.pid:07d} getpid32={t.pid:07d}".encode()
    # Switched to linux32 for the two int $0x80 calls, and back for the next x86_64 one.
    assert _ctors(t) == [SV_LINUX64, SV_LINUX64, SV_LINUX32, SV_LINUX64]
    lines = [line_body(line) for line in kdump_lines(path, "-A")]
    at = lines.index("CALL  L32  getpid")
    low = int(lines[at + 2].split(",")[1], 16)
    assert 0 < low < 1 << 32
    assert lines[at - 1 : at + 12] == [
        f"RET   L64  mmap {low}/{low:#x}",
        "CALL  L32  getpid",
        f"RET   L32  getpid {t.pid}/{t.pid:#x}",
        f"CALL  L32  write(0x1,{low:#x},0x5)",
        "GIO   L32  fd 1 wrote 5 bytes",
        '"i386',
        '"',
        "RET   L32  write 5",
        f"CALL  L64  write(0x1,{low:#x},0x5)",
        "GIO   L64  fd 1 wrote 5 bytes",
        '"i386',
        '"',
        "RET   L64  write 5",
    ]
    assert not [line for line in lines[at + 12 :] if " L32 " in line]


def test_i386_pipe_names_its_descriptors(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ktrace.out"
    t = trace([str(progs / "i386pipe")], trfile=path)
    assert t.returncode == 0
    pairs = [r.payload for r in t.records if r.type == K.KTR_STRUCT and r.payload.startswith(b"fdpair\0")]
    assert len(pairs) == 1
    fd0, fd1, kind, family, ino0, ino1 = FDPAIR.unpack(pairs[0][len(b"fdpair\0") :])
    assert (fd0, fd1, kind, family) == (3, 4, FDPAIR_PIPE, 0) and ino0 == ino1 > 0
    fds = _symbol(progs / "i386pipe", "fds")
    msg = _symbol(progs / "i386pipe", "msg")
    lines = [line_body(line) for line in kdump_lines(path, "--calls", "-e", "pipe,write")]
    assert [_DURATION.sub("", line) for line in lines[-2:]] == [
        f"pipe([3<pipe:[{ino0}]>,4<pipe:[{ino0}]>]) = 0",
        f'write(4<pipe:[{ino0}]>,"hi",0x2) = 2',
    ]
    calls = [(p.code, p.args) for r, p in t.payloads(K.KTR_SYSCALL) if r.comm_name == b"i386pipe"]
    assert calls == [(NR32_PIPE, (fds,)), (NR32_WRITE, (4, msg, 2)), (NR32_EXIT, (0,))]


@pytest.mark.ptrace_only("about the seccomp filter of ptrace stops")
def test_i386_program_under_the_seccomp_filter(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The filter selects x86_64 numbers; every i386 call goes to the engine, none fails.
    missing = tmp_path / "missing"
    path = tmp_path / "ktrace.out"
    t = trace([str(progs / "i386"), str(missing)], ["-t", "n", "--seccomp=on"], trfile=path)
    assert (t.returncode, t.stdout) == (0, b"hi\n")
    names = [p.path for r, p in t.payloads(K.KTR_NAMEI) if r.comm_name == b"i386"]
    assert names == [str(missing).encode()]
    assert _ctors(t)[-1] == SV_LINUX32
    assert [line_body(line) for line in kdump_lines(path, "-A")][-1] == f'NAMI  L32  "{missing}"'


def test_i386_signal_is_recorded_as_for_x86_64(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ktrace.out"
    t = trace([str(progs / "i386sig")], trfile=path)
    assert t.returncode == 1  # the handler ran
    handler = _symbol(progs / "i386sig", "handler")
    act = _symbol(progs / "i386sig", "act")
    # FreeBSD's SIGUSR1 (30) and SI_USER, as for an x86_64 process; the handler
    # read from the i386 struct sigaction.
    assert [(p.signo, p.action, p.code) for _, p in t.payloads(K.KTR_PSIG)] == [(30, handler, 0x10001)]
    assert [(p.error, p.retval) for _, p in t.payloads(K.KTR_SYSRET) if p.code == 173] == [
        (K.EJUSTRETURN, 0)]  # fmt: skip
    lines = [line_body(line) for line in kdump_lines(path, "-A")]
    at = lines.index("RET   L64  execve JUSTRETURN")
    assert lines[at + 1:] == [
        f"CALL  L32  rt_sigaction(SIGUSR1,{act:#x},0,0x8)",
        "STRU  L32  l_sigset_t [ SIGUSR2 ]",  # the mask at offset 12 of the i386 struct
        "RET   L32  rt_sigaction 0",
        "CALL  L32  getpid",
        f"RET   L32  getpid {t.pid}/{t.pid:#x}",
        f"CALL  L32  kill({t.pid},SIGUSR1)",
        "RET   L32  kill 0",
        f"PSIG  L32  SIGUSR1 caught handler={handler:#x} mask=0x0 code=SI_USER",
        "CALL  L32  rt_sigreturn",
        "RET   L32  rt_sigreturn JUSTRETURN",
        "CALL  L32  exit(0x1)",
    ]


@pytest.mark.bpf_xfail("the bpf engine writes no NAMI for the PT_INTERP an exec opens (docs/DESIGN.md, eBPF backend, Exec)")
def test_i386_program_execs_a_64bit_one(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data.txt"
    data.write_bytes(b"hello\n")
    basic = progs / "basic"  # x86_64, dynamically linked: prints argv[1]'s file, exits 3
    path = tmp_path / "ktrace.out"
    t = trace([str(progs / "i386exec"), str(basic), str(data)], ["-t", "cnae"], trfile=path)
    assert (t.returncode, t.stdout) == (3, b"hello\n")
    # The exec's RET stays under linux32 (its call was i386); basic's first call switches back.
    assert _ctors(t) == [SV_LINUX64, SV_LINUX64, SV_LINUX32, SV_LINUX32, SV_LINUX64]
    lines = [line_body(line) for line in kdump_lines(path, "-A", "-t", "cna")]
    at = lines.index("RET   L64  execve JUSTRETURN")
    call = lines[at + 1]
    assert call.startswith("CALL  L32  execve(0x")
    assert lines[at + 2 : at + 6] == [
        f'ARGS  L32  "{basic}", "{data}"',  # argv read as 4-byte pointers
        f'NAMI  L32  "{basic}"',
        f'NAMI  L32  "{requested_interpreter(basic)}"',
        "RET   L32  execve JUSTRETURN",
    ]
    assert lines[at + 6].startswith("CALL  L64  ")
    assert not [line for line in lines[at + 6 :] if " L32 " in line]


def test_attach_to_a_running_i386_loop_then_clear(progs, kt, tmp_path: Path, engine: str) -> None:  # type: ignore[no-untyped-def]
    echo = subprocess.Popen([str(progs / "i386echo")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert echo.stdin is not None and echo.stdout is not None

    def ping(byte: bytes) -> None:
        echo.stdin.write(byte)  # type: ignore[union-attr]
        echo.stdin.flush()  # type: ignore[union-attr]
        assert echo.stdout.read(1) == byte  # type: ignore[union-attr]

    ping(b"a")  # running, and back in its read: not traced yet
    kt("-t", "cis", "-p", echo.pid)
    assert_attached(echo.pid, engine)
    ping(b"b")
    kt("-a", "-t", "cis", "-p", echo.pid)  # set again: its new PROCCTOR keeps linux32
    ping(b"d")
    kt("-c", "-p", echo.pid)
    assert tracer(echo.pid) == 0
    ping(b"c")  # runs on untraced
    echo.stdin.close()
    assert echo.wait(timeout=TIMEOUT) == 0
    path = tmp_path / "ktrace.out"
    ctors = [ProcCtor.unpack(AMD64, r.payload).sv_flags for r in iter_records(str(path))
             if r.type == K.KTR_PROCCTOR]  # fmt: skip
    # At the attach, at its first i386 stop, at the second request.
    assert ctors == [SV_LINUX64, SV_LINUX32, SV_LINUX32]
    buf = _symbol(progs / "i386echo", "buf")
    lines = [line_body(line) for line in kdump_lines(path, "-A")]
    # The ptrace engine's attach interrupts the read it waits in; the kernel
    # runs it again, from its entry, which is recorded. The bpf engine's does
    # not: the read goes on, and its entry was before the attach.
    first = [f"CALL  L32  read(0,{buf:#x},0x1)"] if engine == "ptrace" else []
    assert lines == [
        *first,
        'GIO   L32  fd 0 read 1 byte',
        '"b"',
        "RET   L32  read 1",
        f"CALL  L32  write(0x1,{buf:#x},0x1)",
        "GIO   L32  fd 1 wrote 1 byte",
        '"b"',
        "RET   L32  write 1",
        f"CALL  L32  read(0,{buf:#x},0x1)",
        'GIO   L32  fd 0 read 1 byte',
        '"d"',
        "RET   L32  read 1",
        f"CALL  L32  write(0x1,{buf:#x},0x1)",
        "GIO   L32  fd 1 wrote 1 byte",
        '"d"',
        "RET   L32  write 1",
        f"CALL  L32  read(0,{buf:#x},0x1)",
    ]

"""pyktrace records Linux processes as FreeBSD's Linuxulator would (progs/linuxulator.c).

Each test asserts the stored values, pykdump's Linux text, and what a reader
with FreeBSD's tables alone (FreeBSD's kdump) makes of the same records.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from ktrace_cli.abi import freebsd, linux
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.records import ProcCtor, Sysret
from ktrace_cli.format.writer import encode_record

from .conftest import kdump_lines, line_body, requested_interpreter

pytestmark = pytest.mark.both_engines

SV_FREEBSD64 = K.SV_ABI_FREEBSD | K.SV_LP64
SIGUSR1, SIGALRM, SIGFPE = 30, 14, 8  # FreeBSD numbers, as PSIG stores them


def _run(trace, progs, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "ktrace.out"
    t = trace([str(progs / "linuxulator")], options=["-t", "cns+"], trfile=path)
    assert t.returncode == -signal.SIGFPE
    handler = int(t.stdout.split(b"handler=")[1].split()[0], 16)
    return t, path, handler


def _as_freebsd(records, path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same records, with every process declared a native FreeBSD amd64 one."""
    with open(path, "wb") as f:
        for r in records:
            if r.type == K.KTR_PROCCTOR:
                r.payload = ProcCtor(SV_FREEBSD64).pack(AMD64)
            f.write(encode_record(r))


def test_psig_code_is_freebsds(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    t, path, handler = _run(trace, progs, tmp_path)
    psigs = [(p.signo, p.code) for _, p in t.payloads(K.KTR_PSIG)]
    # kill, sigqueue, raise (tgkill), SIGPWR, glibc's SIGRTMIN+2 (Linux 36), the itimer,
    # the division by zero
    assert psigs == [(SIGUSR1, 0x10001), (SIGUSR1, 0x10002), (SIGUSR1, 0x10007), (65, 0x10001),
                     (70, 0x10001), (SIGALRM, 0x10006), (SIGFPE, 2)]  # fmt: skip
    lines = [line.split(None, 2)[2] for line in kdump_lines(path) if " PSIG " in line]
    caught = f"caught handler=0x{handler:x}"
    assert lines == [
        f"PSIG  SIGUSR1 {caught} mask=0x0 code=SI_USER",
        f"PSIG  SIGUSR1 {caught} mask=0x0 code=SI_QUEUE",
        f"PSIG  SIGUSR1 {caught} mask=0x0 code=SI_TKILL",
        f"PSIG  SIGPWR {caught} mask=0x0 code=SI_USER",
        f"PSIG  SIGRT4 {caught} mask=0x0 code=SI_USER",
        f"PSIG  SIGALRM {caught} mask=0x2000 code=SI_KERNEL",
        "PSIG  SIGFPE SIG_DFL code=FPE_INTDIV",
    ]
    # FreeBSD's kdump: its own sysdecode_sigcode() table, whatever the ABI.
    assert [freebsd.sigcode_name(s, c) for s, c in psigs] == [
        "SI_USER", "SI_QUEUE", "SI_LWP", "SI_USER", "SI_USER", "SI_KERNEL", "FPE_INTDIV"]  # fmt: skip
    native = tmp_path / "native.out"
    _as_freebsd(t.records, native)
    lines = [line.split(None, 2)[2] for line in kdump_lines(native) if " PSIG " in line]
    assert lines == [
        f"PSIG  SIGUSR1 {caught} mask=0x0 code=SI_USER",
        f"PSIG  SIGUSR1 {caught} mask=0x0 code=SI_QUEUE",
        f"PSIG  SIGUSR1 {caught} mask=0x0 code=SI_LWP",
        f"PSIG  SIGRT0 {caught} mask=0x0 code=SI_USER",  # FreeBSD's names for what the
        f"PSIG  SIGRT5 {caught} mask=0x0 code=SI_USER",  # Linuxulator stores
        f"PSIG  SIGALRM {caught} mask=0x2000 code=SI_KERNEL",
        "PSIG  SIGFPE SIG_DFL code=FPE_INTDIV",
    ]


def test_rt_sigreturn_returns_justreturn(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    t, path, _ = _run(trace, progs, tmp_path)
    nr = linux.syscall_number("rt_sigreturn")
    rets = [(p.error, p.retval) for _, p in t.payloads(K.KTR_SYSRET) if p.code == nr]
    assert rets == [(K.EJUSTRETURN, 0)] * 6  # one per caught signal
    lines = [line.split(None, 2)[2] for line in kdump_lines(path) if "rt_sigreturn" in line]
    assert lines == ["CALL  rt_sigreturn", "RET   rt_sigreturn JUSTRETURN"] * 6
    just = [line.split()[3] for line in kdump_lines(path) if line.endswith(" JUSTRETURN")]
    assert just == ["execve"] + ["rt_sigreturn"] * 6
    # FreeBSD's kdump prints EJUSTRETURN as JUSTRETURN whatever the call.
    native = tmp_path / "native.out"
    _as_freebsd(t.records, native)
    assert sum(line.endswith(" JUSTRETURN") for line in kdump_lines(native)) == len(just)


def test_interrupted_calls_return_eintr_or_restart(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # linuxulator.c: sigsuspend returns EINTR once a handler ran (FreeBSD's kern_sigsuspend too).
    _, path, handler = _run(trace, progs, tmp_path)
    lines = [line_body(line) for line in kdump_lines(path)]
    at = lines.index("RET   rt_sigsuspend -1 errno 4 Interrupted system call")
    assert lines[at + 1] == f"PSIG  SIGALRM caught handler=0x{handler:x} mask=0x2000 code=SI_KERNEL"
    # restart.c: the same read(2) interrupted without, then with SA_RESTART.
    path = tmp_path / "restart.out"
    t = trace([str(progs / "restart")], options=["-t", "cisp"], trfile=path)
    assert t.returncode == 0
    out = dict(f.split("=") for f in t.stdout.decode().split()[2:])
    assert t.stdout.split()[:2] == [b"-1", b"1"]
    quiet, feed, buf, x = (int(out[k], 16) for k in ("quiet", "feed", "byte", "x"))
    lines = [line_body(line) for line in kdump_lines(path)]
    first = lines.index(f"CALL  read(0x3,{buf:#x},0x1)")
    assert lines[first : first + 5] == [
        f"CALL  read(0x3,{buf:#x},0x1)",
        "RET   read -1 errno 4 Interrupted system call",
        f"PSIG  SIGALRM caught handler={quiet:#x} mask=0x0 code=SI_USER",
        "CALL  rt_sigreturn",
        "RET   rt_sigreturn JUSTRETURN",
    ]
    second = lines.index(f"CALL  read(0x3,{buf:#x},0x1)", first + 1)
    assert lines[second : second + 14] == [
        f"CALL  read(0x3,{buf:#x},0x1)",
        "RET   read RESTART",
        f"PSIG  SIGALRM caught handler={feed:#x} mask=0x0 code=SI_USER",
        f"CALL  write(0x4,{x:#x},0x1)",
        "GIO   fd 4 wrote 1 byte",
        '"x"',
        "RET   write 1",
        "CALL  rt_sigreturn",
        "RET   rt_sigreturn JUSTRETURN",
        f"CALL  read(0x3,{buf:#x},0x1)",
        "GIO   fd 3 read 1 byte",
        '"x"',
        "RET   read 1",
        "CALL  wait4(-1,0,0,0)",
    ]
    errors = [p.error for _, p in t.payloads(K.KTR_SYSRET) if p.code == linux.syscall_number("read")]
    assert errors[-3:] == [4, K.ERESTART, 0]  # FreeBSD's EINTR, then ERESTART and success


def test_a_call_an_ignored_signal_interrupts_goes_on_unseen(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # chldread.c: a child exits while its parent sleeps in read. FreeBSD
    # discards the SIGCHLD nobody catches; under ptrace Linux delivers it to
    # the tracer and runs the read again, which the program never sees: one
    # CALL and its RET, as the bpf engine (no ptrace) records too.
    path = tmp_path / "ktrace.out"
    t = trace([str(progs / "chldread")], options=["-t", "cis"], trfile=path)
    assert t.returncode == 0
    got, byte = t.stdout.split()
    assert got == b"1"
    buf = int(byte.removeprefix(b"byte="), 16)
    lines = [line_body(line) for line in kdump_lines(path)]
    at = lines.index(f"CALL  read(0x3,{buf:#x},0x1)")
    assert lines[at : at + 5] == [
        f"CALL  read(0x3,{buf:#x},0x1)",
        "GIO   fd 3 read 1 byte",
        '"x"',
        "RET   read 1",
        "CALL  wait4(-1,0,0,0)",
    ]
    assert not [line for line in lines if "RESTART" in line or line.startswith("PSIG")]


def test_signal_masks_are_logged_as_l_sigset_t(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ktrace.out"
    t = trace([str(progs / "linuxulator")], options=["-t", "ct"], trfile=path)
    assert t.returncode == -signal.SIGFPE
    lines = [line_body(line) for line in kdump_lines(path)]
    # The new mask once copied in, the old one handed back (the Linuxulator's order).
    at = next(i for i, line in enumerate(lines) if line.startswith("CALL  rt_sigprocmask(SIG_BLOCK,"))
    assert lines[at + 1 : at + 4] == ["STRU  l_sigset_t [ SIGALRM ]", "STRU  l_sigset_t [ empty ]",
                                      "RET   rt_sigprocmask 0"]  # fmt: skip
    at = lines.index("RET   rt_sigsuspend -1 errno 4 Interrupted system call")
    assert lines[at - 2].startswith("CALL  rt_sigsuspend(") and lines[at - 1] == "STRU  l_sigset_t [ empty ]"
    # rt_sigaction(SIGUSR1, &sa, NULL): the new action's mask only.
    at = next(i for i, line in enumerate(lines) if line.startswith("CALL  rt_sigaction(SIGUSR1,"))
    assert lines[at + 1 : at + 3] == ["STRU  l_sigset_t [ empty ]", "RET   rt_sigaction 0"]
    stru = [p for _, p in t.payloads(K.KTR_STRUCT) if p.name == b"l_sigset_t"]
    assert stru and all(len(p.data) == 8 for p in stru)


def test_new_thread_returns_zero_from_clone3(trace, progs, tmp_path: Path, engine: str) -> None:  # type: ignore[no-untyped-def]
    t, path, _ = _run(trace, progs, tmp_path)
    nr = linux.syscall_number("clone3")
    rets = [(r.pid, r.tid, p.error, p.retval) for r, p in t.payloads(K.KTR_SYSRET)
            if isinstance(p, Sysret) and p.code == nr]  # fmt: skip
    assert len(rets) == 2
    child = next(tid for _, tid, _, _ in rets if tid != t.pid)
    # The new thread's own return (written by the ptrace engine when it is
    # created; by the bpf engine when it runs, before or after the creator's
    # return), and the creator's.
    order = list if engine == "ptrace" else sorted
    assert order(rets) == order([(t.pid, child, 0, 0), (t.pid, t.pid, 0, child)])
    lines = [line.split(None, 1)[1] for line in kdump_lines(path, "-H") if "RET   clone3" in line]
    assert order(lines) == order([f"{child} linuxulator RET   clone3 0",
                                  f"{t.pid} linuxulator RET   clone3 {child}/{child:#x}"])  # fmt: skip



@pytest.mark.bpf_xfail("the bpf engine writes no NAMI for the PT_INTERP an exec opens (docs/DESIGN.md, eBPF backend, Exec)")
def test_exec_looks_up_the_script_and_elf_interpreters(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    basic = progs / "basic"  # reads its argv[1] (here: the script) to stdout, exits 3
    ld = requested_interpreter(basic)
    script = tmp_path / "script"
    script.write_bytes(b"#! %s -x\n" % bytes(basic))
    script.chmod(0o755)
    path = tmp_path / "ktrace.out"
    t = trace([str(script)], options=["-t", "cn"], trfile=path)
    assert t.returncode == 3
    lines = kdump_lines(path, "-H")
    at = next(i for i, line in enumerate(lines) if line.endswith(f'NAMI  "{script}"'))
    tid = lines[at].split()[1]
    # FreeBSD: the script, its #! interpreter (imgact_shell), that image's
    # PT_INTERP (imgact_elf), all under the comm that called exec, then the RET.
    assert [line.split(None, 1)[1] for line in lines[at : at + 4]] == [
        f'{tid} pyktrace NAMI  "{script}"',
        f'{tid} pyktrace NAMI  "{basic}"',
        f'{tid} pyktrace NAMI  "{ld}"',
        f"{tid} script   RET   execve JUSTRETURN",
    ]
    # A program run directly: its own path, then its ELF interpreter.
    t = trace([str(basic), str(script)], options=["-t", "cn"], trfile=path)
    assert t.returncode == 3
    lines = [line_body(line) for line in kdump_lines(path)]
    at = lines.index(f'NAMI  "{basic}"')
    assert lines[at : at + 3] == [f'NAMI  "{basic}"', f'NAMI  "{ld}"', "RET   execve JUSTRETURN"]

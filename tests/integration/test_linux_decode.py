"""Linux argument decoding on a real trace: progs/linux_decode.c makes one raw syscall per decoder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ktrace_cli.abi import linux
from ktrace_cli.format import constants as K

from .conftest import TIMEOUT

pytestmark = pytest.mark.both_engines

PYKDUMP = [sys.executable, "-m", "ktrace_cli.cli.pykdump"]

# Every CALL line of the program from its first mapping on, in order.  All
# pointers are in the program's mapping at 0x7e000000 and its descriptors
# are numbered from 3, so the lines are the same on every run; {pid} is
# the traced process.
EXPECTED = [
    "mmap(0x7e000000,0x10000,0x3<PROT_READ|PROT_WRITE>,0x100022<MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE>,-1,0)",
    "mprotect(0x7e008000,0x1000,0x1<PROT_READ>)",
    "madvise(0x7e008000,0x1000,MADV_DONTNEED)",
    "socket(AF_INET,0x80001<SOCK_STREAM|SOCK_CLOEXEC>,IPPROTO_TCP)",
    "setsockopt(0x3,SOL_TCP,TCP_NODELAY,0x7e000000,0x4)",
    "setsockopt(0x3,SOL_SOCKET,SO_REUSEADDR,0x7e000000,0x4)",
    "socketpair(AF_UNIX,0x1<SOCK_STREAM>,0,0x7e000040)",
    "fcntl(0x4,F_SETFL,0x800<O_RDONLY|O_NONBLOCK>)",
    "fcntl(0x4,F_SETFD,FD_CLOEXEC)",
    "fcntl(0x4,F_DUPFD_CLOEXEC,0xa)",
    "sendto(0x4,0x7e000100,0x5,0x4040<MSG_DONTWAIT|MSG_NOSIGNAL>,0,0)",
    "ioctl(0x5,FIONREAD,0x7e000200)",
    "recvfrom(0x5,0x7e000300,0x10,0x2<MSG_PEEK>,0,0)",
    "ioctl(0,TCGETS,0x7e000400)",
    "futex(0x7e000500,FUTEX_WAKE_PRIVATE,0x1,0,0,0)",
    "prctl(PR_SET_NAME,0x7e000600,0,0,0)",
    "prlimit64(0,RLIMIT_NOFILE,0,0x7e000700)",
    "rt_sigprocmask(SIG_BLOCK,0x7e000800,0,0x8)",
    "wait4(-1,0,0x1<WNOHANG>,0)",
    "statx(AT_FDCWD,0x7e000900,0x100<AT_SYMLINK_NOFOLLOW>,0x7ff<STATX_BASIC_STATS>,0x7e001000)",
    "getrandom(0x7e000a00,0x10,0x1<GRND_NONBLOCK>)",
    "epoll_create1(0x80000<EPOLL_CLOEXEC>)",
    "epoll_ctl(0x6,EPOLL_CTL_ADD,0x5,0x7e000b00)",
    "access(0x7e000900,0x6<W_OK|R_OK>)",
    "faccessat2(AT_FDCWD,0x7e000900,0<F_OK>,0x200<AT_EACCESS>)",
    "memfd_create(0x7e000c00,0x3<MFD_CLOEXEC|MFD_ALLOW_SEALING>)",
    "lseek(0x7,-1,SEEK_END)",
    "fcntl(0x7,F_ADD_SEALS,0x6<F_SEAL_SHRINK|F_SEAL_GROW>)",
    "eventfd2(0,0x80800<EFD_CLOEXEC|EFD_NONBLOCK>)",
    "timerfd_create(CLOCK_MONOTONIC,0x80000<TFD_CLOEXEC>)",
    "timerfd_settime(0x9,0x1<TFD_TIMER_ABSTIME>,0x7e000d00,0)",
    "signalfd4(-1,0x7e000e00,0x8,0x80800<SFD_CLOEXEC|SFD_NONBLOCK>)",
    "inotify_init1(0x80800<IN_CLOEXEC|IN_NONBLOCK>)",
    "pipe2(0x7e000f00,0x80000<O_CLOEXEC>)",
    "dup3(0x4,0x14,0x80000<O_CLOEXEC>)",
    "arch_prctl(ARCH_GET_FS,0x7e001100)",
    "setpgid(0,0)",
    "kill(-{pid},SIGCONT)",
    "clone(0x11<SIGCHLD>,0,0,0,0)",
    "wait4(-1,0x7e001200,0x40000000<__WALL>,0)",
    "exit_group(0)",
]


def call_lines(trfile: Path, pid: int) -> list[str]:
    """The CALL texts of one process, as pykdump prints them."""
    out = subprocess.run([*PYKDUMP, "-f", str(trfile)], capture_output=True, text=True, timeout=TIMEOUT)
    assert (out.returncode, out.stderr) == (0, "")
    calls = []
    for line in out.stdout.splitlines():
        fields = line.split(None, 3)
        if len(fields) == 4 and fields[0] == str(pid) and fields[2] == "CALL":
            calls.append(fields[3])
    return calls


def test_linux_calls_decode_as_strace_does(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trfile = tmp_path / "decode.out"
    t = trace([str(progs / "linux_decode")], trfile=trfile)
    assert (t.returncode, t.stderr) == (0, b"")
    calls = call_lines(trfile, t.pid)
    start = next(i for i, text in enumerate(calls) if text.startswith("mmap(0x7e000000,"))
    assert calls[start:] == [line.format(pid=t.pid) for line in EXPECTED]
    # The record keeps the register as the program left it, -pid as a 32-bit
    # int zero-extended to 64 bits (kdump prints 4294...); the decoder reads
    # the pid_t it is.
    kill = linux.syscall_number("kill")
    args = [p.args for r, p in t.payloads(K.KTR_SYSCALL) if r.pid == t.pid and p.code == kill]  # type: ignore[attr-defined]
    assert args == [(-t.pid & 0xFFFFFFFF, 18)]

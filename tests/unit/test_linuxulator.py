"""The Linux -> FreeBSD si_code table PSIG records are written with, and its inverse."""

from __future__ import annotations

import pytest

from ktrace_cli.abi import freebsd, linux
from ktrace_cli.abi.freebsd import data_rows
from ktrace_cli.abi.linuxulator import JUSTRETURN_SYSCALLS, freebsd_sigcode, linux_sigcode

LINUX_SIGUSR1, LINUX_SIGFPE, LINUX_SIGSEGV, LINUX_SIGTRAP, LINUX_SIGCHLD = 10, 8, 11, 5, 17


@pytest.mark.parametrize(
    ("lsig", "lcode", "fcode", "fname"),
    [
        (LINUX_SIGUSR1, 0, 0x10001, "SI_USER"),  # kill
        (LINUX_SIGUSR1, -1, 0x10002, "SI_QUEUE"),  # sigqueue
        (14, -2, 0x10003, "SI_TIMER"),  # timer_create
        (29, -3, 0x10005, "SI_MESGQ"),
        (LINUX_SIGUSR1, -4, 0x10004, "SI_ASYNCIO"),
        (LINUX_SIGUSR1, -6, 0x10007, "SI_LWP"),  # tkill/tgkill
        (14, 0x80, 0x10006, "SI_KERNEL"),
        (LINUX_SIGFPE, 1, 2, "FPE_INTDIV"),  # the pair the two kernels number the other way round
        (LINUX_SIGFPE, 2, 1, "FPE_INTOVF"),
        (LINUX_SIGSEGV, 1, 1, "SEGV_MAPERR"),
        (LINUX_SIGSEGV, 4, 100, "SEGV_PKUERR"),
        (7, 2, 2, "BUS_ADRERR"),
        (7, 4, 100, "BUS_OOMERR"),  # BUS_MCEERR_AR, as the Linuxulator pairs them
        (LINUX_SIGFPE, 14, 9, "FPE_FLTIDO"),  # FPE_FLTUNK
        (LINUX_SIGCHLD, 1, 1, "CLD_EXITED"),
        (LINUX_SIGTRAP, 1, 1, "TRAP_BRKPT"),
    ],
)
def test_freebsd_sigcode(lsig: int, lcode: int, fcode: int, fname: str) -> None:
    assert freebsd_sigcode(lsig, lcode) == fcode
    fsig = linux.freebsd_signal_from_linux(lsig)
    assert freebsd.sigcode_name(fsig, fcode) == fname
    assert linux_sigcode(fsig, fcode) == lcode


@pytest.mark.parametrize(
    ("lsig", "lcode", "stored"),
    [(LINUX_SIGSEGV, 3, 0x20003), (LINUX_SIGTRAP, 4, 0x20004), (29, -5, 0x2FFFB), (31, 1, 0x20001)],
)
def test_linux_only_codes_are_kept_out_of_freebsds_range(lsig: int, lcode: int, stored: int) -> None:
    assert freebsd_sigcode(lsig, lcode) == stored
    fsig = linux.freebsd_signal_from_linux(lsig)
    assert freebsd.sigcode_name(fsig, stored) is None  # FreeBSD's kdump: <invalid=...>, never a wrong name
    assert linux_sigcode(fsig, stored) == lcode


def test_every_linux_code_round_trips() -> None:
    for signal, code, _name in data_rows("linux_sigcodes.tsv"):
        lcode = int(code, 0)
        lsig = LINUX_SIGUSR1 if signal == "*" else int(signal)
        fsig = linux.freebsd_signal_from_linux(lsig)
        assert linux_sigcode(fsig, freebsd_sigcode(lsig, lcode)) == lcode, (signal, code)


def test_rt_sigreturn_is_a_justreturn_call() -> None:
    assert JUSTRETURN_SYSCALLS == {linux.syscall_number("rt_sigreturn")}

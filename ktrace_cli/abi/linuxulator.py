"""What FreeBSD's Linuxulator stores where a Linux value has a FreeBSD counterpart.

pyktrace writes Linux processes the way FreeBSD's Linux emulation records
them, so FreeBSD's own kdump reads the file with its native tables; pykdump
maps the stored values back to print Linux names. This module holds both
directions for PSIG's si_code, built from abi/data tables (names joined
across linux_sigcodes.tsv and freebsd_sigcodes.tsv by
linux_to_freebsd_sigcodes.tsv), and the calls whose return FreeBSD records
as EJUSTRETURN.
"""

from __future__ import annotations

from functools import cache

from ktrace_cli.abi import linux
from ktrace_cli.abi.freebsd import data_rows

GENERIC = "*"
# A Linux si_code with no FreeBSD twin is stored as this base plus its low 16
# bits: FreeBSD's kdump prints `<invalid=0x2....>` for it (no FreeBSD code
# lies there, so it never names the wrong event) and pykdump recovers it.
LINUX_ONLY_CODE_BASE = 0x20000
LINUX_SI_KERNEL = 0x80

# Calls that return to user mode without touching the registers a signal
# frame restored: FreeBSD's sigreturn and its Linuxulator's rt_sigreturn
# return EJUSTRETURN, which ktrsysret() records (x86_64 rt_sigreturn is 15).
JUSTRETURN_SYSCALLS = frozenset({15})


def _is_generic(code: int) -> bool:
    """Linux si_codes <= 0 and SI_KERNEL mean the same for every signal."""
    return code <= 0 or code == LINUX_SI_KERNEL


def _freebsd_values() -> tuple[dict[str, int], dict[tuple[int, str], int]]:
    generic: dict[str, int] = {}
    per_signal: dict[tuple[int, str], int] = {}
    for signal, code, name in data_rows("freebsd_sigcodes.tsv"):
        if signal == GENERIC:
            generic.setdefault(name, int(code, 0))
        else:
            per_signal.setdefault((int(signal), name), int(code, 0))
    return generic, per_signal


def _linux_values() -> dict[tuple[str, str], int]:
    values: dict[tuple[str, str], int] = {}
    for signal, code, name in data_rows("linux_sigcodes.tsv"):
        values.setdefault((signal, name), int(code, 0))
    return values


@cache
def _code_maps() -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    """(Linux signal or 0, Linux code) -> FreeBSD code, and (FreeBSD signal or 0, code) -> Linux code.

    Signal 0 keys the generic codes, which do not depend on the signal.
    """
    fb_generic, fb_per_signal = _freebsd_values()
    lx = _linux_values()
    to_freebsd: dict[tuple[int, int], int] = {}
    to_linux: dict[tuple[int, int], int] = {}
    for signal, lname, fname in data_rows("linux_to_freebsd_sigcodes.tsv"):
        lcode = lx[(signal, lname)]
        if signal == GENERIC:
            fcode = fb_generic[fname]
            lkey, fkey = (0, lcode), (0, fcode)
        else:
            lsig = int(signal)
            fsig = linux.freebsd_signal_from_linux(lsig)
            fcode = fb_per_signal[(fsig, fname)]
            lkey, fkey = (lsig, lcode), (fsig, fcode)
        to_freebsd[lkey] = fcode
        to_linux[fkey] = lcode
    return to_freebsd, to_linux


def freebsd_sigcode_table() -> dict[tuple[int, int], int]:
    """(Linux signal, or 0 for a generic code; Linux code) -> FreeBSD code, for the eBPF backend."""
    return dict(_code_maps()[0])


def freebsd_sigcode(linux_signo: int, code: int) -> int:
    """The si_code the Linuxulator records for Linux `code` of Linux signal `linux_signo`."""
    to_freebsd, _ = _code_maps()
    key = (0, code) if _is_generic(code) else (linux_signo, code)
    fcode = to_freebsd.get(key)
    if fcode is not None:
        return fcode
    return LINUX_ONLY_CODE_BASE + (code & 0xFFFF)


def linux_sigcode(freebsd_signo: int, code: int) -> int:
    """The Linux si_code behind a stored PSIG code (inverse of freebsd_sigcode).

    A value that is neither a mapped FreeBSD code nor a Linux-only one is
    returned unchanged, so a code no table knows still prints as itself.
    """
    _, to_linux = _code_maps()
    lcode = to_linux.get((0, code))
    if lcode is None:
        lcode = to_linux.get((freebsd_signo, code))
    if lcode is not None:
        return lcode
    if LINUX_ONLY_CODE_BASE <= code <= LINUX_ONLY_CODE_BASE + 0xFFFF:
        low = code - LINUX_ONLY_CODE_BASE
        return low - 0x10000 if low & 0x8000 else low
    return code

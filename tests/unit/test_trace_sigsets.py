"""Which signal calls log an l_sigset_t, and which mask (trace/sigsets.py)."""

from __future__ import annotations

from typing import cast

from ktrace_cli.trace import sigsets
from ktrace_cli.trace.memory import ProcMem

ACT, OACT, SET = 0x1000, 0x2000, 0x3000


class FakeMem:
    """Process memory holding a recognisable mask at each address."""

    def read(self, addr: int, size: int) -> bytes:
        return addr.to_bytes(8, "little")[:size]


MEM = cast(ProcMem, FakeMem())


def mask_at(addr: int) -> bytes:
    return b"l_sigset_t\0" + addr.to_bytes(8, "little")


def test_rt_sigaction_logs_the_new_then_the_old_actions_mask() -> None:
    args = (10, ACT, OACT, 8, 0, 0)
    assert sigsets.entry_payload("rt_sigaction", args, MEM) == mask_at(ACT + 24)
    assert sigsets.exit_payload("rt_sigaction", args, MEM) == mask_at(OACT + 24)
    # i386's struct sigaction: 32-bit handler, flags and restorer, then the mask.
    assert sigsets.entry_payload("rt_sigaction", args, MEM, 4) == mask_at(ACT + 12)
    assert sigsets.exit_payload("rt_sigaction", args, MEM, 4) == mask_at(OACT + 12)


def test_nothing_without_a_pointer_a_valid_signal_or_sigsetsize_8() -> None:
    assert sigsets.entry_payload("rt_sigaction", (10, 0, OACT, 8, 0, 0), MEM) is None
    assert sigsets.entry_payload("rt_sigaction", (65, ACT, 0, 8, 0, 0), MEM) is None
    assert sigsets.entry_payload("rt_sigprocmask", (0, SET, 0, 4, 0, 0), MEM) is None
    assert sigsets.exit_payload("rt_sigprocmask", (0, SET, 0, 8, 0, 0), MEM) is None


def test_masks_in_and_out() -> None:
    assert sigsets.entry_payload("rt_sigprocmask", (0, SET, OACT, 8, 0, 0), MEM) == mask_at(SET)
    assert sigsets.exit_payload("rt_sigprocmask", (0, SET, OACT, 8, 0, 0), MEM) == mask_at(OACT)
    assert sigsets.entry_payload("rt_sigsuspend", (SET, 8, 0, 0, 0, 0), MEM) == mask_at(SET)
    assert sigsets.exit_payload("rt_sigsuspend", (SET, 8, 0, 0, 0, 0), MEM) is None
    assert sigsets.entry_payload("rt_sigtimedwait", (SET, 0, 0, 8, 0, 0), MEM) == mask_at(SET)
    assert sigsets.exit_payload("rt_sigpending", (SET, 8, 0, 0, 0, 0), MEM) == mask_at(SET)
    assert sigsets.entry_payload("rt_sigpending", (SET, 8, 0, 0, 0, 0), MEM) is None

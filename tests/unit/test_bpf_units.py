"""The bpf engine's Python side without the kernel: option, engine choice, tables, ring reading."""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

import pytest

from ktrace_cli.abi import linux as abi
from ktrace_cli.cli import pyktrace as cli
from ktrace_cli.format import constants as K
from ktrace_cli.trace.bpf import client, drain, loader, service, wire
from ktrace_cli.trace.client import TraceError
from ktrace_cli.trace.rules import rules


def test_engine_option_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYKTRACE_ENGINE", raising=False)
    assert cli.parse(["true"]).engine == "ptrace"
    assert cli.parse(["--engine=bpf", "true"]).engine == "bpf"
    monkeypatch.setenv("PYKTRACE_ENGINE", "auto")
    assert cli.parse(["true"]).engine == "auto"
    assert cli.parse(["--engine", "ptrace", "true"]).engine == "ptrace"  # the option wins
    with pytest.raises(cli.Fatal, match=r"^invalid --engine: kernel \(auto, ptrace or bpf\)$"):
        cli.parse(["--engine=kernel", "true"])
    monkeypatch.setenv("PYKTRACE_ENGINE", "bogus")
    with pytest.raises(cli.Fatal, match="invalid --engine: bogus"):
        cli.parse(["true"])


def test_auto_falls_back_to_ptrace_and_says_why(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(wire, "effective_caps", lambda: 1 << wire.CAP_BPF)  # CAP_PERFMON missing
    assert client.why_not() == "the bpf engine needs root, or CAP_BPF and CAP_PERFMON"
    assert client.resolve_auto() == "ptrace"
    assert capsys.readouterr().err == (
        "pyktrace: --engine=auto: using ptrace: the bpf engine needs root, or CAP_BPF and CAP_PERFMON\n"
    )
    with pytest.raises(TraceError, match=r"^the bpf engine needs root, or CAP_BPF and CAP_PERFMON$"):
        client.run(cli.parse(["--engine=bpf", "true"]), 0, K.DEF_POINTS, os.getpid(), None)
    monkeypatch.setattr(client, "why_not", lambda: None)
    assert client.resolve_auto() == "bpf"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("caps", "may"), [(0, False), (1 << wire.CAP_PERFMON, False),
                                            (1 << wire.CAP_BPF | 1 << wire.CAP_PERFMON, True),
                                            (1 << wire.CAP_SYS_ADMIN, True)])  # fmt: skip
def test_a_capability_holder_may_load(monkeypatch: pytest.MonkeyPatch, caps: int, may: bool) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(wire, "effective_caps", lambda: caps)
    assert wire.may_load() is may


def test_effective_caps_are_this_process() -> None:
    status = Path("/proc/self/status").read_text()
    want = next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:"))
    assert wire.effective_caps() == int(want, 16)


def test_tables_come_from_ktrace_cli_own() -> None:
    systab, errmap = service.tables()
    r = rules()
    openat = abi.syscall_number("openat")
    execve = abi.syscall_number("execve")
    read = abi.syscall_number("read")
    renameat = abi.syscall_number("renameat")
    assert openat is not None and execve is not None and read is not None and renameat is not None
    assert systab[openat] == (r.narg[openat], 0b10, loader.SYS_OPEN, 0, 0, 0)  # the path: argument 1
    fstat, connect = abi.syscall_number("fstat"), abi.syscall_number("connect")
    assert fstat is not None and connect is not None
    assert systab[fstat][3:] == (1, 1, 0) and systab[connect][3:] == (3, 1, 0)  # STRU kind, argument
    # rt_sigaction: sigsetsize is argument 3, the new action's mask (argument 1)
    # at entry and the old one's (argument 2) at exit, each inside a struct
    # sigaction; argument 0 must be a signal. rt_sigpending: the set (argument 0) at exit.
    sigaction, pending = abi.syscall_number("rt_sigaction"), abi.syscall_number("rt_sigpending")
    assert sigaction is not None and pending is not None
    assert systab[sigaction][3:] == (6, 0, 3 | 2 << 3 | 0x40 | 3 << 7 | 0x400 | 0x800)
    assert systab[pending][3:] == (6, 0, 1 | 1 << 7)
    assert systab[renameat][1] == 0b1010  # two paths: arguments 1 and 3
    assert systab[execve][2] == loader.SYS_EXEC
    assert systab[read][2] == loader.SYS_GIO_READ
    assert errmap[11] == 35 and errmap[2] == 2  # EAGAIN renumbered, ENOENT kept
    assert all(errmap[e] == K.ERESTART for e in (512, 513, 514, 516))
    signo, mask_of, quiet, sigcodes = service.signal_tables()
    assert signo[10] == 30 and signo[12] == 31  # SIGUSR1, SIGUSR2
    assert quiet >> (17 - 1) & 1 and not quiet >> (10 - 1) & 1  # SIGCHLD quiet, SIGUSR1 not
    assert mask_of(1 << 9) == (1 << 29, 0, 0, 0)
    # Linux SI_USER (0) and SI_TKILL (-6) are FreeBSD's SI_USER and SI_LWP;
    # SIGFPE's FPE_INTDIV (Linux 1) is FreeBSD's 2.
    assert (sigcodes[(0, 0)], sigcodes[(0, -6)], sigcodes[(8, 1)]) == (0x10001, 0x10007, 2)


def test_i386_half_of_the_tables() -> None:
    """int $0x80 calls are looked up from I386_BASE on, in the i386 rules' terms."""
    from ktrace_cli.trace.rules import rules_i386

    systab, _ = service.tables()
    names = service.names()
    assert len(systab) == len(names) == loader.SYSTAB_SIZE
    base, r32 = loader.I386_BASE, rules_i386()
    # i386 open is 5 (x86_64's fstat): its path is argument 0, and an open makes SCTL.
    assert systab[base + 5] == (r32.narg[5], 0b1, loader.SYS_OPEN, 0, 0, 0)
    assert systab[5][3:] == (1, 1, 0)  # x86_64 fstat: a STRU stat of argument 1
    assert (names[base + 20], names[20], names[base + 3]) == (b"getpid", b"writev", b"read")
    assert systab[base + 20][0] == 0 and systab[base + 4] == (3, 0, loader.SYS_GIO_WRITE, 0, 0, 0)
    assert systab[base + 174][3:] == systab[abi.syscall_number("rt_sigaction") or 0][3:]  # i386 rt_sigaction: the same places
    # sigreturn (119) and rt_sigreturn (173) return EJUSTRETURN, as x86_64's rt_sigreturn (15).
    justreturn = [k for k, row in enumerate(systab) if row[2] & loader.SYS_SIGRETURN]
    assert justreturn == [15, base + 119, base + 173]
    assert systab[base + 11][2] == loader.SYS_EXEC  # execve
    # readv's iovecs have 32-bit pointers there: no GIO (as with the ptrace engine).
    assert systab[base + 145][2] == 0


def test_ring_reader_writes_batches_in_order_and_skips_discarded() -> None:
    """The consumer against a ring laid out by hand as the kernel lays it out."""
    size, page = 4096, mmap.PAGESIZE
    cons = mmap.mmap(-1, page)
    prod = mmap.mmap(-1, page + 2 * size)

    def sample(at: int, body: bytes, flags: int = 0) -> int:
        struct.pack_into("<II", prod, page + at, len(body) | flags, 0)
        prod[page + at + 8 : page + at + 8 + len(body)] = body
        return at + ((len(body) + 8 + 7) & ~7)

    at = sample(0, drain.BATCH_HDR.pack(1, 5) + b"hello")
    at = sample(at, drain.BATCH_HDR.pack(2, 3) + b"xyz", drain.DISCARD)
    at = sample(at, drain.BATCH_HDR.pack(1, 6) + b" world")
    busy = sample(at, drain.BATCH_HDR.pack(1, 4) + b"late", drain.BUSY)
    struct.pack_into("<Q", prod, 0, busy)  # producer position
    ring = drain.Ring.__new__(drain.Ring)
    ring.size, ring.mask, ring.cons, ring.prod, ring.page = size, size - 1, cons, prod, page
    ring.view = memoryview(prod)
    got: list[tuple[int, bytes]] = []
    consumed = ring.drain(lambda i, chunks: got.append((i, b"".join(bytes(c) for c in chunks))))
    assert got == [(1, b"hello world")]
    assert consumed == at and struct.unpack_from("<Q", cons, 0)[0] == at  # stops at the busy one
    ring.view.release()


def test_ring_size_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(service.ENV_RING, raising=False)
    assert service.ring_size() == loader.RING_DEFAULT
    monkeypatch.setenv(service.ENV_RING, "65536")
    assert service.ring_size() == 65536
    for bad in ("1000", "2048", "x"):
        monkeypatch.setenv(service.ENV_RING, bad)
        with pytest.raises(OSError, match="a power of two of at least 4096"):
            service.ring_size()


def test_points_the_bpf_engine_lacks_are_named(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setattr(client, "why_not", lambda: None)
    monkeypatch.setattr(client, "call", lambda *a, **k: {"error": 0})
    opts = cli.parse(["--engine=bpf", "-t", "cwtfpy", "-p", "1"])
    assert client.run(opts, 0, opts.facs, 1, None) == 0
    assert capsys.readouterr().err == (
        "pyktrace: warning: the bpf engine does not record trace points p yet; not recorded\n"
    )
    opts = cli.parse(["--engine=bpf", "-p", "1"])  # the default points: no warning
    assert client.run(opts, 0, opts.facs, 1, None) == 0
    assert capsys.readouterr().err == ""


def test_live_needs_the_ptrace_engine() -> None:
    with pytest.raises(cli.Fatal, match=r"^--live works with the ptrace engine only"):
        cli.run(cli.parse(["--engine=bpf", "--live", "true"]))


class _LostCounter:
    """The loaded object as report_drops sees it: the kernel's lost-record counter."""

    attached = True
    records = 0

    def lost(self) -> tuple[int, int]:
        return 0, self.records


def test_a_sync_logs_drops_the_once_a_second_limit_held_back(monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    # A drop within a second of the last line waits for the next second; a
    # sync's caller reads the log next, so the sync says it at once.
    eng = object.__new__(service.BpfEngine)
    eng.obj = _LostCounter()  # type: ignore[assignment]
    eng.lost_reported, eng.report_at = 0, 0.0
    monkeypatch.setattr(eng, "barrier", lambda: None)
    monkeypatch.setattr(eng, "housekeeping", eng.report_drops)
    with caplog.at_level("WARNING", logger="pyktrace.engine"):
        eng.obj.records = 100  # type: ignore[attr-defined]
        eng.report_drops()
        eng.obj.records = 250  # type: ignore[attr-defined]
        eng.report_drops()  # within the second: held back
        assert len(caplog.records) == 1
        assert eng.request({"op": "sync"}, None, os.getpid()) == {"error": 0}
        assert eng.request({"op": "sync"}, None, os.getpid()) == {"error": 0}  # nothing new: no line
    assert [r.getMessage() for r in caplog.records] == [
        "ring buffer full: 100 records dropped (100 since load), marked KTR_DROP",
        "ring buffer full: 150 records dropped (250 since load), marked KTR_DROP",
    ]

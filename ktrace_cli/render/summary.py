"""--summary: calls, errors and time per syscall from CALL/RET pairs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ktrace_cli.decode import abi as A
from ktrace_cli.decode.events import Dropped, Shown
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import Arch
from ktrace_cli.format.records import Syscall, Sysret


@dataclass
class SyscallStats:
    calls: int = 0
    errors: int = 0
    timed: int = 0  # calls whose CALL and RET were both seen
    total_ns: int = 0


@dataclass
class ProcessStats:
    pid: int
    comm: str = ""
    syscalls: dict[str, SyscallStats] = field(default_factory=dict)


class Summary:
    """Accumulates statistics; a RET is paired with the last CALL of the same thread."""

    def __init__(self, arch: Arch) -> None:
        self.arch = arch
        self.procs: dict[int, ProcessStats] = {}
        self.pending: dict[int, tuple[int, int]] = {}  # tid -> (code, ns of CALL)

    def _stats(self, pid: int, comm: bytes, name: str) -> SyscallStats:
        proc = self.procs.get(pid)
        if proc is None:
            proc = self.procs[pid] = ProcessStats(pid)
        proc.comm = comm.split(b"\0", 1)[0].decode("utf-8", "replace")
        stats = proc.syscalls.get(name)
        if stats is None:
            stats = proc.syscalls[name] = SyscallStats()
        return stats

    def add(self, events: Iterable[Shown | Dropped]) -> None:
        for event in events:
            if isinstance(event, Dropped):
                continue
            r, sv_flags, p = event
            if isinstance(p, Syscall):
                self.pending[r.tid] = (p.code, r.sec * 1_000_000_000 + r.nsec)
            elif isinstance(p, Sysret):
                code = p.code
                abi = A.syscall_abi(sv_flags)
                name = (A.syscall_name(abi, code) if code >= 0 else None) or f"[{code}]"
                stats = self._stats(r.pid, r.comm, name)
                stats.calls += 1
                if p.error not in (0, K.ERESTART, K.EJUSTRETURN):
                    stats.errors += 1
                call = self.pending.pop(r.tid, None)
                if call is not None and call[0] == code:
                    ns = r.sec * 1_000_000_000 + r.nsec
                    stats.timed += 1
                    stats.total_ns += max(0, ns - call[1])

    def tables(self) -> list[tuple[str, list[tuple[str, SyscallStats]]]]:
        """(title, rows sorted by total time then calls) per process, then for all."""
        out = []
        overall: dict[str, SyscallStats] = {}
        for pid in sorted(self.procs):
            proc = self.procs[pid]
            out.append((f"process {pid} ({proc.comm})", _sorted(proc.syscalls)))
            for name, s in proc.syscalls.items():
                o = overall.setdefault(name, SyscallStats())
                o.calls += s.calls
                o.errors += s.errors
                o.timed += s.timed
                o.total_ns += s.total_ns
        out.append(("all processes", _sorted(overall)))
        return out


def _sorted(stats: dict[str, SyscallStats]) -> list[tuple[str, SyscallStats]]:
    return sorted(stats.items(), key=lambda kv: (-kv[1].total_ns, -kv[1].calls, kv[0]))


COLUMNS = ("syscall", "calls", "errors", "total (s)", "avg (us)")


def _cells(name: str, s: SyscallStats) -> tuple[str, str, str, str, str]:
    avg = f"{s.total_ns / s.timed / 1000:.2f}" if s.timed else "-"
    return name, str(s.calls), str(s.errors), f"{s.total_ns / 1e9:.6f}", avg


def _total(rows: list[tuple[str, SyscallStats]]) -> SyscallStats:
    t = SyscallStats()
    for _, s in rows:
        t.calls += s.calls
        t.errors += s.errors
        t.timed += s.timed
        t.total_ns += s.total_ns
    return t


def plain_text(summary: Summary) -> str:
    """The summary as fixed-width text (when stdout is not a terminal)."""
    lines = []
    widths = (24, 9, 9, 12, 12)
    rule = " ".join("-" * w for w in widths)

    def fmt(cells: tuple[str, ...]) -> str:
        return " ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    for title, rows in summary.tables():
        lines.append(title)
        lines.append(fmt(COLUMNS))
        lines.append(rule)
        lines.extend(fmt(_cells(name, s)) for name, s in rows)
        lines.append(rule)
        lines.append(fmt(_cells("total", _total(rows))))
        lines.append("")
    return "\n".join(lines)


def print_rich(summary: Summary, console: object) -> None:
    """The summary as rich tables on a terminal."""
    from rich.table import Table

    for title, rows in summary.tables():
        table = Table(title=title, title_justify="left")
        for i, col in enumerate(COLUMNS):
            table.add_column(col, justify="left" if i == 0 else "right")
        for name, s in rows:
            table.add_row(*_cells(name, s), style="red" if s.errors else None)
        table.add_section()
        table.add_row(*_cells("total", _total(rows)), style="bold")
        console.print(table)  # type: ignore[attr-defined]

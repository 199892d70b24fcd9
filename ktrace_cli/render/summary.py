"""--summary: calls, errors and time per syscall from CALL/RET pairs."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ktrace_cli.decode import abi as A
from ktrace_cli.decode.calls import Call
from ktrace_cli.decode.events import Dropped, Shown, Unpack
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import Arch
from ktrace_cli.format.records import Record, Syscall, Sysret
from ktrace_cli.render.dump import vis


@dataclass
class SyscallStats:
    calls: int = 0
    errors: int = 0
    timed: int = 0  # calls whose CALL and RET were both seen
    total_ns: int = 0

    def merge(self, other: SyscallStats) -> None:
        self.calls += other.calls
        self.errors += other.errors
        self.timed += other.timed
        self.total_ns += other.total_ns


# Memory stays bounded whatever the file holds (a hostile file may name
# millions of processes or every system call number): past these sizes the
# least busy processes and rows are added up into an "other" table or row.
MAX_PROCESS_TABLES = 256
MAX_ROWS = 256
MAX_PENDING_CALLS = 65536  # threads inside a call at once; the oldest are forgotten first
OTHER_ROW = "(other)"
OTHER_TITLE = "other processes"
_NOT_FAILURES = frozenset({0, K.ERESTART, K.EJUSTRETURN})


@dataclass
class ProcessStats:
    pid: int
    comm: str = ""
    raw_comm: bytes = b""
    calls: int = 0
    syscalls: dict[str, SyscallStats] = field(default_factory=dict)


class Summary:
    """Accumulates statistics; a RET is paired with the last CALL of the same thread.

    `terminal` escapes command names as the text output does on a terminal.
    """

    def __init__(self, arch: Arch, *, terminal: bool = False) -> None:
        self.arch = arch
        self.terminal = terminal
        self._unpack = Unpack(arch)
        self.procs: dict[int, ProcessStats] = {}
        self.other: ProcessStats | None = None  # processes folded out of `procs`
        self.overall: dict[str, SyscallStats] = {}
        # tid -> (code, ns of CALL), oldest first: a thread that exits inside
        # a call (exit, execve of a set-id program) never has its RET.
        self.pending: OrderedDict[int, tuple[int, int]] = OrderedDict()
        self._names: dict[tuple[int, int], str] = {}  # (sv_flags, code) -> the row's name
        self.call_sink: Callable[[Call], None] | None = None  # also sees each joined Call add() is given

    def _stats(self, pid: int, comm: bytes, name: str) -> tuple[SyscallStats, SyscallStats]:
        proc = self.procs.get(pid)
        if proc is None:
            if len(self.procs) >= 2 * MAX_PROCESS_TABLES:
                self._fold_processes()
            proc = self.procs[pid] = ProcessStats(pid)
        if comm != proc.raw_comm:
            proc.raw_comm = comm
            proc.comm = _shown_comm(comm, self.terminal)
        proc.calls += 1
        # _row, its usual case inlined: the rows exist.
        mine = proc.syscalls.get(name)
        if mine is None:
            mine = _row(proc.syscalls, name)
        overall = self.overall.get(name)
        if overall is None:
            overall = _row(self.overall, name)
        return mine, overall

    def _fold_processes(self) -> None:
        """Keep the MAX_PROCESS_TABLES busiest processes; add the others into `other`."""
        ranked = sorted(self.procs.values(), key=lambda p: p.calls, reverse=True)
        other = self.other if self.other is not None else ProcessStats(-1, OTHER_TITLE)
        for proc in ranked[MAX_PROCESS_TABLES:]:
            del self.procs[proc.pid]
            other.calls += proc.calls
            for name, stats in proc.syscalls.items():
                _row(other.syscalls, name).merge(stats)
        self.other = other

    def add(self, events: Iterable[Shown | Dropped | Call]) -> None:
        """Count the events' CALLs and RETs; a joined Call (from --detail's stream) counts as both."""
        pending = self.pending
        for event in events:
            if event.__class__ is Call:
                self._call(event)
                continue
            if isinstance(event, Dropped):
                continue
            r, sv_flags, p = event  # type: ignore[misc]
            if p is None:
                p = self._unpack(r)  # an event built by hand, without its payload
            if isinstance(p, Syscall):
                pending[r.tid] = (p.code, r.sec * 1_000_000_000 + r.nsec)
                pending.move_to_end(r.tid)
                if len(pending) > MAX_PENDING_CALLS:
                    pending.popitem(last=False)
            elif isinstance(p, Sysret):
                call = pending.pop(r.tid, None)
                elapsed = None
                if call is not None and call[0] == p.code:
                    elapsed = max(0, r.sec * 1_000_000_000 + r.nsec - call[1])
                self._ret(r, sv_flags, p, elapsed)

    def _call(self, call: Call) -> None:
        """What add() does with the call's CALL then its RET, without the round trip through `pending`."""
        if self.call_sink is not None:
            self.call_sink(call)
        start, end = call.start, call.end
        if start is None or end is None or start.payload.__class__ is not Syscall or end.payload.__class__ is not Sysret:
            self.add([e for e in (start, end) if e is not None])
            return
        r = end.record
        pending = self.pending
        if r.tid in pending:
            del pending[r.tid]  # the CALL would replace the entry, its RET take it out
        elif len(pending) >= MAX_PENDING_CALLS:
            pending.popitem(last=False)  # what the CALL's entry would have pushed out
        q = start.record
        # The joiner pairs a RET only with a CALL of its code: the call is timed.
        elapsed = (r.sec - q.sec) * 1_000_000_000 + r.nsec - q.nsec
        self._ret(r, end.sv_flags, end.payload, elapsed if elapsed > 0 else 0)

    def _ret(self, r: Record, sv_flags: int, p: Sysret, elapsed: int | None) -> None:
        code = p.code
        key = (sv_flags, code)
        name = self._names.get(key)
        if name is None:
            abi = A.syscall_abi(sv_flags)
            name = (A.syscall_name(abi, code) if code >= 0 else None) or f"[{code}]"
            if len(self._names) < MAX_PENDING_CALLS:  # bounded: a damaged trace may hold any numbers
                self._names[key] = name
        failed = p.error not in _NOT_FAILURES
        for stats in self._stats(r.pid, r.comm, name):
            stats.calls += 1
            if failed:
                stats.errors += 1
            if elapsed is not None:
                stats.timed += 1
                stats.total_ns += elapsed

    def tables(self) -> list[tuple[str, list[tuple[str, SyscallStats]]]]:
        """(title, rows sorted by total time then calls) per process, the others, then for all."""
        if len(self.procs) > MAX_PROCESS_TABLES:
            self._fold_processes()
        for rows in [*(p.syscalls for p in self.procs.values()), self.overall]:
            if len(rows) > MAX_ROWS:
                _fold_rows(rows)
        if self.other is not None and len(self.other.syscalls) > MAX_ROWS:
            _fold_rows(self.other.syscalls)
        out = [(f"process {pid} ({self.procs[pid].comm})", _sorted(self.procs[pid].syscalls)) for pid in sorted(self.procs)]
        if self.other is not None:
            out.append((OTHER_TITLE, _sorted(self.other.syscalls)))
        out.append(("all processes", _sorted(self.overall)))
        return out


def _shown_comm(comm: bytes, terminal: bool) -> str:
    """The command name as text; on a terminal its control characters are vis(3)-escaped."""
    name = comm.split(b"\0", 1)[0]
    if terminal:
        name = vis(name.decode("latin-1")).encode("latin-1")
    return name.decode("utf-8", "replace")


def _row(rows: dict[str, SyscallStats], name: str) -> SyscallStats:
    """The row `name` of a table, folding the least busy rows once the table is full."""
    stats = rows.get(name)
    if stats is None:
        if len(rows) >= 2 * MAX_ROWS:
            _fold_rows(rows)
        stats = rows[name] = SyscallStats()
    return stats


def _fold_rows(rows: dict[str, SyscallStats]) -> None:
    """Keep the MAX_ROWS rows with most time and calls; add the rest into OTHER_ROW."""
    other = rows.pop(OTHER_ROW, None) or SyscallStats()
    ranked = sorted(rows.items(), key=lambda kv: (kv[1].total_ns, kv[1].calls), reverse=True)
    for name, stats in ranked[MAX_ROWS - 1 :]:
        del rows[name]
        other.merge(stats)
    rows[OTHER_ROW] = other


def _sorted(stats: dict[str, SyscallStats]) -> list[tuple[str, SyscallStats]]:
    return sorted(stats.items(), key=lambda kv: (-kv[1].total_ns, -kv[1].calls, kv[0]))


COLUMNS = ("syscall", "calls", "errors", "total (s)", "avg (us)")


def _cells(name: str, s: SyscallStats) -> tuple[str, str, str, str, str]:
    avg = f"{s.total_ns / s.timed / 1000:.2f}" if s.timed else "-"
    return name, str(s.calls), str(s.errors), f"{s.total_ns / 1e9:.6f}", avg


def _total(rows: list[tuple[str, SyscallStats]]) -> SyscallStats:
    t = SyscallStats()
    for _, s in rows:
        t.merge(s)
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

"""--summary's added tables: latency percentiles, errno breakdown, threads, files, histograms.

`--summary --detail` adds the tables after render/summary's (which stay as
they were), `--histogram` the histograms; `--sort` orders every table.

They are computed from the joined calls of decode/pipeline.py, with bounded
memory: each syscall keeps a log2 histogram of its call times (BUCKETS
buckets: bucket b counts times t with 2**b <= t < 2**(b+1) ns, bucket 0
also holds 0, and each bucket keeps its smallest and largest time).  min and
max are exact.  A percentile p is the nearest-rank one, the k-th smallest
time with k = ceil(p/100 * calls): the bucket holding the k-th time is
found by counting, and the time is interpolated linearly between that
bucket's smallest and largest by the rank inside it.  It is exact when the
bucket holds at most two calls (or calls of one time), and never off by
more than the bucket's spread (under a factor of two) otherwise.  The thread and file tables keep
at most ROW_LIMIT rows each; later threads or files are counted in one
`(other)` row.

Sort keys (--sort): time (total time, the default), count, errors, name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ktrace_cli.decode.calls import Call
from ktrace_cli.render.summary import SyscallStats

BUCKETS = 64
ROW_LIMIT = 10_000
OTHER = "(other)"
PERCENTILES = (50, 95, 99)
BAR_WIDTH = 40


@dataclass(slots=True)
class Latency:
    """Counts, errors, total and a log2 histogram of one syscall's (or thread's, file's) calls."""

    calls: int = 0
    errors: int = 0
    timed: int = 0
    total_ns: int = 0
    min_ns: int | None = None
    max_ns: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    low: list[int] = field(default_factory=lambda: [0] * BUCKETS)  # each bucket's smallest time
    high: list[int] = field(default_factory=lambda: [0] * BUCKETS)  # and largest
    errnos: dict[str, int] = field(default_factory=dict)
    label: str = ""  # a thread's comm

    def add(self, call: Call) -> None:
        self.record(call.dur_ns, (call.errno_name or "?") if call.failed else None)

    def record(self, dur: int | None, errno: str | None) -> None:
        """One call that took `dur` ns (None: not timed) and failed with `errno` (None: did not)."""
        self.calls += 1
        if errno is not None:
            self.errors += 1
            self.errnos[errno] = self.errnos.get(errno, 0) + 1
        if dur is None:
            return
        self.timed += 1
        self.total_ns += dur
        if self.min_ns is None or dur < self.min_ns:
            self.min_ns = dur
        if dur > self.max_ns:
            self.max_ns = dur
        b = dur.bit_length() - 1
        if b < 0:
            b = 0
        elif b >= BUCKETS:
            b = BUCKETS - 1
        buckets = self.buckets
        n = buckets[b]
        if not n:
            self.low[b] = self.high[b] = dur
        elif dur < self.low[b]:
            self.low[b] = dur
        elif dur > self.high[b]:
            self.high[b] = dur
        buckets[b] = n + 1

    def percentile(self, p: float) -> float | None:
        """The p-th percentile in ns, estimated from the histogram (see the module's text)."""
        if not self.timed:
            return None
        rank = max(1, math.ceil(p / 100 * self.timed))
        seen = 0
        for b, n in enumerate(self.buckets):
            if n and seen + n >= rank:
                k = rank - seen  # 1..n inside the bucket
                if n == 1:
                    return float(self.low[b])
                return self.low[b] + (self.high[b] - self.low[b]) * (k - 1) / (n - 1)
            seen += n
        return float(self.max_ns)


def sort_rows(rows: list[tuple[str, Any]], key: str | None) -> list[tuple[str, Any]]:
    """Rows of (name, stats with calls/errors/total_ns) in --sort order."""
    if key == "name":
        return sorted(rows, key=lambda r: r[0])
    if key == "count":
        return sorted(rows, key=lambda r: (-r[1].calls, -r[1].total_ns, r[0]))
    if key == "errors":
        return sorted(rows, key=lambda r: (-r[1].errors, -r[1].calls, r[0]))
    return sorted(rows, key=lambda r: (-r[1].total_ns, -r[1].calls, r[0]))


class CallStats:
    """The added tables' accumulators, fed one Call at a time."""

    def __init__(self) -> None:
        self.syscalls: dict[str, Latency] = {}
        self._threads: dict[tuple[int, int], Latency] = {}  # (pid, tid) -> row; (-1, -1) for the rest
        self._thread_comms: dict[tuple[int, int], bytes] = {}
        self.files: dict[str, Latency] = {}
        self._texts: dict[bytes, str] = {}

    @staticmethod
    def _row(table: dict[Any, Latency], name: Any, other: Any = OTHER) -> Latency:
        row = table.get(name)
        if row is None:
            if len(table) >= ROW_LIMIT:
                name = other
                row = table.get(name)
            if row is None:
                row = table[name] = Latency()
        return row

    def add(self, call: Call) -> None:
        # Once per call: its time, error and comm are read once for the three
        # tables, and Latency.record is inlined (its bucket found once).
        name = call.name or f"[{call.code}]"
        dur = call.dur_ns
        errno = (call.errno_name or "?") if call.failed else None
        srow = self.syscalls.get(name)
        if srow is None:
            srow = self._row(self.syscalls, name)
        key = (call.pid, call.tid)
        trow = self._threads.get(key)
        if trow is None:
            trow = self._row(self._threads, key, (-1, -1))
        end = call.end
        self._thread_comms[key] = (end if end is not None else call.first).record.comm
        path = call.fd_path
        if path is None:
            parts = call.parts
            if parts:
                paths = call.paths
                path = self._decoded(paths[0]) if paths else call.ret_path
            else:
                path = call.ret_path
        rows: tuple[Latency, ...] = (srow, trow)
        if path is not None:
            frow = self.files.get(path)
            if frow is None:
                frow = self._row(self.files, path)
            rows = (srow, trow, frow)
        if dur is None:
            for row in rows:
                row.record(None, errno)
            return
        b = dur.bit_length() - 1
        if b < 0:
            b = 0
        elif b >= BUCKETS:
            b = BUCKETS - 1
        for row in rows:
            row.calls += 1
            if errno is not None:
                row.errors += 1
                row.errnos[errno] = row.errnos.get(errno, 0) + 1
            row.timed += 1
            row.total_ns += dur
            if row.min_ns is None or dur < row.min_ns:
                row.min_ns = dur
            if dur > row.max_ns:
                row.max_ns = dur
            buckets = row.buckets
            n = buckets[b]
            if not n:
                row.low[b] = row.high[b] = dur
            elif dur < row.low[b]:
                row.low[b] = dur
            elif dur > row.high[b]:
                row.high[b] = dur
            buckets[b] = n + 1

    def _decoded(self, raw: bytes) -> str:
        """A NAMI path as text, from a bounded cache (calls look the same paths up again and again)."""
        text = self._texts.get(raw)
        if text is None:
            if len(self._texts) >= ROW_LIMIT:
                self._texts.clear()
            text = self._texts[raw] = raw.decode("utf-8", "surrogateescape")
        return text

    @property
    def threads(self) -> dict[str, Latency]:
        """The thread rows by their name: `tid` (`tid (pid N)` for other threads) and its comm."""
        out: dict[str, Latency] = {}
        for (pid, tid), row in self._threads.items():
            if pid < 0:
                out[OTHER] = row
                continue
            comm = self._thread_comms.get((pid, tid), b"").split(b"\0", 1)[0].decode("utf-8", "replace")
            row.label = comm
            out[f"{tid}" if tid == pid else f"{tid} (pid {pid})"] = row
        return out


def sorted_tables(tables: list[tuple[str, list[tuple[str, SyscallStats]]]], key: str | None) -> list[Any]:
    """render/summary's tables with their rows in --sort order."""
    return [(title, sort_rows(rows, key)) for title, rows in tables]


def sorting(summary_class: Any, key: str | None) -> Any:
    """render/summary's Summary, with its tables' rows in --sort order when one is given."""
    if key is None:
        return summary_class

    class SortedSummary(summary_class):
        def tables(self) -> list[Any]:
            return sorted_tables(super().tables(), key)

    return SortedSummary


def _us(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1000:.3f}"


LATENCY_COLUMNS = ("syscall", "calls", "min (us)", "p50 (us)", "p95 (us)", "p99 (us)", "max (us)")
COUNT_COLUMNS = ("calls", "errors", "total (s)")


def latency_rows(stats: CallStats, key: str | None) -> list[tuple[str, ...]]:
    out = []
    for name, s in sort_rows(list(stats.syscalls.items()), key):
        out.append((name, str(s.calls), _us(s.min_ns), *(_us(s.percentile(p)) for p in PERCENTILES),
                    _us(s.max_ns if s.timed else None)))  # fmt: skip
    return out


def errno_rows(stats: CallStats, key: str | None) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, s in sort_rows([(n, s) for n, s in stats.syscalls.items() if s.errors], key or "errors"):
        for errno, n in sorted(s.errnos.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append((name, errno, str(n)))
    return out


def count_rows(table: dict[str, Latency], key: str | None) -> list[tuple[str, ...]]:
    return [(f"{name} {s.label}".rstrip(), str(s.calls), str(s.errors), f"{s.total_ns / 1e9:.6f}")
            for name, s in sort_rows(list(table.items()), key)]  # fmt: skip


def histogram_lines(stats: CallStats, key: str | None) -> list[str]:
    lines = []
    for name, s in sort_rows(list(stats.syscalls.items()), key):
        if not s.timed:
            continue
        lines.append(f"{name} ({s.timed} timed calls)")
        top = max(s.buckets)
        for b, n in enumerate(s.buckets):
            if n:
                low = 0 if b == 0 else 1 << b
                bar = "#" * max(1, round(n / top * BAR_WIDTH))
                lines.append(f"  [{_ns_text(low):>7}, {_ns_text(1 << (b + 1)):>7}) {n:9d} {bar}")
        lines.append("")
    return lines


def _ns_text(ns: int) -> str:
    for unit, size in (("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1000)):
        if ns >= size:
            return f"{ns // size}{unit}" if ns % size == 0 else f"{ns / size:.1f}{unit}"
    return f"{ns}ns"


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]], first: int = 24) -> list[str]:
    widths = [max(first, *(len(r[0]) for r in rows))] if rows else [first]
    widths += [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns) if i]
    widths = [max(w, len(c)) for w, c in zip(widths, columns, strict=True)]

    def fmt(cells: tuple[str, ...]) -> str:
        return " ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [title, fmt(columns), " ".join("-" * w for w in widths), *(fmt(r) for r in rows), ""]


def sections(stats: CallStats, key: str | None) -> list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]]:
    """(title, columns, rows) of each added table."""
    Section = tuple[str, tuple[str, ...], list[tuple[str, ...]]]
    out: list[Section] = [("call times", LATENCY_COLUMNS, latency_rows(stats, key))]
    errnos = errno_rows(stats, key)
    if errnos:
        out.append(("errors by errno", ("syscall", "errno", "calls"), errnos))
    out.append(("threads", ("thread", *COUNT_COLUMNS), count_rows(stats.threads, key)))
    if stats.files:
        out.append(("files", ("path", *COUNT_COLUMNS), count_rows(stats.files, key)))
    return out


def plain_text(stats: CallStats, key: str | None, detail: bool, histogram: bool) -> str:
    """The added tables (with `detail`) and histograms (with `histogram`) as fixed-width text."""
    lines: list[str] = []
    for title, columns, rows in sections(stats, key) if detail else []:
        lines += _table(title, columns, rows)
    if histogram:
        lines.append("call time histograms (log2 buckets)")
        lines += histogram_lines(stats, key)
    # render/summary's text ends without its last blank line: this one separates the tables.
    return "\n" + "\n".join(lines) + "\n" if lines else ""


def print_rich(stats: CallStats, key: str | None, detail: bool, histogram: bool, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    for title, columns, rows in sections(stats, key) if detail else []:
        table = Table(title=title, title_justify="left")
        for i, col in enumerate(columns):
            table.add_column(col, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*(escape(c) for c in row))
        console.print(table)
    if histogram:
        console.print("call time histograms (log2 buckets)", style="bold")
        for line in histogram_lines(stats, key):
            console.print(escape(line), style="bold" if line and not line.startswith(" ") else None)

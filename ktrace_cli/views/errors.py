"""--errors: per process, how it ended and which of its calls failed, expected noise apart.

For each process with a failed call or an unhappy end: its status; when it
ended badly (non-zero exit, fatal signal), the last LAST_FAILURES unexpected
failures before that end, newest last; then its failures grouped by
syscall, errno and subject (path, address or descriptor), unexpected groups
first; then one line counting the noise the rules of views/noise.py set
apart.  Memory is bounded: at most GROUP_LIMIT groups per process, the rest
counted under the subject `...`.
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ktrace_cli.decode.calls import Call, base_name
from ktrace_cli.decode.events import Shown
from ktrace_cli.decode.fdtable import sockaddr_text
from ktrace_cli.decode.filters import CallFilter
from ktrace_cli.format.records import Struct
from ktrace_cli.views import noise
from ktrace_cli.views.lifecycle import EXECS, Lifecycle, Process
from ktrace_cli.views.safe import terminal_line
from ktrace_cli.views.stream import view_items
from ktrace_cli.views.tree import argv_text

SCHEMA = 1
LAST_FAILURES = 5
GROUP_LIMIT = 1000


def subject(call: Call, word: int = 8) -> str | None:
    """What a call was about: its first NAMI path, its sockaddr, or its descriptor's path."""
    paths = call.paths
    if paths:
        return paths[0].decode("utf-8", "surrogateescape")
    for shown in call.parts:
        p = shown.payload
        if isinstance(p, Struct) and p.name == b"sockaddr":
            text = sockaddr_text(p.data, word)
            if text is not None:
                return text
    return call.fd_path


@dataclass(slots=True)
class Failure:
    ns: int
    syscall: str
    errno: str
    subject: str | None
    noise: str | None = None


GroupKey = tuple[str, str, str | None, str | None]  # syscall, errno, subject, noise label


@dataclass(slots=True)
class Digest:
    """One process's failures."""

    groups: dict[GroupKey, int] = field(default_factory=dict)
    last: deque[Failure] = field(default_factory=lambda: deque(maxlen=LAST_FAILURES * 4))
    probes: list[Failure] = field(default_factory=list)  # failed execs waiting for a later success

    def _count(self, f: Failure, n: int) -> None:
        key: GroupKey = (f.syscall, f.errno, f.subject, f.noise)
        if key not in self.groups and len(self.groups) >= GROUP_LIMIT:
            key = (f.syscall, f.errno, "...", f.noise)
        count = self.groups.get(key, 0) + n
        if count:
            self.groups[key] = count
        else:
            self.groups.pop(key, None)

    def add(self, f: Failure) -> None:
        self._count(f, 1)
        if f.noise is None:
            self.last.append(f)

    def exec_succeeded(self, path: str | None) -> None:
        """A successful exec: the failed ones before it of the same base name were PATH probes."""
        base = os.path.basename(path or "")
        keep = []
        for f in self.probes:
            if base and os.path.basename(f.subject or "") == base:
                self._count(f, -1)
                f.noise = "execvp PATH search"
                self._count(f, 1)
            else:
                keep.append(f)
        self.probes = keep


class ErrorsView:
    def __init__(self, flt: CallFilter) -> None:
        self.flt = flt
        self.life = Lifecycle()
        self.digests: dict[int, Digest] = {}  # Process.seq -> its failures
        self.filtered = False
        self.selected: set[int] = set()  # Process.seq of processes with a record the filters selected

    def run(self, reader: Any, pids: frozenset[int] | None) -> None:
        life = self.life
        word = 8
        self.filtered = self.flt.active or bool(pids)
        selected = self.selected
        for item, ok in view_items(reader, self.flt, pids, life):
            if not isinstance(item, Call):
                if ok and isinstance(item, Shown):
                    proc = life.by_pid.get(item.record.pid)
                    if proc is not None:
                        selected.add(proc.seq)
                continue
            proc = life.by_pid.get(item.pid)
            if proc is None:
                continue
            if ok:
                selected.add(proc.seq)
            name = base_name(item.name or "")
            if name in EXECS and item.succeeded:
                digest = self.digests.get(proc.seq)
                if digest is not None and digest.probes:
                    paths = item.paths
                    digest.exec_succeeded(paths[0].decode("utf-8", "surrogateescape") if paths else None)
            if not ok or not item.failed:
                continue
            if word == 8 and getattr(reader, "arch", None) is not None:
                word = reader.arch.word
            errno = item.errno_name or f"errno {item.ret.error if item.ret else '?'}"
            subj = subject(item, word)
            rule = noise.match(name, errno, subj)
            f = Failure(item.ns, item.name or f"[{item.code}]", errno, subj)
            digest = self.digests.get(proc.seq)
            if digest is None:
                digest = self.digests[proc.seq] = Digest()
            if rule is not None and rule.when == "exec_retry":
                digest.probes.append(f)
                rule = None  # unexpected until a later exec says otherwise
            if rule is not None:
                f.noise = rule.label
            digest.add(f)

    def reports(self) -> list[tuple[Process, Digest | None]]:
        """The processes to report, in tree order: those with failures or a bad end."""
        out = []
        for _depth, proc in self.life.walk():
            if self.filtered and proc.seq not in self.selected:
                continue
            digest = self.digests.get(proc.seq)
            if digest is not None or bad_end(proc):
                out.append((proc, digest))
        return out


def bad_end(proc: Process) -> bool:
    return proc.signal is not None or (proc.exit_status is not None and proc.exit_status != 0)


def last_unexpected(proc: Process, digest: Digest | None) -> list[Failure]:
    if digest is None or not bad_end(proc):
        return []
    end = proc.exit_ns if proc.exit_ns is not None else proc.done_ns
    return [f for f in digest.last if f.noise is None and f.ns <= end][-LAST_FAILURES:]


def _sorted_groups(digest: Digest) -> list[tuple[tuple[str, str, str | None], int, str | None]]:
    rows = [((k[0], k[1], k[2]), n, k[3]) for k, n in digest.groups.items()]
    rows.sort(key=lambda r: (r[2] is not None, -r[1], r[0][0], r[0][1], r[0][2] or "", r[2] or ""))
    return rows


def _noise_counts(digest: Digest) -> dict[str, int]:
    out: dict[str, int] = {}
    for _key, count, label in _sorted_groups(digest):
        if label is not None:
            out[label] = out.get(label, 0) + count
    return out


def plain_text(view: ErrorsView) -> str:
    lines: list[str] = []
    origin = view.life.first_ns or 0
    reports = view.reports()
    for proc, digest in reports:
        lines.append(f"process {proc.pid} {argv_text(proc.argv)}  [{proc.status}]")
        last = last_unexpected(proc, digest)
        if last:
            lines.append("  last unexpected failures before its end:")
            for f in last:
                lines.append(f"    +{(f.ns - origin) / 1e9:.6f}s  {f.syscall} {f.errno}  {f.subject or '-'}")
        if digest is not None:
            rows = [r for r in _sorted_groups(digest) if r[2] is None]
            if rows:
                lines.append("  failed calls:")
                for (syscall, errno, subj), count, _label in rows:
                    lines.append(f"    {count:6d}  {syscall} {errno}  {subj or '-'}")
            counts = _noise_counts(digest)
            if counts:
                total = sum(counts.values())
                detail = ", ".join(f"{label} {n}" for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
                lines.append(f"  expected: {total} ({detail})")
        lines.append("")
    if not reports:
        lines.append("no failed calls, every process ended well")
    return "\n".join(lines) + ("\n" if lines and lines[-1] else "")


def print_rich(view: ErrorsView, console: Any) -> None:
    from rich.markup import escape

    for line in plain_text(view).splitlines():
        style = "bold" if line.startswith("process ") else "red" if line.startswith("    +") else None
        if line.startswith("  expected:"):
            style = "dim"
        console.print(escape(terminal_line(line)), style=style)


def as_json(view: ErrorsView) -> str:
    procs = []
    for proc, digest in view.reports():
        procs.append({
            "pid": proc.pid, "ppid": proc.ppid, "argv": proc.argv, "status": proc.status,
            "exit_status": proc.exit_status, "signal": proc.signal,
            "last_failures": [{"ns": f.ns, "syscall": f.syscall, "errno": f.errno, "path": f.subject}
                              for f in last_unexpected(proc, digest)],
            "groups": [{"syscall": k[0], "errno": k[1], "path": k[2], "count": n, "noise": label}
                       for k, n, label in (_sorted_groups(digest) if digest is not None else [])],
            "noise": _noise_counts(digest) if digest is not None else {},
        })  # fmt: skip
    return json.dumps({"schema": SCHEMA, "processes": procs}, ensure_ascii=True, separators=(",", ":")) + "\n"

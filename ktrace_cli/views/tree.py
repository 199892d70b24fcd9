"""--tree: the process tree of a trace, with argv, exit status, times and call counts.

Plain text (one line per process, two spaces of indent per generation):

    4120 /usr/bin/make all  [exit 2]  +0.000000s  wall 1.204311s  812 calls
      4121 /bin/sh -c 'cc -c x.c'  [exit 1]  +0.010422s  wall 0.801003s  95 calls

The start is relative to the first record of the trace.  With call filters,
the counts are of the selected calls, and only processes with selected calls
(and their ancestors, to keep the tree) are shown.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from typing import Any

from ktrace_cli.decode.calls import Call
from ktrace_cli.decode.filters import CallFilter
from ktrace_cli.views.lifecycle import Lifecycle, Process
from ktrace_cli.views.safe import terminal_line
from ktrace_cli.views.stream import view_items

SCHEMA = 1


class TreeView:
    """Collects the lifecycle and, per process, the calls the filters select."""

    def __init__(self, flt: CallFilter, filtered: bool) -> None:
        self.life = Lifecycle()
        self.flt = flt
        self.filtered = filtered  # call filters or -p: count and show only what they select
        self.selected: dict[int, int] = {}  # Process.seq -> selected calls

    def run(self, reader: Any, pids: frozenset[int] | None) -> None:
        life = self.life
        counts = self.selected
        for item, ok in view_items(reader, self.flt, pids, life):
            if ok and isinstance(item, Call):
                proc = life.by_pid.get(item.pid)
                if proc is not None:
                    counts[proc.seq] = counts.get(proc.seq, 0) + 1

    def calls(self, proc: Process) -> int:
        return self.selected.get(proc.seq, 0) if self.filtered else proc.calls

    def shown(self) -> list[tuple[int, Process]]:
        """(depth, process) of the processes to show, in tree order."""
        rows = list(self.life.walk())
        if not self.filtered:
            return rows
        keep: set[int] = set()
        for _depth, proc in rows:
            if self.selected.get(proc.seq):
                p: Process | None = proc
                while p is not None and p.seq not in keep:
                    keep.add(p.seq)
                    p = p.parent
        return [(d, p) for d, p in rows if p.seq in keep]

    def origin(self) -> int:
        return self.life.first_ns or 0


def argv_text(argv: Iterable[str]) -> str:
    return " ".join(a if a.startswith("[") and a.endswith("]") else shlex.quote(a) for a in argv)


def _fields(view: TreeView, proc: Process) -> tuple[str, str, str, str]:
    start = (proc.start_ns - view.origin()) / 1e9
    return (f"[{proc.status}]", f"+{start:.6f}s", f"wall {proc.wall_ns / 1e9:.6f}s", f"{view.calls(proc)} calls")


def plain_text(view: TreeView) -> str:
    lines = []
    for depth, proc in view.shown():
        status, start, wall, calls = _fields(view, proc)
        lines.append(f"{'  ' * depth}{proc.pid} {argv_text(proc.argv)}  {status}  {start}  {wall}  {calls}")
    return "".join(line + "\n" for line in lines)


def print_rich(view: TreeView, console: Any) -> None:
    from rich.markup import escape
    from rich.tree import Tree

    top = Tree("[bold]processes[/bold]", guide_style="dim")
    nodes: dict[int, Any] = {}
    for _depth, proc in view.shown():
        status, start, wall, calls = _fields(view, proc)
        colour = "green" if proc.exit_status == 0 and proc.signal is None else "red"
        if proc.status in ("running", "ended"):
            colour = "yellow"
        label = (f"[bold]{proc.pid}[/bold] {escape(terminal_line(argv_text(proc.argv)))}  [{colour}]{escape(status)}[/{colour}]"
                 f"  [dim]{start}  {wall}[/dim]  {calls}")  # fmt: skip
        parent = nodes.get(proc.parent.seq) if proc.parent is not None else None
        nodes[proc.seq] = (parent if parent is not None else top).add(label)
    console.print(top)


def as_json(view: TreeView) -> str:
    shown = view.shown()
    keep = {p.seq for _, p in shown}

    def node(proc: Process) -> dict[str, Any]:
        return {
            "pid": proc.pid,
            "ppid": proc.ppid,
            "comm": proc.comm,
            "argv": proc.argv,
            "execs": [{"ns": e.ns, "path": e.path, "argv": e.argv} for e in proc.execs],
            "status": proc.status,
            "exit_status": proc.exit_status,
            "signal": proc.signal,
            "start_ns": proc.start_ns,
            "end_ns": proc.end_ns,
            "wall_ns": proc.wall_ns,
            "calls": view.calls(proc),
            "failed": proc.failed,
            "threads": len(proc.threads),
            "children": [node(c) for c in Lifecycle._ordered(proc.children) if c.seq in keep],
        }

    roots = [p for d, p in shown if d == 0 or p.parent is None or p.parent.seq not in keep]
    doc = {"schema": SCHEMA, "first_ns": view.life.first_ns, "drops": view.life.drops,
           "processes": [node(p) for p in roots]}  # fmt: skip
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":")) + "\n"

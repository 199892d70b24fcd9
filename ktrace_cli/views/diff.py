"""--diff A B: where two traces of the same program part ways.

What differs between any two runs is normalised away: pids (processes are
aligned by their place in the exec tree: the chain of program names from
the root, with an ordinal among same-named siblings), descriptor numbers
(a call is keyed by the path its descriptor was), addresses and times
(never part of a key).  A call's key is its syscall, its subject and its
result (`ok` or the errno name); `/proc/<pid>` in a path reads `/proc/PID`.

The calls pyktrace makes itself before it execs the command (its comm is
still `pyktrace`, its process has no exec yet) depend on the tracer's state,
not on the program, and are left out.

Per aligned process the call keys are compared with difflib's
SequenceMatcher (a longest-common-subsequence style matcher; its "popular
element" heuristic keeps long runs of one call from making it quadratic).
Keys are interned to small integers and kept in arrays, at most
KEYS_LIMIT per process; paths and failure groups stop growing at
SET_LIMIT entries.  Counts and times per syscall cover every selected call.
"""

from __future__ import annotations

import json
import os
import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from ktrace_cli.decode.calls import Call
from ktrace_cli.decode.filters import CallFilter
from ktrace_cli.format import constants as K
from ktrace_cli.views.errors import subject
from ktrace_cli.views.lifecycle import Lifecycle, Process
from ktrace_cli.views.stream import view_items

SCHEMA = 1
KEYS_LIMIT = 2_000_000  # call keys kept per process
SET_LIMIT = 100_000  # distinct paths / failure groups kept per trace
CONTEXT = 2  # calls shown on each side of a first divergence
TIME_NOTE_NS = 1_000_000  # a per-syscall time change shown in the text from 1 ms
TRACER_COMM = b"pyktrace"
_PROC_PID = re.compile(r"^/proc/\d+(?=/|$)")


def normal_path(path: str) -> str:
    return _PROC_PID.sub("/proc/PID", path) if path.startswith("/proc/") else path


@dataclass
class Side:
    """One trace, reduced to what the comparison needs."""

    life: Lifecycle = field(default_factory=Lifecycle)
    keys: dict[str, int] = field(default_factory=dict)  # call key -> its number
    names: list[str] = field(default_factory=list)  # number -> call key
    calls: dict[int, array[int]] = field(default_factory=dict)  # Process.seq -> its call keys
    failures: dict[tuple[str, str, str], int] = field(default_factory=dict)
    paths: set[str] = field(default_factory=set)
    counts: dict[str, list[int]] = field(default_factory=dict)  # syscall -> [calls, errors, ns]

    def key(self, text: str) -> int:
        n = self.keys.get(text)
        if n is None:
            n = self.keys[text] = len(self.names)
            self.names.append(text)
        return n


def collect(reader: Any, flt: CallFilter, pids: frozenset[int] | None = None) -> Side:
    side = Side()
    life = side.life
    word = 8
    texts: dict[bytes, str] = {}  # NAMI path -> normal_path of its text
    tracer: dict[bytes, bool] = {}  # comm field -> whether it names the tracer
    for item, ok in view_items(reader, flt, pids, life):
        if not ok or item.__class__ is not Call:
            continue
        if word == 8 and getattr(reader, "arch", None) is not None:
            word = reader.arch.word
        _add(side, item, word, texts, tracer)
    return side


def _add(side: Side, call: Call, word: int, texts: dict[bytes, str], tracer: dict[bytes, bool]) -> None:
    # Once per call of each trace: the call's properties are read once.
    proc = side.life.by_pid.get(call.pid)
    if proc is None:
        return
    if proc.parent is None and not proc.execs:
        comm = call.first.record.comm
        is_tracer = tracer.get(comm)
        if is_tracer is None:
            is_tracer = tracer[comm] = comm.split(b"\0", 1)[0][: K.MAXCOMLEN] == TRACER_COMM
            if len(tracer) > SET_LIMIT:
                tracer.clear()
        if is_tracer:
            return  # the tracer starting the command
    name = call.name or f"[{call.code}]"
    paths = call.paths if call.parts else None
    if paths:
        normal = [_normal_text(p, texts) for p in paths]
        subj = normal[0]  # subject(): the first NAMI path, normalised
    else:
        normal = None
        found = subject(call, word) if call.parts or call.fd_path is not None else None
        subj = normal_path(found) if found is not None else "-"
    failed = call.failed
    result = (call.errno_name or "error") if failed else "ok" if call.ret is not None else "?"
    keys = side.calls.get(proc.seq)
    if keys is None:
        keys = side.calls[proc.seq] = array("I")
    if len(keys) < KEYS_LIMIT:
        keys.append(side.key(f"{name} {subj} {result}"))
    stats = side.counts.get(name)
    if stats is None:
        stats = side.counts[name] = [0, 0, 0]
    stats[0] += 1
    dur = call.dur_ns
    if dur is not None:
        stats[2] += dur
    if failed:
        stats[1] += 1
        fkey = (name, result, subj)
        if fkey in side.failures or len(side.failures) < SET_LIMIT:
            side.failures[fkey] = side.failures.get(fkey, 0) + 1
    if normal is not None and subj != "-" and len(side.paths) < SET_LIMIT:
        side.paths.update(normal)


def _normal_text(raw: bytes, texts: dict[bytes, str]) -> str:
    """normal_path of a NAMI path's text, from a bounded cache."""
    text = texts.get(raw)
    if text is None:
        if len(texts) >= SET_LIMIT:
            texts.clear()
        text = texts[raw] = normal_path(raw.decode("utf-8", "surrogateescape"))
    return text


def _label(proc: Process) -> str:
    for ex in reversed(proc.execs):
        if ex.path:
            return os.path.basename(ex.path)
        if ex.argv:
            return os.path.basename(ex.argv[0])
    return proc.comm or "?"


def tree_keys(life: Lifecycle) -> dict[str, Process]:
    """Each process by its place in the exec tree: `make/sh#2/cc`."""
    out: dict[str, Process] = {}

    def visit(procs: Iterable[Process], prefix: str) -> None:
        seen: dict[str, int] = {}
        for p in Lifecycle._ordered(procs):
            label = _label(p)
            n = seen.get(label, 0)
            seen[label] = n + 1
            key = f"{prefix}{label}" + (f"#{n + 1}" if n else "")
            out[key] = p
            visit(p.children, key + "/")

    visit(life.roots(), "")
    return out


@dataclass
class ProcessDiff:
    key: str
    a: Process | None
    b: Process | None
    first: dict[str, Any] | None = None
    only_a: int = 0  # calls in A's sequence that B's has not
    only_b: int = 0


@dataclass
class Result:
    processes: list[ProcessDiff]
    failures: list[tuple[tuple[str, str, str], int, int]]  # key, count in A, count in B (differing)
    paths_a: list[str]
    paths_b: list[str]
    syscalls: list[tuple[str, list[int], list[int]]]


def _compare_calls(a: Side, b: Side, pa: Process, pb: Process, out: ProcessDiff) -> None:
    ka = a.calls.get(pa.seq, array("I"))
    kb = b.calls.get(pb.seq, array("I"))
    # Compare texts, not numbers: each side numbers its keys in its own order.
    ta = [a.names[k] for k in ka]
    tb = [b.names[k] for k in kb]
    matcher = SequenceMatcher(None, ta, tb)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        out.only_a += i2 - i1
        out.only_b += j2 - j1
        if out.first is None:
            out.first = {
                "index_a": i1, "index_b": j1,
                "before": ta[max(0, i1 - CONTEXT):i1],
                "a": ta[i1:min(i2, i1 + CONTEXT + 1)], "b": tb[j1:min(j2, j1 + CONTEXT + 1)],
            }  # fmt: skip


def compare(a: Side, b: Side) -> Result:
    ta, tb = tree_keys(a.life), tree_keys(b.life)
    procs: list[ProcessDiff] = []
    for key in list(ta) + [k for k in tb if k not in ta]:
        pa, pb = ta.get(key), tb.get(key)
        d = ProcessDiff(key, pa, pb)
        if pa is not None and pb is not None:
            _compare_calls(a, b, pa, pb, d)
        procs.append(d)
    failures = []
    for fkey in sorted(set(a.failures) | set(b.failures)):
        na, nb = a.failures.get(fkey, 0), b.failures.get(fkey, 0)
        if na != nb:
            failures.append((fkey, na, nb))
    syscalls = []
    for name in sorted(set(a.counts) | set(b.counts)):
        syscalls.append((name, a.counts.get(name, [0, 0, 0]), b.counts.get(name, [0, 0, 0])))
    return Result(procs, failures, sorted(a.paths - b.paths), sorted(b.paths - a.paths), syscalls)


def _status(p: Process | None) -> str:
    return p.status if p is not None else "absent"


def plain_text(r: Result, names: tuple[str, str]) -> str:
    lines = [f"--- A {names[0]}", f"+++ B {names[1]}"]
    for d in r.processes:
        pids = f"A {d.a.pid if d.a else '-'}, B {d.b.pid if d.b else '-'}"
        head = f"process {d.key} ({pids}): "
        if d.a is None or d.b is None:
            lines.append(head + ("only in B" if d.a is None else "only in A") + f" [{_status(d.a or d.b)}]")
            continue
        same_end = _status(d.a) == _status(d.b)
        if d.first is None and same_end:
            lines.append(head + f"same calls [{_status(d.a)}]")
            continue
        lines.append(head + (f"[{_status(d.a)}]" if same_end else f"[{_status(d.a)}] -> [{_status(d.b)}]"))
        if d.first is not None:
            f = d.first
            lines.append(f"  first divergence at call {f['index_a'] + 1} of A, {f['index_b'] + 1} of B:")
            lines.extend(f"    {k}" for k in f["before"])
            lines.extend(f"  - {k}" for k in f["a"])
            lines.extend(f"  + {k}" for k in f["b"])
            lines.append(f"  {d.only_a} calls only in A, {d.only_b} only in B")
    if r.failures:
        lines.append("failures (A -> B):")
        lines.extend(f"  {na:6d} -> {nb:<6d} {k[0]} {k[1]}  {k[2]}" for k, na, nb in r.failures)
    for title, paths in (("paths only in A:", r.paths_a), ("paths only in B:", r.paths_b)):
        if paths:
            lines.append(title)
            lines.extend(f"  {p}" for p in paths)
    rows = [(n, a, b) for n, a, b in r.syscalls if a[0] != b[0] or a[1] != b[1] or abs(a[2] - b[2]) >= TIME_NOTE_NS]
    if rows:
        lines.append("syscalls (calls A -> B, errors A -> B, time A -> B):")
        for name, a, b in rows:
            lines.append(f"  {name:<20} {a[0]:6d} -> {b[0]:<6d} {a[1]:5d} -> {b[1]:<5d}"
                         f" {a[2] / 1e9:.6f}s -> {b[2] / 1e9:.6f}s")  # fmt: skip
    return "\n".join(lines) + "\n"


def as_json(r: Result) -> str:
    def proc(p: Process | None) -> dict[str, Any] | None:
        if p is None:
            return None
        return {"pid": p.pid, "argv": p.argv, "status": p.status, "exit_status": p.exit_status,
                "signal": p.signal, "calls": p.calls, "wall_ns": p.wall_ns}  # fmt: skip

    doc = {
        "schema": SCHEMA,
        "processes": [{"key": d.key, "a": proc(d.a), "b": proc(d.b), "first_divergence": d.first,
                       "only_a": d.only_a, "only_b": d.only_b} for d in r.processes],
        "failures": [{"syscall": k[0], "errno": k[1], "path": k[2], "a": na, "b": nb} for k, na, nb in r.failures],
        "paths_only_a": r.paths_a,
        "paths_only_b": r.paths_b,
        "syscalls": [{"name": n, "calls_a": a[0], "calls_b": b[0], "errors_a": a[1], "errors_b": b[1],
                      "time_a_ns": a[2], "time_b_ns": b[2]} for n, a, b in r.syscalls],
    }  # fmt: skip
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":")) + "\n"

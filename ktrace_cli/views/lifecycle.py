"""Processes of a trace, rebuilt from their creation, fork, exec and exit records.

A process starts at its PROCCTOR (or its first record when the trace has
none), gets its parent from the fork-like call that returned its pid, its
argv from the ARGS record of its last successful exec (or the exec's NAMI
path when the trace has no ARGS), and ends at its PROCDTOR.  Its exit status
is the argument of its exit call; a PSIG whose action is the default one for
a signal that kills is its fatal signal.

The records of a fork come in no fixed order: on Linux the child's PROCCTOR,
even its whole life, may come before its parent's RET, so a child is linked
to its parent whenever the RET arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ktrace_cli.decode import abi as A
from ktrace_cli.decode.calls import Call
from ktrace_cli.decode.events import Dropped, Shown
from ktrace_cli.format import constants as K
from ktrace_cli.format.records import Psig, Record, Strings, Sysret

FORKS = frozenset({"fork", "vfork", "clone", "clone2", "clone3", "rfork", "pdfork"})
EXECS = frozenset({"execve", "execveat", "fexecve"})
EXITS = frozenset({"exit", "exit_group", "sys_exit"})
CLONE_THREAD = 0x10000  # Linux clone(2): a thread of the caller, not a process
RFPROC = 1 << 4  # FreeBSD rfork(2): a new process (without it, no child)
SIG_DFL = 0
# Signals whose default action does not end the process (ignore, stop, continue).
HARMLESS_SIGNALS = frozenset({
    "SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU",
    "SIGINFO", "SIGTHR", "SIGLIBRT",
})  # fmt: skip
_LIFE_NAMES = FORKS | EXECS | EXITS
_NOT_FAILURES = frozenset({0, K.ERESTART, K.EJUSTRETURN})
ARGS_POINTS = K.ALL_POINTS | K.KTRFAC_ARGS  # the views read argv from ARGS records


def record_ns(record: Record) -> int:
    return record.sec * 1_000_000_000 + record.nsec


def text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


@dataclass(slots=True)
class Exec:
    """A successful exec: when, the path it looked up, the argv its ARGS record gave."""

    ns: int
    path: str | None
    argv: list[str] | None


@dataclass(slots=True, eq=False)
class Process:
    pid: int
    start_ns: int
    seq: int  # creation order, to tell apart processes that share a reused pid
    comm: str = ""
    comm_raw: bytes = b""  # the record's comm field, to decode it only when it changes
    ppid: int | None = None
    parent: Process | None = None
    children: list[Process] = field(default_factory=list)
    execs: list[Exec] = field(default_factory=list)
    last_ns: int = 0
    end_ns: int | None = None  # its PROCDTOR
    exit_status: int | None = None
    exit_ns: int | None = None
    signal: str | None = None  # the signal that killed it
    calls: int = 0
    failed: int = 0
    threads: set[int] = field(default_factory=set)
    pending_args: list[str] | None = None  # an ARGS record outside any call, for the next exec
    own: bool = False  # a record of its own was seen (not only its parent's fork)
    inherited: list[str] | None = None  # the parent's argv at the fork, until an exec of its own

    @property
    def argv(self) -> list[str]:
        """The argv of its last exec, that exec's path alone, its parent's, or its comm in brackets."""
        for ex in reversed(self.execs):
            if ex.argv:
                return ex.argv
            if ex.path:
                return [ex.path]
        return self.inherited if self.inherited is not None else [f"[{self.comm}]"]

    @property
    def done_ns(self) -> int:
        if self.end_ns is not None:
            return self.end_ns
        if self.exit_ns is not None:
            return self.exit_ns
        return max(self.last_ns, self.start_ns)

    @property
    def wall_ns(self) -> int:
        return max(0, self.done_ns - self.start_ns)

    @property
    def status(self) -> str:
        """`exit 3`, `killed by SIGTERM`, `running` (no end in the trace) or `ended` (its status not seen)."""
        if self.signal is not None:
            return f"killed by {self.signal}"
        if self.exit_status is not None:
            return f"exit {self.exit_status}"
        return "ended" if self.end_ns is not None else "running"


class Lifecycle:
    """Follows every process of a trace; feed it the view stream's items and the tap's records."""

    def __init__(self) -> None:
        self.processes: list[Process] = []  # in creation order
        self.by_pid: dict[int, Process] = {}  # the latest process of each pid
        self.first_ns: int | None = None
        self.last_ns = 0
        self.drops = 0

    def process(self, pid: int, ns: int, comm: bytes = b"") -> Process:
        proc = self.by_pid.get(pid)
        if proc is None:
            proc = self._new(pid, ns, comm)
        return proc

    def _new(self, pid: int, ns: int, comm: bytes) -> Process:
        proc = Process(pid, ns, len(self.processes), text(comm), last_ns=ns)
        self.processes.append(proc)
        self.by_pid[pid] = proc
        return proc

    def _seen(self, ns: int) -> None:
        if self.first_ns is None:
            self.first_ns = ns
        if ns > self.last_ns:
            self.last_ns = ns

    def proc_record(self, record: Record) -> None:
        """A PROCCTOR or PROCDTOR, which select() consumes before the call stream sees it."""
        ns = record_ns(record)
        self._seen(ns)
        proc = self.by_pid.get(record.pid)
        if record.type == K.KTR_PROCCTOR:
            # A PROCCTOR for a live process is an exec changing its ABI, not a new
            # process, unless only its parent's fork RET, written first, made it.
            if proc is None or proc.end_ns is not None:
                proc = self._new(record.pid, ns, record.comm_name)
            elif not proc.own:
                proc.start_ns = ns
            proc.own = True
        elif proc is not None and proc.end_ns is None:
            proc.end_ns = ns
            proc.last_ns = max(proc.last_ns, ns)

    def feed(self, item: Call | Shown | Dropped) -> None:
        if isinstance(item, Dropped):
            self.drops += 1
            return
        if isinstance(item, Call):
            self.feed_call(item)
            return
        record = item.record
        ns = record_ns(record)
        self._seen(ns)
        proc = self.process(record.pid, ns, record.comm_name)
        proc.own = True
        proc.last_ns = max(proc.last_ns, ns)
        proc.comm = text(record.comm_name)
        p = item.payload
        if isinstance(p, Psig):
            abi = A.syscall_abi(item.sv_flags)
            name = A.signal_name(abi, p.signo)
            if p.action == SIG_DFL and name not in HARMLESS_SIGNALS:
                proc.signal = name
                proc.exit_ns = ns
        elif record.type == K.KTR_ARGS and isinstance(p, Strings):
            proc.pending_args = [text(s) for s in p.strings]

    def feed_call(self, call: Call) -> None:
        """feed() of a Call: the view stream's most frequent item, without the type tests."""
        # Runs once per call of the trace: plain attribute reads, no properties on the way.
        start, end = call.start, call.end
        first = (start if start is not None else end).record  # type: ignore[union-attr]
        last = end.record if end is not None else first
        # Record.nsec, inlined: a v0 header counts microseconds.
        ns = first.sec * 1_000_000_000 + (first.frac if first.version else first.frac * 1000)
        end_ns = last.sec * 1_000_000_000 + (last.frac if last.version else last.frac * 1000)
        if self.first_ns is None:
            self.first_ns = ns
        if end_ns > self.last_ns:
            self.last_ns = end_ns
        proc = self.by_pid.get(call.pid)
        if proc is None:
            proc = self._new(call.pid, ns, first.comm_name)
        proc.own = True
        proc.calls += 1
        proc.threads.add(call.tid)
        if last.comm != proc.comm_raw:
            proc.comm_raw = last.comm
            proc.comm = text(last.comm_name)
        if end_ns > proc.last_ns:
            proc.last_ns = end_ns
        ret = end.payload if end is not None else None
        if ret.__class__ is Sysret and ret.error not in _NOT_FAILURES:
            proc.failed += 1
        name = call.name
        if name not in _LIFE_NAMES:
            return
        if name in FORKS:
            self._fork(call, proc, name)
        elif name in EXECS:
            if isinstance(ret, Sysret) and ret.error in (0, K.EJUSTRETURN):
                args = [p.payload for p in call.parts if p.record.type == K.KTR_ARGS]
                argv = [text(s) for s in args[-1].strings] if args and isinstance(args[-1], Strings) else None
                if argv is None and proc.pending_args is not None:
                    argv = proc.pending_args
                paths = call.paths
                proc.execs.append(Exec(end_ns, text(paths[0]) if paths else None, argv))
            proc.pending_args = None
        elif start is not None:
            # exit(2) of one Linux thread leaves its process running.
            if name == "exit_group" or call.tid == call.pid or call.abi is A.Abi.FREEBSD:
                proc.exit_status = (call.args[0] & 0xFF) if call.args else None
                proc.exit_ns = ns

    def _fork(self, call: Call, parent: Process, name: str) -> None:
        ret = call.ret
        if call.start is None or ret is None or ret.error != 0 or ret.retval <= 0:
            return
        args = call.args
        if name == "clone" and call.abi is not A.Abi.FREEBSD and args and args[0] & CLONE_THREAD:
            return
        if name == "rfork" and args and not args[0] & RFPROC:
            return
        child = self.by_pid.get(ret.retval)
        if child is None or child.parent is not None or child is parent:
            if name == "clone3":
                return  # its flags are in memory: a process only if its records say so
            child = self._new(ret.retval, call.ns, call.first.record.comm_name)
        child.ppid = parent.pid
        child.parent = parent
        child.inherited = parent.argv
        parent.children.append(child)

    def roots(self) -> list[Process]:
        return [p for p in self.processes if p.parent is None]

    def walk(self) -> Iterator[tuple[int, Process]]:
        """(depth, process) in tree order, children by start time."""
        stack: list[tuple[int, Process]] = [(0, p) for p in reversed(self._ordered(self.roots()))]
        while stack:
            depth, proc = stack.pop()
            yield depth, proc
            stack.extend((depth + 1, c) for c in reversed(self._ordered(proc.children)))

    @staticmethod
    def _ordered(procs: Iterable[Process]) -> list[Process]:
        return sorted(procs, key=lambda p: (p.start_ns, p.seq))


class ProcTap:
    """A reader's records, passed on unchanged, with PROCCTOR/PROCDTOR shown to `sink` first.

    select() keeps those records to itself (they only set the ABI), so the
    views see them here.  `arch` is the reader's, which select() asks for.
    """

    def __init__(self, reader: Any, sink: Callable[[Record], None]) -> None:
        self.reader = reader
        self.sink = sink

    @property
    def arch(self) -> Any:
        return getattr(self.reader, "arch", None)

    def __iter__(self) -> Iterator[Record]:
        sink = self.sink
        for record in self.reader:
            if record.type == K.KTR_PROCCTOR or record.type == K.KTR_PROCDTOR:
                sink(record)
            yield record

"""--timeline OUT.json: the trace as Chrome trace-event JSON, for Perfetto's UI or Chromium DevTools' Performance panel.

One track per process and per thread, named by comm (metadata events); a
complete slice (ph X) per call with its raw arguments, paths, result,
errno and descriptor; instant events (ph i) for signals, failed calls,
drops and USER records; flow events (ph s, f) from a fork to the child's
first call and from an exec to the new image's first call.  A flow's ends
carry the category and the timestamp of the slices they join, as Chromium's
DevTools binds a flow event only to a slice of the same thread, time and
category.

Times are microseconds after the trace's first record, whose absolute time
is `otherData.first_ns`: the format's unit is the microsecond, and a double
holds epoch microseconds only to a quarter of one, so the times are made
relative to keep every nanosecond.  Events are written as they come (a
thread's calls end in order, so each track's slices stay sorted); only the
names of processes and threads wait for the end.
"""

from __future__ import annotations

import json
import os
from json.encoder import encode_basestring_ascii
from typing import IO, Any

from ktrace_cli.decode.calls import Call, base_name
from ktrace_cli.decode.events import Dropped, Shown
from ktrace_cli.decode.filters import CallFilter
from ktrace_cli.format import constants as K
from ktrace_cli.format.records import Psig, Syscall, Sysret, User
from ktrace_cli.views import lifecycle as L
from ktrace_cli.views.stream import view_items

USER_TEXT_LIMIT = 256  # bytes of a USER record shown in its marker
BATCH_EVENTS = 4096  # events joined into one write
CACHE_LIMIT = 4096  # entries of each JSON text cache (cleared when full: memory stays flat)
_NOT_FAILURES = frozenset({0, K.ERESTART, K.EJUSTRETURN})
FLOW_CAT = "syscall"  # the slices' category, which the flows' ends share so that DevTools binds them
_FLOW_NAMES = L.FORKS | L.EXECS  # FreeBSD's compat prefixes name no fork or exec


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


class TimelineView:
    def __init__(self, flt: CallFilter, out: IO[str]) -> None:
        self.flt = flt
        self.out = out
        self.life = L.Lifecycle()
        self.origin: int | None = None
        self.flows = 0
        self.threads: dict[tuple[int, int], bytes] = {}  # (pid, tid) -> its comm field, as recorded
        self.pending_exec: dict[int, int] = {}  # pid -> flow id waiting for the new image's first call
        self.pending_fork: dict[int, int] = {}  # child pid -> flow id waiting for the child's first call
        self.first_call: dict[int, tuple[float, int]] = {}  # pid -> (ts, tid) of its first call
        self._encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), check_circular=False).encode
        self._first = True
        # Events wait here and go out in batches: one write per event dominated the cost.
        self._batch: list[str] = []
        # JSON text of what calls repeat (names, argument lists, paths), built once.
        self._heads: dict[str, str] = {}
        self._args: dict[tuple[int, ...], str] = {}
        self._strings: dict[str | bytes, str] = {}
        self.out.write('{"displayTimeUnit":"ns","traceEvents":[\n')

    def _emit(self, event: dict[str, Any]) -> None:
        self._put(self._encode(event))

    def _put(self, text: str) -> None:
        """One event's JSON text, after the events before it."""
        if self._first:
            self._first = False
            self._batch.append(text)
            return
        batch = self._batch
        batch.append(",\n" + text)
        if len(batch) >= BATCH_EVENTS:
            self.out.write("".join(batch))
            batch.clear()

    def _flush(self) -> None:
        if self._batch:
            self.out.write("".join(self._batch))
            self._batch.clear()

    def _ts(self, ns: int) -> float:
        if self.origin is None:
            self.origin = self.life.first_ns if self.life.first_ns is not None else ns
        return (ns - self.origin) / 1000

    def run(self, reader: Any, pids: frozenset[int] | None) -> None:
        for item, ok in view_items(reader, self.flt, pids, self.life):
            if item.__class__ is Call:
                if ok:
                    self._call(item)
            elif isinstance(item, Dropped):
                r = item.record
                self._emit({"name": "records dropped", "cat": "drop", "ph": "i", "s": "g",
                            "ts": self._ts(L.record_ns(r)), "pid": r.pid, "tid": r.tid})  # fmt: skip
            elif ok:
                self._lone(item)  # type: ignore[arg-type]

    def _track(self, pid: int, tid: int, comm: bytes) -> None:
        self.threads[(pid, tid)] = comm  # the raw field: decoded once, at the end

    def _string(self, value: str | bytes) -> str:
        """A JSON string of `value` (recorded bytes are decoded as _text does), from a bounded cache."""
        found = self._strings.get(value)
        if found is None:
            if len(self._strings) >= CACHE_LIMIT:
                self._strings.clear()
            text = _text(value) if isinstance(value, bytes) else value
            found = self._strings[value] = encode_basestring_ascii(text)
        return found

    def _arg_list(self, args: tuple[int, ...]) -> str:
        found = self._args.get(args)
        if found is None:
            if len(self._args) >= CACHE_LIMIT:
                self._args.clear()
            found = self._args[args] = '["' + '","'.join([f"{a:#x}" for a in args]) + '"]' if args else "[]"
        return found

    def _call(self, call: Call) -> None:
        # Once per call of the trace: the event's JSON is written directly, from
        # cached pieces, in the order (and with the text) json.dumps would give
        # {"name", "cat", "ph", "ts", "dur", "pid", "tid", "args": {...}}.
        pid, tid = call.pid, call.tid
        start, end = call.start, call.end
        last = (end if end is not None else start).record  # type: ignore[union-attr]
        self.threads[(pid, tid)] = last.comm
        name = call.name or f"[{call.code}]"
        first = (start if start is not None else end).record  # type: ignore[union-attr]
        ns = first.sec * 1_000_000_000 + (first.frac if first.version else first.frac * 1000)
        origin = self.origin
        if origin is None:
            self._ts(ns)
            origin = self.origin or 0
        ts = (ns - origin) / 1000
        ret = end.payload if end is not None else None
        string = self._string
        p = start.payload if start is not None else None
        values = p.args if p.__class__ is Syscall else ()
        args = self._args.get(values)
        if args is None:
            args = self._arg_list(values)
        body = '{"args":' + args
        paths_json = None
        if call.parts:
            paths = call.paths
            if paths:
                paths_json = "[" + ",".join([string(p) for p in paths]) + "]"
                body += ',"paths":' + paths_json
        if call.fd is not None:
            body += f',"fd":{call.fd}'
            if call.fd_path is not None:
                body += ',"fd_path":' + string(call.fd_path)
        failed = False
        errno: str | int = 0
        if ret.__class__ is Sysret:
            failed = ret.error not in _NOT_FAILURES
            body += f',"ret":{-1 if failed else ret.retval}'
            if failed:
                errno = call.errno_name or ret.error
                body += ',"errno":' + (string(errno) if isinstance(errno, str) else str(errno))
        if call.ret_path is not None:
            body += ',"ret_fd_path":' + string(call.ret_path)
        if pid not in self.first_call:  # where a fork's flow ends, whichever of parent and child ran first
            self.first_call[pid] = (ts, tid)
            if pid in self.pending_fork:
                self._emit({"name": "fork", "cat": FLOW_CAT, "ph": "f", "bp": "e", "id": self.pending_fork.pop(pid),
                            "ts": ts, "pid": pid, "tid": tid})  # fmt: skip
        if start is not None and pid in self.pending_exec:
            self._emit({"name": "exec", "cat": FLOW_CAT, "ph": "f", "bp": "e", "id": self.pending_exec.pop(pid),
                        "ts": ts, "pid": pid, "tid": tid})  # fmt: skip
        if start is None:
            body += ',"resumed":true'  # its CALL is not in the trace
            dur = 0
        elif end is None:
            body += ',"unfinished":true'
            dur = max(0, self.life.last_ns - ns)
        else:
            # Record.nsec, inlined: a v0 header counts microseconds.
            dur = (last.sec * 1_000_000_000 + (last.frac if last.version else last.frac * 1000)) - ns
            if dur < 0:
                dur = 0
        head = self._heads.get(name)
        if head is None:
            head = self._heads[name] = (
                '{"name":' + encode_basestring_ascii(name) + ',"cat":' + encode_basestring_ascii(FLOW_CAT) + ',"ph":"X","ts":'
            )
        self._put(f'{head}{ts!r},"dur":{dur / 1000!r},"pid":{pid},"tid":{tid},"args":{body}}}}}')
        if call.parts:
            for part in call.parts:
                if isinstance(part.payload, (Psig, User)):
                    self._lone(part)
        if failed:
            end_ts = (last.sec * 1_000_000_000 + last.nsec - origin) / 1000
            self._put('{"name":' + encode_basestring_ascii(f"{name} {errno}")
                      + f',"cat":"failed","ph":"i","s":"t","ts":{end_ts!r},"pid":{pid},"tid":{tid},'
                      + '"args":{"paths":' + (paths_json or "[]") + "}}")  # fmt: skip
        if name not in _FLOW_NAMES:
            return
        base = base_name(name)
        if base in L.FORKS and isinstance(ret, Sysret) and not failed and ret.retval > 0 and start is not None:
            child = self.life.by_pid.get(ret.retval)
            if child is not None and child.parent is not None and child.parent.pid == pid:
                self.flows += 1
                self._emit({"name": "fork", "cat": FLOW_CAT, "ph": "s", "id": self.flows, "ts": ts,
                            "pid": pid, "tid": tid})  # fmt: skip
                first_call = self.first_call.get(child.pid)
                if first_call is None:
                    self.pending_fork[child.pid] = self.flows
                else:
                    self._emit({"name": "fork", "cat": FLOW_CAT, "ph": "f", "bp": "e", "id": self.flows,
                                "ts": max(ts, first_call[0]), "pid": child.pid, "tid": first_call[1]})  # fmt: skip
        elif base in L.EXECS and call.succeeded and start is not None:
            self.flows += 1
            self._emit({"name": "exec", "cat": FLOW_CAT, "ph": "s", "id": self.flows, "ts": ts, "pid": pid,
                        "tid": tid})  # fmt: skip
            old = self.pending_exec.get(pid)
            if old is not None:  # an exec with no call after the one before: close that flow here
                self._emit({"name": "exec", "cat": FLOW_CAT, "ph": "f", "bp": "e", "id": old, "ts": ts,
                            "pid": pid, "tid": tid})  # fmt: skip
            self.pending_exec[pid] = self.flows

    def _lone(self, shown: Shown) -> None:
        r = shown.record
        p = shown.payload
        ts = self._ts(L.record_ns(r))
        if isinstance(p, Psig):
            from ktrace_cli.decode import abi as A

            abi = A.syscall_abi(shown.sv_flags)
            self._track(r.pid, r.tid, r.comm)
            self._emit({"name": A.signal_name(abi, p.signo), "cat": "signal", "ph": "i", "s": "t", "ts": ts,
                        "pid": r.pid, "tid": r.tid,
                        "args": {"signo": p.signo, "action": f"{p.action:#x}", "code": p.code}})  # fmt: skip
        elif isinstance(p, User):
            data = p.data[:USER_TEXT_LIMIT]
            self._track(r.pid, r.tid, r.comm)
            self._emit({"name": "USER", "cat": "user", "ph": "i", "s": "t", "ts": ts, "pid": r.pid, "tid": r.tid,
                        "args": {"len": len(p.data), "data": _text(data)}})  # fmt: skip

    def finish(self) -> None:
        """The pending flows' ends, the track names, and the end of the document."""
        for name, pending in (("fork", self.pending_fork), ("exec", self.pending_exec)):
            for pid, flow in sorted(pending.items()):
                self._emit({"name": name, "cat": FLOW_CAT, "ph": "f", "bp": "e", "id": flow,
                            "ts": self._ts(self.life.last_ns), "pid": pid, "tid": pid})  # fmt: skip
            pending.clear()
        named: set[int] = set()
        for proc in self.life.processes:
            if proc.pid in named:
                continue
            named.add(proc.pid)
            label = f"{proc.comm} {proc.pid}"
            self._emit({"name": "process_name", "ph": "M", "pid": proc.pid, "tid": 0, "args": {"name": label}})
        for (pid, tid), raw in sorted(self.threads.items()):
            comm = _text(raw.split(b"\0", 1)[0])
            if pid not in named:
                named.add(pid)
                self._emit({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                            "args": {"name": f"{comm} {pid}"}})  # fmt: skip
            self._emit({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": f"{comm} {tid}"}})
        self._flush()
        other = {"first_ns": self.origin if self.origin is not None else self.life.first_ns,
                 "source": "pykdump --timeline", "drops": self.life.drops}  # fmt: skip
        self.out.write('\n],"otherData":' + self._encode(other) + "}\n")


def write_timeline(path: str, build: Any) -> None:
    """Run `build(out)` into a temporary file beside `path`, renamed over it when whole."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="ascii", buffering=1 << 20) as out:
            build(out)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

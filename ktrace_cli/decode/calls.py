"""One event per system call: a thread's CALL joined with its NAMI, STRU, GIO, ... and RET.

Records of a thread between its CALL and its RET belong to that call (FreeBSD's
kernel and pyktrace both write them from inside the call).  Threads interleave
freely: each thread has at most one call in flight, so joining is per thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

from ktrace_cli.abi.twins import FREEBSD_TWINS
from ktrace_cli.decode import abi as A
from ktrace_cli.decode.cfmt import c_int32
from ktrace_cli.decode.events import Shown
from ktrace_cli.format import constants as K
from ktrace_cli.format.records import Namei, Syscall, Sysret

# Calls that never return to their thread: no RET will come to close them.
NO_RETURN = frozenset({"exit", "exit_group", "thr_exit", "sys_exit"})

# Argument names that hold the descriptor a call works on (Linux prototypes).
_FD_ARG_NAMES = frozenset({"fd", "sockfd", "oldfd", "epfd", "ufd", "fildes", "s", "fd_in", "in_fd"})
_DIRFD_ARG_NAMES = frozenset({"dirfd", "dfd", "olddfd", "olddirfd"})
# FreeBSD calls whose names Linux does not share, or shares with another layout.
_FREEBSD_FD_ARG = {
    "getdirentries": 0, "kevent": 0, "pread": 0, "pwrite": 0, "preadv": 0,
    "pwritev": 0, "fstat": 0, "fstatfs": 0, "fchflags": 0, "fpathconf": 0, "futimes": 0,
    "futimens": 0, "posix_fallocate": 0, "posix_fadvise": 0, "sendfile": 0, "cap_rights_limit": 0,
    "cap_ioctls_limit": 0, "cap_fcntls_limit": 0, "funlinkat": 2, "fexecve": 0,
    "mmap": 4, "__acl_get_fd": 0, "extattr_get_fd": 0, "sctp_generic_sendmsg": 0,
}  # fmt: skip
AT_FDCWD = -100
_UNSET = -2  # Call.code before __post_init__ looked at the payload
_ERRNO_NAMES: dict[tuple[A.Abi, int], str | None] = {}  # errno_name, per ABI and stored error
_NOT_FAILURES = frozenset({0, K.ERESTART, K.EJUSTRETURN})  # errors that are no failure


signed32 = c_int32  # the name the call views use


_COMPAT = re.compile(r"^(?:compat\d*\.|freebsd\d+_)")


@cache
def base_name(name: str) -> str:
    """A syscall name without FreeBSD's compatibility prefix (`compat11.fstat` -> `fstat`)."""
    return _COMPAT.sub("", name)


@cache
def fd_arg_index(abi: A.Abi, name: str) -> tuple[int, int]:
    """(index of the descriptor argument or -1, index of a directory descriptor or -1)."""
    name = base_name(name)
    if abi is A.Abi.FREEBSD and name in _FREEBSD_FD_ARG:
        return _FREEBSD_FD_ARG[name], -1
    from ktrace_cli.abi import linux

    if abi is A.Abi.FREEBSD:
        name = FREEBSD_TWINS.get(name, name)
    proto = linux.syscall_prototype(name)
    if proto is None:
        return -1, -1
    fd = dirfd = -1
    for i, (argtype, argname) in enumerate(proto[1]):
        if "*" in argtype or "[" in argtype:
            continue  # pipe's fildes: where descriptors will be written, not one
        if fd < 0 and argname in _FD_ARG_NAMES:
            fd = i
        elif dirfd < 0 and argname in _DIRFD_ARG_NAMES:
            dirfd = i
    return fd, dirfd


@dataclass(slots=True, eq=False, init=False)
class Call:
    """One system call of one thread, with every record written while it ran.

    `start` (the CALL) is None for a RET whose CALL is not in the trace, `end`
    (the RET) is None for a call that never returned before the trace ended.
    """

    pid: int
    tid: int
    sv_flags: int
    abi: A.Abi
    start: Shown | None
    end: Shown | None = None
    parts: list[Shown] = field(default_factory=list)
    fd: int | None = None  # the descriptor argument, if the call has one
    fd_index: int = -1  # which argument that is
    fd_path: str | None = None  # what that descriptor was, from the rebuilt table
    ret_path: str | None = None  # what a descriptor the call returned is
    selected: bool | None = None  # the filters' decision, once taken
    code: int = _UNSET  # the syscall number: from the payload unless given
    name: str | None = None
    pair: tuple[tuple[int, str], ...] | None = None  # pipe*, socketpair: (descriptor, what it is) made

    def __init__(
        self, pid: int, tid: int, sv_flags: int, abi: A.Abi, start: Shown | None, end: Shown | None = None,
        parts: list[Shown] | None = None, fd: int | None = None, fd_index: int = -1, fd_path: str | None = None,
        ret_path: str | None = None, selected: bool | None = None, code: int = _UNSET, name: str | None = None,
    ) -> None:  # fmt: skip
        # Written out rather than generated: one Call is built per system call,
        # and the generated __init__ would call a __post_init__ besides.
        self.pid = pid
        self.tid = tid
        self.sv_flags = sv_flags
        self.abi = abi
        self.start = start
        self.end = end
        self.parts = parts if parts is not None else []
        self.fd = fd
        self.fd_index = fd_index
        self.fd_path = fd_path
        self.ret_path = ret_path
        self.selected = selected
        self.code = code
        self.name = name
        self.pair = None
        if code == _UNSET:  # not given: from the payload (the joiner passes both, from its cache)
            self.code = -1
            p = self.first.payload
            if isinstance(p, (Syscall, Sysret)):
                self.code = p.code
                if p.code >= 0:
                    self.name = A.syscall_name(self.abi, p.code)

    @property
    def first(self) -> Shown:
        shown = self.start if self.start is not None else self.end
        assert shown is not None
        return shown

    @property
    def syscall(self) -> Syscall | None:
        start = self.start
        if start is None:
            return None
        p = start.payload
        return p if p.__class__ is Syscall else None

    @property
    def ret(self) -> Sysret | None:
        end = self.end
        if end is None:
            return None
        p = end.payload
        return p if p.__class__ is Sysret else None

    @property
    def args(self) -> tuple[int, ...]:
        start = self.start
        if start is None:
            return ()
        p = start.payload
        return p.args if p.__class__ is Syscall else ()

    @property
    def paths(self) -> list[bytes]:
        # Read by every view, once per call: most calls have no parts at all.
        parts = self.parts
        if not parts:
            return []
        return [p.payload.path.split(b"\0", 1)[0] for p in parts if p.payload.__class__ is Namei]

    @property
    def ns(self) -> int:
        r = self.first.record
        return r.sec * 1_000_000_000 + r.nsec

    @property
    def dur_ns(self) -> int | None:
        start, end = self.start, self.end
        if start is None or end is None:
            return None
        r, q = start.record, end.record
        # Record.nsec, inlined: a v0 header counts microseconds.
        dur = (q.sec - r.sec) * 1_000_000_000 + (q.frac if q.version else q.frac * 1000)
        dur -= r.frac if r.version else r.frac * 1000
        return dur if dur > 0 else 0

    @property
    def failed(self) -> bool:
        end = self.end
        if end is None:
            return False
        ret = end.payload
        return ret.__class__ is Sysret and ret.error not in _NOT_FAILURES

    @property
    def succeeded(self) -> bool:
        ret = self.ret
        return ret is not None and ret.error in (0, K.EJUSTRETURN)

    @property
    def errno_name(self) -> str | None:
        """The error's symbolic name in the process's own ABI, None without an error."""
        if not self.failed:
            return None
        key = (self.abi, self.end.payload.error)  # type: ignore[union-attr]
        try:
            return _ERRNO_NAMES[key]
        except KeyError:
            name = A.error_info(*key).name
            if len(_ERRNO_NAMES) < 4096:  # bounded: a damaged trace may hold any numbers
                _ERRNO_NAMES[key] = name
            return name

    def fds(self) -> set[int]:
        """Descriptors the call is about: its argument, its GIO records, one it returned."""
        out = {p.payload.fd for p in self.parts if p.record.type == K.KTR_GENIO}  # type: ignore[union-attr]
        if self.fd is not None:
            out.add(self.fd)
        if self.pair is not None:
            out.update(fd for fd, _path in self.pair)
        if self.ret_path is not None:
            ret = self.ret
            if ret is not None:
                out.add(ret.retval)
        return out


class CallJoiner:
    """Joins each thread's records into Calls, in the order the records come."""

    def __init__(self) -> None:
        self.open: dict[int, Call] = {}
        self._abis: dict[int, A.Abi] = {}
        self.names: dict[tuple[int, int], tuple[A.Abi, str | None]] = {}  # (sv_flags, code) -> named()

    def _abi(self, sv_flags: int) -> A.Abi:
        abi = self._abis.get(sv_flags)
        if abi is None:
            abi = self._abis[sv_flags] = A.syscall_abi(sv_flags)
        return abi

    def named(self, sv_flags: int, code: int) -> tuple[A.Abi, str | None]:
        """(the ABI of `sv_flags`, the name of syscall `code` in it), from a cache."""
        key = (sv_flags, code)
        found = self.names.get(key)
        if found is None:
            abi = self._abi(sv_flags)
            found = (abi, A.syscall_name(abi, code) if code >= 0 else None)
            if len(self.names) < 65536:  # bounded: a damaged trace may hold any numbers
                self.names[key] = found
        return found

    def new(self, shown: Shown, start: bool) -> Call:
        """The Call a CALL (start) or an orphan RET begins."""
        record = shown.record
        p = shown.payload
        if isinstance(p, (Syscall, Sysret)):
            abi, name = self.named(shown.sv_flags, p.code)
            code = p.code
        else:
            abi, name, code = self._abi(shown.sv_flags), None, -1
        if start:
            return Call(record.pid, record.tid, shown.sv_flags, abi, shown, code=code, name=name)
        return Call(record.pid, record.tid, shown.sv_flags, abi, None, shown, code=code, name=name)

    def feed(self, shown: Shown) -> tuple[Call | None, list[Call]]:
        """(the call `shown` belongs to or None, the calls it ended)."""
        record = shown.record
        tid = record.tid
        rtype = record.type
        if rtype == K.KTR_SYSCALL:
            done = []
            previous = self.open.pop(tid, None)
            if previous is not None:
                done.append(previous)  # its RET never came (lost, or the thread was killed)
            call = self.new(shown, True)
            if call.name in NO_RETURN:
                done.append(call)
            else:
                self.open[tid] = call
            return call, done
        if rtype == K.KTR_SYSRET:
            pending = self.open.pop(tid, None)
            p = shown.payload
            if pending is not None and isinstance(p, Sysret) and pending.code == p.code:
                pending.end = shown
                return pending, [pending]
            done = [pending] if pending is not None else []
            orphan = self.new(shown, False)
            done.append(orphan)
            return orphan, done
        current = self.open.get(tid)
        if current is not None:
            current.parts.append(shown)
        return current, []

    def flush(self) -> Iterator[Call]:
        """The calls still in flight at the end of the trace, in the order they started."""
        calls = sorted(self.open.values(), key=lambda c: c.ns)
        self.open.clear()
        yield from calls

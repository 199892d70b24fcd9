"""Each process's descriptor table, rebuilt after the fact from its calls.

What a descriptor is comes from the call that made it: the NAMI path of an
open, the family of a socket and the address a STRU sockaddr record gave its
connect, bind or accept, the kind of an eventfd, epoll or inotify descriptor.
dup*, fcntl F_DUPFD*, close, close_range and closefrom move and drop entries;
a successful exec drops the close-on-exec ones; a fork copies the table.

pipe(2), pipe2(2) and socketpair(2) write their descriptors to memory, not
to the return value: pyktrace records them in a STRU `fdpair` of its own
(docs/FORMAT.md), which this reads; without one (FreeBSD's files, older
pyktrace files) the two descriptors stay unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from ktrace_cli.decode import abi as A
from ktrace_cli.decode.calls import AT_FDCWD, Call, base_name, fd_arg_index, signed32
from ktrace_cli.format import constants as K
from ktrace_cli.format.records import Namei, Struct


@dataclass(frozen=True, slots=True)
class FdFlags:
    """One ABI's numbers for the flags that decide close-on-exec and descriptor copies."""

    o_cloexec: int
    sock_cloexec: int
    f_dupfd: int
    f_dupfd_cloexec: int
    f_dup2fd: int  # -1 where the ABI has none
    f_dup2fd_cloexec: int
    f_setfd: int
    fd_cloexec: int
    close_range_cloexec: int
    einprogress: int  # as the record stores it (FreeBSD numbering)
    clone_thread: int
    clone_files: int


LINUX_FLAGS = FdFlags(
    o_cloexec=0o2000000, sock_cloexec=0o2000000, f_dupfd=0, f_dupfd_cloexec=1030, f_dup2fd=-1,
    f_dup2fd_cloexec=-1, f_setfd=2, fd_cloexec=1, close_range_cloexec=4, einprogress=36,
    clone_thread=0x10000, clone_files=0x400,
)  # fmt: skip
FREEBSD_FLAGS = FdFlags(
    o_cloexec=0x100000, sock_cloexec=0x10000000, f_dupfd=0, f_dupfd_cloexec=17, f_dup2fd=10,
    f_dup2fd_cloexec=18, f_setfd=2, fd_cloexec=1, close_range_cloexec=4, einprogress=36,
    clone_thread=0, clone_files=0,
)  # fmt: skip

# Calls that return a new descriptor named by their (first) NAMI path, with the
# index of their flags argument (-1: no close-on-exec flag).
_OPENS = {"open": 1, "openat": 2, "creat": -1, "openat2": -1, "open_by_handle_at": 2,
          "shm_open": 1, "shm_open2": 1, "mq_open": 1, "fhopen": 1, "posix_openpt": 0}  # fmt: skip
# Calls that return an anonymous descriptor: (what it is, flags argument index or -1).
_ANON = {
    "eventfd": ("anon_inode:[eventfd]", -1), "eventfd2": ("anon_inode:[eventfd]", 1),
    "timerfd_create": ("anon_inode:[timerfd]", 1), "signalfd": ("anon_inode:[signalfd]", -1),
    "signalfd4": ("anon_inode:[signalfd]", 3), "inotify_init": ("anon_inode:inotify", -1),
    "inotify_init1": ("anon_inode:inotify", 0), "epoll_create": ("anon_inode:[eventpoll]", -1),
    "epoll_create1": ("anon_inode:[eventpoll]", 0), "memfd_create": ("memfd:", 1),
    "pidfd_open": ("anon_inode:[pidfd]", -1), "userfaultfd": ("anon_inode:[userfaultfd]", 0),
    "perf_event_open": ("anon_inode:[perf_event]", 4), "io_uring_setup": ("anon_inode:[io_uring]", -1),
    "fanotify_init": ("anon_inode:[fanotify]", -1), "bpf": ("anon_inode:bpf", -1),
    "kqueue": ("kqueue", -1), "kqueuex": ("kqueue", -1), "timerfd": ("timerfd", -1),
}  # fmt: skip
# Calls whose two new descriptors a STRU `fdpair` gives: the index of the int[2]
# argument they go to, and of the flags that may say close-on-exec (-1: none).
PAIRS = {"pipe": (0, -1), "pipe2": (0, 1), "socketpair": (3, 1)}
_MFD_CLOEXEC = 1  # memfd_create's own flag: 1 on both systems
AT_FDCWD_BITS = AT_FDCWD & 0xFFFFFFFF  # as the low 32 bits of an argument slot hold it
TEXT_CACHE = 4096  # NAMI path texts kept (cleared when full)
_FORKS = frozenset({"fork", "vfork", "clone", "clone2", "clone3", "rfork", "pdfork"})
_EXECS = frozenset({"execve", "execveat", "fexecve"})
_AF_NAMES = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET"}
_AF_NAMES_FREEBSD = {1: "AF_UNIX", 2: "AF_INET", 28: "AF_INET6", 17: "AF_ROUTE"}


# Full call names (compat prefixes included) known to change no descriptor: a
# set filled as calls end, so `end` skips them with one lookup.
_NO_EFFECT: set[str | None] = set()
_EFFECTS = frozenset(
    {"close", "close_range", "closefrom", "connect", "bind", "socket", "accept", "accept4", "paccept",
     "dup", "dup2", "dup3", "fcntl"} | _EXECS | PAIRS.keys() | _FORKS | _OPENS.keys() | _ANON.keys()
)  # fmt: skip


@dataclass(slots=True)
class Entry:
    path: str
    cloexec: bool = False


class FdTable:
    """One process's descriptors; `touched` keeps what it did before its fork was seen."""

    def __init__(self) -> None:
        self.fds: dict[int, Entry] = {}
        self.touched: set[int] = set()

    def set(self, fd: int, path: str, cloexec: bool) -> None:
        self.fds[fd] = Entry(path, cloexec)
        self.touched.add(fd)

    def drop(self, fd: int) -> None:
        self.fds.pop(fd, None)
        self.touched.add(fd)


def sockaddr_text(data: bytes, word: int) -> str | None:
    """A STRU sockaddr as `AF_INET:127.0.0.1:80` or `AF_UNIX:/run/x.sock`."""
    from ktrace_cli.decode.stru import struct_fields_of

    _name, fields = struct_fields_of(b"sockaddr", data, word=word)
    if fields is None:
        return None
    family = fields.get("family_name") or f"AF_{fields.get('family')}"
    if family == "AF_LOCAL":
        family = "AF_UNIX"  # one name for both systems, the one socket(2) lines use
    if "path" in fields:
        return f"{family}:{fields['path']}"
    if "address" in fields:
        addr = fields["address"]
        if ":" in str(addr):
            addr = f"[{addr}]"
        return f"{family}:{addr}:{fields['port']}"
    return str(family)


class FdTables:
    """The descriptor tables of every process of a trace."""

    def __init__(self, word: int = 8) -> None:
        self.tables: dict[int, FdTable] = {}
        self.word = word
        self.forking: dict[int, Call] = {}  # tid -> its fork-like call in flight
        self.inert = _NO_EFFECT  # call names `end` has found to change no descriptor
        self._arg_index: dict[tuple[A.Abi, str], tuple[int, int, bool]] = {}  # arg_plan
        self._texts: dict[bytes, str] = {}  # NAMI path -> its text (programs open the same files again)

    def table(self, pid: int) -> FdTable:
        t = self.tables.get(pid)
        if t is None:
            t = self.tables[pid] = FdTable()
        return t

    def path(self, pid: int, fd: int) -> str | None:
        t = self.tables.get(pid)
        if t is None:
            return None
        e = t.fds.get(fd)
        return e.path if e is not None else None

    def snapshot(self, pid: int, data: bytes) -> None:
        """A STRU `fdtable` record: the descriptors `pid` had when tracing began.

        One line per descriptor, `N` TAB `target` (docs/FORMAT.md); lines that
        do not parse are skipped.
        """
        t = self.table(pid)
        for line in data.split(b"\n"):
            number, tab, target = line.partition(b"\t")
            if tab and number.isdigit():
                t.set(int(number), target.decode("utf-8", "surrogateescape"), False)

    def arg_plan(self, abi: A.Abi, name: str) -> tuple[int, int, bool]:
        """(descriptor argument index or -1, directory descriptor index or -1, whether `begin`
        does more than read them: a fork-like call, or mmap), from a cache.

        select_calls reads the two indexes itself for the calls that are not special.
        """
        key = (abi, name)
        found = self._arg_index.get(key)
        if found is None:
            fd_i, dir_i = fd_arg_index(abi, name)
            found = self._arg_index[key] = (fd_i, dir_i, base_name(name) in _FORKS or name == "mmap")
        return found

    def begin(self, call: Call) -> None:
        """At the CALL: note the descriptor argument and what it is now."""
        name = call.name
        if name is None or call.start is None:
            return
        fd_i, dir_i, special = self.arg_plan(call.abi, name)
        if special and name != "mmap":  # fork-like
            self.forking[call.tid] = call
        if name == "mmap":
            fd_i, dir_i = fd_arg_index_for(call)
        elif fd_i < 0 and dir_i < 0:
            return
        args = call.start.payload.args  # type: ignore[union-attr]
        index = -1
        if 0 <= fd_i < len(args):
            index = fd_i
        elif 0 <= dir_i < len(args) and args[dir_i] & 0xFFFFFFFF != AT_FDCWD_BITS:  # signed32, inlined
            index = dir_i
        if index < 0:
            return
        fd = args[index] & 0xFFFFFFFF  # signed32, inlined: this runs once per call
        if fd & 0x8000_0000:
            return  # negative: no descriptor
        call.fd = fd
        call.fd_index = index
        t = self.tables.get(call.pid)
        if t is not None:
            e = t.fds.get(fd)
            call.fd_path = e.path if e is not None else None

    def end(self, call: Call) -> None:
        """At the RET (or the end of a call that never returns): apply what it did."""
        name = call.name
        if name in _NO_EFFECT:
            return  # most calls (read, write, mmap...) change no descriptor
        name = base_name(name or "")
        if name not in _EFFECTS:
            if len(_NO_EFFECT) < 4096:
                _NO_EFFECT.add(call.name)
            return
        ret = call.ret
        if name in _OPENS:  # the usual effect, first
            if call.start is not None and ret is not None:
                path = None
                if ret.error == 0 and ret.retval >= 0:
                    for shown in call.parts:
                        p = shown.payload
                        if p.__class__ is Namei:
                            path = self.open_path(call.pid, name, call.args, p.path)
                            break
                call.ret_path = self.opened(call.pid, call.abi, name, call.args, ret.error, ret.retval, path)
            return
        if name in _FORKS:
            if call.start is not None:
                self.forking.pop(call.tid, None)
            elif ret is not None and ret.error == 0 and ret.retval == 0:
                self._child_first(call)
        if call.start is None or ret is None:
            return
        flags = FREEBSD_FLAGS if call.abi is A.Abi.FREEBSD else LINUX_FLAGS
        args = call.args
        ok = ret.error == 0
        t = self.table(call.pid)
        value = ret.retval

        def arg(i: int) -> int:
            return args[i] if 0 <= i < len(args) else 0

        if name == "close":
            if args:
                t.drop(signed32(args[0]))
            return
        if name in _EXECS:
            if ret.error in (0, K.EJUSTRETURN):  # pyktrace stores a successful exec as EJUSTRETURN
                for fd in [fd for fd, e in t.fds.items() if e.cloexec]:
                    del t.fds[fd]
            return
        if name in _FORKS:
            if ok and value > 0:
                self._fork(call, flags, value)
            return
        if name == "close_range" and ok:
            first, last = arg(0) & 0xFFFFFFFF, arg(1) & 0xFFFFFFFF
            for fd in [fd for fd in t.fds if first <= fd <= last]:
                if arg(2) & flags.close_range_cloexec:
                    t.fds[fd].cloexec = True
                else:
                    t.drop(fd)
            return
        if name == "closefrom":
            for fd in [fd for fd in t.fds if fd >= signed32(arg(0))]:
                t.drop(fd)
            return
        if name in ("connect", "bind"):
            if ok or ret.error == flags.einprogress:
                self._address(call, t, signed32(arg(0)), "->" if name == "connect" else "")
            return
        if not ok or value < 0:
            return
        if name == "socket":
            families = _AF_NAMES_FREEBSD if call.abi is A.Abi.FREEBSD else _AF_NAMES
            family = families.get(arg(0) & 0xFFFFFFFF, f"AF_{arg(0) & 0xFFFFFFFF}")
            t.set(value, f"socket:[{family}]", bool(arg(1) & flags.sock_cloexec))
        elif name in ("accept", "accept4", "paccept"):
            cloexec = name != "accept" and bool(arg(3) & flags.sock_cloexec)
            t.set(value, "socket:[accepted]", cloexec)
            self._address(call, t, value, "<-")
        elif name in ("dup", "dup2", "dup3") or (
            name == "fcntl" and arg(1) in (flags.f_dupfd, flags.f_dupfd_cloexec, flags.f_dup2fd, flags.f_dup2fd_cloexec)
        ):
            src = self.path(call.pid, signed32(arg(0)))
            if name == "dup3":
                cloexec = bool(arg(2) & flags.o_cloexec)
            elif name == "fcntl":
                cloexec = arg(1) in (flags.f_dupfd_cloexec, flags.f_dup2fd_cloexec)
            else:
                cloexec = False
            if src is None:
                t.drop(value)
            else:
                t.set(value, src, cloexec)
        elif name == "fcntl" and arg(1) == flags.f_setfd:
            e = t.fds.get(signed32(arg(0)))
            if e is not None:
                e.cloexec = bool(arg(2) & flags.fd_cloexec)
        elif name in PAIRS:
            self._pair(call, t, flags, name)
            return
        elif name in _ANON:
            what, fi = _ANON[name]
            if name == "signalfd4" or name == "signalfd":
                if signed32(arg(0)) != -1:
                    return  # changed the mask of an existing signalfd
            mask = _MFD_CLOEXEC if name == "memfd_create" else flags.o_cloexec
            if call.abi is A.Abi.FREEBSD and name == "eventfd":
                fi = 1
            t.set(value, what, fi >= 0 and bool(arg(fi) & mask))
        else:
            return
        call.ret_path = self.path(call.pid, value)

    @staticmethod
    def open_name(name: str) -> str | None:
        """The name `end` knows an open-like call by (compat prefix gone), None for other calls."""
        name = base_name(name)
        return name if name in _OPENS else None

    def open_path(self, pid: int, name: str, args: tuple[int, ...], raw: bytes) -> str:
        """What an open-like call `name` (as open_name gives it) opened, from its first NAMI
        path `raw`: a path relative to a directory descriptor is joined to that
        descriptor's path when it is known.  Reads the tables, changes none."""
        path = self._texts.get(raw)
        if path is None:
            if len(self._texts) >= TEXT_CACHE:
                self._texts.clear()
            path = self._texts[raw] = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if path[:1] != "/" and name in ("openat", "openat2", "open_by_handle_at"):
            base = self.path(pid, signed32(args[0]) if args else 0)
            if base is not None and base.startswith("/"):
                path = base.rstrip("/") + "/" + path
        return path

    def opened(
        self, pid: int, abi: A.Abi, name: str, args: tuple[int, ...], error: int, value: int, path: str | None
    ) -> str | None:
        """An open-like call `name` (as open_name gives it) ended with `error` and `value`;
        `path` is open_path's answer (None without a NAMI record).  Gives what the
        returned descriptor now is, None when the call opened nothing known."""
        t = self.tables.get(pid)  # self.table, inlined: once per open
        if t is None:
            t = self.tables[pid] = FdTable()
        if error != 0 or value < 0:
            return None
        if path is None:
            t.drop(value)  # opened, but the trace does not say what (no NAMI records)
            return None
        fi = _OPENS[name]
        flags = FREEBSD_FLAGS if abi is A.Abi.FREEBSD else LINUX_FLAGS
        # t.set, inlined: once per open.
        t.fds[value] = Entry(path, 0 <= fi < len(args) and bool(args[fi] & flags.o_cloexec))
        t.touched.add(value)
        return path

    def _address(self, call: Call, t: FdTable, fd: int, arrow: str) -> None:
        for shown in call.parts:
            p = shown.payload
            if isinstance(p, Struct) and p.name == b"sockaddr":
                text = sockaddr_text(p.data, self.word)
                if text is not None:
                    family = text.split(":", 1)[0]
                    rest = text[len(family) + 1 :]
                    entry = t.fds.get(fd)
                    t.set(fd, f"socket:[{family}{':' if rest and not arrow else ''}{arrow}{rest}]",
                          entry.cloexec if entry is not None else False)  # fmt: skip
                return

    def _pair(self, call: Call, t: FdTable, flags: FdFlags, name: str) -> None:
        """pipe, pipe2, socketpair: the two descriptors of their STRU `fdpair`, into the table and the call."""
        from ktrace_cli.decode.stru import struct_fields_of

        for shown in call.parts:
            p = shown.payload
            if p.__class__ is Struct and p.name == b"fdpair":
                _name, fields = struct_fields_of(b"fdpair", p.data, word=self.word)
                if fields is None:
                    return
                _where, fi = PAIRS[name]
                args = call.args
                mask = flags.o_cloexec if name != "socketpair" else flags.sock_cloexec
                cloexec = 0 <= fi < len(args) and bool(args[fi] & mask)
                pair = []
                for fd, target in zip(fields["fds"], fields["targets"], strict=True):  # type: ignore[call-overload]
                    t.set(fd, target, cloexec)
                    pair.append((fd, target))
                call.pair = tuple(pair)
                return

    def _child_first(self, child: Call) -> None:
        """A child's own return from fork came before its parent's: inherit now.

        The parent is the process whose fork-like call is in flight (the most
        recent one when several are).
        """
        if child.pid in self.tables:
            return
        parents = [c for c in self.forking.values() if c.pid != child.pid]
        if parents:
            parent = max(parents, key=lambda c: c.ns)
            flags = FREEBSD_FLAGS if parent.abi is A.Abi.FREEBSD else LINUX_FLAGS
            self._fork(parent, flags, child.pid)

    def _fork(self, call: Call, flags: FdFlags, child: int) -> None:
        name = call.name
        if name == "clone" and call.args:
            cflags = call.args[0]
            if cflags & flags.clone_thread:
                return  # a thread: same process, same table
        parent = self.table(call.pid)
        shared = name == "clone" and bool(call.args and call.args[0] & flags.clone_files)
        existing = self.tables.get(child)
        if shared and existing is None:
            self.tables[child] = parent  # CLONE_FILES: one table for both
            return
        t = existing if existing is not None else self.table(child)
        # The child may have run before its parent's RET: what it changed wins.
        for fd, e in parent.fds.items():
            if fd not in t.touched:
                t.fds[fd] = Entry(e.path, e.cloexec)


def fd_arg_index_for(call: Call) -> tuple[int, int]:
    name = call.name
    if not name:
        return -1, -1
    if name == "mmap":
        # mmap's descriptor is the fifth argument, and -1 for anonymous maps.
        return (4, -1) if len(call.args) > 4 and signed32(call.args[4]) >= 0 else (-1, -1)
    return fd_arg_index(call.abi, name)

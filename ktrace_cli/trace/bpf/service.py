"""The bpf engine daemon: ktrace(2)'s operations on the kernel's table of traced processes, and the drainer.

It serves the same control protocol as the ptrace engine (control_server.py), in a
runtime directory of its own, and owns what a ktrace(2) caller sets:
which processes are traced (the `traced` map, keyed by tgid), with which
facilities and into which file.  The kernel adds inheriting children and
removes exiting processes itself; this loop drains the ring, notices
processes that are gone, closes files nobody writes to any more, and
detaches the programs when nothing is traced (an attached program costs
every process on the machine a little).
"""

from __future__ import annotations

import errno as E
import logging
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ktrace_cli.format import constants as K
from ktrace_cli.format.writer import SV_FLAGS_LINUX32, SV_FLAGS_LINUX64, TraceFile
from ktrace_cli.trace import convert, daemon, diagnose, procfs, protocol, rootbpf, sigsets
from ktrace_cli.trace import rules as R
from ktrace_cli.trace import signals as S
from ktrace_cli.trace.bpf import loader as L
from ktrace_cli.trace.bpf.drain import Ring, write_all
from ktrace_cli.trace.bpf.wire import message, parse
from ktrace_cli.trace.control_server import Endpoint
from ktrace_cli.trace.ktrops import FDTABLE, rename_accepted
from ktrace_cli.trace.runtime import Runtime

log = logging.getLogger("pyktrace.engine")

POLL = 0.1  # seconds between drains when the ring does not wake us
CONN_TIMEOUT = 2.0  # seconds a connected client has to send its request
DROP_REPORT = 1.0  # seconds between log lines about drops
IDLE_GRACE = 5.0  # seconds the loaded programs wait for the next request (a cold start loads them again: ~0.4 s)
DRAINER_NICE = -10
DRAINER_RT_PRIORITY = 1  # SCHED_FIFO's lowest: above every ordinary task, below any real-time one
DETACH_GRACE = 1.0  # seconds the programs stay attached once nothing is traced
ENV_GRACE = "PYKTRACE_BPF_DETACH_GRACE"  # that, in seconds (tests)
LIVE_POINTS = K.KTRFAC_MASK & ~K.PROC_ABI_POINTS
ENV_RING = "PYKTRACE_BPF_RING"  # ring buffer bytes (a power of two, >= one page)
ENGINE_NAME = b"pyktrace-bpf"
ROOT = 0


def ring_size() -> int:
    raw = os.environ.get(ENV_RING, "")
    if not raw:
        return L.RING_DEFAULT
    try:
        n = int(raw, 0)
    except ValueError:
        n = 0
    if n < L.RING_MIN or n & (n - 1):
        raise L.BpfUnavailable(E.EINVAL, f"{ENV_RING}={raw}: a power of two of at least {L.RING_MIN}")
    return n


def detach_grace() -> float:
    raw = os.environ.get(ENV_GRACE, "")
    if not raw:
        return DETACH_GRACE
    try:
        secs = float(raw)
    except ValueError:
        secs = -1.0
    if not 0 <= secs <= IDLE_GRACE:
        raise L.BpfUnavailable(E.EINVAL, f"{ENV_GRACE}={raw}: seconds, from 0 to {IDLE_GRACE:g}")
    return secs


def tables() -> tuple[list[tuple[int, int, int, int, int, int]], list[int]]:
    """The syscall table (narg, path-argument mask, flags, STRU kind and argument,
    where an l_sigset_t call's masks are) of x86_64, then of i386 from L.I386_BASE on, and the errno map, from ktrace_cli's own."""
    from ktrace_cli.abi import linux_i386, linuxulator  # lazy: start-up

    x86_64 = [_sysent(rule, nr in linuxulator.JUSTRETURN_SYSCALLS) for nr, rule in enumerate(R.rules().by_nr)]
    i386 = [_sysent(rule, nr in linux_i386.JUSTRETURN_SYSCALLS) for nr, rule in enumerate(R.rules_i386().by_nr)]
    return x86_64[: L.MAX_SYSCALL] + i386[: L.MAX_SYSCALL], convert.errno_map()[: L.MAX_ERRNO]


def names() -> list[bytes]:
    """Each call's name, for CSW wait messages, in tables()'s order."""
    return [rules.name(nr).encode() for rules in (R.rules(), R.rules_i386()) for nr in range(L.MAX_SYSCALL)]


def _sysent(rule: R.SyscallRule | None, justreturn: bool) -> tuple[int, int, int, int, int, int]:
    """One row of the kernel's table; `justreturn`: the call returns to the signalled code (sigreturn)."""
    if rule is None:
        return (6, 0, 0, 0, 0, 0)
    mask = sum(1 << i for i in rule.paths if i < 6)
    flags = L.SYS_EXEC if rule.special == R.SPECIAL_EXEC else 0
    if justreturn:
        flags |= L.SYS_SIGRETURN
    if rule.special == R.SPECIAL_PRCTL:
        flags |= L.SYS_PRCTL
    if rule.special == R.SPECIAL_OPEN:
        flags |= L.SYS_OPEN
    if rule.gio == R.GIO_BUF:
        flags |= L.SYS_GIO_WRITE if rule.gio_rw == K.UIO_WRITE else L.SYS_GIO_READ
    elif rule.gio in (R.GIO_IOV, R.GIO_MSG):
        flags |= L.SYS_GIO_IOV if rule.gio == R.GIO_IOV else L.SYS_GIO_MSG
        if rule.gio_rw == K.UIO_WRITE:
            flags |= L.SYS_GIO_OUT
    if rule.name == "setitimer":
        flags |= L.SYS_SETITIMER
    sig = sigsets.descriptor(rule.name) if rule.stru == R.STRU_SIGSET else 0
    return (rule.narg, mask, flags, rule.stru, rule.stru_arg, sig)


def signal_tables() -> tuple[list[int], Callable[[int], tuple[int, int, int, int]], int,
                             dict[tuple[int, int], int]]:  # fmt: skip
    """Linux signal numbers to FreeBSD's, the mask conversion, the signals
    whose default action never reaches FreeBSD's postsig() (no PSIG), and
    the si_code map the ptrace backend uses too."""
    from ktrace_cli.abi import linux as abi  # lazy: start-up (only the engine maps signals)
    from ktrace_cli.abi.linuxulator import freebsd_sigcode_table  # lazy: start-up (likewise)

    signo = [abi.freebsd_signal_from_linux(n) for n in range(L.LINUX_NSIG + 1)]
    quiet = 0
    for n in (*S.DEFAULT_IGNORED, *S.STOP_SIGNALS):
        quiet |= 1 << (int(n) - 1)
    return signo, abi.freebsd_sigmask_from_linux, quiet, freebsd_sigcode_table()


@dataclass
class BFile:
    index: int
    tf: TraceFile
    pids: set[int] = field(default_factory=set)


class BpfEngine:
    """The loaded object, the files, and what this engine asked the kernel to trace."""

    def __init__(self) -> None:
        size = ring_size()
        self.obj = L.BpfObject(size)
        systab, errmap = tables()
        self.obj.fill_tables(systab, errmap, names())
        self.obj.fill_signals(*signal_tables())
        self.obj.configure(self._clock_offset(), min(L.BATCH_DATA - 1, size // 4), size // 4)
        self.ring = Ring(self.obj.ring_fd, size)
        self.files: dict[int, BFile] = {}
        self.next_index = 1
        self.lost_reported = 0
        self.report_at = 0.0
        self.idle_since = time.monotonic()
        self.exits: dict[int, int] = {}  # pidfd -> pid of a command whose exit we drain at
        self.detach_grace = detach_grace()
        self.stop = False
        # FreeBSD's rule: root may trace anything; any other owner (a holder
        # of CAP_BPF and CAP_PERFMON) only processes with its own credentials,
        # and the kernel side stops at an exec that changes them.
        self.owner_only = os.geteuid() != ROOT
        self.public: protocol.Socket | None = None
        if not self.owner_only:
            try:
                self.public = rootbpf.listen(os.getpid())  # others' engines ask what we hold
            except OSError as e:
                log.warning("cannot tell other users' engines what this engine traces: %s", e.strerror)

    @staticmethod
    def _clock_offset() -> int:
        return time.clock_gettime_ns(time.CLOCK_REALTIME) - time.clock_gettime_ns(time.CLOCK_MONOTONIC)

    # ----- the drainer -----

    def _write(self, index: int, chunks: list[memoryview]) -> None:
        bf = self.files.get(index)
        if bf is None or bf.tf.failed:
            return
        tf = bf.tf
        if tf.fsize_limit >= 0:
            # The tracer's RLIMIT_FSIZE: TraceFile keeps whole records under it (rare: a copy).
            tf.buf += b"".join(chunks)
            err = tf.flush()
        else:
            err = write_all(tf.fd, chunks, tf.whole)
            tf.failed = err
        if err:
            # FreeBSD stops tracing the process whose write failed; here every
            # process writing to the file lost records in the same write.
            # (A process may have exited since its records were made: it is named too.)
            stopped = set(bf.pids)
            for pid in self.traced_pids():
                if self._file_of(pid) == index:
                    self.obj.traced.delete(L.U32.pack(pid))
                    stopped.add(pid)
            for pid in sorted(stopped):
                log.error("ktrace write failed, errno %d, tracing stopped for pid %d", err, pid)

    def drain(self) -> None:
        self.ring.drain(self._write)
        self.obj.rearm_wakeup()
    def report_drops(self, now_or_never: bool = False) -> None:
        """At most one log line a second: how many records the full ring cost.

        `now_or_never`: a sync's, whose caller reads the log next; a drop
        within the second after the last line would otherwise stay unsaid.
        """
        _batches, records = self.obj.lost()
        now = time.monotonic()
        if records != self.lost_reported and (now >= self.report_at or now_or_never or not self.obj.attached):
            self.report_at = now + DROP_REPORT
            log.warning("ring buffer full: %d records dropped (%d since load), marked KTR_DROP",
                        records - self.lost_reported, records)  # fmt: skip
            self.lost_reported = records

    def barrier(self) -> None:
        """Every record made before now is on disk: flush each CPU's batch, then drain.

        Running on a CPU switches its current task out, and the switch
        hook flushes that CPU's batch; so visiting every CPU in turn leaves
        no record behind in a batch.
        """
        if self.obj.attached:
            mine = os.sched_getaffinity(0)
            for cpu in sorted(mine):
                try:
                    os.sched_setaffinity(0, {cpu})
                except OSError:
                    continue
            os.sched_setaffinity(0, mine)
        self.drain()

    # ----- the table of traced processes -----

    def traced_pids(self) -> list[int]:
        return [L.U32.unpack(k)[0] for k in self.obj.traced.keys()]

    def _value(self, pid: int) -> tuple[int, ...] | None:
        raw = self.obj.traced.lookup(L.U32.pack(pid))
        return None if raw is None else L.PROC.unpack(raw)

    def _file_of(self, pid: int) -> int:
        v = self._value(pid)
        return -1 if v is None else v[1]

    def housekeeping(self) -> None:
        """Forget exited processes, close unused files, detach when nothing is traced."""
        # Drained first: a write failure names the processes of the records it lost.
        self.drain()
        self.obj.set_clock(self._clock_offset())
        self.report_drops()
        live: dict[int, set[int]] = {}
        for pid in self.traced_pids():
            index = self._file_of(pid)
            if index >= 0:
                live.setdefault(index, set()).add(pid)
        unused = [bf for bf in self.files.values() if not live.get(bf.index)]
        for bf in self.files.values():
            bf.pids = live.get(bf.index, set())
        now = time.monotonic()
        if unused:
            self.barrier()
            for bf in unused:
                bf.tf.close()
                del self.files[bf.index]
        if live:
            self.idle_since = now
        elif self.obj.attached:
            self.obj.watch(0)  # nobody wants w or f: the switch and fault hooks look no further
            if now - self.idle_since >= self.detach_grace:
                # The programs stay attached a moment after the last traced
                # process goes, so that back-to-back runs pay no attach;
                # an idle engine has nothing attached.
                self.barrier()
                self.obj.detach()
                self.report_drops()
                log.info("nothing traced: programs detached")

    # ----- requests -----

    def request(self, msg: dict[str, object], fd: int | None, peer_pid: int) -> dict[str, object]:
        op = msg.get("op")
        if op == "status":
            self.housekeeping()  # so the answer says what is traced now
            return {"error": 0, "pid": os.getpid(), "procs": sorted(self.traced_pids()),
                    "files": len(self.files), "attached": self.obj.attached,
                    "lost": self.obj.lost()[1]}  # fmt: skip
        if op == "shutdown":
            self.stop = True
            return {"error": 0}
        if op == "flush":
            # A reader's request (pykdump): the files hold every record made
            # before it; nothing else is done, so that it answers fast.
            self.barrier()
            return {"error": 0}
        if op == "sync":
            self.barrier()
            self.housekeeping()  # detached, and the drops logged, before the command's parent goes on
            self.report_drops(now_or_never=True)
            return {"error": 0}
        if op != "ktrace":
            return {"error": E.EINVAL, "message": "malformed request"}
        try:
            ops = int(msg["ops"])  # type: ignore[call-overload]
            facs = int(msg["facs"]) & ~K.KTRFAC_ROOT  # type: ignore[call-overload]
            pid = int(msg["pid"])  # type: ignore[call-overload]
            version = int(msg.get("version", K.KTR_VERSION1))  # type: ignore[call-overload]
            genio = max(0, int(msg.get("genio_size", K.GENIO_SIZE_DEFAULT)))  # type: ignore[call-overload]
            fsize = int(msg.get("fsize_limit", -1))  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError):
            return {"error": E.EINVAL, "message": "malformed request"}
        op_ = K.ktrop(ops)
        descend = bool(ops & K.KTRFLAG_DESCEND)
        if op_ == K.KTROP_CLEARFILE:
            return self._clear_file(fd)
        if not facs & K.KTRFAC_MASK:
            return {"error": E.EINVAL}
        if op_ == K.KTROP_CLEAR:
            return self._clear(pid, facs, descend)
        if fd is None:
            return {"error": E.EBADF}
        if os.path.exists(f"/proc/{os.getpid()}/task/{pid}"):  # its programs skip it: say why
            return {"error": E.EPERM, "self": f"pid {pid} is the trace engine; it cannot trace itself"}
        if msg.get("command") and pid != peer_pid:
            return {"error": E.EPERM, "message": "command mode traces only the caller itself"}
        # A command's descriptors are pyktrace's, opened before its trace: no fdtable.
        reply = self._set(pid, facs, descend, fd, version, genio, fsize, fdtable=not msg.get("command"))
        if reply["error"]:
            return reply
        if msg.get("command"):
            self._watch_exit(pid)
        rename = msg.get("rename")
        if rename is not None and op_ == K.KTROP_SET:
            # Renamed here, while the client waits: no rename in a command's trace.
            reply.update(rename_accepted(peer_pid, fd, rename))
        return reply

    def _watch_exit(self, pid: int) -> None:
        """Drain as soon as a command exits: its parent may read the file next."""
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return  # gone already: the next housekeeping drains
        self.exits[pidfd] = pid

    def exited(self, pidfd: int) -> None:
        """A watched command exited: its last records to disk now.

        No barrier is needed for them: the exit hook sent the last thread's
        batch to the ring, and every other thread's went at its own exit.
        """
        self.exits.pop(pidfd, None)
        os.close(pidfd)
        self.drain()
        self.idle_since = time.monotonic()  # traced until now: the graces start here
        self.housekeeping()

    def _file(self, fd: int, version: int, genio: int) -> BFile | None:
        st = os.fstat(fd)
        if not os.path.isfile(f"/proc/self/fd/{fd}"):
            return None
        for bf in self.files.values():
            if bf.tf.ident == (st.st_dev, st.st_ino) and not bf.tf.failed:
                return bf
        bf = BFile(self.next_index, TraceFile(os.dup(fd), version, genio))
        self.next_index += 1
        self.files[bf.index] = bf
        return bf

    def _set(self, pid: int, facs: int, descend: bool, fd: int, version: int,
             genio: int, fsize: int, fdtable: bool = False) -> dict[str, object]:  # fmt: skip
        bf = self._file(fd, version, genio)
        if bf is None:
            return {"error": E.EACCES}
        bf.tf.fsize_limit = fsize  # as FreeBSD keeps the tracer's limit with the file
        roots = procfs.roots(pid)
        if not roots:
            return {"error": E.ESRCH}
        self.idle_since = time.monotonic()  # busy: the idle graces count from the last trace
        self.obj.attach()
        watch = self.obj.watching
        if facs & K.KTRFAC_CSW:
            watch |= L.WATCH_CSW
        if facs & (K.KTRFAC_FAULT | K.KTRFAC_FAULTEND):
            watch |= L.WATCH_FAULT
        self.obj.watch(watch)
        seen: set[int] = {os.getpid()}
        stack = list(roots)
        done = 0
        refused = ""
        holders = rootbpf.Holders()
        while stack:
            p = stack.pop()
            if p in seen:
                continue
            seen.add(p)
            if descend:
                stack.extend(procfs.children(p))
            old = self._value(p)
            why = None if old is not None else self._why_not(p, holders)
            if why:
                refused = refused or why
                continue
            # ktrops(): the points are added to the old ones even when the file changes.
            flags = facs | (old[0] if old is not None else 0)
            # ktrops(): announce the (re)set with a PROCCTOR before the kernel's records.
            comm = _comm(p)
            if comm is None:
                continue
            # Under the ABI of its last call, as the kernel side keeps it (linux64 until
            # the process is seen in an i386 call: the kernel side then writes linux32's).
            abi32 = old[L.PROC_ABI32] if old is not None else 0
            bf.tf.record(K.KTR_PROCCTOR, p, p, comm, time.time_ns(),
                         L.U32.pack(SV_FLAGS_LINUX32 if abi32 else SV_FLAGS_LINUX64))  # fmt: skip
            if fdtable and old is None and flags & K.KTRFAC_STRUCT:
                # As the ptrace engine does at attach: what its descriptors already are,
                # before any record the kernel side makes for it (not yet in `traced`).
                bf.tf.record(K.KTR_STRUCT, p, p, comm, time.time_ns(), FDTABLE + b"\0" + _fdtable(p))
            if bf.tf.flush():
                return {"error": bf.tf.failed}
            value = L.PROC.pack(flags, bf.index, bf.tf.version, min(bf.tf.genio_size, 4096), 0, 0, 0,
                                abi32, int(self.owner_only))  # fmt: skip
            if self.obj.traced.update(L.U32.pack(p), value) != 0:
                continue
            late = diagnose.why_credentials(p) if self.owner_only and old is None else None
            if late:
                # A set-id exec between the check and the insert, which the
                # kernel side could not see yet: the process is not ours.
                self.obj.traced.delete(L.U32.pack(p))
                refused = refused or late
                continue
            bf.pids.add(p)
            done += 1
        if done:
            return {"error": 0}
        return {"error": E.EPERM, "why": refused} if refused else {"error": E.ESRCH}

    def _why_not(self, pid: int, holders: rootbpf.Holders) -> str | None:
        """Why this engine may not set or clear tracing on a process it does not trace, or None.

        Root may touch any process. Another owner may touch only its own
        processes (FreeBSD's p_candebug), and not one root traces
        (KTRFAC_ROOT), with either engine.
        """
        if not self.owner_only:
            return None
        why = diagnose.why_credentials(pid)
        if why:
            return why
        tracer = diagnose.tracer_of(pid)
        if tracer and diagnose.is_foreign_engine(tracer):
            return diagnose.why_eperm(pid, os.getpid(), holders)
        engine = holders.root_bpf(pid)
        return diagnose.held_by(pid, ROOT, engine) if engine else None

    def _clear(self, pid: int, facs: int, descend: bool) -> dict[str, object]:
        if descend and pid == 1:
            targets = self.traced_pids()  # -C: everything this engine traces
        else:
            roots = procfs.roots(pid)
            if not roots:
                return {"error": E.ESRCH}
            targets, stack, seen = [], list(roots), {os.getpid()}
            while stack:
                p = stack.pop()
                if p in seen:
                    continue
                seen.add(p)
                targets.append(p)
                if descend:
                    stack.extend(procfs.children(p))
        done = 0
        refused = ""
        holders = rootbpf.Holders()
        for p in targets:
            v = self._value(p)
            if v is None:
                # Not ours: ktrops() succeeds on a process the caller may trace.
                why = self._why_not(p, holders)
                if why:
                    refused = refused or why
                else:
                    done += 1
                continue
            done += 1
            left = v[0] & ~facs
            if not left & LIVE_POINTS:
                self.obj.traced.delete(L.U32.pack(p))
            else:
                self.obj.traced.update(L.U32.pack(p), L.PROC.pack(left, *v[1:]))
        self.barrier()
        self.housekeeping()
        if refused and not done:
            return {"error": E.EPERM, "why": refused}
        return {"error": 0}

    def _clear_file(self, fd: int | None) -> dict[str, object]:
        if fd is None:
            return {"error": E.EBADF}
        st = os.fstat(fd)
        for bf in self.files.values():
            if bf.tf.ident == (st.st_dev, st.st_ino):
                for p in self.traced_pids():
                    if self._file_of(p) == bf.index:
                        self.obj.traced.delete(L.U32.pack(p))
        self.barrier()
        self.housekeeping()
        return {"error": 0}

    def close(self) -> None:
        for pidfd in self.exits:
            os.close(pidfd)
        self.exits.clear()
        if self.public is not None:
            self.public.close()
        for p in self.traced_pids():
            self.obj.traced.delete(L.U32.pack(p))
        self.barrier()
        if self.obj.attached:
            self.obj.detach()
            log.info("nothing traced: programs detached")
        for bf in self.files.values():
            bf.tf.close()
        self.ring.close()
        self.obj.close()


def _fdtable(pid: int) -> bytes:
    """procfs.fdtable(), empty when even reading the directory fails (the daemon goes on)."""
    try:
        return procfs.fdtable(pid)
    except OSError:
        return b""


def _comm(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n")[:16]
    except OSError:
        return None


def serve(engine: BpfEngine, listener: protocol.Socket, endpoint: Endpoint) -> None:
    """The daemon's loop: one thread drains, serves requests and keeps house."""
    uid = os.getuid()
    next_house = 0.0
    while not engine.stop:
        public = [] if engine.public is None else [engine.public.fileno()]
        ready = select.select([listener.fileno(), engine.obj.ring_fd, *engine.exits, *public], [], [], POLL)[0]
        engine.drain()
        for pidfd in ready:
            if pidfd in engine.exits:
                engine.exited(pidfd)
        if engine.public is not None and public[0] in ready:
            rootbpf.answer(engine.public, engine.traced_pids())
        if listener.fileno() in ready:
            conn, _ = listener.accept()
            with conn:
                try:
                    conn.settimeout(CONN_TIMEOUT)  # a client that never sends cannot hold us
                    peer_pid, peer_uid, _gid = protocol.peer_credentials(conn)
                    line, fd = protocol.recv_line(conn)
                    msg = parse(line)
                except OSError:
                    continue
                try:
                    if peer_uid != uid or msg is None:
                        reply: dict[str, object] = {"error": E.EPERM if msg else E.EINVAL}
                    else:
                        try:
                            reply = engine.request(msg, fd, peer_pid)
                        except OSError as e:
                            reply = {"error": e.errno or E.EIO, "message": str(e)}
                    protocol.send_bytes(conn, message(reply))
                except OSError:
                    pass
                finally:
                    if fd is not None:
                        os.close(fd)
        now = time.monotonic()
        if now >= next_house:
            next_house = now + POLL
            engine.housekeeping()
            # The socket is put back if removed; not the directory: the
            # endpoint would then move to the runtime directory itself.
            if not endpoint.rt.removed():
                endpoint.check()
            if not engine.files and now - engine.idle_since > IDLE_GRACE:
                break


def drainer_priority() -> None:
    """Run the drainer as a real-time task (SCHED_FIFO, lowest priority), root's to ask.

    The exit hook wakes the drainer before the command's parent is told of
    the exit; as a real-time task it runs at once, before the parent (and
    any script reading the file) gets a CPU, so the trace's end is on disk
    by the time the parent returns from wait(2) (measured in docs/DESIGN.md).
    It also empties a bounded ring ahead of the processes that fill it.
    Its work is bounded by what the kernel queued, and the kernel's RT
    throttling leaves other tasks their share even so; it never forks, and
    SCHED_RESET_ON_FORK makes sure nothing it might start inherits this.
    Without the privilege (a container, a CAP_BPF holder without
    CAP_SYS_NICE), it keeps DRAINER_NICE, or its nice value if even that is refused.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(DRAINER_RT_PRIORITY))
    except OSError as e:
        log.info("drainer stays at nice %d: SCHED_FIFO refused (%s)", os.getpriority(os.PRIO_PROCESS, 0),
                 e.strerror)  # fmt: skip


def _main(rt: Runtime, lockfd: int, ready: int) -> int:
    daemon.close_other_fds({lockfd, ready, rt.fd})  # rt.fd: every name in the directory goes through it
    daemon.settle_daemon((signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT))
    daemon.set_title(ENGINE_NAME)
    try:
        # Loading (the verifier's ~0.4 s of CPU) runs merely reniced; so does
        # the drainer where drainer_priority() is refused.
        os.setpriority(os.PRIO_PROCESS, 0, DRAINER_NICE)
    except OSError:
        pass
    handler = daemon.RuntimeLogHandler(rt, "pyktrace-bpf")  # relative to the open directory
    root = logging.getLogger("pyktrace")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        engine = BpfEngine()
        endpoint = Endpoint(rt, lockfd)
    except Exception as e:
        log.warning("bpf engine start failed: %s", e)
        os.write(ready, f"the bpf engine failed to start: {e}".encode())
        return 1
    signal.signal(signal.SIGTERM, lambda *_: setattr(engine, "stop", True))
    drainer_priority()
    log.info("bpf engine started (ring %d bytes)", engine.ring.size)
    os.write(ready, b"ok")
    os.close(ready)
    try:
        assert endpoint.listener is not None
        serve(engine, endpoint.listener, endpoint)
    except BaseException:
        log.exception("bpf engine failed")
    finally:
        endpoint.remove()
        engine.close()  # never leave a program attached
        log.info("bpf engine exiting")
    return 0


def spawn(rt: Runtime, lockfd: int) -> None:
    """Double-fork the daemon holding the lock; return once it listens."""
    daemon.spawn_daemon(rt, lockfd, _main, "the bpf engine")

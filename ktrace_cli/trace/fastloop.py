"""The engine loop's C part (fastloop.c): loading it, and the state Python and C share.

fastloop.c handles the plain syscall stops (docs/DESIGN.md, Speed); the
engine hands it each thread's state in a slot (push) and takes back what
it changed (pull), and copies the records it wrote into the TraceFiles'
buffers (drain) before Python writes one of its own. Without the built
library (no compiler at install time) or with PYKTRACE_FASTLOOP=0 the
engine runs its pure-Python loop.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Callable

from ktrace_cli.format.constants import KTRFAC_PSIG
from ktrace_cli.format.writer import TraceFile
from ktrace_cli.trace.englog import log
from ktrace_cli.trace.ptrace import AUDIT_ARCH_X86_64
from ktrace_cli.trace.tracee import Thread

LIBRARY = "_fastloop"
INTERFACE = 2  # fastloop.c's KT_INTERFACE: the layouts and values below
ENV = "PYKTRACE_FASTLOOP"  # "0": the pure-Python loop

# kt_run's answers (fastloop.c).
KT_STOP = 1  # a stop for Python
KT_IDLE = 2  # records wait and the loop would block with no flush timer armed
KT_INTR = 3  # a signal interrupted the wait
KT_ECHILD = 4  # nothing left to wait for
KT_YIELD = 5  # budget spent, attention asked or a buffer full

# struct kt_slot: tid, tgid, file, plain, facs, mode_op; ok, restart, insys, changed; nr,
# entry_ns, args[6], comm[20], argc, flags, started.
SLOT = struct.Struct("<6i4Biq6Q20s3Bx")
SLOT_SIZE = SLOT.size
CHANGED = 27  # offset of `changed` in a slot
STARTED = 110  # offset of `started`
MAX_SLOTS = 16384  # KT_SLOTS
# kt_slot.flags: what C may do besides plain syscall stops.
SIG_QUIET = 1  # resume a signal's delivery stop (no PSIG record, no disposition to reset)
FIRST_STOP = 2  # resume a new task's first stop
NO_SETID = 4  # an exec needs no set-id check (root, or a filtered process)
# struct kt_shared: pid, status, has_info, attention, info[88], ndirty, pad, dirty[KT_FILES].
HEAD = struct.Struct("<iii")
ATTENTION = 12
INFO_OFFSET = 16
NDIRTY = 104
DIRTY = 112
MAX_FILES = 1024
SHARED_SIZE = DIRTY + 4 * MAX_FILES
# struct kt_file: buf, len (then cap, version, used, dirty, pad).
FILE = struct.Struct("<QQ")
FILE_SIZE = 40
FILE_DIRTY = 32
INT = struct.Struct("<i")
NO_ARGS = (0,) * 6


def library_path() -> str | None:
    """The built library beside this module, under any of the interpreter's extension suffixes."""
    import _imp  # built in: no import cost

    here = os.path.dirname(os.path.abspath(__file__))
    for suffix in _imp.extension_suffixes():
        path = os.path.join(here, LIBRARY + suffix)
        if os.path.exists(path):
            return path
    return None


def load(narg: list[int], errmap: list[int], plain_for: Callable[[int], tuple[bytes, bytes]],
         is_root: bool = False) -> FastLoop | None:  # fmt: skip
    """The C loop, or None for the pure-Python one (not built, failed to load, or turned off)."""
    if os.environ.get(ENV) == "0":
        log.info("C loop turned off (%s=0): pure-Python loop", ENV)
        return None
    path = library_path()
    if path is None:
        log.info("C loop not built (no compiler at install time): pure-Python loop")
        return None
    try:
        lib = ctypes.CDLL(path)
        if lib.kt_interface() != INTERFACE:
            log.warning("C loop %s was built from other sources (interface %d, not %d): pure-Python"
                        " loop until it is rebuilt (make, or pip install)", path, lib.kt_interface(), INTERFACE)  # fmt: skip
            return None
        fast = FastLoop(lib, narg, errmap, plain_for, is_root)
    except (OSError, AttributeError, MemoryError) as e:
        log.warning("C loop %s cannot be loaded (%s): pure-Python loop", path, e)
        return None
    log.info("C loop loaded: %s", os.path.basename(path))
    return fast


class FastLoop:
    """One kt_state: thread slots, file buffers and the stops kt_run leaves to Python."""

    def __init__(self, lib: ctypes.CDLL, narg: list[int], errmap: list[int],
                 plain_for: Callable[[int], tuple[bytes, bytes]], is_root: bool = False) -> None:  # fmt: skip
        self.lib = lib
        self.is_root = is_root  # the engine makes no set-id check before an exec
        self.plain_for = plain_for  # facs -> Rules.plain_stops(facs)
        for name in ("kt_new", "kt_shared", "kt_slots", "kt_files"):
            getattr(lib, name).restype = ctypes.c_void_p
        lib.kt_shared.argtypes = lib.kt_slots.argtypes = lib.kt_files.argtypes = [ctypes.c_void_p]
        lib.kt_run.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int64]
        errs = (ctypes.c_int32 * len(errmap))(*errmap)
        st = lib.kt_new(bytes(narg), errs)
        if not st:
            raise MemoryError("kt_new")
        self.st = ctypes.c_void_p(st)
        self.shared = memoryview((ctypes.c_char * SHARED_SIZE).from_address(lib.kt_shared(self.st))).cast("B")
        slots = lib.kt_slots(self.st)
        self.slots = memoryview((ctypes.c_char * (SLOT_SIZE * MAX_SLOTS)).from_address(slots)).cast("B")
        files = lib.kt_files(self.st)
        self.files_mem = memoryview((ctypes.c_char * (FILE_SIZE * MAX_FILES)).from_address(files)).cast("B")
        self.run = lib.kt_run
        self.slot_of: dict[int, int] = {}  # tid -> its slot's byte offset
        self.file_of: dict[TraceFile, int] = {}
        self.file_at: dict[int, TraceFile] = {}
        self.plain_of: dict[int, int] = {}  # facs -> kt_plain index
        self.plain_keep: list[bytes] = []  # the tables C points into
        self.draining = False

    # ----- slots -----

    def push(self, t: Thread) -> None:
        """Write `t`'s state and its process's into its slot (made on first use)."""
        off = self.slot_of.get(t.tid)
        if off is None:
            s = self.lib.kt_slot(self.st, t.tid)
            if s < 0:
                return  # every slot taken: this thread's stops stay Python's
            off = self.slot_of[t.tid] = s * SLOT_SIZE
        elif self.slots[off + CHANGED]:
            self.pull(t)  # another thread's stop: what C did since must not be overwritten
        p = t.proc
        tf = p.file
        fi = -1 if tf is None else self.file_of.get(tf, -2)
        if fi == -2:
            fi = self._open(tf)  # type: ignore[arg-type]
        pi = self.plain_of.get(p.facs)
        if pi is None:
            pi = self._plain(p.facs)
        ok = fi != -2 and pi >= 0 and not (p.passthrough or p.detaching) and p.arch == AUDIT_ARCH_X86_64
        args = t.args
        argc = 6 if len(args) == 6 else 0
        # As Engine._signal_stop: nothing to record (PSIG) or follow (a single-step to
        # a handler, SA_RESETHAND) at a delivery; as Engine.other_stop at a new
        # task's first stop: no descending request waits for it, no CSW count.
        flags = 0 if t.stepping or p.resethand or (tf is not None and p.facs & KTRFAC_PSIG) else SIG_QUIET
        if not t.started and not t.descend_pending and t.nvcsw < 0:
            flags |= FIRST_STOP
        if self.is_root or p.filtered:
            flags |= NO_SETID
        try:
            SLOT.pack_into(self.slots, off, t.tid, p.tgid, fi, pi, p.facs, p.mode_op, ok,
                           t.restart_ret is not None, t.insys, 0, t.nr, t.entry_ns,
                           *(args if argc else NO_ARGS), t.comm, argc, flags, 0)  # fmt: skip
        except struct.error:
            self.drop(t.tid)  # a value C cannot hold: Python handles this thread

    def push_proc(self, t: Thread) -> None:
        """Push `t` and the other threads of its process C knows (process-wide state may have changed)."""
        self.push(t)
        p = t.proc
        if len(p.threads) > 1:
            slot_of = self.slot_of
            for th in p.threads.values():
                if th is not t and th.tid in slot_of:
                    self.push(th)

    def push_all(self, threads: dict[int, Thread]) -> None:
        """After a request: any process may have changed."""
        for tid in list(self.slot_of):
            th = threads.get(tid)
            if th is None:
                self.drop(tid)
            else:
                self.push(th)

    def pull(self, t: Thread) -> None:
        """Take back what C changed in `t`'s slot since Python last pushed it."""
        off = self.slot_of.get(t.tid)
        if off is None or not self.slots[off + CHANGED]:
            return
        v = SLOT.unpack_from(self.slots, off)
        t.insys = bool(v[8])
        t.nr = v[10]
        t.entry_ns = v[11]
        t.args = v[12:18] if v[19] else ()
        if v[21]:
            t.started = True  # C resumed its first stop
            t.descend_pending = False
            self.slots[off + STARTED] = 0
        self.slots[off + CHANGED] = 0

    def drop(self, tid: int) -> None:
        if self.slot_of.pop(tid, None) is not None:
            self.lib.kt_drop(self.st, tid)

    def reconcile(self, threads: dict[int, Thread]) -> None:
        """Forget slots of threads the table no longer holds under that tid (exec from a thread)."""
        for tid in [tid for tid in self.slot_of if tid not in threads]:
            self.drop(tid)

    # ----- facility sets and files -----

    def _plain(self, facs: int) -> int:
        entry, exit_ = self.plain_for(facs)
        self.plain_keep += [entry, exit_]
        pi = self.plain_of[facs] = self.lib.kt_plain(self.st, entry, exit_)
        return pi

    def _open(self, tf: TraceFile) -> int:
        fi = self.lib.kt_file_open(self.st, tf.version)
        if fi < 0:
            return -2  # no room: the file's processes stay Python's
        self.file_of[tf] = fi
        self.file_at[fi] = tf
        return fi

    def forget_file(self, tf: TraceFile) -> None:
        """`tf` is closed: its records here were drained; its buffer goes."""
        fi = self.file_of.pop(tf, None)
        if fi is not None:
            self.drain()
            del self.file_at[fi]
            self.lib.kt_file_close(self.st, fi)

    def drain(self) -> bool:
        """Copy the records C wrote into their TraceFiles' buffers, in order; True if any.

        Not reentrant, and the flush timer's handler drains too (table.flush_all):
        a drain it interrupted between copying a buffer and emptying it would
        copy those records twice. So a drain inside a drain does nothing; the
        outer one finishes and the records reach the file at the next flush.
        """
        shared = self.shared
        n = INT.unpack_from(shared, NDIRTY)[0]
        if not n or self.draining:
            return False
        self.draining = True
        try:
            self._drain(n)
        finally:
            self.draining = False
        return True

    def _drain(self, n: int) -> None:
        shared = self.shared
        mem = self.files_mem
        for k in range(n):
            fi = INT.unpack_from(shared, DIRTY + 4 * k)[0]
            off = fi * FILE_SIZE
            addr, size = FILE.unpack_from(mem, off)
            if size:
                self.file_at[fi].buf += ctypes.string_at(addr, size)
            FILE.pack_into(mem, off, addr, 0)
            INT.pack_into(mem, off + FILE_DIRTY, 0)
        INT.pack_into(shared, NDIRTY, 0)

    def clear_ready(self) -> None:
        self.lib.kt_clear_ready(self.st)

    def attend(self) -> None:
        """From the control thread: kt_run comes back to Python at its next stop."""
        INT.pack_into(self.shared, ATTENTION, 1)

"""Loading the committed BPF object with the system libbpf (ctypes), and its maps.

libbpf does the CO-RE relocation against the running kernel's BTF, loads
and attaches; everything else (map values, the ring consumer) is plain
bpf(2) through libbpf's thin wrappers and mmap. See docs/DESIGN.md,
"eBPF backend", for why ctypes and not a binding.
"""

from __future__ import annotations

import ctypes
import errno as E
import logging
import mmap
import os
import struct
from collections.abc import Callable

from ktrace_cli.trace.bpf import wire as W

log = logging.getLogger("pyktrace.engine")

OBJECT_NAME = W.OBJECT_NAME
why_unavailable = W.why_unavailable
PROGRAMS = ("ktr_sys_enter", "ktr_sys_exit", "ktr_fork", "ktr_exec", "ktr_exit", "ktr_switch",
            "ktr_signal", "ktr_siggen", "ktr_fault")
# Programs reached by tail call, never attached: (program array, index, program).
JUMPS = (("enter_jumps", 0, "ktr_sys_enter_more"), ("exit_jumps", 0, "ktr_sys_exit_more"),
         ("enter_jumps", 1, "ktr_sys_enter_exec"), ("exit_jumps", 1, "ktr_sys_exit_exec"))
RING_DEFAULT = 8 << 20
RING_MIN = 4096
BATCH_DATA = 16384  # as in ktrace.bpf.c
MAX_SYSCALL = 1024
# systab and sysnames: the x86_64 calls, then the i386 (int $0x80) ones from here.
I386_BASE = MAX_SYSCALL
SYSTAB_SIZE = 2 * MAX_SYSCALL
MAX_ERRNO = 4096
BPF_ANY = 0

# struct proc, struct sysent and struct cfg of ktrace.bpf.c.
PROC = struct.Struct("<6IQ2I")  # facs, file, version, genio, drop_pending, fatal_logged, dropped, abi32, pad
PROC_ABI32 = 7  # the index of abi32 in an unpacked PROC: 1 once the last call was i386
SYSENT = struct.Struct("<BBHBBH")  # narg, pathmask, flags, stru, stru_arg, sig (trace/sigsets.py's descriptor)
CFG = struct.Struct("<Q4I2Q")  # realtime_off, batch_limit, wake_at, woken, watch, lost batches/records
CFG_WOKEN = 16
CFG_WATCH = 20
WATCH_CSW = 1
WATCH_FAULT = 2
SIGTAB = struct.Struct("<65i4xQ")  # signo[65], default_ignored
SIGMASK = struct.Struct("<4I")
LINUX_NSIG = 64
U32 = struct.Struct("<I")
S32 = struct.Struct("<i")

SYS_EXEC = 1
SYS_GIO_READ = 2
SYS_GIO_WRITE = 4
SYS_SIGRETURN = 8
SYS_PRCTL = 16
SYS_OPEN = 32
SYS_SETITIMER = 64
SYS_GIO_IOV = 128
SYS_GIO_MSG = 256
SYS_GIO_OUT = 512


class BpfUnavailable(OSError):
    """The BPF backend cannot run here; the message says why."""


_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_messages: list[str] = []


def _libbpf_print(level: int, fmt: bytes, va: int) -> int:
    # Keep libbpf's messages (the verifier's log among them) for the error path.
    buf = ctypes.create_string_buffer(1 << 20)  # a verifier log is long
    _libc.vsnprintf(buf, len(buf), fmt, ctypes.c_void_p(va))
    text = buf.value.decode(errors="replace").rstrip()
    if text and level <= 1:  # LIBBPF_WARN, LIBBPF_INFO
        _messages.append(text)
        del _messages[:-40]
    return 0


_libc = ctypes.CDLL(None, use_errno=True)
_libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
_print_cb = _PRINT_FN(_libbpf_print)
_lib: ctypes.CDLL | None = None


def _libbpf() -> ctypes.CDLL:
    global _lib
    if _lib is not None:
        return _lib
    name = W.find_libbpf()
    if name is None:
        raise BpfUnavailable(E.ENOSYS, "libbpf.so.1 is not installed")
    lib = ctypes.CDLL(name, use_errno=True)
    vp, cp, i, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t
    for fn, res, args in (
        ("bpf_object__open_mem", vp, [vp, sz, vp]),
        ("bpf_object__load", i, [vp]),
        ("bpf_object__close", None, [vp]),
        ("bpf_object__find_map_by_name", vp, [vp, cp]),
        ("bpf_object__find_program_by_name", vp, [vp, cp]),
        ("bpf_map__set_max_entries", i, [vp, ctypes.c_uint32]),
        ("bpf_map__fd", i, [vp]),
        ("bpf_program__attach", vp, [vp]),
        ("bpf_program__fd", i, [vp]),
        ("bpf_link__destroy", i, [vp]),
        ("bpf_map_update_elem", i, [i, vp, vp, ctypes.c_uint64]),
        ("bpf_map_lookup_elem", i, [i, vp, vp]),
        ("bpf_map_delete_elem", i, [i, vp]),
        ("bpf_map_get_next_key", i, [i, vp, vp]),
        ("libbpf_set_print", vp, [vp]),
        ("libbpf_num_possible_cpus", i, []),
    ):  # fmt: skip
        f = getattr(lib, fn)
        f.restype, f.argtypes = res, args
    lib.libbpf_set_print(ctypes.cast(_print_cb, ctypes.c_void_p))
    _lib = lib
    return lib


def _err(what: str) -> BpfUnavailable:
    code = ctypes.get_errno() or E.EINVAL
    detail = ""
    for m in reversed(_messages):
        # A verifier log: its verdict is the line before "processed N insns".
        lines = m.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("processed ") and i:
                detail = lines[i - 1]
                break
        if detail:
            break
    if not detail:
        detail = "; ".join(m for m in _messages[-2:] if m)
    return BpfUnavailable(code, f"{what}: {os.strerror(code)}" + (f" ({detail})" if detail else ""))


class Map:
    """One map of the loaded object, by descriptor."""

    def __init__(self, lib: ctypes.CDLL, fd: int, key_size: int, value_size: int) -> None:
        self.lib, self.fd = lib, fd
        self.key = ctypes.create_string_buffer(key_size)
        self.value = ctypes.create_string_buffer(value_size)

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> int:
        """0, or the errno of the failure."""
        self.key.raw, self.value.raw = key, value
        if self.lib.bpf_map_update_elem(self.fd, self.key, self.value, flags) != 0:
            return ctypes.get_errno() or E.EINVAL
        return 0

    def lookup(self, key: bytes) -> bytes | None:
        self.key.raw = key
        if self.lib.bpf_map_lookup_elem(self.fd, self.key, self.value) != 0:
            return None
        return self.value.raw

    def delete(self, key: bytes) -> bool:
        self.key.raw = key
        return self.lib.bpf_map_delete_elem(self.fd, self.key) == 0

    def keys(self) -> list[bytes]:
        out: list[bytes] = []
        nxt = ctypes.create_string_buffer(len(self.key))
        prev: ctypes.Array[ctypes.c_char] | None = None
        while self.lib.bpf_map_get_next_key(self.fd, prev, nxt) == 0:
            out.append(nxt.raw)
            prev = ctypes.create_string_buffer(nxt.raw, len(nxt))
        return out


class BpfObject:
    """The loaded programs and maps; attach() and detach() as tracing starts and stops."""

    def __init__(self, ring_size: int = RING_DEFAULT) -> None:
        why = why_unavailable()
        if why:
            raise BpfUnavailable(E.EPERM, why)
        lib = _libbpf()
        self.lib = lib
        with open(W.object_path(), "rb") as f:
            data = f.read()
        self._data = ctypes.create_string_buffer(data, len(data))
        _messages.clear()
        obj = lib.bpf_object__open_mem(self._data, len(data), None)
        if not obj:
            raise _err(f"opening {OBJECT_NAME}")
        self.obj = obj
        self.links: list[int] = []
        self.ring_size = ring_size
        ring = lib.bpf_object__find_map_by_name(obj, b"ring")
        if lib.bpf_map__set_max_entries(ring, ring_size) != 0:
            self.close()
            raise _err(f"ring buffer size {ring_size}")
        scratch = lib.bpf_object__find_map_by_name(obj, b"exec_scratch")
        cpus = lib.libbpf_num_possible_cpus()
        if not scratch or cpus <= 0 or lib.bpf_map__set_max_entries(scratch, cpus) != 0:
            self.close()
            raise _err("the per-CPU exec buffers")
        if lib.bpf_object__load(obj) != 0:
            e = _err("loading the BPF programs")
            self.close()
            raise e
        self.traced = self._map("traced", 4, PROC.size)
        self.systab = self._map("systab", 4, SYSENT.size)
        self.errmap = self._map("errmap", 4, 4)
        self.config = self._map("ktr_config", 4, CFG.size)
        self.sigtab = self._map("sigtab", 4, SIGTAB.size)
        self.masktab = self._map("masktab", 4, SIGMASK.size)
        self.sicodetab = self._map("sicodetab", 4, 4)
        self.sysnames = self._map("sysnames", 4, 8)
        self.ring_fd = self._map("ring", 0, 0).fd
        self.cfg_mem = mmap.mmap(self.config.fd, mmap.PAGESIZE, mmap.MAP_SHARED,
                                 mmap.PROT_READ | mmap.PROT_WRITE)  # fmt: skip
        for array, index, name in JUMPS:
            prog = lib.bpf_object__find_program_by_name(obj, name.encode())
            fd = lib.bpf_program__fd(prog) if prog else -1
            if fd < 0 or self._map(array, 4, 4).update(U32.pack(index), S32.pack(fd)):
                self.close()
                raise BpfUnavailable(E.ENOENT, f"{OBJECT_NAME}: cannot install program {name}")
        self.progs = []
        for name in PROGRAMS:
            prog = lib.bpf_object__find_program_by_name(obj, name.encode())
            if not prog:
                self.close()
                raise BpfUnavailable(E.ENOENT, f"{OBJECT_NAME} has no program {name}")
            self.progs.append(prog)

    def _map(self, name: str, key: int, value: int) -> Map:
        m = self.lib.bpf_object__find_map_by_name(self.obj, name.encode())
        fd = self.lib.bpf_map__fd(m) if m else -1
        if fd < 0:
            raise BpfUnavailable(E.ENOENT, f"{OBJECT_NAME} has no map {name}")
        return Map(self.lib, fd, key, value)

    def fill_tables(self, systab: list[tuple[int, int, int, int, int, int]], errmap: list[int],
                    names: list[bytes]) -> None:  # fmt: skip
        """Both ABIs' rows (x86_64 first, i386 from I386_BASE), their names, the errno map."""
        for key, row in enumerate(systab[:SYSTAB_SIZE]):
            self.systab.update(U32.pack(key), SYSENT.pack(*row))
        for nr, name in enumerate(names[:SYSTAB_SIZE]):
            self.sysnames.update(U32.pack(nr), name[:7].ljust(8, b"\0"))
        for e, fb in enumerate(errmap[:MAX_ERRNO]):
            self.errmap.update(U32.pack(e), S32.pack(fb))

    def fill_signals(self, signo: list[int], mask_of: Callable[[int], tuple[int, int, int, int]],
                     default_ignored: int, sigcodes: dict[tuple[int, int], int]) -> None:  # fmt: skip
        """The signal numbers, FreeBSD's set for each byte value at each byte of a Linux mask,
        and the FreeBSD si_code of each (Linux signal or 0, Linux code)."""
        self.sigtab.update(U32.pack(0), SIGTAB.pack(*signo, default_ignored))
        for (sig, code), fcode in sigcodes.items():
            self.sicodetab.update(U32.pack(sig << 16 | code & 0xFFFF), S32.pack(fcode))
        for k in range(8):
            for b in range(256):
                self.masktab.update(U32.pack(k * 256 + b), SIGMASK.pack(*mask_of(b << (8 * k))))

    def configure(self, realtime_off: int, batch_limit: int, wake_at: int) -> None:
        CFG.pack_into(self.cfg_mem, 0, realtime_off, batch_limit, wake_at, 0, 0, 0, 0)

    def set_clock(self, realtime_off: int) -> None:
        struct.pack_into("<Q", self.cfg_mem, 0, realtime_off)

    def watch(self, what: int) -> None:
        """Which hooks on every switch or fault of the machine look for traced processes
        (WATCH_*): each look costs a lookup, so only while some process wants `w` or `f`."""
        U32.pack_into(self.cfg_mem, CFG_WATCH, what)

    @property
    def watching(self) -> int:
        return int(U32.unpack_from(self.cfg_mem, CFG_WATCH)[0])

    def rearm_wakeup(self) -> None:
        U32.pack_into(self.cfg_mem, CFG_WOKEN, 0)

    def lost(self) -> tuple[int, int]:
        """Batches and records lost in a full ring since load."""
        _off, _lim, _wake, _woken, _pad, batches, records = CFG.unpack_from(self.cfg_mem, 0)
        return batches, records

    @property
    def attached(self) -> bool:
        return bool(self.links)

    def attach(self) -> None:
        if self.links:
            return
        for prog in self.progs:
            link = self.lib.bpf_program__attach(prog)
            if not link:
                e = _err("attaching the BPF programs")
                self.detach()
                raise e
            self.links.append(link)

    def detach(self) -> None:
        for link in self.links:
            self.lib.bpf_link__destroy(link)
        self.links.clear()

    def close(self) -> None:
        self.detach()
        if getattr(self, "cfg_mem", None) is not None:
            self.cfg_mem.close()
        if self.obj:
            self.lib.bpf_object__close(self.obj)
            self.obj = None

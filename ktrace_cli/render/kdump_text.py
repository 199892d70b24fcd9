"""Records to kdump(1) text, character for character.

Lines are latin-1 `str` (one character per byte) so widths count bytes as
C's printf does and the output encodes back to the recorded bytes exactly.
"""

from __future__ import annotations

import struct

from ktrace_cli.decode import abi as A
from ktrace_cli.decode.cfmt import c_int32
from ktrace_cli.decode.events import Dropped, Shown, Unpack
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import Arch
from ktrace_cli.format.records import Payload, PayloadError, Record
from ktrace_cli.render import bodies
from ktrace_cli.render.dump import vis, vis_line
from ktrace_cli.render.options import KdumpOptions

TYPE_TAGS = {
    K.KTR_SYSCALL: "CALL",
    K.KTR_SYSRET: "RET ",
    K.KTR_NAMEI: "NAMI",
    K.KTR_GENIO: "GIO ",
    K.KTR_PSIG: "PSIG",
    K.KTR_CSW: "CSW ",
    K.KTR_USER: "USER",
    K.KTR_STRUCT: "STRU",
    K.KTR_SYSCTL: "SCTL",
    K.KTR_CAPFAIL: "CAP ",
    K.KTR_FAULT: "PFLT",
    K.KTR_FAULTEND: "PRET",
    K.KTR_STRUCT_ARRAY: "STRU",
    K.KTR_ARGS: "ARGS",
    K.KTR_ENVS: "ENVS",
    K.KTR_EXTERR: "EERR",
}
_HDR_TYPES = 19  # entries in kdump's tag table; beyond it: UNKNOWN(n)


def _tag(rtype: int) -> str:
    tag = TYPE_TAGS.get(rtype)
    if tag is not None:
        return tag
    if 0 <= rtype < _HDR_TYPES:
        return "(null)"
    return f"UNKNOWN({rtype})"


def _escaped(body: bodies.Body) -> bodies.Body:
    """`body` with its one-line text made safe for a terminal."""
    return lambda payload, abi, sv_flags: vis_line(body(payload, abi, sv_flags))


class _Clock:
    """The -E and -R state for one header version (kdump keeps v0 and v1 apart)."""

    def __init__(self, scale: int) -> None:
        self.scale = scale
        self.first: tuple[int, int] = (0, 0)
        self.prev: tuple[int, int] = (0, 0)

    def sub(self, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        sec = a[0] - b[0]
        frac = a[1] - b[1]
        if frac < 0:
            sec -= 1
            frac += self.scale
        return sec, frac


class KdumpText:
    """Renders the events of `ktrace_cli.decode.events.select` as kdump lines."""

    def __init__(self, options: KdumpOptions, arch: Arch) -> None:
        self.o = options
        self.arch = arch
        self.word_mask = (1 << (8 * arch.word)) - 1
        self.clocks = {0: _Clock(1_000_000), 1: _Clock(1_000_000_000)}
        self._comm_cache: dict[bytes, str] = {}
        self.syscall_text = bodies.SyscallText(options, arch)
        self._bodies = bodies.body_table(options, arch, self.syscall_text)
        if options.terminal:
            for rtype in (K.KTR_NAMEI, K.KTR_SYSCTL, K.KTR_ARGS, K.KTR_ENVS, K.KTR_STRUCT):
                self._bodies[rtype] = _escaped(self._bodies[rtype])
        self._unpack = Unpack(arch)
        o = options
        # Without per-record columns a header depends only on pid, comm and type.
        self._plain_header = not (o.tid or o.timestamps or o.elapsed or o.relative or o.cpu or o.abi_column)
        self._head_cache: dict[tuple[int, bytes, int], str] = {}
        self._abi_cache: dict[int, A.Abi] = {}

    # -- header -----------------------------------------------------------

    def _comm(self, comm: bytes) -> str:
        text = self._comm_cache.get(comm)
        if text is None:
            name = comm.split(b"\0", 1)[0][: K.MAXCOMLEN].decode("latin-1")
            if self.o.terminal:
                name = vis(name)
            if len(self._comm_cache) > 65536:
                self._comm_cache.clear()  # memory stays flat with any number of names
            text = self._comm_cache[comm] = f"{name:<8} "
        return text

    def dropped(self, record: Record) -> str:
        if self.o.tid:
            tid = c_int32(record.tid) if record.tid > 0 else 0
            return f"{record.pid:6d} {tid:6d} {self._comm(record.comm)}Events dropped.\n"
        return f"{record.pid:6d} {self._comm(record.comm)}Events dropped.\n"

    def _times(self, r: Record) -> str:
        o = self.o
        version = 1 if r.version else 0
        clock = self.clocks[version]
        width = 9 if version else 6
        now = (r.sec, r.frac)
        out = []
        if o.timestamps:
            out.append(f"{r.sec}.{r.frac:0{width}d} ")
        if o.elapsed:
            if clock.first[0] == 0:
                clock.first = now
            sec, frac = clock.sub(now, clock.first)
            out.append(f"{sec}.{frac:0{width}d} ")
        if o.relative:
            if clock.prev[0] == 0:
                clock.prev = now
            if now < clock.prev:
                sec, frac = clock.sub(clock.prev, now)
                sign = "-"
            else:
                sec, frac = clock.sub(now, clock.prev)
                sign = ""
            clock.prev = now
            out.append(f"{sign}{sec}.{frac:0{width}d} ")
        return "".join(out)

    def header(self, r: Record, sv_flags: int) -> str:
        o = self.o
        if o.tid:
            tid = c_int32(r.tid) if r.tid > 0 else 0
            head = f"{r.pid:6d} {tid:6d} {self._comm(r.comm)}"
        else:
            head = f"{r.pid:6d} {self._comm(r.comm)}"
        if o.timestamps or o.elapsed or o.relative:
            head += self._times(r)
        if o.cpu and r.version:
            head += f"{r.cpu:3d} "
        head += _tag(r.type) + "  "
        if o.abi_column:
            head += A.abi_column(sv_flags) + "  "
        return head

    # -- records ------------------------------------------------------------

    def render(self, event: Shown | Dropped) -> str:
        if isinstance(event, Dropped):
            return self.dropped(event.record)
        record, sv_flags, payload = event
        if payload is None:
            payload = self._unpack(record)
        rtype = record.type
        if self._plain_header:
            # head(), inlined: this runs once per record.
            key = (record.pid, record.comm, rtype)
            head = self._head_cache.get(key)
            if head is None:
                if len(self._head_cache) > 65536:
                    self._head_cache.clear()
                head = self._head_cache[key] = self.header(record, sv_flags)
        else:
            head = self.header(record, sv_flags)
        fn = self._bodies.get(rtype)
        if fn is None:
            return head + "\n"
        if payload is None:
            return head + "invalid record\n"
        abi = self._abi_cache.get(sv_flags)
        if abi is None:
            abi = self._abi_cache[sv_flags] = A.syscall_abi(sv_flags)
        try:
            return head + fn(payload, abi, sv_flags)
        except (PayloadError, struct.error):
            return head + "invalid record\n"

    def head(self, record: Record, sv_flags: int) -> str:
        """header(), from a cache when it depends only on pid, comm and type."""
        if not self._plain_header:
            return self.header(record, sv_flags)
        key = (record.pid, record.comm, record.type)
        head = self._head_cache.get(key)
        if head is None:
            if len(self._head_cache) > 65536:
                self._head_cache.clear()  # memory stays flat with any number of pids
            head = self._head_cache[key] = self.header(record, sv_flags)
        return head

    def parts(self, event: Shown) -> tuple[str, str]:
        """(header with its type tag, body) of a shown record."""
        record, sv_flags, payload = event
        if payload is None:
            payload = self._unpack(record)
        return self.head(record, sv_flags), self.body(record.type, payload, sv_flags)

    def body(self, rtype: int, payload: Payload | None, sv_flags: int) -> str:
        """The text after the tag: from the typed payload, "invalid record" without one."""
        fn = self._bodies.get(rtype)
        if fn is None:
            return "\n"
        if payload is None:
            return "invalid record\n"
        abi = self._abi_cache.get(sv_flags)
        if abi is None:
            abi = self._abi_cache[sv_flags] = A.syscall_abi(sv_flags)
        try:
            return fn(payload, abi, sv_flags)
        except (PayloadError, struct.error):
            return "invalid record\n"

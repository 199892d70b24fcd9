"""kdump's main loop: which records are shown, with which ABI, and where drops are noted.

Each shown record carries its payload unpacked once into the typed classes of
`format/records.py`; every output (kdump text, JSON, summary, the call views)
reads those fields and never the bytes again.
"""

from __future__ import annotations

import collections
import functools
import itertools
import struct
from collections.abc import Callable, Iterable, Iterator

from ktrace_cli.decode.abi import ProcessTable
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, PROCCTOR, Arch
from ktrace_cli.format.reader import TraceFormatError
from ktrace_cli.format.records import (
    PAYLOAD_CLASSES,
    Genio,
    Namei,
    Payload,
    PayloadError,
    Record,
    Syscall,
    Sysret,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from typing import Any, NamedTuple

    class _Shown(NamedTuple):
        record: Record
        sv_flags: int
        payload: Payload | None = None

    class _Dropped(NamedTuple):
        record: Record
else:  # the same tuples, built without loading typing
    _Shown = collections.namedtuple("Shown", ("record", "sv_flags", "payload"), defaults=(None,))
    _Dropped = collections.namedtuple("Dropped", ("record",))


class Shown(_Shown):
    """A record to print, with its process's sv_flags (0 when no PROCCTOR was seen).

    `payload` is the typed payload, or None when the bytes do not fit the
    record type's layout (kdump prints such a record as "invalid record").
    """

    __slots__ = ()


class Dropped(_Dropped):
    """kdump's "Events dropped." line, printed before any filtering."""

    __slots__ = ()


Unpacker = Callable[[bytes], Payload]


def unpackers(arch: Arch) -> dict[int, Unpacker]:
    """Record type -> the function giving its typed payload, bound to `arch`.

    The frequent types get closures over their precompiled layouts: this runs
    once per record, ahead of every output.  A payload that does not fit its
    layout raises PayloadError or struct.error.
    """
    table: dict[int, Unpacker] = {
        t: functools.partial(cls.unpack, arch)  # type: ignore[attr-defined]
        for t, cls in PAYLOAD_CLASSES.items()
    }
    call_fixed = arch.syscall_fixed
    call_size = call_fixed.size
    call_head = call_fixed.unpack_from
    args_struct = arch.args_struct
    sysret = arch.sysret.unpack_from
    genio_size = arch.genio_fixed.size
    genio_head = arch.genio_fixed.unpack_from

    args_unpackers: dict[int, Callable[[bytes, int], tuple[int, ...]]] = {}

    def syscall(buf: bytes) -> Syscall:
        # kdump prints no arguments for a CALL whose count is zero or negative.
        code, narg = call_head(buf)
        if narg <= 0:
            return Syscall(code, ())
        unpack = args_unpackers.get(narg)
        if unpack is None:
            unpack = args_struct(narg).unpack_from
            if narg <= 64:  # a damaged count gets no entry: the table stays small
                args_unpackers[narg] = unpack
        return Syscall(code, unpack(buf, call_size))

    def ret(buf: bytes) -> Sysret:
        code, eosys, error, retval = sysret(buf)
        return Sysret(code, error, retval, eosys)

    def genio(buf: bytes) -> Genio:
        fd, rw = genio_head(buf)
        return Genio(fd, rw, bytes(buf[genio_size:]))

    table[K.KTR_SYSCALL] = syscall
    table[K.KTR_SYSRET] = ret
    table[K.KTR_NAMEI] = lambda buf: Namei(bytes(buf))
    table[K.KTR_GENIO] = genio
    return table


class Unpack:
    """The typed payload of one record, None when its bytes do not fit its type.

    For events built by hand with no payload (select always gives one).
    """

    def __init__(self, arch: Arch) -> None:
        self.arch = arch
        self.table: dict[int, Unpacker] | None = None

    def __call__(self, record: Record) -> Payload | None:
        if self.table is None:
            self.table = unpackers(self.arch)
        fn = self.table.get(record.type)
        if fn is None:
            return None
        try:
            return fn(record.payload)
        except (PayloadError, struct.error):
            return None


def select(
    records: Iterable[Record],
    points: int,
    pid: int | None | frozenset[int],
    procs: ProcessTable | None = None,
    arch: Arch | None = None,
    clock: Any = None,
    proc_sink: Callable[[Record], None] | None = None,
) -> Iterator[Shown | Dropped]:
    """The records kdump would print for -t `points` and -p `pid`, in file order.

    `pid` may be a set of process or thread ids (several -p).  The payloads are
    unpacked with `arch`, or the reader's detected `arch` when not given.
    `clock.first_ns`, when a clock is given, is set to the first record's time.
    `proc_sink`, when given, sees each PROCCTOR and PROCDTOR record (which
    this loop keeps to itself) before it is applied.
    """
    procs = procs if procs is not None else ProcessTable()
    pids: frozenset[int] | None
    if pid is None or isinstance(pid, frozenset):
        pids = pid or None
    else:
        pids = frozenset((pid,))
    table: dict[int, Unpacker] = {}
    drop_logged = False
    sv_flags_of = procs.sv_flags.get
    # Shown's own __new__ is a Python function; tuple.__new__ builds the same
    # tuple without a frame, once per record.
    shown = functools.partial(tuple.__new__, Shown)
    procctor, procdtor = K.KTR_PROCCTOR, K.KTR_PROCDTOR
    errors = (PayloadError, struct.error)
    rest = iter(records)
    try:
        # Only the reader raises TraceFormatError here: the loop's own work
        # catches its payload errors, and a consumer's errors never enter.
        for head in rest:
            # The reader knows the layout once it has framed the first record.
            table = unpackers(arch or getattr(records, "arch", None) or AMD64)
            if clock is not None:
                clock.first_ns = head.sec * 1_000_000_000 + head.nsec
            break
        else:
            return
        get = table.get
        # The first record again, then the others: one loop, no per-record setup test.
        for record in itertools.chain((head,), rest):
            if record.drop and not drop_logged:
                drop_logged = True
                yield Dropped(record)
            rtype = record.type
            if rtype == procctor or rtype == procdtor:
                if proc_sink is not None:
                    proc_sink(record)
                if rtype == procdtor:
                    procs.dtor(record.pid)
                elif len(record.payload) >= 4:
                    procs.ctor(record.pid, PROCCTOR.unpack_from(record.payload)[0])
                continue
            if pids is not None and record.pid not in pids and record.tid not in pids:
                continue
            if not points & (1 << (rtype & 31)):
                continue
            drop_logged = False
            fn = get(rtype)
            payload: Payload | None
            if fn is None:
                payload = None
            else:
                try:
                    payload = fn(record.payload)
                except errors:
                    payload = None
            yield shown((record, sv_flags_of(record.pid, 0), payload))
    except TraceFormatError as e:
        # kdump notes a drop before it checks the record's length.
        if e.header is not None and e.header.drop and not drop_logged:
            yield Dropped(e.header)
        raise

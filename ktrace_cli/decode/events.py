"""kdump's main loop: which records are shown, with which ABI, and where drops are noted."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ktrace_cli.decode.abi import ProcessTable
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import PROCCTOR
from ktrace_cli.format.reader import TraceFormatError
from ktrace_cli.format.records import Record


class Shown(NamedTuple):
    """A record to print, with its process's sv_flags (0 when no PROCCTOR was seen)."""

    record: Record
    sv_flags: int


class Dropped(NamedTuple):
    """kdump's "Events dropped." line, printed before any filtering."""

    record: Record


def select(
    records: Iterable[Record], points: int, pid: int | None, procs: ProcessTable | None = None
) -> Iterator[Shown | Dropped]:
    """The records kdump would print for -t `points` and -p `pid`, in file order."""
    procs = procs if procs is not None else ProcessTable()
    drop_logged = False
    iterator = iter(records)
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            return
        except TraceFormatError as e:
            # kdump notes a drop before it checks the record's length.
            if e.header is not None and e.header.drop and not drop_logged:
                yield Dropped(e.header)
            raise
        if record.drop and not drop_logged:
            drop_logged = True
            yield Dropped(record)
        rtype = record.type
        if rtype == K.KTR_PROCCTOR:
            if len(record.payload) >= 4:
                procs.ctor(record.pid, PROCCTOR.unpack_from(record.payload)[0])
            continue
        if rtype == K.KTR_PROCDTOR:
            procs.dtor(record.pid)
            continue
        if pid is not None and record.pid != pid and record.tid != pid:
            continue
        if not points & (1 << (rtype & 31)):
            continue
        drop_logged = False
        yield Shown(record, procs.get(record.pid))

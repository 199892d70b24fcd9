"""The item stream every view reads: calls, records outside calls, drops, each with the filters' verdict.

The views need every call to follow the processes (a filtered-out fork still
makes a child), so the pipeline runs unfiltered and the call filters are
applied here, per item, to decide what each view reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ktrace_cli.decode.calls import Call
from ktrace_cli.decode.events import Dropped, Shown, select
from ktrace_cli.decode.fdtable import FdTables
from ktrace_cli.decode.filters import CallFilter
from ktrace_cli.decode.pipeline import Clock, calls
from ktrace_cli.views.lifecycle import ARGS_POINTS, Lifecycle, record_ns

Item = Call | Shown | Dropped


def view_items(
    reader: Any,
    flt: CallFilter,
    pids: frozenset[int] | None = None,
    life: Lifecycle | None = None,
    tables: FdTables | None = None,
) -> Iterator[tuple[Item, bool]]:
    """(item, selected by the filters) for every call, lone record and drop of `reader`.

    `life`, when given, has seen each item (and the PROCCTOR/PROCDTOR before
    it) by the time it is yielded.  `pids` (-p) is one more filter here, so
    that the lifecycle still sees the forks and execs of the other processes.
    """
    clock = Clock()
    sink = life.proc_record if life is not None else None
    events = select(reader, ARGS_POINTS, None, clock=clock, proc_sink=sink)
    stream = calls(events, CallFilter(), tables if tables is not None else FdTables(), clock)
    active = flt.active
    feed = life.feed if life is not None else None
    if not active and not pids:
        # Every item is selected: the loop only feeds the lifecycle.
        if life is None:
            for item in stream:
                yield item, True
            return
        feed_call = life.feed_call
        for item in stream:
            if life.first_ns is None:
                life.first_ns = clock.first_ns  # a drop can come before the first call
            if item.__class__ is Call:
                feed_call(item)
            else:
                life.feed(item)
            yield item, True
        return
    for item in stream:
        if feed is not None:
            if life.first_ns is None:  # type: ignore[union-attr]
                life.first_ns = clock.first_ns  # type: ignore[union-attr]  # a drop can come before the first call
            feed(item)
        if not active and not pids:
            yield item, True
            continue
        if flt.first_ns is None:
            flt.first_ns = clock.first_ns
        if isinstance(item, Dropped):
            yield item, True
            continue
        if pids:
            r = item.first.record if isinstance(item, Call) else item.record
            if r.pid not in pids and r.tid not in pids:
                yield item, False
                continue
        if isinstance(item, Call):
            yield item, flt.call_ok(item)
        else:
            yield item, flt.record_ok(item.record.comm_name, record_ns(item.record))

"""The rules of Chrome's trace-event JSON format that pykdump --timeline must keep, as a checker."""

from __future__ import annotations

from numbers import Real
from typing import Any

# Keys every event of a phase needs (the format's JSON object form).
REQUIRED = {
    "X": {"name", "ph", "ts", "dur", "pid", "tid"},
    "i": {"name", "ph", "ts", "pid", "tid", "s"},
    "M": {"name", "ph", "pid", "args"},
    "s": {"name", "ph", "ts", "pid", "tid", "id", "cat"},
    "f": {"name", "ph", "ts", "pid", "tid", "id", "cat"},
}
METADATA_NAMES = {"process_name", "thread_name", "process_sort_index", "thread_sort_index", "process_labels"}


def check(doc: Any) -> list[str]:
    """Every broken rule, as a message; [] when the document follows the format."""
    problems: list[str] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("traceEvents"), list):
        return ["not an object with a traceEvents array"]
    if doc.get("displayTimeUnit") not in (None, "ms", "ns"):
        problems.append(f"displayTimeUnit {doc.get('displayTimeUnit')!r}")
    last_x: dict[tuple[int, int], float] = {}
    starts: dict[Any, float] = {}
    ends: dict[Any, float] = {}
    for n, ev in enumerate(doc["traceEvents"]):
        ph = ev.get("ph")
        if ph not in REQUIRED:
            problems.append(f"event {n}: unknown phase {ph!r}")
            continue
        missing = REQUIRED[ph] - ev.keys()
        if missing:
            problems.append(f"event {n}: {ph} without {sorted(missing)}")
            continue
        for key in ("ts", "dur"):
            if key in ev and (not isinstance(ev[key], Real) or isinstance(ev[key], bool) or ev[key] < 0):
                problems.append(f"event {n}: {key} {ev[key]!r}")
        for key in ("pid", "tid"):
            if key in ev and not isinstance(ev[key], int):
                problems.append(f"event {n}: {key} {ev[key]!r}")
        if "args" in ev and not isinstance(ev["args"], dict):
            problems.append(f"event {n}: args not an object")
        if ph == "X":
            track = (ev["pid"], ev["tid"])
            if ev["ts"] < last_x.get(track, float("-inf")):
                problems.append(f"event {n}: X ts {ev['ts']} before the track's previous one")
            last_x[track] = ev["ts"]
        elif ph == "i" and ev["s"] not in ("g", "p", "t"):
            problems.append(f"event {n}: instant scope {ev['s']!r}")
        elif ph == "M":
            if ev["name"] not in METADATA_NAMES or "name" not in ev["args"] and ev["name"].endswith("_name"):
                problems.append(f"event {n}: metadata {ev['name']!r} {ev['args']!r}")
        elif ph in ("s", "f"):
            table = starts if ph == "s" else ends
            key = (ev["cat"], ev["id"])
            if key in table:
                problems.append(f"event {n}: flow {ph} {key} twice")
            table[key] = ev["ts"]
    for key, ts in starts.items():
        if key not in ends:
            problems.append(f"flow {key} has no end")
        elif ends[key] < ts:
            problems.append(f"flow {key} ends before it starts")
    problems.extend(f"flow {key} has no start" for key in ends if key not in starts)
    return problems

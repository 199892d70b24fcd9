"""Figures from reliability tests: one JSON line per figure set, for the soak table.

A test calls `record("hostile-input", inputs=1200, crashes=0)`.  When the
environment variable KTRACE_FIGURES names a file, the line is appended there
(the table printer reads them back with `load`); the figures are also printed,
so `pytest -s` shows them without any file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "KTRACE_FIGURES"

Figure = int | float | str


def record(name: str, **figures: Figure) -> None:
    """Print `figures` under `name` and append them to $KTRACE_FIGURES if set."""
    line = json.dumps({"name": name, **figures}, sort_keys=True)
    print(f"figures: {line}")
    path = os.environ.get(ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def load(path: str | Path) -> list[dict[str, Figure]]:
    """Every figure set recorded in `path`, in order."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]

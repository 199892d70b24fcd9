"""The progress bar: only for a terminal stderr and a regular file of more than a few MB."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ktrace_cli.format.reader import TraceReader
from ktrace_cli.views.progress import PROGRESS_MIN_BYTES, ProgressReader, wants_progress
from tests.kdump_helpers import trace_bytes
from tests.unit.test_views_tree_errors import Clock, family


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_when_a_bar_is_due(tmp_path: Path) -> None:
    big = tmp_path / "big.out"
    with open(big, "wb") as f:
        f.truncate(PROGRESS_MIN_BYTES + 1)  # sparse: the size is what counts
    small = tmp_path / "small.out"
    small.write_bytes(b"x" * 100)
    with open(big, "rb") as b, open(small, "rb") as s:
        assert wants_progress(b, Tty()) == PROGRESS_MIN_BYTES + 1
        assert wants_progress(b, io.StringIO()) == 0  # stderr is not a terminal
        assert wants_progress(s, Tty()) == 0
    r, w = os.pipe()
    with os.fdopen(r, "rb") as pipe:
        os.close(w)
        assert wants_progress(pipe, Tty()) == 0  # no size to measure against


def test_records_pass_unchanged_and_the_bar_is_drawn(tmp_path: Path) -> None:
    path = tmp_path / "t.out"
    path.write_bytes(trace_bytes(family(Clock())))  # type: ignore[arg-type]
    err = Tty()
    with open(path, "rb", buffering=0) as stream:
        size = os.fstat(stream.fileno()).st_size
        bar = ProgressReader(TraceReader(stream), stream, size, "t.out", stderr=err)
        got = list(bar)
        assert bar.arch is not None
    with open(path, "rb", buffering=0) as stream:
        assert got == list(TraceReader(stream))
    assert "t.out" in err.getvalue()


def test_pykdump_draws_it_on_a_terminal_stderr_only(tmp_path: Path) -> None:
    import pty
    import subprocess
    import sys

    one = trace_bytes(family(Clock()))  # type: ignore[arg-type]
    path = tmp_path / "big.out"
    path.write_bytes(one * (PROGRESS_MIN_BYTES // len(one) + 1))
    cmd = [sys.executable, "-m", "ktrace_cli.cli.pykdump", "-f", str(path), "--summary"]
    quiet = subprocess.run(cmd, capture_output=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == b""
    master, slave = pty.openpty()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=slave, timeout=120)
    os.close(slave)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    assert proc.returncode == 0 and proc.stdout == quiet.stdout  # the bar changes nothing on stdout
    assert b"big.out" in drawn


def test_the_calls_quick_path_runs_under_the_bar(tmp_path: Path) -> None:
    """--calls text frames plain calls itself, past the bar's record loop: the
    bar still follows the offset, and the lines are those of the general path."""
    from ktrace_cli.decode.calls import Call
    from ktrace_cli.decode.fdtable import FdTables
    from ktrace_cli.decode.filters import CallFilter
    from ktrace_cli.decode.pipeline import TRACKED_POINTS, Shows
    from ktrace_cli.decode.select_calls import select_call_lines
    from ktrace_cli.format import constants as K
    from ktrace_cli.format.records import ProcCtor
    from ktrace_cli.render.calls_text import CallsText
    from ktrace_cli.render.options import KdumpOptions
    from tests.kdump_helpers import LINUX64, rec
    from tests.unit.test_select_calls_quick import _print, _round

    records = [rec(ProcCtor(LINUX64), tid=100001)] + [r for i in range(400) for r in _round(i, 100001)]
    path = tmp_path / "t.out"
    path.write_bytes(trace_bytes(records))
    err = Tty()
    views: list[CallsText] = []
    lines: list[str] = []
    with open(path, "rb", buffering=0) as stream:
        size = os.fstat(stream.fileno()).st_size
        bar = ProgressReader(TraceReader(stream), stream, size, "t.out", stderr=err)

        def make(arch: object) -> object:
            views.append(CallsText(KdumpOptions(), arch))  # type: ignore[arg-type]
            return views[0].text.quick

        points = K.ALL_POINTS | TRACKED_POINTS
        made = 0
        for item in select_call_lines(bar, points, CallFilter(), FdTables(), None, Shows(), quick=make):  # type: ignore[arg-type]
            if isinstance(item, str):
                made += 1
                lines.append(item)
            else:
                lines.append(views[0].line(item) if isinstance(item, Call) else views[0].render(item))
    general, _, _ = _print(path.read_bytes(), KdumpOptions(), False)
    assert "".join(lines) == general
    assert made > 1000  # the quick path did run, through the bar
    assert bar._skips > 0
    assert "t.out" in err.getvalue()

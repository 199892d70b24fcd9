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

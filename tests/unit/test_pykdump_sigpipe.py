"""pykdump and SIGPIPE: quiet at a closed pipe as a command, harmless to an in-process caller."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.kdump_helpers import run_pykdump_args

NFSP = Path(__file__).resolve().parent.parent / "fixtures" / "real" / "freebsd-i386-v0-nfsp" / "ktrace.out"


def test_in_process_run_keeps_the_callers_sigpipe_disposition() -> None:
    old = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        result = run_pykdump_args("-f", str(NFSP))
        assert result.status == 0
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGPIPE, old)


def test_command_ends_quietly_when_its_reader_goes_away() -> None:
    """`pykdump | head -1`: the reader closes after one line; no traceback, no message."""
    p = subprocess.Popen([sys.executable, "-m", "ktrace_cli.cli.pykdump", "-f", str(NFSP)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert p.stdout is not None and p.stderr is not None
    first = p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=30) == -signal.SIGPIPE
    assert first.startswith(b" ") and err == b""

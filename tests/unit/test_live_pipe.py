"""The engine's trace file as pyktrace --live's pipe: no size limit, a dead reader is EPIPE."""

from __future__ import annotations

import errno as E
import fcntl
import os

from ktrace_cli.cli.live import grow_pipe
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64
from ktrace_cli.format.reader import TraceReader
from ktrace_cli.format.writer import TraceFile

COMM = b"prog".ljust(20, b"\0")
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def test_records_go_through_a_pipe_whatever_the_size_limit() -> None:
    rfd, wfd = os.pipe()
    tf = TraceFile(wfd)
    assert tf.pipe
    tf.fsize_limit = 10  # RLIMIT_FSIZE does not apply to a pipe: nothing is cut
    tf.record(K.KTR_NAMEI, 42, 43, COMM, 5_000_000_001, b"/etc/passwd")
    tf.record(K.KTR_NAMEI, 42, 43, COMM, 5_000_000_002, b"/etc/group")
    assert tf.flush() == 0
    tf.close()
    with os.fdopen(rfd, "rb", buffering=0) as stream:
        recs = list(TraceReader(stream, arch=AMD64))
    assert [(r.type, r.payload) for r in recs] == [(K.KTR_NAMEI, b"/etc/passwd"), (K.KTR_NAMEI, b"/etc/group")]


def test_a_dead_reader_fails_the_write_with_epipe() -> None:
    rfd, wfd = os.pipe()
    tf = TraceFile(wfd)
    os.close(rfd)
    tf.record(K.KTR_NAMEI, 42, 43, COMM, 1, b"/x")
    assert tf.flush() == E.EPIPE  # the engine stops tracing into it, as on any write failure
    assert tf.failed == E.EPIPE
    tf.close()


def test_a_regular_file_is_not_a_pipe(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tf = TraceFile(os.open(tmp_path / "t.out", os.O_WRONLY | os.O_CREAT, 0o600))
    assert not tf.pipe
    tf.close()


def test_grow_pipe_reports_the_size_it_set() -> None:
    rfd, wfd = os.pipe()
    try:
        size = grow_pipe(wfd)
        assert size >= 1 << 16
        assert fcntl.fcntl(wfd, F_GETPIPE_SZ) == size
    finally:
        os.close(rfd)
        os.close(wfd)

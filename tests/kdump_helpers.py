"""Helpers for tests that build trace files with the writer and run pykdump on them."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from pathlib import Path

from ktrace_cli.cli import pykdump
from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import AMD64, Arch
from ktrace_cli.format.records import Payload, ProcCtor, Record
from ktrace_cli.format.writer import encode_record, make_record

FREEBSD64 = K.SV_ABI_FREEBSD | K.SV_LP64 | 0x10000
LINUX64 = K.SV_ABI_LINUX | K.SV_LP64


def rec(payload: Payload, pid: int = 2035, comm: str = "cat", **kw: object) -> Record:
    """A record with fixed, readable header values (v1 unless version=0)."""
    kw.setdefault("sec", 1700000000)
    kw.setdefault("frac", 123456789 if kw.get("version", 1) else 123456)
    kw.setdefault("tid", 100113)
    return make_record(payload, pid=pid, comm=comm, **kw)  # type: ignore[arg-type]


def ctor(sv_flags: int = FREEBSD64, pid: int = 2035, comm: str = "cat", **kw: object) -> Record:
    return rec(ProcCtor(sv_flags), pid=pid, comm=comm, **kw)


def trace_bytes(records: Iterable[Record], arch: Arch = AMD64) -> bytes:
    return b"".join(encode_record(r, arch) for r in records)


class Result:
    def __init__(self, status: int, out: bytes, err: str) -> None:
        self.status = status
        self.out = out
        self.err = err

    @property
    def text(self) -> str:
        return self.out.decode("latin-1")


def run_pykdump(tmp_path: Path, records: Iterable[Record] | bytes, *args: str, arch: Arch = AMD64) -> Result:
    """pykdump in-process on a file made of `records`; stdout is not a terminal."""
    data = records if isinstance(records, bytes) else trace_bytes(records, arch)
    path = tmp_path / "trace.out"
    path.write_bytes(data)
    return run_pykdump_args("-f", str(path), *args)


def run_pykdump_args(*args: str) -> Result:
    out = io.BytesIO()
    err = io.StringIO()
    saved = sys.stdout, sys.stderr
    wrapper = io.TextIOWrapper(out, encoding="latin-1")
    sys.stdout = wrapper
    sys.stderr = err
    try:
        status = pykdump.main(list(args))
        wrapper.flush()
    finally:
        sys.stdout, sys.stderr = saved
        wrapper.detach()
    return Result(status, out.getvalue(), err.getvalue())

"""pipe2 and socketpair on both engines: their STRU `fdpair`, and the descriptor paths pykdump builds from it.

progs/pipes.c prints the inode numbers of its pipes and sockets (fstat), so
every line below is exact: only the pid and the durations come from the run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ktrace_cli.format import constants as K
from ktrace_cli.format.layouts import FDPAIR, FDPAIR_PIPE, FDPAIR_SOCKET
from tests.integration.conftest import kdump_lines

pytestmark = pytest.mark.both_engines

_DURATION = re.compile(r" <\d+\.\d{6}>$")
SOCK_CLOEXEC_STREAM = "0x80001<SOCK_STREAM|SOCK_CLOEXEC>"


def test_pipe_and_socketpair_descriptors_get_their_paths(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trfile = tmp_path / "ktrace.out"
    t = trace([str(progs / "pipes")], trfile=trfile)
    assert t.returncode == 0, t.stderr
    p, q, s0, s1 = (int(n) for n in t.stdout.split())
    # The records: one STRU fdpair per call, before its RET.
    pairs = [r.payload.split(b"\0", 1)[1] for r in t.records
             if r.type == K.KTR_STRUCT and r.payload.startswith(b"fdpair\0")]  # fmt: skip
    assert [FDPAIR.unpack(d) for d in pairs] == [
        (3, 4, FDPAIR_PIPE, 0, p, p), (5, 6, FDPAIR_PIPE, 0, q, q), (7, 8, FDPAIR_SOCKET, 1, s0, s1),
    ]  # fmt: skip
    head = f"{t.pid:6d} pipes    "
    out = [_DURATION.sub("", line) for line in kdump_lines(trfile, "--calls", "-e", "pipe2,socketpair,read,write")]
    first = out.index(f"{head}pipe2([3<pipe:[{p}]>,4<pipe:[{p}]>],0x80000<O_CLOEXEC>) = 0")
    assert out[first:] == [
        f"{head}pipe2([3<pipe:[{p}]>,4<pipe:[{p}]>],0x80000<O_CLOEXEC>) = 0",
        f"{head}pipe2([5<pipe:[{q}]>,6<pipe:[{q}]>],0) = 0",
        f"{head}socketpair(AF_UNIX,{SOCK_CLOEXEC_STREAM},0,[7<socket:[{s0}]>,8<socket:[{s1}]>]) = 0",
        f'{head}write(4<pipe:[{p}]>,"ping",0x4) = 4',
        f'{head}read(3<pipe:[{p}]>,"ping",0x8) = 4',
        f'{head}write(6<pipe:[{q}]>,"pong",0x4) = 4',
        f'{head}read(5<pipe:[{q}]>,"pong",0x8) = 4',
        f'{head}write(7<socket:[{s0}]>,"sock",0x4) = 4',
        f'{head}read(8<socket:[{s1}]>,"sock",0x8) = 4',
        f'{head}write(1,"{p} {q} {s0} {s1}\\n",{hex(len(t.stdout))}) = {len(t.stdout)}',
    ]
    objs = [json.loads(x) for x in kdump_lines(trfile, "--calls", "--json", "-e", "socketpair,read")]
    objs = objs[[o["syscall"] for o in objs].index("socketpair") :]
    assert objs[0]["structs"] == [{"name": "fdpair", "fields": {
        "fds": [7, 8], "kind": "socket", "family": 1, "ino": [s0, s1],
        "targets": [f"socket:[{s0}]", f"socket:[{s1}]"],
    }}]  # fmt: skip
    assert [(o["syscall"], o["fd"], o["fd_path"]) for o in objs[1:]] == [
        ("read", 3, f"pipe:[{p}]"), ("read", 5, f"pipe:[{q}]"), ("read", 8, f"socket:[{s1}]"),
    ]  # fmt: skip
    # kdump's own text: a structure it does not know, as it prints pyktrace's fdtable.
    stru = [line for line in kdump_lines(trfile, "-t", "t") if line.startswith(head) and "struct stat" not in line]
    assert stru == [f"{head}STRU  unknown structure"] * 3

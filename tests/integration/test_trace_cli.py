"""pyktrace's command line: ktrace(1)'s messages and exit codes, file creation rules, strace parity."""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ktrace_cli.abi import linux as abi
from ktrace_cli.format import constants as K

pytestmark = pytest.mark.both_engines

USAGE = (
    "usage: pyktrace [-aCcdi] [-f trfile] [-g pgrp | -p pid] [-t trstr]\n"
    "       pyktrace [-adi] [-f trfile] [-t trstr] command\n"
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), ""),
        (("-t", "z", "true"), "pyktrace: unknown facility in z\n"),
        (("-p", "0"), "pyktrace: invalid process or group id\n"),
        (("-p", "12x"), "pyktrace: invalid process or group id\n"),
        (("-p", "1", "-g", "1"), "pyktrace: only one -g or -p flag is permitted\n"),
        (("-C", "-p", "1"), "pyktrace: the -C flag may not be combined with -g or -p\n"),
        (("-c", "-C"), "pyktrace: only one -c or -C flag is permitted\n"),
        (("-x",), "pyktrace: illegal option -- x\n"),
        (("-f",), "pyktrace: option requires an argument -- f\n"),
        (("-p", "1", "true"), ""),
    ],
)
def test_argument_errors(pyktrace_cli, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    r = pyktrace_cli(*args)
    assert r.returncode == 1
    assert r.stderr == message + USAGE
    assert not (Path(r.args[0]).parent / "ktrace.out").exists()


def test_new_file_is_0600_whatever_the_umask(pyktrace_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old = os.umask(0)
    try:
        r = pyktrace_cli("-f", "t.out", "true")
    finally:
        os.umask(old)
    assert r.returncode == 0
    assert (tmp_path / "t.out").stat().st_mode & 0o777 == 0o600


def test_append_refuses_non_regular_files(pyktrace_cli) -> None:  # type: ignore[no-untyped-def]
    r = pyktrace_cli("-a", "-f", "/dev/null", "true")
    assert (r.returncode, r.stderr) == (1, "pyktrace: /dev/null not regular file\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file away")
def test_append_refuses_files_of_others(pyktrace_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "other.out"
    f.write_bytes(b"")
    os.chown(f, 65534, 65534)
    r = pyktrace_cli("-a", "-f", str(f), "true")
    assert (r.returncode, r.stderr) == (1, f"pyktrace: refuse to append to {f} not owned by you\n")


def test_append_never_follows_a_symlink(pyktrace_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    (tmp_path / "link.out").symlink_to(target)
    r = pyktrace_cli("-a", "-f", "link.out", "true")
    assert r.returncode == 1
    assert r.stderr == "pyktrace: link.out: Too many levels of symbolic links\n"
    assert target.read_bytes() == b"keep"


def test_unobservable_points_warn_once(pyktrace_cli) -> None:  # type: ignore[no-untyped-def]
    r = pyktrace_cli("-t", "cfp", "true")
    assert r.returncode == 0
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("pyktrace: warning: ")


def test_empty_points_set_only_creation_and_exit_records(trace, progs) -> None:  # type: ignore[no-untyped-def]
    """ktrace(1) adds PROC_ABI_POINTS in set mode, so an empty -t records the process's life alone."""
    r = trace([str(progs / "utrace")], ["-t", ""])
    assert r.returncode == 0
    # One PROCCTOR at the request, one for the new image at execve, then PROCDTOR.
    assert [x.type for x in r.records] == [K.KTR_PROCCTOR, K.KTR_PROCCTOR, K.KTR_PROCDTOR]


def test_empty_points_clear_is_einval(pyktrace_cli) -> None:  # type: ignore[no-untyped-def]
    """Clearing nothing: ktrace(2) answers EINVAL when no point is named outside CLEARFILE."""
    r = pyktrace_cli("-c", "-t", "", "-p", str(os.getpid()))
    assert (r.returncode, r.stderr) == (1, "pyktrace: ktrace.out: Invalid argument\n")


def test_append_adds_to_the_file(trace, progs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "a.out"
    first = trace([str(progs / "utrace")], ["-t", "u"], trfile=f)
    second = trace([str(progs / "utrace")], ["-a", "-t", "u"], trfile=f)
    assert len(second.records) == 2 * len(first.records)


_STRACE_LINE = re.compile(rb"^(\d+) +([a-z0-9_]+)\(")


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize("prog", ["forker", "io", "sig"])
def test_same_syscalls_as_strace(trace, progs, tmp_path: Path, prog: str) -> None:  # type: ignore[no-untyped-def]
    """The multiset of syscalls of a deterministic program equals what strace -f sees."""
    out = tmp_path / "strace.txt"
    subprocess.run(["strace", "-f", "-qq", "-o", str(out), str(progs / prog)], check=False,
                   capture_output=True, timeout=30)  # fmt: skip
    theirs = collections.Counter(
        m.group(2).decode() for line in out.read_bytes().splitlines()
        if (m := _STRACE_LINE.match(line))
    )  # fmt: skip
    t = trace([str(progs / prog)], ["-i", "-t", "c"])
    ours = collections.Counter(
        abi.syscall_name(int.from_bytes(r.payload[:2], "little", signed=True))
        for r in t.after_exec() if r.type == K.KTR_SYSCALL
    )  # fmt: skip
    ours["execve"] += 1  # strace shows the program's own execve, which pyktrace made
    assert ours == theirs

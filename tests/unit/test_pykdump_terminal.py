"""pykdump on a terminal: colour codes, NO_COLOR, vis(3) escaping of names, --version, completion."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tty
from pathlib import Path

import pytest

from ktrace_cli.decode.events import select
from ktrace_cli.format import constants as K
from ktrace_cli.format.reader import TraceReader
from ktrace_cli.format.records import Genio, Namei, Psig, Strings, Struct, Syscall, Sysctl, Sysret
from ktrace_cli.render.color import ColorKdump
from ktrace_cli.render.dump import vis
from ktrace_cli.render.kdump_text import KdumpText
from ktrace_cli.render.options import KdumpOptions
from tests.kdump_helpers import ctor, rec, run_pykdump, trace_bytes

PYKDUMP = [sys.executable, "-m", "ktrace_cli.cli.pykdump"]

# What a hostile program looks up and calls itself (the security review's case):
# it retitles the terminal, clears it, turns text red and forges a kdump line.
HOSTILE_PATH = b"/x\x1b]0;PWNED-TITLE\x07\x1b[2J\x1b[31mFAKE LINE\r\n  1 root CALL  something"
HOSTILE_COMM = "\x1b[5mcomm\x1b[0m"
ESCAPED_PATH = "/x\\^[]0;PWNED-TITLE\\^G\\^[[2J\\^[[31mFAKE LINE\\^M\\^J  1 root CALL  something"
ESCAPED_COMM = "\\^[[5mcomm\\^[[0m"


def hostile_records() -> list:
    return [
        ctor(comm=HOSTILE_COMM),
        rec(Namei(HOSTILE_PATH), comm=HOSTILE_COMM),
        rec(Sysctl(b"kern.\x1b[2J"), comm="sysctl"),
        rec(Strings([b"sh", b"-c", b"echo\nhi"]), rtype=K.KTR_ARGS, comm="sh"),
        rec(Struct(b"sockaddr", bytes([106, 1]) + b"/tmp/\x1b[2Jsock".ljust(104, b"\0")), comm="nc"),
    ]


def render(records: list, **options: object) -> str:
    """Text of `records` through the library, with the options (terminal or not) injected."""
    o = KdumpOptions(**options)  # type: ignore[arg-type]
    reader = TraceReader(io.BytesIO(trace_bytes(records)))
    events = select(reader, o.points, None)
    first = next(events)
    text = KdumpText(o, reader.arch)
    return "".join(text.render(e) for e in [first, *events])


def on_terminal(args: list[str], env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """pykdump with standard output on a pseudo-terminal in raw mode (no CR added to LF).

    `env` is the whole environment (default: this one without NO_COLOR).
    """
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        proc = subprocess.Popen(
            PYKDUMP + args,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal has closed it
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.stderr is not None
        err = proc.stderr.read()
        status = proc.wait(timeout=60)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return status, b"".join(chunks), err


# -- vis(3) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"/etc/passwd", "/etc/passwd"),
        (b"\x1b", "\\^["),
        (b"a\tb\nc\rd\x00e", "a\\^Ib\\^Jc\\^Md\\^@e"),
        (b"\x7f", "\\^?"),
        (b"back\\slash", "back\\\\slash"),
        ("/home/josé/€".encode(), "/home/josé/€".encode().decode("latin-1")),
        (b"\xff\x80\xa0\xe9", "\\M-^?\\M-^@\\M- \\M-i"),
        (b"\xc2\x9b31m", "\\M-B\\M-^[31m"),  # U+009B, the one-byte CSI, is a control too
        (b"\xed\xa0\x80", "\\M-m\\M- \\M-^@"),  # a UTF-16 surrogate is not well-formed UTF-8
    ],
)
def test_vis(raw: bytes, shown: str) -> None:
    assert vis(raw.decode("latin-1")) == shown


# -- names on a terminal, raw elsewhere -------------------------------------------


def test_names_are_escaped_when_the_output_is_for_a_terminal() -> None:
    assert render(hostile_records(), terminal=True, points=K.ALL_POINTS | K.KTRFAC_ARGS) == (
        f'  2035 {ESCAPED_COMM} NAMI  "{ESCAPED_PATH}"\n'
        '  2035 sysctl   SCTL  "kern.\\^[[2J"\n'
        '  2035 sh       ARGS  "sh", "-c", "echo\\^Jhi"\n'
        "  2035 nc       STRU  struct sockaddr { AF_LOCAL, /tmp/\\^[[2Jsock }\n"
    )


def test_names_are_kdumps_raw_bytes_otherwise() -> None:
    assert render(hostile_records()) == (
        f'  2035 {HOSTILE_COMM} NAMI  "{HOSTILE_PATH.decode("latin-1")}"\n'
        '  2035 sysctl   SCTL  "kern.\x1b[2J"\n'
        "  2035 nc       STRU  struct sockaddr { AF_LOCAL, /tmp/\x1b[2Jsock }\n"
    )


def test_a_terminal_gets_escapes_and_a_pipe_raw_bytes(tmp_path: Path) -> None:
    path = tmp_path / "esc.out"
    path.write_bytes(trace_bytes(hostile_records()))
    status, out, err = on_terminal(["--color=never", "-f", str(path), "-t", "n"])
    assert (status, err) == (0, b"")
    assert out == f'  2035 {ESCAPED_COMM} NAMI  "{ESCAPED_PATH}"\n'.encode("latin-1")
    piped = subprocess.run(PYKDUMP + ["-f", str(path), "-t", "n"], capture_output=True, timeout=60)
    assert (piped.returncode, piped.stderr) == (0, b"")
    assert piped.stdout == f'  2035 {HOSTILE_COMM} NAMI  "'.encode("latin-1") + HOSTILE_PATH + b'"\n'


def test_summary_titles_escape_the_command_name_on_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "esc.out"
    path.write_bytes(trace_bytes([ctor(comm=HOSTILE_COMM), rec(Sysret(20, 0, 5), comm=HOSTILE_COMM)]))
    status, out, err = on_terminal(["--summary", "-f", str(path)], env={**os.environ, "NO_COLOR": "1"})
    assert (status, err) == (0, b"")
    assert out.split(b"\n")[0] == f"process 2035 ({ESCAPED_COMM})".encode()
    assert b"\x1b" not in out


# -- colour -----------------------------------------------------------------------

D, R = "\x1b[2m", "\x1b[0m"


def test_only_the_header_is_dim(tmp_path: Path) -> None:
    records = [
        ctor(),
        rec(Syscall(5, (0x1000, 0))),
        rec(Namei(b"/etc/motd")),
        rec(Sysret(5, 2, 0)),
        rec(Sysret(5, 0, 3)),
        rec(Psig(13, 0, 0)),
        rec(Genio(1, 1, b"hi\n")),
    ]
    result = run_pykdump(tmp_path, records, "--color=always")
    assert (result.status, result.err) == (0, "")
    assert result.text.split("\n") == [
        f"{D}  2035 cat      {R}\x1b[1;36mCALL  {R}open(0x1000,0<O_RDONLY>)",
        f'{D}  2035 cat      {R}\x1b[1;32mNAMI  {R}\x1b[32m"/etc/motd"{R}',
        f"{D}  2035 cat      {R}\x1b[1;34mRET   {R}\x1b[31mopen -1 errno 2 No such file or directory{R}",
        f"{D}  2035 cat      {R}\x1b[1;34mRET   {R}open 3",
        f"{D}  2035 cat      {R}\x1b[1;33mPSIG  {R}\x1b[33mSIGPIPE SIG_DFL code=SI_NOINFO{R}",
        f"{D}  2035 cat      {R}\x1b[1;35mGIO   {R}fd 1 wrote 3 bytes",
        '       "hi',
        '       "',
        "",
    ]


def test_abi_column_is_part_of_the_coloured_tag(tmp_path: Path) -> None:
    result = run_pykdump(tmp_path, [ctor(), rec(Sysret(20, 0, 5))], "--color=always", "-A", "-H")
    assert result.text == f"{D}  2035 100113 cat      {R}\x1b[1;34mRET   F64  {R}getpid 5\n"


def test_color_renderer_keeps_kdumps_characters() -> None:
    records = [ctor(), rec(Syscall(5, (0x1000, 0))), rec(Namei(b"/x")), rec(Sysret(5, 2, 0))]
    reader = TraceReader(io.BytesIO(trace_bytes(records)))
    events = list(select(reader, K.ALL_POINTS, None))
    text = KdumpText(KdumpOptions(), reader.arch)
    coloured = ColorKdump(KdumpText(KdumpOptions(), reader.arch))
    for event in events:
        assert re.sub("\x1b\\[[0-9;]*m", "", coloured.render(event)) == text.render(event)


@pytest.mark.parametrize(
    ("color", "no_color", "coloured"),
    [
        ("auto", None, True),
        ("auto", "", True),  # empty: as if unset
        ("auto", "1", False),
        ("auto", "yes please", False),
        ("always", "1", True),  # an explicit request wins over NO_COLOR
        ("never", None, False),
    ],
)
def test_no_color(tmp_path: Path, color: str, no_color: str | None, coloured: bool) -> None:
    path = tmp_path / "t.out"
    path.write_bytes(trace_bytes([ctor(), rec(Sysret(5, 2, 0))]))
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    plain = b"  2035 cat      RET   open -1 errno 2 No such file or directory\n"
    for extra in ([], ["--summary"]):
        status, out, err = on_terminal([f"--color={color}", "-f", str(path), *extra], env=env)
        assert (status, err) == (0, b""), extra
        assert (b"\x1b[" in out) == coloured, (extra, out)
        if not extra and not coloured:
            assert out == plain


# -- --version, usage, completion -------------------------------------------------------


def test_version() -> None:
    from ktrace_cli import __version__

    done = subprocess.run(PYKDUMP + ["--version"], capture_output=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"pykdump {__version__}\n".encode(), b"")


def test_empty_trace_point_string_prints_nothing(tmp_path: Path) -> None:
    # kdump: an empty -t selects no type, which is not an error.
    for args in (["-t", ""], ["-t", "", "--json"]):
        result = run_pykdump(tmp_path, [ctor(), rec(Namei(b"/x"))], *args)
        assert (result.status, result.out, result.err) == (0, b"", ""), args


def test_help_shows_no_operand() -> None:
    done = subprocess.run(PYKDUMP + ["--help"], capture_output=True, timeout=60, text=True)
    assert done.returncode == 0
    assert done.stdout.split("\n")[0].rstrip() == "Usage: pykdump [OPTIONS]"
    assert "--version" in done.stdout


def complete(words: str, cword: int) -> list[str]:
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword), "_PYKDUMP_COMPLETE": "bash_complete"}
    done = subprocess.run(PYKDUMP, env=env, capture_output=True, timeout=60, text=True)
    assert (done.returncode, done.stderr) == (0, "")
    return done.stdout.split()


def test_shell_completion() -> None:
    assert complete("pykdump --col", 1) == ["plain,--color"]
    assert complete("pykdump --color ", 2) == ["plain,auto", "plain,always", "plain,never"]
    assert complete("pykdump -f tr", 2) == ["file,tr"]  # the shell lists the files
    for shell, marker in [("bash", "_pykdump_completion()"), ("zsh", "#compdef pykdump"), ("fish", "function _pykdump_completion")]:
        env = {**os.environ, "_PYKDUMP_COMPLETE": f"{shell}_source"}
        done = subprocess.run(PYKDUMP, env=env, capture_output=True, timeout=60, text=True)
        assert done.returncode == 0 and marker in done.stdout, shell

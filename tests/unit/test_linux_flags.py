"""The generated Linux flag tables: they parse, carry their provenance, and agree with Python's constants."""

from __future__ import annotations

import fcntl
import mmap
import os
import re
import resource
import select
import signal
import socket
import sys
import termios
import time
from pathlib import Path

import pytest

from ktrace_cli.abi import linux_flags as F
from ktrace_cli.abi.freebsd import DATA_DIR

TSV = Path(DATA_DIR) / "linux_flags.tsv"
# Modules whose constants come from the C library's copy of the kernel's values.
PYTHON_MODULES = (mmap, socket, os, select, fcntl, termios, resource, signal, time)
# Where glibc's value is not the kernel's: on x86_64 glibc defines O_LARGEFILE
# as 0 (every open is large), the kernel as 0o100000.
LIBC_DIFFERS = {"O_LARGEFILE"}


def test_file_names_its_repository_and_every_header_commit() -> None:
    head = [line for line in TSV.read_text().splitlines() if line.startswith("#")]
    assert "# repository: torvalds/linux" in head
    headers = [line for line in head if line.startswith("# header: ")]
    assert len(headers) >= 25
    for line in headers:
        assert re.fullmatch(r"# header: (include|arch)/[\w/.-]+\.h @ [0-9a-f]{40}", line), line


def test_rows_parse_and_names_are_unique_per_table() -> None:
    for name in F.table_names():
        rows = F.table(name)
        assert rows, name
        names = [symbol for _value, symbol in rows]
        assert len(names) == len(set(names)), name
        assert all(re.fullmatch(r"_*[A-Z][A-Za-z0-9_]*", symbol) for symbol in names), name


def test_values_agree_with_pythons_constants() -> None:
    checked = 0
    for name in F.table_names():
        for value, symbol in F.table(name):
            module = next((m for m in PYTHON_MODULES if hasattr(m, symbol)), None)
            if module is None or symbol in LIBC_DIFFERS:
                continue
            assert int(getattr(module, symbol)) == value, f"{name} {symbol}: {value:#x} vs {module.__name__}"
            checked += 1
    # Hundreds of names are checked (mmap, socket options, O_, W*, EPOLL*, TC*...),
    # so a table gone empty or renamed cannot pass unnoticed.
    assert checked >= 300


def test_libc_difference_is_real() -> None:
    # The one exception above is a true difference, not a generator bug.
    assert os.O_LARGEFILE == 0
    assert F.value("open_flags", "O_LARGEFILE") == 0o100000


@pytest.mark.parametrize(
    ("table", "symbol", "value"),
    [
        # Spot checks of names Python does not export, against the kernel headers.
        ("mmap_type", "MAP_SHARED_VALIDATE", 0x03),
        ("open_flags", "O_ASYNC", 0o20000),
        ("open_flags", "O_TMPFILE", 0o20200000),
        ("at_fdcwd", "AT_FDCWD", -100),
        ("futex_cmd", "FUTEX_WAKE", 1),
        ("prctl_option", "PR_SET_NAME", 15),
        ("arch_prctl_option", "ARCH_SET_FS", 0x1002),
        ("ioctl_tty", "TCGETS2", 0x802C542A),
        ("clone3_flags", "CLONE_INTO_CGROUP", 1 << 33),
        ("statx_mask", "STATX_BASIC_STATS", 0x7FF),
        ("sockopt_level", "SOL_SOCKET", 1),
    ],
)
def test_spot_values(table: str, symbol: str, value: int) -> None:
    assert F.value(table, symbol) == value


def test_composites_precede_what_they_cover() -> None:
    # A mask walk must print O_SYNC, not __O_SYNC|O_DSYNC.
    names = [symbol for _value, symbol in F.table("open_flags")]
    assert names.index("O_SYNC") < names.index("O_DSYNC")
    assert names.index("O_TMPFILE") < names.index("O_DIRECTORY")


def test_generator_reads_header_text(tmp_path: Path) -> None:
    tools = Path(__file__).resolve().parents[2] / "tools"
    sys.path.insert(0, str(tools))
    try:
        import gen_linux_flags as gen
    finally:
        sys.path.pop(0)
    symbols = gen.Symbols()
    symbols.add_header(
        "h.h",
        "#define O_DSYNC\t\t00010000\t/* a comment */\n"
        "#define __O_SYNC\t04000000\n"
        "#define O_SYNC\t\t(__O_SYNC|O_DSYNC)\n"
        "#define EPOLLET\t\t((__force __poll_t)(1U << 31))\n"
        "#define TIOCGPTN\t_IOR('T', 0x30, unsigned int) /* pty */\n"
        "#define BLKROSET   _IO(0x12,93)\n"
        "#if 0\n#define GONE 1\n#endif\n"
        "#define LONG_ONE \\\n\t0x10\n"
        "# define PR_SUB 3\n"
        "enum { A_ZERO, A_FIVE = 5, A_SIX };\n",
    )
    assert symbols.value("O_SYNC") == 0o4010000
    assert symbols.value("EPOLLET") == 0x80000000
    assert symbols.value("TIOCGPTN") == 0x80045430
    assert symbols.value("BLKROSET") == 0x125D
    assert symbols.value("GONE") is None
    assert symbols.value("LONG_ONE") == 0x10
    assert (symbols.value("A_ZERO"), symbols.value("A_FIVE"), symbols.value("A_SIX")) == (0, 5, 6)
    assert ("h.h", "PR_SUB", "indented") in symbols.order
    rows = [(0o10000, "O_DSYNC"), (0o4000000, "__O_SYNC"), (0o4010000, "O_SYNC")]
    assert gen.order_composites(rows) == [(0o4010000, "O_SYNC"), (0o10000, "O_DSYNC"), (0o4000000, "__O_SYNC")]

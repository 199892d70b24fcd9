"""Regression golden files: pykdump on the real FreeBSD traces, byte for byte.

The expected files were made by pykdump itself and then checked by hand,
line type by line type, against the spec (see tests/golden/README.md).
Regenerate them deliberately with `UPDATE_GOLDEN=1 pytest tests/golden`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.kdump_helpers import run_pykdump_args

HERE = Path(__file__).resolve().parent
REAL = HERE.parent / "fixtures" / "real"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

FREEBSD = ["freebsd-amd64-v0-denoble", "freebsd-amd64-v1-mcsh", "freebsd-i386-v0-nfsp", "freebsd-i386-v0-rkhack"]
VARIANTS = {
    "default": [],
    "HTEcRA": ["-H", "-T", "-E", "-c", "-R", "-A"],
    "n": ["-n"],
    "dS": ["-d", "-S"],
    "r": ["-r"],
    "json": ["--json"],
    "summary": ["--summary"],
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("fixture", FREEBSD)
def test_freebsd_fixture(fixture: str, variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    result = run_pykdump_args("-f", str(REAL / fixture / "ktrace.out"), *VARIANTS[variant])
    assert (result.status, result.err) == (0, "")
    golden = HERE / f"{fixture}.{variant}.txt"
    if UPDATE:
        golden.write_bytes(result.out)
    assert result.out == golden.read_bytes()


@pytest.mark.parametrize(
    ("fixture", "flavour"),
    [
        ("netbsd-amd64-v2-kayoko/ktrace.out", "NetBSD"),
        ("netbsd-amd64-v2-kayoko/ld-ktrace.out", "NetBSD"),
        ("netbsd-i386-v0-rc/ktrace.out", "NetBSD"),
        ("openbsd-amd64-mad-open/ktrace.out", "OpenBSD"),
        ("openbsd-amd64-pg/ktrace.out", "OpenBSD"),
        ("openbsd-amd64-smallsoft/ktrace.out", "OpenBSD"),
        ("darwin-ppc-php-interpreter/ktrace.out", "big-endian Mac OS X"),
    ],
)
def test_other_systems_are_refused_by_name(fixture: str, flavour: str) -> None:
    result = run_pykdump_args("-f", str(REAL / fixture))
    assert result.out == b""
    assert result.err == f"pykdump: not a FreeBSD trace file: looks like {flavour} ktrace\n"
    assert result.status == 1

"""The repository stands alone: nothing tracked points outside the checkout, and every fixture a test names is here.

A fresh clone must read and test the same as the checkout it came from: a
reference to material beside the checkout, or to an absolute path of the
machine it was written on, is dangling anywhere else, and a test whose
fixture is missing would fail (or worse, skip) only there.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
THIS = Path(__file__).resolve().relative_to(REPO).as_posix()

# Built from parts so that this file does not match itself (nor a `git grep` for them).
_DOTS = ".."
_WORK = "/" + "work/"
OUTSIDE = re.compile(
    "|".join(
        [
            re.escape(_DOTS + "/shared"),  # the material a checkout was once developed beside
            r"(?<![\w.])" + _WORK,  # the build machine's absolute work tree
        ]
    )
)
# Fixture folders of tests/fixtures/real are named system-arch-...; a test names
# them, or a file in one, in a string literal.
FIXTURE_NAME = re.compile(
    r"""["'](?P<path>(?:(?:tests/)?fixtures/[\w./-]+)|(?:(?:freebsd|netbsd|openbsd|darwin)-[a-z0-9]+-[\w.-]+(?:/[\w.-]+)?))["']"""
)


def tracked_files() -> list[str]:
    """The files git tracks, plus new ones not yet added (so the check sees work in progress)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, capture_output=True, check=True).stdout  # fmt: skip
    return sorted({p for p in out.decode("utf-8", "surrogateescape").split("\0") if p})


def outside_references(files: list[str]) -> list[str]:
    """`path:line: text` for every line of a text file that points outside the repository."""
    found = []
    for rel in files:
        if rel == THIS:
            continue
        path = REPO / rel
        if not path.is_file():
            continue  # deleted in the work tree but still in the index
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary: trace fixtures
        for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{rel}:{n}: {line.strip()}")
    return found


def test_no_file_points_outside_the_repository() -> None:
    files = tracked_files()
    assert len(files) > 50, "git listed too few files to be this repository"
    assert outside_references(files) == []


def test_the_check_sees_an_outside_reference(tmp_path: Path) -> None:
    """Both patterns are caught, and a path that merely ends in work/ is not."""
    lines = [
        "see " + _DOTS + "/shared/spec.md",
        "python3 " + _WORK + "main/tool.py",
        "a network/ path, rework/ and ." + _WORK + " stay allowed",
    ]
    assert [bool(OUTSIDE.search(x)) for x in lines] == [True, True, False]


def fixture_paths() -> list[tuple[str, str]]:
    """(test file, fixture path relative to tests/fixtures/real or tests/) for every fixture a test names."""
    found = []
    for py in sorted((REPO / "tests").rglob("*.py")):
        if py == Path(__file__).resolve():
            continue
        for m in FIXTURE_NAME.finditer(py.read_text()):
            found.append((py.relative_to(REPO).as_posix(), m.group("path")))
    return found


def _exists(path: str) -> bool:
    if path.startswith(("tests/", "fixtures/")):
        rel = path.removeprefix("tests/")
        return (REPO / "tests" / rel).exists()
    return (FIXTURES / "real" / path).exists()


def test_every_fixture_a_test_names_exists() -> None:
    named = fixture_paths()
    # The reader, struct and golden tests between them name every FreeBSD fixture.
    folders = {p.split("/")[0] for _, p in named}
    assert {"freebsd-amd64-v0-denoble", "freebsd-amd64-v1-mcsh", "freebsd-i386-v0-nfsp",
            "freebsd-i386-v0-rkhack", "openbsd-amd64-blackgnezdo"} <= folders  # fmt: skip
    missing = [f"{test}: {path}" for test, path in named if not _exists(path)]
    assert missing == []


@pytest.mark.parametrize("name", ["freebsd-amd64-v0-denoble", "openbsd-amd64-blackgnezdo"])
def test_fixture_folders_carry_their_provenance(name: str) -> None:
    source = (FIXTURES / "real" / name / "SOURCE.txt").read_text()
    assert re.search(r"^repository: https://github\.com/\S+$", source, re.M)
    assert re.search(r"^commit that added it: [0-9a-f]{40}", source, re.M)
    assert name in (FIXTURES / "real" / "README.md").read_text()

"""Shared pytest fixtures: where the real BSD trace files live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The real trace files are part of the repository (provenance in their README):
# a test never reads outside the checkout and never skips for a missing file.
REAL_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "real"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The directory of real ktrace files, tests/fixtures/real."""
    return REAL_FIXTURES

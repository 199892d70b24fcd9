"""Shared pytest fixtures: where the real BSD trace files live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# CI checks the project out beside the shared material, so it sits at ../shared.
REAL_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "real"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The directory of real ktrace files (../shared/fixtures/real); skips if absent."""
    if not REAL_FIXTURES.is_dir():
        pytest.skip(f"real trace fixtures not found at {REAL_FIXTURES} (../shared is not checked out)")
    return REAL_FIXTURES

"""Reliability fixtures: the integration suite's private engine, and the load and signal programs built once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import _ptrace_allowed, engine, runtime_env, session_env  # noqa: F401
from tests.reliability import loads

pytestmark = pytest.mark.skipif(not _ptrace_allowed(), reason="ptrace is not permitted here")


@pytest.fixture(scope="session")
def rel_progs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/reliability/progs/*.c compiled by gcc into a temporary directory."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    return loads.build_progs(tmp_path_factory.mktemp("relprogs"))


@pytest.fixture(scope="session")
def command_sigign(session_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> frozenset[int]:  # noqa: F811
    """The signals a command started by pyktrace finds ignored; strace's command gets the same."""
    return loads.command_sigign(session_env, tmp_path_factory.mktemp("sigign"))

"""Choosing and opening the runtime directory: the XDG rule, squatted names, descriptor-relative names."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrace_cli.trace import runtime as R

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """Stand-ins for /run, /run/user, /tmp and $HOME; only the ones a test creates exist."""
    p = {name: tmp_path / name for name in ("xdg", "run", "user", "tmp", "home")}
    monkeypatch.setattr(R, "ROOT_RUN", str(p["run"]))
    monkeypatch.setattr(R, "USER_RUN", str(p["user"]))
    monkeypatch.setattr(R, "SHARED_TMP", str(p["tmp"]))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(p["xdg"]))
    monkeypatch.setenv("HOME", str(p["home"]))
    yield p


def make(path: Path, mode: int) -> Path:
    path.mkdir()
    path.chmod(mode)
    return path


def opened(expected: Path) -> None:
    rt = R.open_runtime()
    try:
        assert rt.dir == str(expected)
        st, want = os.fstat(rt.fd), os.stat(expected, follow_symlinks=False)
        assert (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino)
        assert stat.S_ISDIR(want.st_mode) and stat.S_IMODE(want.st_mode) == 0o700
        assert want.st_uid == os.getuid()
    finally:
        rt.close()


def first_fallback(p: dict[str, Path]) -> Path:
    """Where the directory goes when $XDG_RUNTIME_DIR is refused: /run (root) or /tmp."""
    if os.getuid() == 0:
        make(p["run"], 0o755)
        return p["run"] / "pyktrace"
    make(p["tmp"], 0o1777)
    return p["tmp"] / f"pyktrace-{os.getuid()}"


def test_a_private_xdg_runtime_dir_is_used(places: dict[str, Path]) -> None:
    make(places["xdg"], 0o700)
    opened(places["xdg"] / "pyktrace")


def test_an_existing_directory_is_made_private_through_its_descriptor(places: dict[str, Path]) -> None:
    make(make(places["xdg"], 0o700) / "pyktrace", 0o755)
    opened(places["xdg"] / "pyktrace")


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_a_group_or_world_writable_xdg_runtime_dir_is_not_used(places: dict[str, Path], mode: int) -> None:
    make(places["xdg"], mode)
    opened(first_fallback(places))
    assert not (places["xdg"] / "pyktrace").exists()


@as_root
def test_an_xdg_runtime_dir_of_another_user_is_not_used(places: dict[str, Path]) -> None:
    """security.md F1: root after `su` keeps the user's XDG_RUNTIME_DIR."""
    os.chown(make(places["xdg"], 0o700), NOBODY, NOBODY)
    opened(first_fallback(places))
    assert os.listdir(places["xdg"]) == []


def test_a_symlink_in_place_of_the_directory_is_not_followed(places: dict[str, Path]) -> None:
    make(places["xdg"], 0o700)
    target = make(places["xdg"] / "elsewhere", 0o700)
    (places["xdg"] / "pyktrace").symlink_to(target)
    opened(first_fallback(places))
    assert os.listdir(target) == []


def test_names_inside_are_opened_without_following_symlinks(places: dict[str, Path]) -> None:
    make(places["xdg"], 0o700)
    rt = R.open_runtime()
    victim = places["xdg"] / "victim"
    victim.write_text("keep me\n")
    os.symlink(victim, places["xdg"] / "pyktrace" / R.PIDFILE)
    try:
        with pytest.raises(OSError) as e:
            rt.open(R.PIDFILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        assert e.value.errno == errno.ELOOP
    finally:
        rt.close()
    assert victim.read_text() == "keep me\n"


def test_names_follow_the_directory_when_it_is_renamed(places: dict[str, Path]) -> None:
    """The descriptor, not the path: a directory swapped in under the old name is never written."""
    make(places["xdg"], 0o700)
    rt = R.open_runtime()
    try:
        os.rename(places["xdg"] / "pyktrace", places["xdg"] / "moved")
        make(places["xdg"] / "pyktrace", 0o700)
        os.close(rt.open(R.LOCK, os.O_RDWR | os.O_CREAT))
    finally:
        rt.close()
    assert os.listdir(places["xdg"] / "moved") == [R.LOCK]
    assert os.listdir(places["xdg"] / "pyktrace") == []


@pytest.mark.parametrize("squat", ["file", "symlink", "fifo"])
def test_a_squatted_name_in_the_shared_tmp_falls_back_to_home(places: dict[str, Path], squat: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """security.md F2: a name another user took first must not deny pyktrace."""
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setattr(R, "ROOT_RUN", str(places["run"] / "absent"))
    make(places["tmp"], 0o1777)
    make(places["home"], 0o755)
    name = places["tmp"] / f"pyktrace-{os.getuid()}"
    if squat == "file":
        name.write_text("")
    elif squat == "symlink":
        name.symlink_to(make(places["tmp"] / "theirs", 0o777))
    else:
        os.mkfifo(name)
    opened(places["home"] / ".cache" / "pyktrace")


@as_root
def test_a_directory_squatted_by_another_user_falls_back_to_home(places: dict[str, Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setattr(R, "ROOT_RUN", str(places["run"] / "absent"))
    make(places["tmp"], 0o1777)
    make(places["home"], 0o755)
    squatted = make(places["tmp"] / f"pyktrace-{os.getuid()}", 0o777)
    os.chown(squatted, NOBODY, NOBODY)
    opened(places["home"] / ".cache" / "pyktrace")
    assert os.listdir(squatted) == []


def test_nowhere_usable_names_every_refusal(places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    make(places["xdg"], 0o777)
    monkeypatch.setenv("HOME", "relative")
    with pytest.raises(R.RuntimeError_) as e:
        R.open_runtime()
    assert e.value.strerror.startswith("no private runtime directory ($XDG_RUNTIME_DIR: ")
    assert "$HOME: relative: not an absolute path)" in e.value.strerror


def test_set_title_changes_comm_and_the_command_line() -> None:
    """The engine's name in ps (ux item 11), in a child: the test runner keeps its own."""
    code = ("from ktrace_cli.trace.detach import set_title; set_title(b'pyktrace-engine'); "
            "import sys; sys.stdout.buffer.write(open('/proc/self/comm', 'rb').read() + "
            "open('/proc/self/cmdline', 'rb').read())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, "some", "long", "arguments"], capture_output=True,
                         check=True).stdout  # fmt: skip
    assert out == b"pyktrace-engine\npyktrace-engine\0"


def test_engine_log_lines_are_what_the_logging_handler_wrote(places: dict[str, Path]) -> None:
    import logging

    from ktrace_cli.trace import englog

    now = 1764561600.0421
    record = logging.LogRecord("pyktrace.engine", logging.INFO, __file__, 1, "engine started (uid %d)", (7,), None)
    record.created, record.msecs = now, int((now - int(now)) * 1000) + 0.0
    fmt = logging.Formatter("%(asctime)s pyktrace-engine[%(process)d]: %(message)s")
    assert englog.line("pyktrace-engine", "engine started (uid 7)", now) == fmt.format(record) + "\n"


def test_engine_log_appends_with_tracebacks_and_reopens_a_removed_log(places: dict[str, Path]) -> None:
    from ktrace_cli.trace.englog import EngineLog, RuntimeLog

    make(places["xdg"], 0o700)
    rt = R.open_runtime()
    log = EngineLog()
    log.sink = RuntimeLog(rt, "pyktrace-engine")
    path = Path(rt.log)
    try:
        log.info("engine started (uid %d, %s)", 7, "x")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("engine failed")
        lines = path.read_text().splitlines()
        assert lines[0].endswith(f" pyktrace-engine[{os.getpid()}]: engine started (uid 7, x)")
        assert lines[1].endswith(": engine failed") and lines[2] == "Traceback (most recent call last):"
        assert lines[-1] == "ValueError: boom"
        path.unlink()
        log.warning("after %s", "removal")
        assert path.read_text().endswith(": after removal\n") and len(path.read_text().splitlines()) == 1
    finally:
        log.sink.close()
        rt.close()

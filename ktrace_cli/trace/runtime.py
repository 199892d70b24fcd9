"""The per-user runtime directory: control socket, engine lock and log."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass


class RuntimeError_(OSError):
    """The runtime directory cannot be used safely."""


@dataclass(frozen=True)
class Runtime:
    dir: str

    @property
    def socket(self) -> str:
        return os.path.join(self.dir, "engine.sock")

    @property
    def lock(self) -> str:
        return os.path.join(self.dir, "engine.lock")

    @property
    def log(self) -> str:
        return os.path.join(self.dir, "engine.log")

    @property
    def pidfile(self) -> str:
        return os.path.join(self.dir, "engine.pid")


def runtime_dir() -> str:
    """$XDG_RUNTIME_DIR/pyktrace, else /tmp/pyktrace-UID."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isabs(base) and os.path.isdir(base):
        return os.path.join(base, "pyktrace")
    return f"/tmp/pyktrace-{os.getuid()}"


def ensure_runtime() -> Runtime:
    """Create (0700) or check the runtime directory; it must be ours and private."""
    path = runtime_dir()
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeError_(f"{path}: not a directory")
    if st.st_uid != os.getuid():
        raise RuntimeError_(f"{path}: owned by uid {st.st_uid}, not by you")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return Runtime(path)

"""The per-user runtime directory: control socket, engine lock, pid file and log.

The directory is opened once (O_DIRECTORY|O_NOFOLLOW, checked with fstat)
and every name in it is made relative to that descriptor: openat-style
calls with dir_fd=, and bind/connect through /proc/self/fd/N/NAME. A path
another user can swap (a parent directory they own) is never walked twice,
so a root engine cannot be led into truncating, appending to or chmod-ing a
file of someone else's choosing. docs/DESIGN.md ("Runtime directory")
gives the rules for choosing the directory.
"""

from __future__ import annotations

import errno as E
import os
import stat

from ktrace_cli.value import Value

NAME = "pyktrace"
SOCKET, LOCK, LOG, PIDFILE = "engine.sock", "engine.lock", "engine.log", "engine.pid"
SHARED_TMP = "/tmp"
ROOT_RUN = "/run"  # root's own: nobody else can create names in it
USER_RUN = "/run/user"  # systemd's per-user directories
GROUP_OR_OTHER_WRITE = 0o022
PRIVATE = 0o700
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class RuntimeError_(OSError):
    """No runtime directory can be used safely."""


class Runtime(Value):
    """An open runtime directory; `dir` is its path, for messages only."""

    __slots__ = ("dir", "fd")
    dir: str
    fd: int

    def __init__(self, dir: str, fd: int) -> None:
        self._set(dir=dir, fd=fd)

    def name(self, leaf: str) -> str:
        """A path to `leaf` through the open descriptor, for bind(2) and connect(2)."""
        return f"/proc/self/fd/{self.fd}/{leaf}"

    def shown(self, leaf: str) -> str:
        return os.path.join(self.dir, leaf)

    @property
    def socket(self) -> str:
        return self.shown(SOCKET)

    @property
    def log(self) -> str:
        return self.shown(LOG)

    def open(self, leaf: str, flags: int, mode: int = 0o600) -> int:
        """openat(fd, leaf): never follows a symlink, never leaves the directory."""
        return os.open(leaf, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=self.fd)

    def stat(self, leaf: str) -> os.stat_result:
        return os.stat(leaf, dir_fd=self.fd, follow_symlinks=False)

    def unlink(self, leaf: str) -> None:
        try:
            os.unlink(leaf, dir_fd=self.fd)
        except FileNotFoundError:
            pass

    def removed(self) -> bool:
        """Whether the directory was unlinked (a tmp cleaner, a user) while open."""
        try:
            return os.fstat(self.fd).st_nlink == 0
        except OSError:
            return True

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def _open_dir(path: str, dir_fd: int | None = None) -> int:
    return os.open(path, _DIR_FLAGS, dir_fd=dir_fd)


def _private_base(path: str) -> int:
    """A directory the caller owns and nobody else may write (the XDG rule), opened."""
    if not os.path.isabs(path):
        raise RuntimeError_(E.EINVAL, f"{path}: not an absolute path")
    fd = _open_dir(path)
    st = os.fstat(fd)
    if st.st_uid != os.getuid() or st.st_mode & GROUP_OR_OTHER_WRITE:
        os.close(fd)
        raise RuntimeError_(E.EPERM, f"{path}: not private to uid {os.getuid()}")
    return fd


def own_subdir(base_fd: int, base: str, leaf: str) -> Runtime:
    """`leaf` in the open `base`, created 0700 if absent; it must be a directory of ours."""
    try:
        os.mkdir(leaf, PRIVATE, dir_fd=base_fd)
    except FileExistsError:
        pass
    path = os.path.join(base, leaf)
    try:
        fd = _open_dir(leaf, base_fd)
    except OSError as e:  # ELOOP, ENOTDIR: a symlink, file or FIFO took the name
        raise RuntimeError_(e.errno or E.ENOTDIR, f"{path}: not a directory") from None
    st = os.fstat(fd)
    if st.st_uid != os.getuid():
        os.close(fd)
        raise RuntimeError_(E.EPERM, f"{path}: owned by uid {st.st_uid}, not by you")
    if stat.S_IMODE(st.st_mode) != PRIVATE:
        os.fchmod(fd, PRIVATE)  # through the descriptor: it is ours, whatever the path is now
    return Runtime(path, fd)


def _in_private(base: str) -> Runtime:
    fd = _private_base(base)
    try:
        return own_subdir(fd, base, NAME)
    finally:
        os.close(fd)


def _in_shared_tmp() -> Runtime:
    fd = _open_dir(SHARED_TMP)
    try:
        return own_subdir(fd, SHARED_TMP, f"{NAME}-{os.getuid()}")
    finally:
        os.close(fd)


def _in_home() -> Runtime:
    home = os.environ.get("HOME") or ""
    fd = _private_base(home)
    try:
        cache = own_subdir(fd, home, ".cache")
    finally:
        os.close(fd)
    try:
        return own_subdir(cache.fd, cache.dir, NAME)
    finally:
        cache.close()


def candidates() -> list[tuple[str, object]]:
    """The places tried, in order: (what, how to open it)."""
    out: list[tuple[str, object]] = []
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        out.append(("$XDG_RUNTIME_DIR", lambda: _in_private(xdg)))
    if os.getuid() == 0:
        out.append((ROOT_RUN, lambda: _in_private(ROOT_RUN)))
    else:
        user_run = f"{USER_RUN}/{os.getuid()}"
        if user_run != xdg:
            out.append((user_run, lambda: _in_private(user_run)))
    out.append((SHARED_TMP, _in_shared_tmp))
    out.append(("$HOME", _in_home))
    return out


def open_runtime() -> Runtime:
    """The first usable place of candidates(); RuntimeError_ naming each refusal if none is."""
    why = []
    for what, opener in candidates():
        try:
            return opener()  # type: ignore[operator]
        except OSError as e:
            why.append(f"{what}: {e.strerror or e}")
    raise RuntimeError_(E.EACCES, "no private runtime directory (" + "; ".join(why) + ")")


def ensure_runtime() -> Runtime:
    """Kept for callers of the old name."""
    return open_runtime()

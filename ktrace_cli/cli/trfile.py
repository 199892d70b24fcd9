"""The trace file of a pyktrace request: ktrace(1)'s checks, made safe for Linux habits.

FreeBSD's ktrace(1) unlinks the old file and creates a new one before it
calls ktrace(2). Here nothing the user did not mean is destroyed: an
existing path that is a device, a FIFO, a socket or a directory is refused
and left alone, and a new file is created beside the old one under a
temporary name, for the engine to rename over it only once it has accepted
the request, so a refused request leaves the old trace as it was.
"""

from __future__ import annotations

import errno as E
import os
import stat
import sys

TEMP_PREFIX = ".pyktrace-"  # a new trace file's name until the engine accepts the request
TEMP_ATTEMPTS = 100


class Refused(Exception):
    """A one-line diagnostic about the trace file (pyktrace exits 1 after it)."""


class TraceTarget:
    """The trace file of a set request, and how to undo it if the request fails.

    A new file is created beside PATH under a temporary name; the engine
    renames it over PATH once it has accepted the request (it does so while
    this process waits for the answer, so a command's trace shows no rename).
    A refused request removes the temporary file and leaves PATH as it was.
    With -a the file itself is opened; one that -a created is removed again.
    """

    def __init__(self, path: str, fd: int, dirfd: int = -1, temp: str = "", base: str = "",
                 created: bool = False) -> None:  # fmt: skip
        self.path, self.fd, self.dirfd = path, fd, dirfd
        self.temp, self.base, self.created = temp, base, created

    def rename_request(self) -> list[object] | None:
        """What the engine needs to rename the file: our directory descriptor and both names."""
        return [self.dirfd, self.temp, self.base] if self.temp else None

    def abandon(self) -> None:
        """The request failed: remove what we created, nothing else."""
        try:
            if self.temp:
                os.unlink(self.temp, dir_fd=self.dirfd)
            elif self.created:
                st, now = os.fstat(self.fd), os.lstat(self.path)
                if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
                    os.unlink(self.path)
        except OSError:
            pass
        self.close()

    def settle(self, reply: dict[str, object]) -> None:
        """The request succeeded: make sure the file has its name (an older engine did not rename)."""
        if not self.temp or reply.get("renamed"):
            return
        err = reply.get("rename_error")
        if err is None:
            try:
                os.rename(self.temp, self.base, src_dir_fd=self.dirfd, dst_dir_fd=self.dirfd)
                return
            except OSError as e:
                err = e.errno
        code = err if isinstance(err, int) and err > 0 else E.EIO
        where = os.path.join(os.path.dirname(self.path), self.temp)
        sys.stderr.write(f"pyktrace: warning: {self.path}: {os.strerror(code)}; "
                         f"the trace goes to {where}\n")  # fmt: skip

    def close(self) -> None:
        for fd in (self.fd, self.dirfd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.dirfd = -1


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise Refused(f"{path}: {os.strerror(e.errno or 0)}") from None


def _plain(st: os.stat_result | None) -> bool:
    """Absent, a regular file, or a symbolic link (replaced, never followed)."""
    return st is None or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)


def open_trace_file(path: str, append: bool) -> TraceTarget:
    """Open the trace file for a set request with ktrace(1)'s rules; Fatal with its messages.

    Unlike FreeBSD's ktrace(1), which unlinks PATH first whatever it is, an
    existing PATH that is not a regular file or a symbolic link (a device,
    a FIFO, a socket, a directory) is refused and left alone.
    """
    if not path:
        raise Refused(f"{path}: {os.strerror(E.ENOENT)}")
    st = _lstat(path)
    if append:
        return _open_append(path, st)
    if not _plain(st):
        raise Refused(f"{path} not regular file")
    head, base = os.path.split(path)
    if base in ("", ".", ".."):
        raise Refused(f"{path}: {os.strerror(E.EISDIR)}")
    try:
        dirfd = os.open(head or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise Refused(f"{path}: {os.strerror(e.errno or 0)}") from None
    try:
        if st is not None and os.geteuid() != 0 and st.st_uid != os.geteuid():
            # A sticky directory (/tmp) lets only the owner replace a file,
            # the case where FreeBSD's unlink fails: say so before tracing.
            dst = os.fstat(dirfd)
            if dst.st_mode & stat.S_ISVTX and dst.st_uid != os.geteuid():
                raise Refused(f"unlink {path}: {os.strerror(E.EPERM)}")
        flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        old = os.umask(0o077)
        try:
            for _ in range(TEMP_ATTEMPTS):
                temp = TEMP_PREFIX + os.urandom(6).hex()
                try:
                    fd = os.open(temp, flags, 0o666, dir_fd=dirfd)
                except FileExistsError:
                    continue
                except OSError as e:
                    raise Refused(f"{path}: {os.strerror(e.errno or 0)}") from None
                return TraceTarget(path, fd, dirfd, temp, base)
        finally:
            os.umask(old)
        raise Refused(f"{path}: {os.strerror(E.EEXIST)}")
    except BaseException:
        os.close(dirfd)
        raise


def _open_append(path: str, st: os.stat_result | None) -> TraceTarget:
    """-a: ktrace(1)'s owner and type checks, without opening a device or a FIFO to check it."""
    if not _plain(st):
        assert st is not None
        if st.st_uid != os.getuid():
            raise Refused(f"refuse to append to {path} not owned by you")
        raise Refused(f"{path} not regular file")
    base = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    old = os.umask(0o077)
    created = False
    try:
        try:
            if st is None:
                fd = os.open(path, base | os.O_CREAT | os.O_EXCL, 0o666)
                created = True
            else:
                fd = os.open(path, base)
        except FileExistsError:
            fd = os.open(path, base | os.O_CREAT, 0o666)
    except OSError as e:
        raise Refused(f"{path}: {os.strerror(e.errno or 0)}") from None
    finally:
        os.umask(old)
    target = TraceTarget(path, fd, created=created)
    try:
        fst = os.fstat(fd)
    except OSError:
        fst = None
    if fst is None or fst.st_uid != os.getuid():
        target.abandon()
        raise Refused(f"refuse to append to {path} not owned by you")
    if not stat.S_ISREG(fst.st_mode):
        target.abandon()
        raise Refused(f"{path} not regular file")
    return target


def open_clear_file(path: str) -> int:
    """-c -f: a handle on the file to name it to the engine, never opening its contents.

    O_PATH neither blocks on a FIFO nor has a device's open side effects;
    anything but a regular file is refused with EACCES, as FreeBSD's
    ktrace(2) refuses it.
    """
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise Refused(f"{path}: {os.strerror(e.errno or 0)}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        err = E.ELOOP if stat.S_ISLNK(mode) else E.EACCES
        raise Refused(f"{path}: {os.strerror(err)}")
    return fd

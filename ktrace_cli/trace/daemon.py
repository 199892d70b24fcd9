"""What the bpf engine's daemon shares with the ptrace engine's: the double fork, the name in
ps (trace/detach.py), and a logging handler appending to the runtime directory's log.

The ptrace engine itself (trace/ptrace_daemon.py) logs without the logging
package (trace/englog.py); the bpf daemon configures logging with this handler.
"""

from __future__ import annotations

import errno as E
import logging
import os
import stat

from ktrace_cli.trace.detach import close_other_fds, set_title, settle_daemon, spawn_daemon
from ktrace_cli.trace.runtime import LOG, Runtime

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["RuntimeLogHandler", "close_other_fds", "set_title", "settle_daemon", "spawn_daemon"]


class RuntimeLogHandler(logging.StreamHandler):
    """Appends to engine.log, opened relative to the runtime directory; reopened if removed."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.ident: tuple[int, int] | None = None
        super().__init__(self._open())

    def _open(self) -> TextIO:
        fd = self.rt.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise OSError(E.EINVAL, f"{self.rt.log}: not a regular file")
        self.ident = (st.st_dev, st.st_ino)
        return os.fdopen(fd, "a", encoding="utf-8", errors="replace")

    def moved(self, rt: Runtime) -> None:
        self.rt = rt
        self.ident = (-1, -1)  # matches nothing: the next line opens the log in `rt`

    def emit(self, record: logging.LogRecord) -> None:
        try:
            st = self.rt.stat(LOG)
            current: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            current = None
        if current != self.ident:
            try:
                stream = self._open()
            except OSError:
                stream = None
            if stream is not None:
                old = self.setStream(stream)
                if old is not None:
                    old.close()
        super().emit(record)

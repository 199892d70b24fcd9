"""The engine's log, without the logging package.

logging (with traceback, string, weakref and textwrap behind it) was a
third of what the ptrace engine imports before it can answer its first
client. The engine's modules write `log.info/warning/error/exception`
with %-style arguments, as with logging. The ptrace daemon sends the lines
to a RuntimeLog (engine.log in the runtime directory, in the format its
logging handler wrote). With no RuntimeLog installed (the bpf daemon,
which configures logging with a handler writing through a RuntimeLog, and
the unit tests) the messages go to logging's "pyktrace.engine" logger.
"""

from __future__ import annotations

import errno as E
import os
import stat
import sys
import threading
import time

from ktrace_cli.trace.runtime import LOG, Runtime

LOGGER = "pyktrace.engine"  # logging's name for these messages where no RuntimeLog is installed
MS_PER_S = 1000


def line(name: str, message: str, now: float) -> str:
    """One line as logging's "%(asctime)s NAME[%(process)d]: %(message)s" wrote it at `now`."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    return f"{stamp},{int((now - int(now)) * MS_PER_S):03d} {name}[{os.getpid()}]: {message}\n"


class RuntimeLog:
    """Appends lines to engine.log, opened relative to the runtime directory; reopened if removed."""

    def __init__(self, rt: Runtime, name: str) -> None:
        self.rt = rt
        self.name = name  # the program name in each line: pyktrace-engine[pid]
        self.lock = threading.Lock()
        self.fd = -1
        self.ident: tuple[int, int] | None = None
        self._open()

    def _open(self) -> None:
        fd = self.rt.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise OSError(E.EINVAL, f"{self.rt.log}: not a regular file")
        if self.fd >= 0:
            os.close(self.fd)
        self.fd, self.ident = fd, (st.st_dev, st.st_ino)

    def moved(self, rt: Runtime) -> None:
        with self.lock:
            self.rt = rt
            self.ident = (-1, -1)  # matches nothing: the next line opens the log in `rt`

    def write(self, message: str) -> None:
        text = line(self.name, message, time.time())
        with self.lock:
            try:
                st = self.rt.stat(LOG)
                current: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except OSError:
                current = None
            try:
                if current != self.ident:
                    self._open()
                os.write(self.fd, text.encode("utf-8", "replace"))
            except OSError:
                pass  # as logging's handler: a log that cannot be written never stops the engine

    def close(self) -> None:
        with self.lock:
            if self.fd >= 0:
                os.close(self.fd)
            self.fd = -1


class EngineLog:
    """logging.Logger's four methods the engine uses, to the installed RuntimeLog or to logging."""

    def __init__(self) -> None:
        self.sink: RuntimeLog | None = None

    def _emit(self, level: str, msg: str, args: tuple[object, ...], exc: bool = False) -> None:
        sink = self.sink
        if sink is None:
            import logging  # lazy: start-up (only where no RuntimeLog is installed)

            getattr(logging.getLogger(LOGGER), level)(msg, *args, exc_info=exc)
            return
        text = msg % args if args else msg
        if exc:
            text += _traceback()
        sink.write(text)

    def info(self, msg: str, *args: object) -> None:
        self._emit("info", msg, args)

    def warning(self, msg: str, *args: object) -> None:
        self._emit("warning", msg, args)

    def error(self, msg: str, *args: object) -> None:
        self._emit("error", msg, args)

    def exception(self, msg: str, *args: object) -> None:
        """An error with the traceback of the exception being handled."""
        self._emit("error", msg, args, exc=True)


def _traceback() -> str:
    """The exception being handled, as logging appends it; its last line alone if traceback
    cannot be loaded (out of descriptors, the very failure being logged)."""
    kind, value, tb = sys.exc_info()
    if kind is None:
        return ""
    try:
        import traceback  # lazy: start-up (only when an exception is logged)

        return "\n" + "".join(traceback.format_exception(kind, value, tb)).rstrip("\n")
    except Exception:
        return f"\n{kind.__name__}: {value}"
    finally:
        del tb  # no cycle through this frame


log = EngineLog()

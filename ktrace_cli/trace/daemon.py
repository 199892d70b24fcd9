"""What the bpf engine's daemon shares with the ptrace engine's: the double fork, the name in
ps (trace/detach.py), and a logging handler appending to the runtime directory's log.

The ptrace engine itself (trace/ptrace_daemon.py) logs without the logging
package (trace/englog.py); the bpf daemon configures logging with this handler.
"""

from __future__ import annotations

import logging

from ktrace_cli.trace.detach import close_other_fds, set_title, settle_daemon, spawn_daemon
from ktrace_cli.trace.englog import RuntimeLog
from ktrace_cli.trace.runtime import Runtime

__all__ = ["RuntimeLogHandler", "close_other_fds", "set_title", "settle_daemon", "spawn_daemon"]


class RuntimeLogHandler(logging.Handler):
    """logging's records (the bpf daemon's) written by englog.RuntimeLog: one writer of
    engine.log for both engines, opened relative to the runtime directory, reopened if
    removed, lines in one format ("TIME NAME[PID]: MESSAGE")."""

    def __init__(self, rt: Runtime, name: str) -> None:
        super().__init__()
        self.sink = RuntimeLog(rt, name)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:
            self.handleError(record)
            return
        self.sink.write(text)

    def close(self) -> None:
        self.sink.close()
        super().close()

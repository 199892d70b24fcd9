"""The exit statuses both commands use (kdump(1) and ktrace(1) exit 0 or 1; 130 after ^C, as a shell reports SIGINT)."""

from __future__ import annotations


class ExitStatus:
    """Plain ints, not an enum.IntEnum: enum costs both commands a few ms of start-up to import."""

    OK = 0
    ERROR = 1
    INTERRUPTED = 130

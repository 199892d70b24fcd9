"""A progress bar on stderr for long decodes.

Shown only when stderr is a terminal and the input is a regular file larger
than PROGRESS_MIN_BYTES: a pipe has no size to measure against, and a small
file is done before a bar would be worth drawing.  The bar follows the
file's read offset, checked every PROGRESS_EVERY records.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from typing import IO, Any

PROGRESS_MIN_BYTES = 8 * 1024 * 1024
PROGRESS_EVERY = 8192  # records between two looks at the offset
PROGRESS_SKIPS = 16  # quick-path runs (skip_to calls) between two looks at the offset


def wants_progress(stream: Any, stderr: IO[str] | None = None) -> int:
    """The file's size when a bar is due, else 0."""
    err = stderr if stderr is not None else sys.stderr
    try:
        if not err.isatty():
            return 0
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return 0
    if not stat.S_ISREG(st.st_mode) or st.st_size <= PROGRESS_MIN_BYTES:
        return 0
    return st.st_size


class ProgressReader:
    """A reader's records with a rich bar advancing by the stream's offset."""

    def __init__(self, reader: Any, stream: Any, size: int, label: str, stderr: IO[str] | None = None) -> None:
        self.reader = reader
        self.stream = stream
        self.size = size
        self.label = label
        self.stderr = stderr if stderr is not None else sys.stderr
        self._skips = 0
        self._look: Any = None  # moves the bar to the stream's offset, while it is drawn

    @property
    def unread(self) -> Any:
        """The reader's, for select_calls' quick path (AttributeError when it has none: no quick path)."""
        return self.reader.unread

    def skip_to(self, offset: int) -> None:
        # Records the quick path frames itself never pass through __iter__:
        # the bar follows its runs too.
        self.reader.skip_to(offset)
        self._skips += 1
        if self._skips % PROGRESS_SKIPS == 0 and self._look is not None:
            self._look()

    @property
    def arch(self) -> Any:
        return getattr(self.reader, "arch", None)

    def __iter__(self) -> Iterator[Any]:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        console = Console(file=self.stderr, force_terminal=True)
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(self.label, total=self.size)
            n = 0
            tell = self.stream.tell

            def look() -> None:
                bar.update(task, completed=tell())

            self._look = look
            try:
                for record in self.reader:
                    yield record
                    n += 1
                    if n % PROGRESS_EVERY == 0:
                        look()
            finally:
                self._look = None
            bar.update(task, completed=self.size)


def with_progress(reader: Any, stream: Any, label: str, stack: Any = None) -> Any:
    """`reader`, or a ProgressReader over it when a bar is due."""
    size = wants_progress(stream)
    if not size:
        return reader
    return ProgressReader(reader, stream, size, os.path.basename(label) or label)

"""The download progress bar: size, speed and time left, on stderr when it is a terminal.

With `rich` (the `cli` extra) it is rich's bar, refreshed from the download loop itself (no
refresh thread: the display never reads state another thread is changing). Without rich, one
plain line rewritten with `\\r`. Either way nothing is drawn when stderr is not a terminal.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from ._render import load_rich

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["DownloadProgress", "format_size"]

# Redraws per second, at most.
_REFRESH_INTERVAL = 0.1


def format_size(n: float) -> str:
    """1536 -> '1.5 kB' (decimal units, as rich and curl print them)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


class DownloadProgress:
    """A context manager drawing one download's progress; `advance()` after each chunk."""

    def __init__(self, name: str, total: int | None, *, stream: TextIO | None = None) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._visible = self._stream.isatty()
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> DownloadProgress:
        if self._visible and load_rich():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self._stream),
                auto_refresh=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.name, total=self.total)
        return self

    def advance(self, n: int) -> None:
        """Count `n` more bytes; redraw at most ten times a second."""
        self.done += n
        now = time.monotonic()
        if now - self._last_draw >= _REFRESH_INTERVAL:
            self._last_draw = now
            self._draw()

    def _draw(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self.done, refresh=True)
        elif self._visible:
            self._stream.write("\r" + self._plain_line())
            self._stream.flush()

    def _plain_line(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        speed = self.done / elapsed
        line = f"{self.name}: {format_size(self.done)}"
        if self.total:
            line += f" of {format_size(self.total)} ({100 * self.done // self.total}%)"
        line += f", {format_size(speed)}/s"
        if self.total and speed > 0:
            line += f", ETA {max(self.total - self.done, 0) / speed:.0f} s"
        return line

    def __exit__(self, *exc_info: object) -> None:
        self._draw()
        if self._progress is not None:
            self._progress.stop()
        elif self._visible:
            self._stream.write("\n")
            self._stream.flush()

    def summary(self) -> str:
        """`Saved NAME: 1.2 MB in 0.3 s (4.0 MB/s)`."""
        elapsed = max(time.monotonic() - self._started, 1e-6)
        return (
            f"Saved {self.name}: {format_size(self.done)} in {elapsed:.1f} s "
            f"({format_size(self.done / elapsed)}/s)"
        )

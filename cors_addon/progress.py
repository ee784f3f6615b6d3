"""A progress bar on stderr for long audits: only on a terminal, never with --quiet."""

from __future__ import annotations

import sys
import time
from typing import TextIO

MIN_EXCHANGES = 20_000
"""A single recording shorter than this is done before a bar would help."""
MIN_FILES = 10


class Progress:
    """``update(done, total)`` redraws at most ten times a second; ``clear()`` before
    anything else is printed to stderr, and at the end."""

    def __init__(self, label: str, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and _is_tty(self.stream)
        self.label = label
        self._shown = False
        self._last = 0.0
        self._started = time.monotonic()

    def update(self, done: int, total: int, unit: str = "") -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = int(width * min(done, total) / total)
        bar = "█" * filled + "░" * (width - filled)
        self.stream.write(f"\r\033[K{self.label} {bar} {100 * done // total:3d}% ({done:,}/{total:,}{unit})")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

"""The low-speed limit: a transfer that stays too slow for too long is given up. Pure.

A read timeout alone does not catch a server that trickles one byte a second: every byte
resets it. Like curl's `--speed-limit`/`--speed-time`, each window of `window` seconds must
bring at least `limit * window` bytes; the check runs whenever bytes arrive (a server that
sends nothing at all is caught by the read timeout instead).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class LowSpeed:
    """Tracks one body's pace. `limit` bytes/s over `window` s; `limit == 0` turns it off."""

    limit: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _start: float = field(init=False, default=0.0)
    _bytes: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._start = self.clock()

    def too_slow(self, received: int) -> bool:
        """Count `received` more bytes; whether the window that just closed fell short."""
        self._bytes += received
        now = self.clock()
        if self.limit <= 0 or now - self._start < self.window:
            return False
        short = self._bytes < self.limit * (now - self._start)
        self._start, self._bytes = now, 0
        return short

    def describe(self) -> str:
        """The limit, for error messages."""
        return f"fewer than {self.limit} bytes/s for {self.window:g} s"

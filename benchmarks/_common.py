"""Helpers shared by the benchmark scripts: RSS sampling, sparse files, summary statistics."""

from __future__ import annotations

import os
import statistics
import threading
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1024 * 1024
GiB = 1024 * MiB


def rss_bytes() -> int:
    """This process's resident set size now, from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class RssSampler:
    """Samples RSS every `interval` seconds on a thread; `peak_delta` is over the start."""

    interval: float = 0.01
    start: int = 0
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.start = self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def peak_delta(self) -> int:
        """Peak RSS minus RSS at entry, in bytes."""
        return self.peak - self.start


def random_file(path: Path, size: int, seed: int = 0) -> Path:
    """Write `size` bytes of incompressible, deterministic data (1 MiB blocks)."""
    block = bytes((seed * 7919 + i * 2654435761) % 251 for i in range(MiB))
    with path.open("wb") as f:
        remaining = size
        while remaining:
            step = min(remaining, MiB)
            f.write(block[:step])
            remaining -= step
    return path


def median_spread(values: list[float]) -> tuple[float, float]:
    """Median and (max - min) of `values`."""
    return statistics.median(values), (max(values) - min(values)) if values else 0.0

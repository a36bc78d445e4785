"""Progress events, delivered to a caller's callback on the event loop thread."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from .types import AssetRef

logger = logging.getLogger("modelfetch")


class ProgressKind(enum.Enum):
    """What happened to a transfer."""

    WAITING = "waiting"
    """Another process is downloading the same file; this call waits for it (then STARTED, or
    FINISHED at once when the other process's copy is the file)."""
    STARTED = "started"
    ADVANCED = "advanced"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One step of one file's transfer.

    Attributes:
        kind: waiting (for another process), started, advanced, finished or failed.
        ref: the file.
        done: bytes transferred so far.
        total: the file's size, when known.
        snapshot_done: during a snapshot (or `fetch_safetensors`), bytes of all its files
            transferred or already cached so far; None outside one.
        snapshot_total: during a snapshot, the size of all its files.
    """

    kind: ProgressKind
    ref: AssetRef
    done: int
    total: int | None
    snapshot_done: int | None = None
    snapshot_total: int | None = None


class SnapshotProgress:
    """Wraps a callback so every file event also carries snapshot-wide byte totals."""

    def __init__(self, callback: ProgressCallback, sizes: dict[str, int]) -> None:
        self._callback = callback
        self._sizes = sizes
        self._done: dict[str, int] = {}
        self.total = sum(sizes.values())

    def __call__(self, event: ProgressEvent) -> None:
        """Record the file's progress and forward the event with the totals filled in."""
        name = event.ref.filename
        self._done[name] = event.done if event.kind is not ProgressKind.FAILED else self._done.get(name, 0)
        emit(self._callback, replace(event, snapshot_done=self.done, snapshot_total=self.total))

    @property
    def done(self) -> int:
        """Bytes done across the snapshot."""
        return sum(self._done.values())

    def file_done(self, name: str) -> None:
        """Count a file that needed no transfer (cached) as done."""
        self._done[name] = self._sizes.get(name, 0)


ProgressCallback = Callable[[ProgressEvent], None]
"""Called with each `ProgressEvent`, on the event loop's thread. It must not block."""


def emit(callback: ProgressCallback | None, event: ProgressEvent) -> None:
    """Call `callback` with `event`; a failing callback is logged, never fatal to the fetch."""
    if callback is None:
        return
    try:
        callback(event)
    except Exception:
        logger.exception("progress callback failed for %s", event.ref)


_PROGRESS_BYTES = 1024 * 1024
_PROGRESS_SECONDS = 0.1


class FileProgress:
    """Rate-limited progress events for one file (at most every 1 MiB or 100 ms)."""

    def __init__(self, ref: AssetRef, total: int | None, callback: ProgressCallback | None) -> None:
        self.ref, self.total, self.callback = ref, total, callback
        self.done = 0
        self._sent_bytes = 0
        self._sent_at = 0.0

    def send(self, kind: ProgressKind) -> None:
        """Send an event of `kind` now."""
        self._sent_bytes, self._sent_at = self.done, time.monotonic()
        emit(self.callback, ProgressEvent(kind, self.ref, self.done, self.total))

    def advance(self, n: int) -> None:
        """Count `n` more bytes; send ADVANCED if 1 MiB or 100 ms passed since the last event."""
        self.done += n
        if self.callback is not None and (
            self.done - self._sent_bytes >= _PROGRESS_BYTES
            or time.monotonic() - self._sent_at >= _PROGRESS_SECONDS
        ):
            self.send(ProgressKind.ADVANCED)

"""Progress events, delivered to a caller's callback on the event loop thread."""

from __future__ import annotations

import enum
import logging
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

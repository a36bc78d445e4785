"""Progress of a transfer that runs in a worker thread, relayed to its event loop.

A worker thread cannot call the caller's progress callback itself (callbacks run on the
loop), nor learn on its own that the caller has gone. `TransferWatch` does both: every
report first checks that the caller still waits (raising the loop's cancellation
exception inside the thread, so the transfer unwinds), then forwards the event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import anyio.from_thread

from .progress import ProgressCallback, ProgressEvent, ProgressKind, emit
from .types import AssetRef


@dataclass(slots=True)
class TransferWatch:
    """Per-transfer state shared between a worker thread and its host task.

    Attributes:
        check_stopped: raises in the worker thread once the caller is gone; by default,
            anyio's check that the task which started the thread was cancelled.
    """

    ref: AssetRef
    progress: ProgressCallback | None = None
    check_stopped: Callable[[], None] = field(default=anyio.from_thread.check_cancelled)
    transferred: bool = False
    done: int = 0
    total: int | None = None

    def started(self, total: int | None, initial: int) -> None:
        """A body transfer began (called in the worker thread)."""
        self.check_stopped()
        self.transferred = True
        self.total, self.done = total, initial
        self._send(ProgressKind.STARTED)

    def advanced(self, n: int) -> None:
        """`n` more bytes arrived (called in the worker thread)."""
        self.check_stopped()
        self.done += n
        self._send(ProgressKind.ADVANCED)

    def finish(self, kind: ProgressKind) -> None:
        """The transfer ended (called on the event loop); silent if no body was transferred."""
        if self.transferred:
            emit(self.progress, ProgressEvent(kind, self.ref, self.done, self.total))

    def _send(self, kind: ProgressKind) -> None:
        if self.progress is not None:
            event = ProgressEvent(kind, self.ref, self.done, self.total)
            anyio.from_thread.run_sync(emit, self.progress, event)

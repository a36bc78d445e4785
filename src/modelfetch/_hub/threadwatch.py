"""The bridge between a download running in a worker thread and its event loop.

huggingface_hub reports progress by calling methods of the `tqdm_class` it is given. Ours,
`BridgeTqdm`, renders nothing: on every call it checks whether the task that started
the thread was cancelled (raising the loop's cancellation exception inside the thread, so
the download unwinds and huggingface_hub deletes its temporary file) and forwards the
progress to the caller's callback on the event loop.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
from tqdm import tqdm

from .._core.progress import ProgressCallback, ProgressEvent, ProgressKind, emit
from .._core.types import AssetRef
from . import guard as hubguard

_CURRENT: contextvars.ContextVar[TransferWatch] = contextvars.ContextVar("modelfetch_transfer_watch")


@dataclass(slots=True)
class TransferWatch:
    """Per-transfer state shared between a worker thread and its host task."""

    ref: AssetRef
    progress: ProgressCallback | None = None
    transferred: bool = False
    done: int = 0
    total: int | None = None

    def started(self, total: int | None, initial: int) -> None:
        """A body transfer began (called in the worker thread)."""
        _check_stopped()
        self.transferred = True
        self.total, self.done = total, initial
        self._send(ProgressKind.STARTED)

    def advanced(self, n: int) -> None:
        """`n` more bytes arrived (called in the worker thread)."""
        _check_stopped()
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


def _check_stopped() -> None:
    """Unwind the worker thread if its caller has gone (a guarded HubSource call) or was cancelled."""
    guard = hubguard.current()
    if guard is not None:
        guard.check_abandoned()
    else:
        anyio.from_thread.check_cancelled()


def run_watched(watch: TransferWatch, func: Any, *args: Any) -> Any:
    """Call `func(*args)` in this worker thread with `watch` visible to `BridgeTqdm`."""
    token = _CURRENT.set(watch)
    try:
        return func(*args)
    finally:
        _CURRENT.reset(token)


class BridgeTqdm(tqdm):  # type: ignore[misc]
    """A silent tqdm that relays progress and cancellation (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        kwargs.pop("name", None)
        super().__init__(*args, **kwargs)
        self._watch = _CURRENT.get(None)
        if self._watch is not None:
            self._watch.started(kwargs.get("total"), int(kwargs.get("initial") or 0))

    def update(self, n: float | None = 1) -> bool | None:
        """Relay `n` bytes of progress; raise if the host task was cancelled."""
        if self._watch is not None and n:
            self._watch.advanced(int(n))
        return None

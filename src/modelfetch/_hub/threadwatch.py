"""The bridge between huggingface_hub running in a worker thread and its event loop.

huggingface_hub reports progress by calling methods of the `tqdm_class` it is given. Ours,
`BridgeTqdm`, renders nothing: it hands every call to the `TransferWatch` of the current
download (`run_watched`), which checks that the caller still waits (raising inside the
thread, so the download unwinds and huggingface_hub deletes its temporary file) and
forwards the progress to the caller's callback on the event loop.
"""

from __future__ import annotations

import contextvars
from typing import Any

import anyio.from_thread
from tqdm import tqdm

from .._core.threadprogress import TransferWatch
from . import guard as hubguard

_CURRENT: contextvars.ContextVar[TransferWatch] = contextvars.ContextVar("modelfetch_transfer_watch")


def check_stopped() -> None:
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

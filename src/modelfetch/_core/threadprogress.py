"""Progress of a transfer that runs in a worker thread, relayed to its event loop.

A worker thread cannot call the caller's progress callback itself (callbacks run on the
loop), nor learn on its own that the caller has gone. `TransferWatch` does both: every
report first checks that the caller still waits (raising the loop's cancellation
exception inside the thread, so the transfer unwinds), then posts the event to the loop
without waiting for it to run (`loop_poster`): a download thread that waited for the loop
at every event would move at the loop's pace, and a snapshot of small files pays two such
round trips per file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio.from_thread

from .progress import ProgressCallback, ProgressEvent, ProgressKind, emit
from .service import running_backend
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
    post: Callable[..., None] | None = None

    def __post_init__(self) -> None:
        if self.progress is not None and self.post is None:
            self.post = loop_poster()

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
        if self.progress is not None and self.post is not None:
            event = ProgressEvent(kind, self.ref, self.done, self.total)
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening
                self.post(emit, self.progress, event)


def loop_poster() -> Callable[..., None]:
    """Call on the event loop: a function that runs `func(*args)` there soon, from any thread.

    It does not wait for `func` to run; calls run in the order they were posted (asyncio's
    `call_soon_threadsafe`, trio's `run_sync_soon`), and before the loop resumes a task
    woken by a later post, so a worker thread's last event precedes its result.
    """
    if running_backend() == "trio":
        import trio  # noqa: PLC0415 - only on trio

        token = trio.lowlevel.current_trio_token()

        def post(func: Callable[..., Any], *args: Any) -> None:
            try:
                token.run_sync_soon(func, *args)
            except trio.RunFinishedError as exc:
                raise RuntimeError("the trio run has finished") from exc

        return post
    loop = asyncio.get_running_loop()

    def post_to_loop(func: Callable[..., Any], *args: Any) -> None:
        loop.call_soon_threadsafe(func, *args)

    return post_to_loop

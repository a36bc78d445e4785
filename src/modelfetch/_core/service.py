"""Background work owned by a source, not by whichever caller happened to start it.

Structured concurrency says a task needs a host. When many callers share one transfer, no
caller can be that host: a cancelled caller must return at once while the transfer goes on
for the others. So a source that shares work (`CachedSource`) owns a `TaskHost`: work is
started there, outlives any one caller, and is cancelled and awaited by `TaskHost.aclose()`
(the source's `aclose`) — the ownership a task group gives, without needing the source to
be entered with `async with` (the per-event-loop default source is built lazily, from
synchronous code).

anyio has no public "system task", so each backend's own is used: a task of the running
asyncio loop (strongly referenced here until it ends), or a trio system task. Work given
to `spawn` must catch its own errors; only cancellation may leave it.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Awaitable, Callable

import anyio


def running_backend() -> str | None:
    """ "asyncio" or "trio" for the event loop running in this thread, else None."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
        else:
            return "trio"
    return None


class TaskHost:
    """Runs background tasks on the current event loop and cancels them on `aclose()`."""

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        self._tasks: set[object] = set()  # asyncio keeps only weak references to its tasks
        self._idle = anyio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._scopes)

    def spawn(self, work: Callable[[], Awaitable[None]]) -> anyio.CancelScope:
        """Start `work()` in the background; the returned scope cancels it.

        Must be called from a task of the event loop the host serves.
        """
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        if len(self._scopes) == 1:
            self._idle = anyio.Event()

        async def run() -> None:
            try:
                with scope:
                    await work()
            finally:
                self._scopes.discard(scope)
                if not self._scopes:
                    self._idle.set()

        if running_backend() == "trio":
            import trio  # noqa: PLC0415 - only on trio

            trio.lowlevel.spawn_system_task(run, name="modelfetch-flight", context=contextvars.copy_context())
        else:
            task = asyncio.get_running_loop().create_task(run(), name="modelfetch-flight")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return scope

    async def aclose(self) -> None:
        """Cancel every task still running and wait until they have all ended."""
        for scope in list(self._scopes):
            scope.cancel()
        await self._idle.wait()

"""Single flight: concurrent awaits of one key share one run of the work.

The work runs as a background task of the owner's `TaskHost` (see `modelfetch._core.service`),
so it belongs to the flight, not to any one waiter:

- any waiter that is cancelled (a cancel scope, `fail_after`, a task-group cancel) returns
  at once, whichever waiter started the work; the others keep waiting and get the result;
- when the last waiter leaves, the work is cancelled (and, through it, the source's
  transfer), and the key is freed for a fresh attempt;
- an error is raised in every waiter as its own copy, with its own traceback;
- closing the host cancels every flight still running.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio

from .._core.errors import FetchError
from .._core.progress import ProgressCallback, ProgressEvent, ProgressKind, emit
from .._core.service import TaskHost

T = TypeVar("T")


@dataclass(slots=True, eq=False)
class Flight(Generic[T]):
    """One in-flight run of the work and the tasks awaiting it."""

    done: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope | None = None
    result: T | None = None
    error: FetchError | None = None
    waiters: int = 0
    callbacks: list[ProgressCallback] = field(default_factory=list)
    last: ProgressEvent | None = None

    def emit(self, event: ProgressEvent) -> None:
        """Fan a progress event out to every waiter that asked for progress."""
        self.last = event
        for callback in list(self.callbacks):
            emit(callback, event)

    def join(self, callback: ProgressCallback) -> None:
        """Add a waiter's callback; one that joins mid-transfer first gets STARTED where it stands."""
        self.callbacks.append(callback)
        last = self.last
        if last is not None and last.kind in (ProgressKind.STARTED, ProgressKind.ADVANCED):
            emit(callback, ProgressEvent(ProgressKind.STARTED, last.ref, last.done, last.total))


class SingleFlight(Generic[T]):
    """Deduplicate concurrent work by key (see the module docstring).

    Args:
        host: where the work runs; flights of several `SingleFlight`s may share one host.
    """

    def __init__(self, host: TaskHost) -> None:
        self._host = host
        self._flights: dict[Hashable, Flight[T]] = {}
        self.joined = 0

    def __len__(self) -> int:
        return len(self._flights)

    async def run(
        self,
        key: Hashable,
        work: Callable[[ProgressCallback], Awaitable[T]],
        progress: ProgressCallback | None = None,
    ) -> T:
        """Run `work(progress_fanout)` for `key`, or join the run already in flight."""
        flight = self._flights.get(key)
        if flight is not None:
            self.joined += 1
        else:
            flight = self._flights[key] = Flight()
            flight.scope = self._host.spawn(lambda: self._drive(key, flight, work))
        await self._wait(key, flight, progress)
        return _outcome(key, flight)

    async def _drive(
        self, key: Hashable, flight: Flight[T], work: Callable[[ProgressCallback], Awaitable[T]]
    ) -> None:
        try:
            flight.result = await work(flight.emit)
        except FetchError as exc:
            flight.error = exc
        except Exception as exc:
            error = FetchError(f"{key}: the source raised an unexpected {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            flight.error = error
        finally:
            self._release(key, flight)
            flight.done.set()

    async def _wait(self, key: Hashable, flight: Flight[T], progress: ProgressCallback | None) -> None:
        flight.waiters += 1
        if progress is not None:
            flight.join(progress)
        try:
            await flight.done.wait()
        finally:
            flight.waiters -= 1
            if progress is not None:
                flight.callbacks.remove(progress)
            if flight.waiters == 0 and not flight.done.is_set():
                # The last waiter left before the end: nobody wants the result any more.
                assert flight.scope is not None
                flight.scope.cancel()
                self._release(key, flight)

    def _release(self, key: Hashable, flight: Flight[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]


def _outcome(key: Hashable, flight: Flight[T]) -> T:
    if flight.error is not None:
        raise _own_copy(flight.error) from flight.error.__cause__
    if flight.result is None:  # the host was closed under the flight
        raise FetchError(f"{key}: the source was closed while fetching; open a new one and retry.")
    return flight.result


def _own_copy(error: FetchError) -> FetchError:
    """A copy of `error` that shares no mutable state with it (so no traceback, no notes)."""
    mine = copy.copy(error)
    notes = getattr(error, "__notes__", None)
    if notes is not None:
        setattr(mine, "__notes__", list(notes))  # noqa: B010 - __notes__ is 3.11+ for mypy
    return mine

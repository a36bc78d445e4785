"""The overall deadline of one fetch or listing (`Settings.deadline`, `MODELFETCH_DEADLINE`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from .errors import SourceUnavailableError

_T = TypeVar("_T")


async def within_deadline(seconds: float | None, what: object, call: Callable[[], Awaitable[_T]]) -> _T:
    """`await call()`, given up with `SourceUnavailableError` after `seconds` (None: no limit)."""
    if seconds is None:
        return await call()
    with anyio.move_on_after(seconds) as scope:
        return await call()
    assert scope.cancelled_caught  # only our own deadline ends the scope without a result
    raise SourceUnavailableError(
        f"Fetching {what}: gave up after the overall deadline of {seconds:g} s (Settings.deadline, "
        "MODELFETCH_DEADLINE); raise it or retry when the server is faster."
    )

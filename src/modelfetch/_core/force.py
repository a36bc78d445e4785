"""`force_download=`: a flag the entry points set for the call and the Hub sources read.

It travels in a context variable (copied into the tasks and worker threads the call
starts), so the `ModelAssetSource` protocol keeps its signature: sources that do not
know the flag simply serve what they have.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_FORCE: ContextVar[bool] = ContextVar("modelfetch_force_download", default=False)


@contextlib.contextmanager
def forcing(on: bool) -> Iterator[None]:
    """Within the block (and what it starts), `force_requested()` is `on`."""
    token = _FORCE.set(on)
    try:
        yield
    finally:
        _FORCE.reset(token)


def force_requested() -> bool:
    """Whether the current call asked to download again even what is cached."""
    return _FORCE.get()

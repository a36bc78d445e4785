"""Progress events, delivered to a caller's callback on the event loop thread."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ._types import AssetRef

logger = logging.getLogger("modelfetch")


class ProgressKind(enum.Enum):
    """What happened to a transfer."""

    STARTED = "started"
    ADVANCED = "advanced"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One step of one file's transfer.

    Attributes:
        kind: started, advanced, finished or failed.
        ref: the file.
        done: bytes transferred so far.
        total: the file's size, when known.
    """

    kind: ProgressKind
    ref: AssetRef
    done: int
    total: int | None


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

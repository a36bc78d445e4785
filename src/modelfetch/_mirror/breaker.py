"""A circuit breaker: after a failure, skip a dependency for a while, and say so once. Pure.

The mirror uses it for its bucket: an outage sends fetches straight upstream for `pause`
seconds, with one warning when the outage starts and one note when the bucket is tried again.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class Verdict(enum.Enum):
    """What the breaker says about using the dependency now."""

    USE = "use"
    SKIP = "skip"  # in an outage
    RETRY = "retry"  # the first use after an outage: worth a note


@dataclass(slots=True)
class Breaker:
    """Tracks outages of one dependency.

    Attributes:
        pause: seconds to skip the dependency after a failure.
        clock: the time source (replaceable in tests).
    """

    pause: float
    clock: Callable[[], float] = time.monotonic
    _until: float = field(default=0.0, init=False)
    _tripped: bool = field(default=False, init=False)

    def check(self) -> Verdict:
        """Whether to use the dependency now (see `Verdict`)."""
        if self.clock() < self._until:
            return Verdict.SKIP
        if self._tripped:
            self._tripped = False
            return Verdict.RETRY
        return Verdict.USE

    def open(self) -> bool:
        """Whether an outage is being waited out now (no side effect, unlike `check`)."""
        return self.clock() < self._until

    def trip(self) -> bool:
        """Record a failure: skip the dependency for `pause` seconds. Whether an outage starts now."""
        self._until = self.clock() + self.pause
        starts = not self._tripped
        self._tripped = True
        return starts

"""Retry policy: exponential backoff with full jitter, bounded in attempts and total time. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .validate import check_positive_int, check_seconds


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before trying again.

    Attributes:
        attempts: tries in all (1 means no retry).
        base: the first backoff ceiling, in seconds; it doubles each attempt.
        cap: the largest backoff ceiling.
        total: give up once this many seconds have passed since the first try.
        max_retry_after: the longest `Retry-After` honoured; longer ones give up.
    """

    attempts: int = 6
    base: float = 0.25
    cap: float = 8.0
    total: float = 120.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        check_positive_int("RetryPolicy.attempts", self.attempts)
        for name in ("base", "cap", "max_retry_after"):
            check_seconds(f"RetryPolicy.{name}", getattr(self, name))
        check_seconds("RetryPolicy.total", self.total, allow_zero=False)

    def delay(
        self, attempt: int, elapsed: float, retry_after: float | None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to sleep before attempt `attempt + 1`, or None to give up.

        Args:
            attempt: how many tries have failed so far (1 after the first failure).
            elapsed: seconds since the first try started.
            retry_after: the server's `Retry-After`, if it sent one; honoured as a minimum.
            rng: randomness for the jitter (seeded in tests).
        """
        if attempt >= self.attempts:
            return None
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        wait = (rng or random).uniform(0, ceiling)
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            wait = max(wait, retry_after)
        if elapsed + wait > self.total:
            return None
        return wait

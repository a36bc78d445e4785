"""Retries: the policy (exponential backoff with full jitter, bounded in attempts and total
time; pure), the one `Transient` failure, and the one loop both Hub sources run."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import FetchError
from .validate import check_positive_int, check_seconds

_T = TypeVar("_T")
log = logging.getLogger("modelfetch.retry")


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


class Transient(Exception):  # a signal to the retry loop, never shown to a user
    """A failure another attempt may fix: a retryable status, a dropped, short or too slow body.

    Args:
        reason: what happened, for logs and for the error built when the loop gives up.
        final: the error to raise when the policy gives up (None: the caller's `give_up` builds one).
        retry_after: the server's `Retry-After`, in seconds, if it sent one.
    """

    def __init__(
        self, reason: str, final: FetchError | None = None, *, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.final = final
        self.retry_after = retry_after


async def retrying(
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]],
    once: Callable[[], Awaitable[_T]],
    *,
    transient: Callable[[Exception], Transient | None],
    give_up: Callable[[Transient, int, float], BaseException],
    after_failure: Callable[[], None] | None = None,
    what: object = "",
) -> _T:
    """Call `once` until it succeeds, backing off after transient failures per `policy`.

    `transient(exc)` says whether a foreign exception (a timeout, a dropped connection) is
    worth another attempt, as a `Transient`; a `Transient` raised by `once` always is. When
    the policy gives up, `give_up(failure, attempts, elapsed)` is raised, from the failure.
    """
    started, failures = time.monotonic(), 0
    while True:
        try:
            return await once()
        except Exception as exc:
            failure = exc if isinstance(exc, Transient) else transient(exc)
            if failure is None:
                raise
            cause: BaseException = exc
        failures += 1
        elapsed = time.monotonic() - started
        delay = policy.delay(failures, elapsed, failure.retry_after)
        if delay is None:
            raise give_up(failure, failures, elapsed) from cause
        log.debug("%s: %s; retrying in %.2f s", what, failure, delay)
        await sleep(delay)
        if after_failure is not None:
            after_failure()

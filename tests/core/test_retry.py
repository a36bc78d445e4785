"""The retry policy: bounded exponential backoff with jitter that honours Retry-After."""

from __future__ import annotations

import random

import pytest

from modelfetch import RetryPolicy


def test_backoff_grows_and_is_capped() -> None:
    """Delays stay under base*2^(n-1), capped at `cap`."""
    policy = RetryPolicy(attempts=10, base=0.5, cap=2.0, total=1e9)
    rng = random.Random(1)
    for attempt in range(1, 10):
        delay = policy.delay(attempt, elapsed=0, retry_after=None, rng=rng)
        assert delay is not None
        assert 0 <= delay <= min(2.0, 0.5 * 2 ** (attempt - 1))


def test_gives_up_after_attempts_or_total_time() -> None:
    """No delay (give up) once attempts are spent or the total time would be exceeded."""
    policy = RetryPolicy(attempts=3, base=1, cap=1, total=10)
    assert policy.delay(3, elapsed=0, retry_after=None) is None
    assert policy.delay(1, elapsed=9.5, retry_after=1) is None


def test_retry_after_is_a_minimum_within_bounds() -> None:
    """The server's Retry-After is waited at least; an absurd one makes us give up."""
    policy = RetryPolicy(base=0.1, cap=0.1, max_retry_after=30)
    assert policy.delay(1, elapsed=0, retry_after=5) == 5
    assert policy.delay(1, elapsed=0, retry_after=3600) is None


def test_invalid_policies_are_refused() -> None:
    """Zero attempts or a zero total make no sense."""
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)

"""The circuit breaker: skip after a failure, one warning per outage, one note on recovery."""

from __future__ import annotations

from modelfetch._mirror.breaker import Breaker, Verdict


class Clock:
    """A clock moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_skips_for_the_pause_then_retries_once() -> None:
    """trip() starts an outage (True once); check() skips until the pause is over, then says RETRY once."""
    clock = Clock()
    breaker = Breaker(30, clock)
    assert breaker.check() is Verdict.USE
    assert breaker.trip() is True
    assert breaker.trip() is False  # the same outage: no second warning
    clock.now += 29
    assert breaker.check() is Verdict.SKIP
    clock.now += 1
    assert breaker.check() is Verdict.RETRY
    assert breaker.check() is Verdict.USE
    assert breaker.trip() is True  # a new outage

"""How a `MirrorSource` reaches its bucket: worker threads, an outage breaker, counters.

Every bucket call of the mirror goes through `BucketAccess.run` (obstore's blocking API in
a worker thread, at most 8 at once). `usable()` asks the breaker whether to try the bucket
now; `failed()` records an outage, which sends fetches straight upstream for
`MirrorOptions.retry_after` seconds with one warning.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread

from .breaker import Breaker, Verdict
from .bucket import Bucket, BucketUnavailableError
from .options import MirrorStats

log = logging.getLogger("modelfetch.mirror")


class BucketAccess:
    """The bucket, the threads that call it, its breaker, and the mirror's counters."""

    def __init__(self, bucket: Bucket, retry_after: float, clock: Callable[[], float]) -> None:
        self.bucket = bucket
        self.url = bucket.url
        self.retry_after = retry_after
        self._counts: Counter[str] = Counter()  # MirrorStats field -> value
        self._lock = threading.Lock()  # counters and breaker change on the loop and in upload threads
        self._breaker = Breaker(retry_after, clock)
        self._limiter = anyio.CapacityLimiter(8)

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """`func(*args)` in a worker thread (bucket calls block)."""
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)

    def add(self, name: str, n: int = 1) -> None:
        """Add `n` to the counter `name` (a `MirrorStats` field); from any thread."""
        with self._lock:
            self._counts[name] += n

    def usable(self) -> bool:
        """Whether to try the bucket now (False during an outage)."""
        with self._lock:
            verdict = self._breaker.check()
        if verdict is Verdict.RETRY:
            log.warning("mirror %s: trying the bucket again", self.url)
        return verdict is not Verdict.SKIP

    def in_outage(self) -> bool:
        """Whether the bucket is being skipped now (say, by a background job about to start)."""
        with self._lock:
            return self._breaker.open()

    def failed(self, exc: BucketUnavailableError, action: str = "reading") -> None:
        """Count a bucket failure; skip the bucket for `retry_after` s, warning once per outage."""
        with self._lock:
            self._counts["bucket_errors"] += 1
            starts = self._breaker.trip()
        if starts:
            log.warning(
                "mirror %s is unavailable (%s failed: %s); using upstream only for the next %.0f s",
                self.url,
                action,
                exc,
                self.retry_after,
            )

    def stats(self, **now: int) -> MirrorStats:
        """The counters as a frozen value, with the gauges in `now` (say, uploads still pending)."""
        with self._lock:
            return MirrorStats(**self._counts, **now)

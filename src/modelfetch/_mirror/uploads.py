"""Write-back in the background: uploads that run on after the fetch that needed them returned.

A node's fetch returns as soon as its own copy is verified and published; sending that copy
to the bucket for the other nodes is a job for `Uploads`: a queue served by at most
`MirrorOptions.uploads` threads of its own (10 steps nicer than the process, like the
transfer threads). Each job holds the blob's claim (renewed by the `Keeper`) until its
upload is complete, then releases it.

- An upload no other node has asked for (`wanted/<etag>`) waits until this mirror has no
  fetch in flight (or the queue is full), so a node fetching alone is not slowed by its own
  write-back; uploads another node waits for run meanwhile.
- The queue is bounded: a fetch that would queue more than `MAX_QUEUED` uploads waits for
  room (`room`), so claims held and work owed stay bounded however many files a snapshot has.
- `drain` is what `MirrorSource.aclose()` waits on: every job, for at most `close_timeout`
  seconds; after that the jobs are told to stop at their next chunk (queued ones are not
  started) and their claims are released (or lapse), so another node uploads instead.

Threads, not tasks: a job outlives the task and even the event loop that started it (the
sync facade closes its source from an `atexit` hook). Not a `ThreadPoolExecutor` either: at
exit it waits for all its queued work before `atexit` hooks run, with no bound, so
`close_timeout` would not apply, and refuses new work from then on; and the queue here needs
rules of its own (deferral, a bound that lets deferred jobs run).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .._core.background import lower_this_thread
from .._core.errors import IntegrityError
from .._store.pull import Abandoned
from .access import BucketAccess
from .bucket import BucketUnavailableError
from .claims import HeldClaim, Keeper, release_quietly
from .keys import WANTED_PREFIX

log = logging.getLogger("modelfetch.mirror")

MAX_QUEUED = 256  # uploads waiting for a thread before fetches wait for room
_WANTED_EVERY = 0.2  # seconds between looks for a node waiting for a deferred upload

Job = Callable[[threading.Event], None]
"""A blocking upload; it checks the event (set: abandoned) between chunks and raises `Abandoned`."""


@dataclass(eq=False, slots=True)
class _Queued:
    job: Job
    held: HeldClaim | None
    what: object
    abandon: threading.Event
    wanted: str | None  # deferred while this mirror fetches, unless this key exists
    asked: bool = False  # `wanted` was seen in the bucket


class Uploads:
    """The background write-backs of one mirror (see the module docstring)."""

    def __init__(self, access: BucketAccess, keeper: Keeper, *, concurrency: int) -> None:
        self._access = access
        self._keeper = keeper
        self._concurrency = concurrency
        self._cond = threading.Condition()
        self._queue: list[_Queued] = []
        self._running = 0
        self._workers = 0
        self._fetching = 0  # fetches of this mirror in flight
        self._abandon = threading.Event()  # replaced after each `drain` that abandoned jobs

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        with self._cond:
            return len(self._queue) + self._running

    @property
    def crowded(self) -> bool:
        """Whether the queue is full (a fetch should wait for `room` before going on)."""
        with self._cond:
            return len(self._queue) >= MAX_QUEUED

    def fetching(self, delta: int) -> None:
        """A fetch of this mirror began (+1) or ended (-1)."""
        with self._cond:
            self._fetching += delta
            self._cond.notify_all()

    def submit(self, job: Job, held: HeldClaim | None, what: object, *, wanted: str | None = None) -> None:
        """Queue `job`; once it has run, release `held` (kept renewed by the keeper meanwhile).

        With `wanted` (a key), the job is deferred while this mirror has a fetch in flight,
        unless the key exists in the bucket (another node waits for this upload).
        """
        with self._cond:
            self._queue.append(_Queued(job, held, what, self._abandon, wanted))
            if self._workers < self._concurrency:
                self._workers += 1
                thread = threading.Thread(target=self._work, name="modelfetch-upload")
                thread.daemon = True  # a process that exits without `aclose()` lets its claims lapse
                thread.start()
            self._cond.notify_all()

    def room(self) -> None:
        """Wait until the queue has room (blocking)."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._queue) < MAX_QUEUED)

    def wait(self) -> None:
        """Wait until no job is queued or running (blocking; see `MirrorSource.flush`)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._queue and not self._running)

    def drain(self, timeout: float) -> int:
        """Wait up to `timeout` s for every job; abandon the rest. How many were abandoned."""
        with self._cond:
            self._cond.wait_for(lambda: not self._queue and not self._running, timeout)
            left = len(self._queue) + self._running
            if left:
                self._abandon.set()
                self._abandon = threading.Event()
                self._cond.notify_all()
        return left

    def _next(self) -> _Queued | None:
        """The first queued job that may run now, taken off the queue (call holding the lock)."""
        crowded = len(self._queue) >= MAX_QUEUED  # run deferred jobs too: a fetch waits for room
        for item in self._queue:
            if item.wanted is None or item.asked or self._fetching <= 0 or crowded or item.abandon.is_set():
                self._queue.remove(item)
                self._running += 1
                return item
        return None

    def _work(self) -> None:
        lower_this_thread()
        while True:
            deferred: list[_Queued] = []
            with self._cond:
                item = self._next()
                if item is None:
                    if not self._queue:
                        self._workers -= 1
                        return
                    self._cond.wait(_WANTED_EVERY)
                    deferred = [q for q in self._queue if q.wanted is not None and not q.asked]
            if item is None:
                self._look_for_waiters(deferred)
                continue
            try:
                self._run(item)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def _look_for_waiters(self, deferred: list[_Queued]) -> None:
        """Mark the deferred jobs another node has asked for (one listing of `wanted/`)."""
        if not deferred:
            return
        try:
            asked = {key for key, _ in self._access.bucket.list(WANTED_PREFIX)}
        except BucketUnavailableError:
            return  # the jobs themselves will meet the outage
        for item in deferred:
            item.asked = item.wanted in asked

    def _run(self, item: _Queued) -> None:
        try:
            if not item.abandon.is_set() and not self._access.in_outage():  # skipped: another node uploads
                item.job(item.abandon)
        except Abandoned:
            log.warning("mirror %s: the upload of %s was abandoned at close", self._access.url, item.what)
        except BucketUnavailableError as exc:
            self._access.add("upload_failures")
            self._access.failed(exc, "write-back (the fetch itself succeeded)")
        except (IntegrityError, OSError) as exc:
            self._access.add("upload_failures")
            log.warning("mirror %s: write-back of %s failed (%s)", self._access.url, item.what, exc)
        except Exception:  # a bug of ours must not pass silently in a thread nobody joins
            self._access.add("upload_failures")
            log.exception("mirror %s: write-back of %s failed", self._access.url, item.what)
        finally:
            if item.held is not None:
                self._keeper.let_go(item.held)
                release_quietly(self._access.bucket, item.held)

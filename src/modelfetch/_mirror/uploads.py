"""Write-back in the background: uploads that run on after the fetch that needed them returned.

A node's fetch returns as soon as its own copy is verified and published; sending that copy
to the bucket for the other nodes is a job for `Uploads`, in threads of its own (at most
`MirrorOptions.uploads` at once, 10 steps nicer than the process, like the transfer
threads). Each job holds the blob's claim (renewed by the `Keeper`) until its upload is
complete, then releases it. An upload no other node has asked for (`wanted/<etag>`) waits
until this mirror has no fetch in flight, so a node fetching alone is not slowed by its
own write-back. `drain` is what `MirrorSource.aclose()` waits on: every job,
for at most `close_timeout` seconds; after that the jobs are told to stop at their next
chunk and their claims are released (or lapse), so another node uploads instead. Threads,
not tasks: a job outlives the task and even the event loop that started it (the sync
facade closes its source from an `atexit` hook).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .._core.background import lower_this_thread
from .._core.errors import IntegrityError
from .._store.pull import Abandoned
from .access import BucketAccess
from .bucket import BucketUnavailableError
from .claims import HeldClaim, Keeper, release_quietly

log = logging.getLogger("modelfetch.mirror")

_WANTED_EVERY = 0.2  # seconds between looks for a node waiting for a deferred upload

Job = Callable[[threading.Event], None]
"""A blocking upload; it checks the event (set: abandoned) between chunks and raises `Abandoned`."""


class Uploads:
    """The background write-backs of one mirror (see the module docstring)."""

    def __init__(self, access: BucketAccess, keeper: Keeper, *, concurrency: int) -> None:
        self._access = access
        self._keeper = keeper
        self._slots = threading.BoundedSemaphore(concurrency)
        self._done = threading.Condition()
        self._pending = 0
        self._abandon = threading.Event()  # replaced after each `drain` that abandoned jobs
        self._fetching = 0  # fetches of this mirror in flight: uploads nobody waits for wait for them

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        with self._done:
            return self._pending

    def fetching(self, delta: int) -> None:
        """A fetch of this mirror began (+1) or ended (-1)."""
        with self._done:
            self._fetching += delta
            self._done.notify_all()

    def submit(self, job: Job, held: HeldClaim | None, what: object, *, wanted: str | None = None) -> None:
        """Run `job` in the background, then release `held` (already kept renewed by the keeper).

        With `wanted` (a key), the job first waits until this mirror has no fetch in flight or
        the key exists in the bucket (another node waits for this upload): a node fetching
        alone does not slow its own fetches with uploads nobody is waiting for.
        """
        with self._done:
            self._pending += 1
            abandon = self._abandon
        args = (job, held, what, abandon, wanted)
        thread = threading.Thread(target=self._run, args=args, name="modelfetch-upload")
        thread.daemon = True  # a process that exits without `aclose()` lets its claims lapse
        thread.start()

    def wait(self) -> None:
        """Wait until no job is queued or running (blocking; see `MirrorSource.flush`)."""
        with self._done:
            self._done.wait_for(lambda: self._pending == 0)

    def drain(self, timeout: float) -> int:
        """Wait up to `timeout` s for every job; abandon those still running. How many were abandoned."""
        with self._done:
            self._done.wait_for(lambda: self._pending == 0, timeout)
            left = self._pending
            if left:
                self._abandon.set()
                self._abandon = threading.Event()
        return left

    def _await_turn(self, wanted: str, abandon: threading.Event) -> None:
        """Return once no fetch is in flight or `wanted` exists in the bucket; `Abandoned` if told."""
        while True:
            with self._done:
                if self._fetching <= 0:
                    return
            if self._access.bucket.exists(wanted):
                return
            with self._done:
                self._done.wait_for(lambda: self._fetching <= 0 or abandon.is_set(), _WANTED_EVERY)
            if abandon.is_set():
                raise Abandoned

    def _run(
        self, job: Job, held: HeldClaim | None, what: object, abandon: threading.Event, wanted: str | None
    ) -> None:
        lower_this_thread()
        try:
            if wanted is not None:
                self._await_turn(wanted, abandon)
            with self._slots:
                if not abandon.is_set() and not self._access.in_outage():  # skipped: another node uploads
                    job(abandon)
        except Abandoned:
            log.warning("mirror %s: the upload of %s was abandoned at close", self._access.url, what)
        except BucketUnavailableError as exc:
            self._access.add("upload_failures")
            self._access.failed(exc, "write-back (the fetch itself succeeded)")
        except (IntegrityError, OSError) as exc:
            self._access.add("upload_failures")
            log.warning("mirror %s: write-back of %s failed (%s)", self._access.url, what, exc)
        except Exception:  # a bug of ours must not pass silently in a thread nobody joins
            self._access.add("upload_failures")
            log.exception("mirror %s: write-back of %s failed", self._access.url, what)
        finally:
            if held is not None:
                self._keeper.let_go(held)
                release_quietly(self._access.bucket, held)
            with self._done:
                self._pending -= 1
                self._done.notify_all()

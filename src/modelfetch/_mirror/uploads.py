"""Write-back in the background: uploads that run on after the fetch that needed them returned.

A node's fetch returns as soon as its own copy is verified and published; sending that copy
to the bucket for the other nodes is a job for `Uploads`, in threads of its own (at most
`MirrorOptions.uploads` at once, 10 steps nicer than the process, like the transfer
threads). Each job holds the blob's claim (renewed by the `Keeper`) until its upload is
complete, then releases it. `drain` is what `MirrorSource.aclose()` waits on: every job,
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

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        with self._done:
            return self._pending

    def submit(self, job: Job, held: HeldClaim | None, what: object) -> None:
        """Run `job` in the background, then release `held` (already kept renewed by the keeper)."""
        with self._done:
            self._pending += 1
            abandon = self._abandon
        thread = threading.Thread(target=self._run, args=(job, held, what, abandon), name="modelfetch-upload")
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

    def _run(self, job: Job, held: HeldClaim | None, what: object, abandon: threading.Event) -> None:
        lower_this_thread()
        try:
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

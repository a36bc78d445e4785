"""The receiving thread of the libcurl engine: one multi handle for every file of a source.

One thread drives all connections, as the `curl` program does with `--parallel`: libcurl
waits and receives with the GIL released, and the thread takes the GIL only for short
callbacks. With one receiver (instead of one per file) the event loop's thread competes
with a single Python thread for the GIL, which keeps its heartbeat steady. The disk work
is done by each job's writer thread (`curljob.Writer`).

The thread starts with the first job and ends after `_IDLE` seconds without one.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import pycurl

from .._core.errors import SourceUnavailableError
from .curljob import Job, Leg, Stopped
from .niceness import lower_this_thread

_POLL = 0.01  # seconds between looks at new jobs, cancellation and pace while transferring
_IDLE = 5.0  # seconds without a job before the thread ends

Configure = Callable[[pycurl.Curl, Leg, Job], None]


class Receiver:
    """Runs jobs on one libcurl multi handle in one thread (see the module docstring)."""

    def __init__(self, configure: Configure, niceness: int = 0) -> None:
        self._configure = configure
        self._niceness = niceness  # for its thread and each job's (see `niceness`)
        self._inbox: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, job: Job) -> None:
        """Start `job`; `job.finished` is set when it ended (see `Job`)."""
        job.partial.set_watermark(job.partial.watermark)  # exists before any write (a resume trusts it)
        job.niceness = self._niceness
        job.writer.start()
        job.submitted = True
        with self._lock:
            self._inbox.put(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="modelfetch-curl", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Let the thread end once its jobs have (new jobs are still accepted)."""
        self._closed = True

    # ---- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        lower_this_thread(self._niceness)
        multi = pycurl.CurlMulti()
        legs: dict[pycurl.Curl, tuple[Job, Leg]] = {}
        jobs: set[Job] = set()
        free: list[pycurl.Curl] = []
        try:
            while self._take(jobs, legs, multi, free, wait=not jobs):
                self._drive(multi, jobs, legs, free)
        except BaseException as exc:  # a bug or a libcurl failure: no job may be left waiting
            self._abandon(jobs, exc)
        finally:
            for handle in list(legs):
                multi.remove_handle(handle)
                handle.close()
            for handle in free:
                handle.close()
            multi.close()

    def _take(
        self,
        jobs: set[Job],
        legs: dict[pycurl.Curl, tuple[Job, Leg]],
        multi: pycurl.CurlMulti,
        free: list[pycurl.Curl],
        *,
        wait: bool,
    ) -> bool:
        """Start the jobs waiting in the inbox; False once idle for `_IDLE` seconds (the thread ends)."""
        while True:
            try:
                job = (
                    self._inbox.get(timeout=0.2 if self._closed else _IDLE)
                    if wait
                    else self._inbox.get_nowait()
                )
            except queue.Empty:
                if not wait:
                    return True
                with self._lock:  # nothing came: end, unless a submit slipped in meanwhile
                    if self._inbox.empty():
                        self._thread = None
                        return False
                continue
            jobs.add(job)
            self._top_up(jobs, multi, legs, free)
            wait = False

    def _drive(
        self,
        multi: pycurl.CurlMulti,
        jobs: set[Job],
        legs: dict[pycurl.Curl, tuple[Job, Leg]],
        free: list[pycurl.Curl],
    ) -> None:
        """One round: receive, settle finished requests, stop failed jobs, check the pace."""
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        for handle, failure in _finished(multi):
            job, leg = legs.pop(handle)
            multi.remove_handle(handle)
            job.active -= 1
            if leg.follow and failure is None and not job.over:  # send it again, to the redirect's target
                self._send(job, leg, multi, legs, handle)
                continue
            free.append(handle)
            try:
                job.settle(leg, failure)
            except BaseException as exc:
                job.fail(exc)
            self._maybe_end(job, jobs)
        now = time.monotonic()
        for handle, (job, leg) in list(legs.items()):
            if job.abort.is_set() and job.failure is None:
                job.fail(Stopped())
            if not job.over:
                try:
                    job.check_pace(leg, now)
                except BaseException as exc:
                    job.fail(exc)
            if job.over:  # stop its other requests: what arrived is kept, the rest dropped
                del legs[handle]
                multi.remove_handle(handle)
                job.active -= 1
                if leg.buffer and leg.failure is None:
                    job.hand_over(leg)
                free.append(handle)
                self._maybe_end(job, jobs)
        self._top_up(jobs, multi, legs, free)
        if legs:
            multi.select(_POLL)

    def _top_up(
        self,
        jobs: set[Job],
        multi: pycurl.CurlMulti,
        legs: dict[pycurl.Curl, tuple[Job, Leg]],
        free: list[pycurl.Curl],
    ) -> None:
        """Send each job's next requests, up to its share of the connections.

        A file alone gets its `width` (parallel ranges); files at once share it, one
        connection each at least, as `curl --parallel` does: on a busy machine more
        connections than files only add work (more requests, hashing read back from
        the page cache instead of from memory).
        """
        for job in list(jobs):
            share = max(1, job.width // len(jobs))
            while job.active < share and not job.sent_all and not job.over:
                if not self._send_next(job, multi, legs, free):
                    break
            self._maybe_end(job, jobs)

    def _send_next(
        self,
        job: Job,
        multi: pycurl.CurlMulti,
        legs: dict[pycurl.Curl, tuple[Job, Leg]],
        free: list[pycurl.Curl],
    ) -> bool:
        leg = job.next_leg()
        if leg is None:
            return False
        self._send(job, leg, multi, legs, free.pop() if free else pycurl.Curl())
        return True

    def _send(
        self,
        job: Job,
        leg: Leg,
        multi: pycurl.CurlMulti,
        legs: dict[pycurl.Curl, tuple[Job, Leg]],
        handle: pycurl.Curl,
    ) -> None:
        self._configure(handle, leg, job)
        legs[handle] = (job, leg)
        job.active += 1
        multi.add_handle(handle)

    def _abandon(self, jobs: set[Job], exc: BaseException) -> None:
        """End every job (running or still in the inbox) with a typed error; let a new thread start."""
        with self._lock:
            self._thread = None
            while not self._inbox.empty():
                jobs.add(self._inbox.get_nowait())
        for job in jobs:
            job.fail(
                SourceUnavailableError(
                    f"Fetching {job.ref}: the libcurl engine failed ({type(exc).__name__}: {exc}); "
                    "retry, or use TransferOptions(engine='httpx')."
                )
            )
            job.writer.end()

    @staticmethod
    def _maybe_end(job: Job, jobs: set[Job]) -> None:
        """A job with nothing in flight and nothing left to send is over: its writer finishes it."""
        if job in jobs and job.active == 0 and (job.over or job.sent_all):
            jobs.discard(job)
            job.writer.end()


def _finished(multi: pycurl.CurlMulti) -> Iterator[tuple[pycurl.Curl, str | None]]:
    while True:
        queued, ok, failed = multi.info_read()
        for handle in ok:
            yield handle, None
        for handle, _code, message in failed:
            yield handle, message or "transfer failed"
        if not queued:
            return

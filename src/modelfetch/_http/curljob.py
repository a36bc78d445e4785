"""One file's transfer on the libcurl engine: its requests (`Leg`), decisions, and disk writer.

The receiving thread (`curlloop.Receiver`) calls `Job.on_header` and `Job.on_body` from
libcurl's callbacks and `Job.settle` when a request ends; everything slow is handed to the
job's `Writer` thread: `pwrite` at the offset, the watermark, the content hash. The
receiver only decides and copies 16 KiB at a time into a buffer, so the GIL it takes is
short and rare, and the event loop's thread gets it when it asks.

A `Job` is one attempt: it ends complete, or with `failure` set (`Transient` for a transient
failure, a `FetchError` otherwise, `Stopped` when the caller went away), and `finished` is
set once the writer has written everything that arrived, so a retry resumes exactly there.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from .._core.errors import IntegrityError, SourceUnavailableError
from .._core.retry import Transient
from .._core.speed import LowSpeed
from .._core.types import AssetRef
from .._hubapi.spec import (
    MAX_REDIRECTS,
    FileMetadata,
    classify,
    parse_content_range,
    plan_ranges,
    redirect_target,
)
from .._store.partial import PartialBlob
from .niceness import lower_this_thread
from .transfer import advance_watermark, check_complete

MiB = 1024 * 1024
BLOCK = MiB  # bytes gathered before they go to the writer
_MARK_EVERY = MiB  # a single stream records its watermark this often (as the httpx path does)
_HASH_STEP = 16 * MiB
_QUEUE = 16  # blocks waiting for the writer, at most (16 MiB per file)


class Stopped(Exception):
    """The caller went away (cancellation): the attempt ends, what arrived is kept."""


@dataclass(slots=True)
class Leg:
    """One request of a job: bytes `first..last` (to the end if None) from `url`."""

    first: int
    last: int | None
    url: str
    pos: int = 0  # the offset of the next byte to arrive
    redirects: int = 0
    follow: bool = False  # the answer was a redirect: send the request again, to `url`
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    accepted: bool = False
    failure: BaseException | None = None
    buffer: bytearray = field(default_factory=bytearray)
    last_byte: float = 0.0
    seen: int = 0
    pace: LowSpeed | None = None

    def __post_init__(self) -> None:
        self.pos = self.first

    def reset(self, pace: LowSpeed) -> None:
        """Before (re)sending the request."""
        self.status, self.accepted, self.failure, self.follow = 0, False, None, False
        self.headers, self.buffer = {}, bytearray()
        self.last_byte, self.seen, self.pace = time.monotonic(), self.pos, pace


class Job:
    """One attempt at filling a partial blob (see the module docstring)."""

    def __init__(
        self,
        ref: AssetRef,
        meta: FileMetadata,
        partial: PartialBlob,
        url: str,
        *,
        parallel: bool,
        chunk: int,
        width: int,
        has_token: bool,
        read_timeout: float,
    ) -> None:
        self.ref, self.meta, self.partial, self.url = ref, meta, partial, url
        self.chunk, self.has_token, self.read_timeout = chunk, has_token, read_timeout
        self.parallel = parallel and meta.size is not None
        start, size = partial.watermark, meta.size
        self.width = width if self.parallel else 1
        self.pending: Iterator[tuple[int, int | None]]
        if size is not None and start >= size:
            self.pending = iter([])  # complete already
        elif self.parallel and size is not None:
            self.pending = plan_ranges(start, size, chunk)
        else:
            self.pending = iter([(start, None)])
        self.active = 0  # requests in flight
        self.sent_all = False  # every planned request was sent
        self.abort = threading.Event()  # set by the caller: stop
        self.failure: BaseException | None = None
        self.finished = threading.Event()  # set by the writer once everything is on disk
        self.submitted = False  # the receiver and writer took it: it must be waited for
        self.received = start  # bytes arrived (for progress; read on the event loop)
        self.restarted = False
        self.ranges_ignored = False  # a parallel range was answered with the whole file
        self.niceness = 0  # how much nicer than the process its threads run (set by the receiver)
        self.writer = Writer(self)

    # ---- lifecycle (receiving thread) --------------------------------------------------

    def fail(self, exc: BaseException) -> None:
        """Record the first failure; the receiver stops the job's other requests."""
        if self.failure is None:
            self.failure = exc

    @property
    def over(self) -> bool:
        """Whether the job should stop (failed or abandoned)."""
        return self.failure is not None or self.abort.is_set()

    def next_leg(self) -> Leg | None:
        """The next request to send, if any is left."""
        if self.over:
            return None
        span = next(self.pending, None)
        if span is None:
            self.sent_all = True
            return None
        return Leg(span[0], span[1], self.url)

    # ---- libcurl callbacks (receiving thread) ------------------------------------------

    def on_header(self, leg: Leg, line: bytes) -> int | None:
        """Collect header lines; decide what the answer means once they end."""
        text = line.decode("latin-1").strip()
        if text.startswith("HTTP/"):
            parts = text.split(None, 2)
            leg.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            leg.headers = {}
            return None
        if text:
            name, _, value = text.partition(":")
            leg.headers[name.strip().lower()] = value.strip()
            return None
        if 100 <= leg.status < 200:  # an interim answer: the real one follows
            return None
        try:
            self._decide(leg)
        except BaseException as exc:
            leg.failure = exc
            return 0  # abort this request
        return None

    def on_body(self, leg: Leg, data: bytes) -> int | None:
        """Gather body bytes; a full block goes to the writer."""
        if not leg.accepted:
            return None  # the body of a redirect or an error answer: not ours
        leg.buffer += data
        if len(leg.buffer) >= BLOCK:
            return self.hand_over(leg)
        return None

    def hand_over(self, leg: Leg) -> int | None:
        """Give the gathered bytes to the writer; 0 (abort the request) if they run too long."""
        data, leg.buffer = leg.buffer, bytearray()
        end = leg.last + 1 if leg.last is not None else self.meta.size
        overlong = end is not None and leg.pos + len(data) > end
        if overlong:
            assert end is not None
            data = data[: max(end - leg.pos, 0)]
        if data:
            self.writer.put(("data", leg.pos, data, leg.last is None))
            leg.pos += len(data)
            self.received += len(data)
        if overlong:
            leg.failure = IntegrityError(f"the body is longer than the {leg.pos - leg.first} bytes announced")
            return 0
        return None

    def _decide(self, leg: Leg) -> None:
        outcome = classify(leg.status, leg.headers, self.ref, has_token=self.has_token, now=time.time())
        if outcome.kind == "redirect" and outcome.location:
            if leg.redirects >= MAX_REDIRECTS:
                raise SourceUnavailableError(f"Fetching {self.ref}: more than {MAX_REDIRECTS} redirects.")
            leg.url = self.url = redirect_target(leg.url, outcome.location)
            leg.redirects += 1
            leg.follow = True
            return
        if outcome.kind == "retry":
            assert outcome.error is not None
            raise Transient(f"HTTP {leg.status}", outcome.error, retry_after=outcome.retry_after)
        if outcome.kind != "ok":
            raise outcome.error or SourceUnavailableError(
                f"Fetching {self.ref}: the server answered HTTP {leg.status} instead of the file."
            )
        encoding = leg.headers.get("content-encoding", "identity").lower()
        if encoding not in ("", "identity"):
            raise SourceUnavailableError(
                f"Fetching {self.ref}: the server sent the file with Content-Encoding "
                f"{encoding[:40]!r} although identity was asked for; nothing was written."
            )
        self._check_range(leg)
        leg.accepted = True

    def _check_range(self, leg: Leg) -> None:
        if leg.status == 200 and (leg.first > 0 or leg.last is not None):
            if leg.last is not None:  # parallel ranges need a server that honours them
                self.ranges_ignored = True
                stopped = SourceUnavailableError(f"Fetching {self.ref}: the server stopped honouring ranges.")
                raise Transient("range not honoured", stopped)
            self.writer.put(("restart", 0, b"", True))  # one stream: the server starts over
            leg.first = leg.pos = 0
            self.received = 0
            self.restarted = True
            return
        if leg.status == 206:
            span = parse_content_range(leg.headers.get("content-range"))
            size = self.meta.size
            last = leg.last if leg.last is not None else (size - 1 if size else None)
            if span is None or span[0] != leg.first or (last is not None and span[1] > last):
                sent = leg.headers.get("content-range", "no Content-Range")[:80]
                wrong = SourceUnavailableError(
                    f"Fetching {self.ref}: asked for bytes {leg.first}-{leg.last}, the server sent {sent!r}."
                )
                raise Transient("wrong range", wrong)

    # ---- a request ended (receiving thread) --------------------------------------------

    def settle(self, leg: Leg, failure: str | None) -> None:
        """Account for a finished request; raise what ended it if it did not end well."""
        if leg.buffer and leg.failure is None:  # what arrived before the end is good: keep it
            self.hand_over(leg)
        if leg.failure is not None:
            raise leg.failure
        if failure is not None or not leg.accepted:
            cause = failure or f"HTTP {leg.status} without a body"
            raise Transient(
                cause, SourceUnavailableError(f"Fetching {self.ref}: the transfer failed ({cause}).")
            )
        if leg.last is None:
            check_complete(self.ref, leg.pos, self.meta.size)
            return
        if leg.pos != leg.last + 1:
            short = SourceUnavailableError(f"Fetching {self.ref}: ranges kept ending early.")
            raise Transient("short range", short)
        self.writer.put(("range", leg.first, b"", False))

    def check_pace(self, leg: Leg, now: float) -> None:
        """Between polls: no bytes for the read timeout, or too slow for the low-speed limit."""
        arrived = leg.pos + len(leg.buffer)
        if arrived != leg.seen:
            leg.last_byte = now
        fresh, leg.seen = arrived - leg.seen, arrived
        if now - leg.last_byte > self.read_timeout:
            stalled = SourceUnavailableError(
                f"Fetching {self.ref}: no bytes arrived for {self.read_timeout:g} s "
                "(HF_HUB_DOWNLOAD_TIMEOUT)."
            )
            raise Transient("stalled", stalled)
        if leg.accepted and leg.pace is not None and leg.pace.too_slow(fresh):
            slow = SourceUnavailableError(
                f"Fetching {self.ref}: the body stayed below the low-speed limit ({leg.pace.describe()})."
            )
            raise Transient("too slow", slow)


Work = tuple[str, int, bytes | bytearray, bool]
"""("data", offset, bytes, in order) | ("range", first, b"", _) | ("restart", ...) | ("end", ...)."""


class Writer(threading.Thread):
    """Puts one job's bytes on disk, moves its watermark and hashes them, in that order."""

    def __init__(self, job: Job) -> None:
        super().__init__(name="modelfetch-writer", daemon=True)
        self._job = job
        self._partial = job.partial
        self._work: queue.Queue[Work] = queue.Queue(_QUEUE)
        self._done: set[int] = set()
        self._stream_end = job.partial.watermark

    def put(self, item: Work) -> None:
        """Queue work (blocks while the writer is `_QUEUE` blocks behind)."""
        self._work.put(item)

    def end(self) -> None:
        """No more work: finish what is queued, then set `job.finished`."""
        self._work.put(("end", 0, b"", False))

    def run(self) -> None:
        job = self._job
        lower_this_thread(job.niceness)  # its hashing thread inherits it
        hasher: _Hasher | _InlineHasher = (
            _Hasher(self._partial, job.abort) if job.parallel else _InlineHasher(self._partial, job.abort)
        )
        hasher.start()
        try:
            while (item := self._work.get())[0] != "end":
                if job.failure is None or isinstance(job.failure, Stopped | Transient):  # keep good bytes
                    try:
                        self._do(hasher, *item)
                    except BaseException as exc:  # a disk error: the attempt fails with it
                        job.fail(exc)
                        job.abort.set()
            if self._stream_end > self._partial.watermark:  # a single stream stopped: resume there
                self._partial.set_watermark(self._stream_end)
        except BaseException as exc:
            job.fail(exc)
        finally:
            try:
                hasher.finish()
            except BaseException as exc:
                job.fail(exc)
            job.finished.set()

    def _do(
        self, hasher: _Hasher | _InlineHasher, kind: str, offset: int, data: bytes | bytearray, in_order: bool
    ) -> None:
        partial = self._partial
        if kind == "data":
            partial.write_at(offset, data)
            if in_order:
                hasher.put((offset, data))  # hashed from memory, beside the next write
                self._stream_end = offset + len(data)
                if self._stream_end - partial.watermark >= _MARK_EVERY:
                    partial.set_watermark(self._stream_end)
        elif kind == "range":
            job = self._job
            size = job.meta.size
            assert size is not None
            self._done.add(offset)
            moved = advance_watermark(self._done, partial.watermark, job.chunk, size)
            if moved != partial.watermark:
                partial.set_watermark(moved)
                hasher.put((moved, None))  # read back from the page cache
        elif kind == "restart":
            hasher.put((0, None))  # wait for queued hashing before the file is cut
            hasher.drain()
            partial.restart()
            self._stream_end = 0


class _Hasher(threading.Thread):
    """Hashes a partial blob beside its writer: buffers from memory, or up to a watermark."""

    def __init__(self, partial: PartialBlob, abort: threading.Event) -> None:
        super().__init__(name="modelfetch-hash", daemon=True)
        self._partial, self._abort = partial, abort
        self._work: queue.Queue[tuple[int, bytes | bytearray | None] | None] = queue.Queue(_QUEUE)
        self.failure: BaseException | None = None

    def put(self, item: tuple[int, bytes | bytearray | None]) -> None:
        """(offset, bytes written there), or (watermark, None)."""
        self._work.put(item)

    def drain(self) -> None:
        """Wait until everything queued was hashed."""
        self._work.join()

    def run(self) -> None:
        while (item := self._work.get()) is not None:
            try:
                if self.failure is None and not self._abort.is_set():
                    offset, data = item
                    if data is None:
                        self._hash_to(offset)
                    elif not self._partial.hash_chunk(offset, data):
                        self._hash_to(offset + len(data))
            except BaseException as exc:  # reported by finish()
                self.failure = exc
            finally:
                self._work.task_done()
        self._work.task_done()

    def _hash_to(self, upto: int) -> None:
        _hash_to(self._partial, self._abort, upto)

    def finish(self) -> None:
        """Wait for the hashing queued so far; raise what it failed with."""
        self._work.put(None)
        self.join()
        if self.failure is not None:
            raise self.failure


class _InlineHasher:
    """`_Hasher`'s interface, hashing in the writer's own thread: for a single stream.

    A single stream's bytes arrive in order and are hashed from memory (hashlib releases
    the GIL on big buffers), so a thread of its own only adds GIL hand-offs; parallel
    ranges keep `_Hasher`, which reads back behind the watermark beside the writes.
    """

    def __init__(self, partial: PartialBlob, abort: threading.Event) -> None:
        self._partial, self._abort = partial, abort
        self.failure: BaseException | None = None

    def start(self) -> None:
        """Nothing to start."""

    def put(self, item: tuple[int, bytes | bytearray | None]) -> None:
        """Hash (offset, bytes written there) now, or up to a watermark (offset, None)."""
        if self.failure is not None or self._abort.is_set():
            return
        offset, data = item
        try:
            if data is None:
                _hash_to(self._partial, self._abort, offset)
            elif not self._partial.hash_chunk(offset, data):
                _hash_to(self._partial, self._abort, offset + len(data))
        except BaseException as exc:  # reported by finish()
            self.failure = exc

    def drain(self) -> None:
        """Nothing is queued."""

    def finish(self) -> None:
        """Raise what hashing failed with."""
        if self.failure is not None:
            raise self.failure


def _hash_to(partial: PartialBlob, abort: threading.Event, upto: int) -> None:
    """Hash through `upto` in steps (read back from the page cache), so an abort stops it."""
    while not abort.is_set():
        before = partial.hashed
        if before >= upto:
            return
        partial.hash_through(min(upto, before + _HASH_STEP))
        if partial.hashed == before:  # nothing to hash with (no etag) or nothing to read
            return

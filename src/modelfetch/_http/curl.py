"""The native engine: file bodies moved by libcurl in a worker thread, never on the event loop.

`CurlTransfer.run` does what `Transfer.run` does (one stream, or parallel ranges for big
files; resume from the watermark; retries through the client's policy; progress), but the
bytes never pass through the event loop's thread: one worker thread per file drives a
libcurl multi handle (one connection per range), writes each buffer at its offset with
`os.pwrite` and hands the hashing to a second thread that follows the watermark
(`hashlib` releases the GIL on large buffers). The thread holds the GIL only for a short
callback per buffer of up to 1 MiB, so the loop's heartbeat stays as steady as it is next
to a `curl` process.

Everything that decides something is shared with the httpx path: `HubClient.headers_for`
(the token only to the endpoint's origin, also after a redirect: redirects are followed
here by hand, never by libcurl), `classify` for statuses, `plan_ranges`,
`advance_watermark`, the same `PartialBlob`. Proxies and CA bundles come from the
environment variables httpx reads (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`,
`SSL_CERT_FILE`, `SSL_CERT_DIR`, `REQUESTS_CA_BUNDLE`), with certifi's bundle otherwise.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import pycurl

from .._core.errors import IntegrityError, SourceUnavailableError
from .._core.progress import ProgressCallback, ProgressKind
from .._core.speed import LowSpeed
from .._core.types import AssetRef
from .._hubapi.spec import FileMetadata, classify, parse_content_range, plan_ranges, redirect_target
from .._store.partial import PartialBlob
from .client import MAX_REDIRECTS, HubClient, Retry
from .transfer import Progress, TransferOptions, advance_watermark, check_complete

MiB = 1024 * 1024
_BUFFER = MiB  # libcurl's receive buffer per connection: one Python callback per up to 1 MiB
_MARK_EVERY = MiB  # a single stream records its watermark this often (as the httpx path does)
_POLL = 0.05  # seconds between looks at cancellation and stalls; bounds cancellation latency
_PROGRESS_SECONDS = 0.1
_HASH_STEP = 16 * MiB
_FLUSH = MiB  # bytes gathered before one pwrite
_HASH_QUEUE = 8  # buffers waiting to be hashed, at most (8 MiB)


class _Stop(Exception):
    """The caller went away: unwind the worker thread."""


@dataclass(slots=True)
class _Leg:
    """One request of a transfer: bytes `first..last` (to the end if None) from `url`."""

    first: int
    last: int | None
    url: str
    pos: int = 0
    redirects: int = 0
    follow: bool = False  # the answer was a redirect: send the request again to `url`
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    accepted: bool = False
    failure: BaseException | None = None
    last_byte: float = field(default_factory=time.monotonic)
    seen: int = 0  # bytes counted by the last look at the pace
    buffer: bytearray = field(default_factory=bytearray)  # arrived, not yet written
    pace: LowSpeed | None = None

    def __post_init__(self) -> None:
        self.pos = self.first


class _Hasher(threading.Thread):
    """Hashes the partial blob as it fills, off the receiving thread.

    A single stream hands over each buffer it wrote (`absorb`: hashed from memory, the
    queue bounded so a slow hash slows the transfer rather than filling memory); parallel
    ranges hand over watermarks (`follow`: the bytes are read back from the page cache).
    """

    def __init__(self, partial: PartialBlob, abort: threading.Event) -> None:
        super().__init__(name="modelfetch-hash", daemon=True)
        self._partial = partial
        self._abort = abort
        self._work: queue.Queue[tuple[int, bytes | bytearray | None] | None] = queue.Queue(_HASH_QUEUE)
        self.failure: BaseException | None = None

    def absorb(self, offset: int, data: bytes | bytearray) -> None:
        """Hash `data`, just written at `offset` (it must not be changed afterwards)."""
        self._put((offset, data))

    def follow(self, upto: int) -> None:
        """Hash through `upto` (bytes already written), eventually."""
        self._put((upto, None))

    def _put(self, item: tuple[int, bytes | bytearray | None] | None) -> None:
        while not self._abort.is_set():
            try:
                self._work.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def run(self) -> None:
        while (item := self._work.get()) is not None:
            if self._abort.is_set() or self.failure is not None:
                continue  # drain without hashing: the transfer is over
            offset, data = item
            try:
                if data is None:
                    self._hash_to(offset)
                elif not self._partial.hash_chunk(offset, data):
                    self._hash_to(offset + len(data))
            except BaseException as exc:  # reported by finish(); the transfer then fails
                self.failure = exc

    def _hash_to(self, upto: int) -> None:
        """Hash through `upto` in steps, so an abort stops it within one step."""
        while not self._abort.is_set():
            before = self._partial.hashed
            if before >= upto:
                return
            self._partial.hash_through(min(upto, before + _HASH_STEP))
            if self._partial.hashed == before:  # nothing to hash with (no etag) or nothing to read
                return

    def finish(self) -> None:
        """Wait for the hashing queued so far; raise what it failed with."""
        self._work.put(None)
        self.join()
        if self.failure is not None:
            raise self.failure


class _Job:
    """One attempt at filling a partial blob; `run` is called in a worker thread."""

    def __init__(
        self,
        engine: CurlTransfer,
        ref: AssetRef,
        meta: FileMetadata,
        partial: PartialBlob,
        url: str,
        parallel: bool,
    ) -> None:
        self.engine, self.ref, self.meta, self.partial = engine, ref, meta, partial
        self.url = url  # after the first cross-origin redirect: where the bytes are
        self.parallel = parallel
        self.abort = threading.Event()
        self.finished = threading.Event()
        self.started = False
        self._starting = threading.Lock()
        self.received = partial.watermark  # bytes in the file, for progress (read on the loop)
        self.restarted = False
        self.stream_end = 0  # a single stream: the end of the bytes written in order
        self.hasher: _Hasher | None = None
        self._free: list[pycurl.Curl] = []

    # ---- the loop ----------------------------------------------------------------------

    def stop(self) -> bool:
        """Tell the thread to stop; whether it is running (so the caller must wait for it)."""
        with self._starting:
            self.abort.set()
            return self.started

    def run(self) -> None:
        """Transfer until the partial blob is complete; raise `Retry` or a `FetchError` if not."""
        with self._starting:
            if self.abort.is_set():  # cancelled before this thread got to run
                self.finished.set()
                return
            self.started = True
        # The watermark file must exist before any write: without it, a resume would trust
        # the file's length, and parallel ranges leave holes below it.
        self.partial.set_watermark(self.partial.watermark)
        multi = pycurl.CurlMulti()
        hasher = self.hasher = _Hasher(self.partial, self.abort)
        self.partial.inline_hash = False
        hasher.start()
        try:
            self._transfer(multi, hasher)
        finally:
            if self.stream_end > self.partial.watermark:  # a single stream stopped: resume there
                self.partial.set_watermark(self.stream_end)
            multi.close()
            for handle in self._free:
                handle.close()
            try:
                hasher.finish()
            finally:
                self.finished.set()

    def _transfer(self, multi: pycurl.CurlMulti, hasher: _Hasher) -> None:
        size, start = self.meta.size, self.partial.watermark
        if size is not None and start >= size:
            return
        chunk = self.engine.options.chunk_size
        if self.parallel and size is not None:
            pending: Iterator[tuple[int, int | None]] = plan_ranges(start, size, chunk)
            width = self.engine.options.connections
        else:
            pending, width = iter([(start, None)]), 1
        active: dict[pycurl.Curl, _Leg] = {}
        done: set[int] = set()
        watermark = start
        for _ in range(width):
            self._start_next(multi, active, pending)
        while active:
            if self.abort.is_set():
                raise _Stop
            self._pump(multi)
            for handle, failure in self._finished(multi):
                leg = active.pop(handle)
                multi.remove_handle(handle)
                if leg.follow and failure is None:  # send it again, to the redirect's target
                    self._send(multi, active, leg)
                    continue
                self._free.append(handle)
                self._settle(leg, failure)
                if leg.last is None:  # a single stream: done when the body ended
                    check_complete(self.ref, leg.pos, size)
                    self.partial.set_watermark(leg.pos)
                    hasher.follow(leg.pos)
                    continue
                assert size is not None
                done.add(leg.first)
                moved = advance_watermark(done, watermark, chunk, size)
                if moved != watermark:
                    watermark = moved
                    self.partial.set_watermark(moved)
                    hasher.follow(moved)
                self._start_next(multi, active, pending)
            self._check_pace(active)
            if active:
                multi.select(_POLL)

    def _pump(self, multi: pycurl.CurlMulti) -> None:
        while True:
            status, _ = multi.perform()
            if status != pycurl.E_CALL_MULTI_PERFORM:
                return

    def _finished(self, multi: pycurl.CurlMulti) -> Iterator[tuple[pycurl.Curl, str | None]]:
        while True:
            queued, ok, failed = multi.info_read()
            for handle in ok:
                yield handle, None
            for handle, _code, message in failed:
                yield handle, message or "transfer failed"
            if not queued:
                return

    def _start_next(
        self,
        multi: pycurl.CurlMulti,
        active: dict[pycurl.Curl, _Leg],
        pending: Iterator[tuple[int, int | None]],
    ) -> None:
        span = next(pending, None)
        if span is not None:
            self._send(multi, active, _Leg(span[0], span[1], self.url))

    def _send(self, multi: pycurl.CurlMulti, active: dict[pycurl.Curl, _Leg], leg: _Leg) -> None:
        handle = self._free.pop() if self._free else pycurl.Curl()
        self.engine.configure(handle, leg, self)
        active[handle] = leg
        multi.add_handle(handle)

    # ---- per request -------------------------------------------------------------------

    def on_header(self, leg: _Leg, line: bytes) -> int | None:
        """libcurl's header callback: collect, and decide once the header block ends."""
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

    def _decide(self, leg: _Leg) -> None:
        """Accept the body of an answer, follow its redirect, or raise what it means."""
        client = self.engine.client
        outcome = classify(leg.status, leg.headers, self.ref, has_token=client.has_token, now=time.time())
        if outcome.kind == "redirect" and outcome.location:
            if leg.redirects >= MAX_REDIRECTS:
                raise SourceUnavailableError(f"Fetching {self.ref}: more than {MAX_REDIRECTS} redirects.")
            leg.url = redirect_target(leg.url, outcome.location)
            leg.redirects += 1
            leg.follow = True
            self.url = leg.url
            return
        if outcome.kind == "retry":
            assert outcome.error is not None
            raise Retry(f"HTTP {leg.status}", outcome.error, outcome.retry_after)
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

    def _check_range(self, leg: _Leg) -> None:
        asked_range = leg.first > 0 or leg.last is not None
        if leg.status == 200 and asked_range:
            if leg.last is not None:  # parallel ranges need a server that honours them
                self.engine.ranges_ignored = True
                stopped = SourceUnavailableError(f"Fetching {self.ref}: the server stopped honouring ranges.")
                raise Retry("range not honoured", stopped)
            self.partial.restart()  # a single stream from `first`: the server starts over
            leg.first = leg.pos = self.stream_end = 0
            self.received = 0
            self.restarted = True
            return
        if leg.status == 206:
            span = parse_content_range(leg.headers.get("content-range"))
            last = leg.last if leg.last is not None else (self.meta.size - 1 if self.meta.size else None)
            if span is None or span[0] != leg.first or (last is not None and span[1] > last):
                sent = leg.headers.get("content-range", "no Content-Range")[:80]
                wrong = SourceUnavailableError(
                    f"Fetching {self.ref}: asked for bytes {leg.first}-{leg.last}, the server sent {sent!r}."
                )
                raise Retry("wrong range", wrong)

    def on_body(self, leg: _Leg, data: bytes) -> int | None:
        """libcurl's write callback, once per 16 KiB: as little as possible under the GIL.

        The bytes are gathered and written 1 MiB at a time (`_flush`); pace, stalls and
        cancellation are judged by the loop between polls, not here.
        """
        if not leg.accepted:
            return None  # the body of a redirect or an error answer: not ours
        leg.buffer += data
        if len(leg.buffer) >= _FLUSH:
            return self._flush(leg)
        return None

    def _flush(self, leg: _Leg) -> int | None:
        """Write the gathered bytes at their offset; 0 (abort the request) if that fails."""
        try:
            data, leg.buffer = leg.buffer, bytearray()
            end = leg.last + 1 if leg.last is not None else self.meta.size
            if end is not None and leg.pos + len(data) > end:
                keep = end - leg.pos
                if keep > 0:
                    self.partial.write_at(leg.pos, memoryview(data)[:keep])
                    leg.pos += keep
                raise IntegrityError(f"the body is longer than the {end - leg.first} bytes announced")
            self.partial.write_at(leg.pos, data)
            if leg.last is None and self.hasher is not None:  # in order: hash it from memory
                self.hasher.absorb(leg.pos, data)
            leg.pos += len(data)
            self.received += len(data)
            if leg.last is None:
                self.stream_end = leg.pos
                if leg.pos - self.partial.watermark >= _MARK_EVERY:
                    self.partial.set_watermark(leg.pos)
        except BaseException as exc:
            leg.failure = exc
            return 0
        return None

    def _settle(self, leg: _Leg, failure: str | None) -> None:
        """Raise what ended `leg`, if it did not end well."""
        if leg.buffer and leg.failure is None:  # what arrived before the end is good: keep it
            self._flush(leg)
        if leg.last is None and leg.pos > self.partial.watermark:
            self.partial.set_watermark(leg.pos)  # what arrived is good: a retry resumes there
        if leg.failure is not None:
            raise leg.failure
        if failure is not None or not leg.accepted:
            cause = failure or f"HTTP {leg.status} without a body"
            lost = SourceUnavailableError(f"Fetching {self.ref}: the transfer failed ({cause}).")
            raise Retry(cause, lost)
        if leg.last is not None and leg.pos != leg.last + 1:
            short = SourceUnavailableError(f"Fetching {self.ref}: ranges kept ending early.")
            raise Retry("short range", short)

    def _check_pace(self, active: dict[pycurl.Curl, _Leg]) -> None:
        """Between polls: a request with no bytes for the read timeout, or too slow, is retried."""
        limit = self.engine.client.settings.download_timeout
        now = time.monotonic()
        for leg in active.values():
            arrived = leg.pos + len(leg.buffer)
            if arrived != leg.seen:
                leg.last_byte = now
            fresh, leg.seen = arrived - leg.seen, arrived
            if now - leg.last_byte > limit:
                stalled = SourceUnavailableError(
                    f"Fetching {self.ref}: no bytes arrived for {limit:g} s (HF_HUB_DOWNLOAD_TIMEOUT)."
                )
                raise Retry("stalled", stalled)
            if leg.accepted and leg.pace is not None and leg.pace.too_slow(fresh):
                slow = SourceUnavailableError(
                    f"Fetching {self.ref}: the body stayed below the low-speed limit ({leg.pace.describe()})."
                )
                raise Retry("too slow", slow)


class CurlTransfer:
    """`Transfer.run` on libcurl (see the module docstring).

    Args:
        client: headers (the token's scope), statuses and the retry loop.
        options: thresholds, chunk size and parallelism, as for the httpx transfer.
        limiter: bounds the files transferred at once (one worker thread each).
    """

    def __init__(self, client: HubClient, options: TransferOptions, limiter: anyio.CapacityLimiter) -> None:
        self.client, self.options = client, options
        self._limiter = limiter
        self._environment = _environment()
        self.ranges_ignored = False  # learnt once per source: this server answers ranges with 200

    async def run(
        self,
        ref: AssetRef,
        meta: FileMetadata,
        partial: PartialBlob,
        start: int,
        progress: ProgressCallback | None,
    ) -> int:
        """Fill `partial` from byte `start` to the end, retrying and resuming; the bytes it holds."""
        report = Progress(ref, meta.size, progress)
        report.done = start
        report.send(ProgressKind.STARTED)
        url = [meta.url]

        async def attempt() -> None:
            size = meta.size
            parallel = (
                size is not None
                and not self.ranges_ignored
                and size - partial.watermark >= self.options.parallel_threshold
            )
            job = _Job(self, ref, meta, partial, url[0], parallel)
            try:
                await self._run_job(job, report)
            finally:
                url[0] = job.url

        try:
            await self.client.retrying(ref, attempt)
        except BaseException:
            report.done = partial.watermark
            report.send(ProgressKind.FAILED)
            raise
        report.done = partial.watermark
        report.send(ProgressKind.FINISHED)
        return partial.watermark

    async def _run_job(self, job: _Job, report: Progress) -> None:
        failures: list[Exception] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_follow_progress, job, report)
            try:
                await anyio.to_thread.run_sync(job.run, limiter=self._limiter, abandon_on_cancel=True)
            except Exception as exc:  # the attempt failed: raised below, outside the task group
                failures.append(exc)
            except BaseException:  # cancelled: stop the thread (within _POLL s) before leaving
                if job.stop():
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(job.finished.wait)
                raise
            finally:
                tg.cancel_scope.cancel()
        if failures:
            raise failures[0]

    def configure(self, handle: pycurl.Curl, leg: _Leg, job: _Job) -> None:
        """Set up `handle` for one request of `job`."""
        settings = self.client.settings
        handle.reset()
        handle.setopt(pycurl.URL, leg.url)
        headers = self.client.headers_for(
            leg.url, {"user-agent": _user_agent(), "accept-encoding": "identity"}
        )
        handle.setopt(pycurl.HTTPHEADER, [f"{name}: {value}" for name, value in headers.items()])
        if leg.pos > 0 or leg.last is not None:
            handle.setopt(pycurl.RANGE, f"{leg.pos}-{'' if leg.last is None else leg.last}")
        handle.setopt(pycurl.FOLLOWLOCATION, 0)  # followed by hand: the token's scope is ours to decide
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        handle.setopt(pycurl.HTTP_CONTENT_DECODING, 0)
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.BUFFERSIZE, _BUFFER)
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(settings.etag_timeout * 1000)))
        leg.status, leg.accepted, leg.failure, leg.follow = 0, False, None, False
        leg.last_byte, leg.seen, leg.buffer = time.monotonic(), leg.pos, bytearray()
        leg.pace = LowSpeed(settings.low_speed_limit, settings.low_speed_time)
        handle.setopt(pycurl.HEADERFUNCTION, lambda line: job.on_header(leg, line))
        handle.setopt(pycurl.WRITEFUNCTION, lambda data: job.on_body(leg, data))
        for option, value in self._environment.options_for(leg.url):
            handle.setopt(option, value)


async def _follow_progress(job: _Job, report: Progress) -> None:
    """Progress events from the worker's byte count, sampled on the loop (no cross-thread calls)."""
    while True:
        await anyio.sleep(_PROGRESS_SECONDS)
        received = job.received
        if job.restarted or received < report.done:  # started over, or a retry resumed earlier
            report.done, job.restarted = received, False
        elif received > report.done:
            report.advance(received - report.done)


@dataclass(frozen=True, slots=True)
class _Environment:
    """Proxies and CA bundles from the environment, read once per source (as httpx does)."""

    proxies: dict[str, str]
    no_proxy: str | None
    ca_file: str | None
    ca_dir: str | None

    def options_for(self, url: str) -> list[tuple[int, Any]]:
        """The libcurl options for a request to `url`."""
        options: list[tuple[int, Any]] = []
        scheme = url.split(":", 1)[0].lower()
        proxy = self.proxies.get(scheme) or self.proxies.get("all")
        options.append((pycurl.PROXY, proxy or ""))  # "" : no proxy, whatever libcurl would read
        if self.no_proxy:
            options.append((pycurl.NOPROXY, self.no_proxy))
        if self.ca_file:
            options.append((pycurl.CAINFO, self.ca_file))
        if self.ca_dir:
            options.append((pycurl.CAPATH, self.ca_dir))
        return options


def _environment(env: dict[str, str] | None = None) -> _Environment:
    env = dict(os.environ) if env is None else env

    def get(*names: str) -> str | None:
        for name in names:
            value = env.get(name) or env.get(name.lower())
            if value:
                return value
        return None

    proxies = {
        scheme: value
        for scheme, value in (
            ("http", get("HTTP_PROXY")),
            ("https", get("HTTPS_PROXY")),
            ("all", get("ALL_PROXY")),
        )
        if value
    }
    ca_file = get("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    if ca_file is None and get("SSL_CERT_DIR") is None:
        import certifi  # noqa: PLC0415 - httpx's default bundle, so both paths trust the same CAs

        ca_file = certifi.where()
    return _Environment(proxies, get("NO_PROXY"), ca_file, get("SSL_CERT_DIR"))


def _user_agent() -> str:
    from .._version import __version__  # noqa: PLC0415

    return f"modelfetch/{__version__}"


def engine_available() -> bool:
    """Whether libcurl (pycurl) can be used here."""
    return hasattr(pycurl, "CurlMulti")

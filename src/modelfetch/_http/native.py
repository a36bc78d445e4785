"""The native engine: file bodies received by obstore's HTTP client, off the event loop.

`NativeTransfer.run` does what `Transfer.run` does (one stream, or parallel ranges for a big
file fetched alone; resume from the watermark; the client's retry policy; progress), but
the bytes never pass through the event loop's thread: obstore (reqwest on tokio, in Rust,
without the GIL while it waits) receives them in a worker thread that writes them into the
partial blob (`modelfetch._store.pull`), while a second thread hashes them from memory.

What obstore does not give us, we keep as the httpx engine has it:

- **Statuses and `Retry-After`.** obstore reports a failed request as text. When a request
  fails before its body, one HEAD of our own (`HubClient.diagnose`) learns the status and
  `Retry-After`, and `classify` decides as on every path.
- **Range support is learnt, never probed by waste.** obstore drops a ranged request
  answered with 200 (the whole body) unread. So the first ranged request of a source whose
  answer is unknown goes through httpx (`Transfer.fetch_body`): a 206 shows ranges work and
  the rest of that file comes as parallel ranges here; a 200 is the whole body, read in that
  one GET, and from then on this source never sends `Range` for a fresh file.
- **The token only to the endpoint's origin.** Each store is made for one URL with the
  `Authorization` header only if that URL is on the endpoint's origin (`headers_for`);
  reqwest drops it on a redirect to another host. A CDN URL learnt from the HEAD gets none.
- **Timeouts and pace.** obstore's own retries are off and its overall timeout is
  effectively off; its per-read timeout is `HF_HUB_DOWNLOAD_TIMEOUT`. The event loop samples
  the bytes received every 100 ms: that drives progress, the low-speed limit, and the bound
  on how long the status line and headers may take.
- **Cancellation.** The waiting task abandons the worker threads and closes the transfer's
  `Gate` before it returns; a thread that wakes later writes nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from .._core.background import in_background
from .._core.errors import SourceUnavailableError
from .._core.progress import FileProgress as Progress
from .._core.progress import ProgressCallback
from .._core.proxies import ProxyRules
from .._core.retry import Transient
from .._core.speed import LowSpeed
from .._core.text import printable
from .._core.types import AssetRef
from .._hubapi.spec import FileMetadata, judge_body
from .._store.partial import PartialBlob
from .._store.pull import Gate, HashFollower, Tally, Thread, parallel_ranges, pull
from .._version import __version__ as _version
from .bodies import encoded_body
from .client import HubClient
from .netenv import ca_locations
from .transfer import Transfer, TransferOptions, check_complete, run_reported

MiB = 1024 * 1024
# obstore hands bodies over in chunks of at least this (it has no time-based flush): small enough
# that a slow but steady body shows progress within the low-speed window (64 KiB a window: a
# body at 2.2 KiB/s, against a 1 KiB/s limit over 30 s); 1 MiB measured no faster here.
_CHUNK = 64 * 1024
_SAMPLE_SECONDS = 0.1
_FOREVER = timedelta(days=365)  # obstore's overall request timeout: pace and read timeout bound it instead
_NO_RETRIES: Any = {
    "max_retries": 0,
    "retry_timeout": timedelta(seconds=1),
    "backoff": {"init_backoff": timedelta(seconds=0.1), "max_backoff": timedelta(seconds=1), "base": 2},
}


class _RequestFailed(Exception):
    """obstore could not get a body's status and headers (the reason is text only)."""


class _RangesIgnored(Exception):
    """A ranged request was answered with the whole body (obstore dropped it unread)."""


def _obstore() -> Any:
    import obstore  # noqa: PLC0415 - imported on first use: `import modelfetch` stays light

    return obstore


class NativeTransfer:
    """The `Engine` on obstore (see the module docstring).

    Args:
        client: headers (the token's scope), statuses, the retry loop, the learning request.
        options: thresholds, chunk size and parallelism, as for the httpx engine.
        httpx: the source's httpx engine; its first ranged request teaches both whether
            the server honours `Range`.
        limiter: bounds the worker threads the engine keeps busy (each blocked, no GIL).
        thread: runs blocking disk calls in the source's worker threads.
    """

    def __init__(
        self,
        client: HubClient,
        options: TransferOptions,
        httpx: Transfer,
        limiter: anyio.CapacityLimiter,
        thread: Thread,
    ) -> None:
        self.client, self.options = client, options
        self._httpx, self._limiter, self._thread = httpx, limiter, thread
        self._config: dict[str, Any] | None = None  # built on first use, in a worker thread
        self._configuring = anyio.Lock()
        self._proxies = ProxyRules.from_env(os.environ)

    async def run(
        self,
        ref: AssetRef,
        meta: FileMetadata,
        partial: PartialBlob,
        start: int,
        progress: ProgressCallback | None,
        *,
        alone: bool = True,
    ) -> int:
        """Fill `partial` from byte `start` to the end, retrying and resuming (see `Engine.run`)."""
        if self._config is None:
            async with self._configuring:  # once per source: reading the CA files takes a while
                if self._config is None:
                    self._config = await anyio.to_thread.run_sync(self._base_config)

        async def attempt(report: Progress) -> None:
            await self._attempt(ref, meta, partial, report, alone)

        return await run_reported(self.client, ref, meta, partial, start, progress, attempt)

    async def _attempt(
        self, ref: AssetRef, meta: FileMetadata, partial: PartialBlob, report: Progress, alone: bool
    ) -> None:
        size = meta.size
        start = await self._thread(partial.attempt_start)
        report.done = start
        if size is not None and start >= size:
            return
        if self._httpx.wants_ranges(partial, size, start, alone):
            if self._httpx.ranges is None:  # learn it from this file's first request, through httpx

                async def fetch_range(first: int, last: int) -> None:
                    await self._range(ref, meta, partial, report, first, last)

                await self._httpx.fetch_body(ref, meta, partial, report, alone, fetch_range)
                return
            assert size is not None
            await self._ranges(ref, meta, partial, report, start, size)
            return
        if start > 0 and self._httpx.ranges is False:  # a resume the server would answer whole
            await self._thread(partial.restart)
            start = report.done = 0
        end = await self._stream(ref, meta, partial, report, start, alone)
        check_complete(ref, end, size)

    async def _ranges(
        self, ref: AssetRef, meta: FileMetadata, partial: PartialBlob, report: Progress, start: int, size: int
    ) -> None:
        async def fetch_range(first: int, last: int) -> None:
            await self._range(ref, meta, partial, report, first, last)

        options = self.options
        await parallel_ranges(
            partial, start, size, options.chunk_size, options.connections, fetch_range, self._thread
        )

    async def _range(
        self, ref: AssetRef, meta: FileMetadata, partial: PartialBlob, report: Progress, first: int, last: int
    ) -> None:
        """Bytes `first..last` of the file into `partial` (one of several parallel ranges)."""
        tally = Tally()
        gate = Gate()
        expected = last - first + 1

        def receive() -> int:
            chunks = self._open(ref, self._store(meta.url), first, last + 1, meta.size)
            tally.answered = True
            return pull(partial, chunks, first, limit=expected, gate=gate, tally=tally, contiguous=False)

        end = await self._watched(ref, meta.url, receive, gate, tally, report)
        if end != last + 1:
            raise Transient(
                "short range", SourceUnavailableError(f"Fetching {ref}: ranges kept ending early.")
            )

    async def _stream(
        self,
        ref: AssetRef,
        meta: FileMetadata,
        partial: PartialBlob,
        report: Progress,
        start: int,
        alone: bool,
    ) -> int:
        """The body from `start` to its end, in one stream, hashed behind the writer."""
        tally = Tally()
        gate = Gate()
        limit = None if meta.size is None else meta.size - start
        # Hashing in a second thread overlaps it with receiving for a file fetched alone; with
        # several files in flight the cores are busy anyway, and the extra threads measured
        # slower (8 x 128 MiB: 688 vs 848 MB/s) with twice the event loop's lag.
        follower = HashFollower(partial, gate) if alone else None

        def receive() -> int:
            try:
                chunks = self._open(ref, self._store(meta.url), start, None, meta.size)
                tally.answered = True
                return pull(partial, chunks, start, limit=limit, gate=gate, tally=tally, follower=follower)
            finally:
                if follower is not None:
                    follower.finish()

        return await self._watched(ref, meta.url, receive, gate, tally, report, follower)

    async def _in_thread(self, func: Callable[[], Any]) -> Any:
        return await in_background(func, self._limiter)

    async def _watched(
        self,
        ref: AssetRef,
        url: str,
        receive: Callable[[], int],
        gate: Gate,
        tally: Tally,
        report: Progress,
        follower: HashFollower | None = None,
    ) -> int:
        """Run `receive` (and `follower`) in worker threads while the loop samples progress and pace.

        The threads are abandoned (and `gate` closed, so nothing more is written) when the
        caller is cancelled, when the body stays below the low-speed limit, or when the
        status line and headers take longer than the read timeout.
        """
        result: list[int] = []
        failures: list[Exception] = []
        slow: list[Transient] = []
        sampling = anyio.CancelScope()

        async def run() -> None:
            try:
                result.append(await self._in_thread(receive))
            except Exception as exc:
                failures.append(exc)
            finally:
                sampling.cancel()

        async def follow(follower: HashFollower) -> None:
            try:
                await self._in_thread(follower.run)
            except Exception as exc:
                failures.append(exc)

        seen = [0]

        async def sample() -> None:
            with sampling:
                await self._sample(tally, report, seen, slow, tg.cancel_scope)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(run)
                tg.start_soon(sample)
                if follower is not None:
                    tg.start_soon(follow, follower)
        except BaseException:
            await self._stop(gate, follower)
            raise
        if slow:
            await self._stop(gate, follower)
            raise slow[0]
        report.advance(tally.value - seen[0])  # what arrived since the last sample
        if failures:
            exc = failures[0]
            if isinstance(exc, _RangesIgnored):
                self._httpx.ranges = False
                stopped = SourceUnavailableError(f"Fetching {ref}: the server stopped honouring ranges.")
                raise Transient("range not honoured", stopped) from None
            if isinstance(exc, _RequestFailed):
                raise await self.client.diagnose(ref, url, str(exc)) from None
            raise exc
        return result[0]

    @staticmethod
    async def _stop(gate: Gate, follower: HashFollower | None) -> None:
        """Let abandoned threads write nothing more, and a waiting follower end."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(gate.close)
        if follower is not None:
            follower.stop()

    async def _sample(
        self, tally: Tally, report: Progress, seen: list[int], slow: list[Transient], scope: anyio.CancelScope
    ) -> None:
        """Every 100 ms: progress for the bytes received since `seen[0]`, and the pace checks."""
        settings = self.client.settings
        pace: LowSpeed | None = None  # its first window starts when the answer arrives
        began = time.monotonic()
        while True:
            await anyio.sleep(_SAMPLE_SECONDS)
            received = tally.value
            if pace is None and tally.answered:
                pace = LowSpeed(settings.low_speed_limit, settings.low_speed_time)
            if pace is None and time.monotonic() - began > settings.download_timeout:
                # A header trickled line by line resets every read timeout: bound the whole.
                reason = f"no answer within {settings.download_timeout:g} s (HF_HUB_DOWNLOAD_TIMEOUT)"
            elif pace is not None and pace.too_slow(received - seen[0]):
                reason = f"the body stayed below the low-speed limit ({pace.describe()})"
            else:
                report.advance(received - seen[0])
                seen[0] = received
                continue
            slow.append(Transient("too slow", SourceUnavailableError(f"Fetching {report.ref}: {reason}.")))
            scope.cancel()
            return

    # ---- obstore, in worker threads -----------------------------------------------------

    def _open(
        self, ref: AssetRef, store: Any, first: int, end: int | None, size: int | None
    ) -> Iterator[Any]:
        """GET `store`'s URL from byte `first` (to `end`, exclusive); its body's chunks."""
        ob = _obstore()
        options: Any = None
        if end is not None:
            options = {"range": (first, end)}
        elif first > 0:
            options = {"range": {"offset": first}}
        try:
            result = ob.get(store, "", options=options)
        except ob.exceptions.NotSupportedError:
            raise _RangesIgnored from None
        except (ob.exceptions.BaseError, OSError) as exc:
            reason = _first_line(exc)
            if options is not None and "Requested" in reason:  # obstore checked the Content-Range
                asked = f"{first}-{'' if end is None else end - 1}"
                reason = f"asked for bytes {asked}, the server sent others ({reason})"
            raise _RequestFailed(reason) from None
        if options is not None:
            self._httpx.ranges = True
        total = result.meta.get("size")
        got = tuple(result.range)  # obstore checked the Content-Range against what was asked
        sent = f"bytes {got[0]}-{got[1] - 1}/{total}" if options is not None else None
        encoding = result.attributes.get("Content-Encoding")
        verdict = judge_body(
            206 if options is not None else 200, sent, encoding, first, None if end is None else end - 1
        )
        if verdict == "encoded":
            raise encoded_body(ref, str(encoding))
        if verdict == "wrong-range":
            other = SourceUnavailableError(f"Fetching {ref}: the server sent other bytes than asked for.")
            raise Transient("wrong range", other)
        # Shorter than the HEAD said: another attempt may agree. Longer: `pull` refuses the excess.
        if size is not None and isinstance(total, int) and total < size:
            other = SourceUnavailableError(f"Fetching {ref}: the server announced {total} bytes, not {size}.")
            raise Transient("wrong length", other)
        return _chunks(ref, result.stream(min_chunk_size=_CHUNK), ob.exceptions.BaseError)

    def _store(self, url: str) -> Any:
        """An obstore HTTP store for exactly `url`: the token only on the endpoint's origin.

        Made in the worker thread: building its client parses the CA certificates (a few ms).
        """
        assert self._config is not None
        config = dict(self._config)
        headers = self.client.headers_for(url)
        if headers:
            config["default_headers"] = headers
        proxy = self._proxies.proxy_for(url)
        if proxy is not None:
            config["proxy_url"] = proxy
        return _obstore().store.HTTPStore.from_url(url, client_options=config, retry_config=_NO_RETRIES)

    def _base_config(self) -> dict[str, Any]:
        """Client options every store shares (reads the CA bundle: call in a worker thread)."""
        settings = self.client.settings
        config: dict[str, Any] = {
            "allow_http": True,  # an http:// endpoint is the user's choice, as for httpx
            "connect_timeout": timedelta(seconds=settings.etag_timeout),
            "read_timeout": timedelta(seconds=settings.download_timeout),
            "timeout": _FOREVER,
            "user_agent": f"modelfetch/{_version}",
            "pool_idle_timeout": timedelta(seconds=30),
        }
        pem = _ca_pem(*ca_locations(os.environ))
        if pem:
            config["root_certificate"] = pem
        return config


def _chunks(ref: AssetRef, stream: Any, errors: type[BaseException]) -> Iterator[Any]:
    """obstore's chunks; a failure mid-body is `Transient` (what arrived is kept: resume there)."""
    chunks = iter(stream)
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except (errors, OSError) as exc:
            dropped = SourceUnavailableError(
                f"Fetching {ref}: the connection failed mid-body ({_first_line(exc)})."
            )
            raise Transient("dropped", dropped) from None
        yield chunk


def _ca_pem(ca_file: str | None, ca_dir: str | None) -> bytes:
    """The certificates the CA variables name, as PEM (certifi's bundle is obstore's default roots)."""
    import certifi  # noqa: PLC0415

    seen = {os.path.realpath(certifi.where())}
    files = [Path(ca_file)] if ca_file else []
    if ca_dir:  # often the same certificates as the bundle, each linked under a hashed name
        files += sorted(p for p in Path(ca_dir).iterdir() if p.suffix in (".pem", ".crt", ".0", ".1"))
    pem = b""
    for path in files:
        real = os.path.realpath(path)
        if real not in seen and os.path.isfile(real):
            seen.add(real)
            pem += Path(real).read_bytes() + b"\n"
    return pem


def _first_line(exc: BaseException) -> str:
    """obstore's error, first line only, without URLs (a signed URL's query is a secret) and
    with terminal controls escaped (it may quote the server's answer)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    words = ["<url>" if "://" in word else word for word in text.split()]
    return printable(" ".join(words)[:200])

"""The native engine: file bodies moved by libcurl off the event loop (`CurlTransfer`).

`CurlTransfer.run` does what `Transfer.run` does (one stream, or parallel ranges for big
files; resume from the watermark; retries through the client's policy; progress), but no
byte passes through the event loop's thread: one receiving thread per source drives a
libcurl multi handle for all its files (`curlloop`), and each file's writer thread puts the
bytes on disk and hashes them (`curljob`). The loop only starts jobs, samples their
progress, and waits for them in a worker thread.

Everything that decides something is shared with the httpx path: `HubClient.headers_for`
(the token only to the endpoint's origin, also after a redirect: redirects are followed
by hand, never by libcurl), `classify` for statuses, `plan_ranges`, `advance_watermark`,
the same `PartialBlob`. Proxies and CA bundles come from the environment variables httpx
reads (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, `SSL_CERT_FILE`,
`SSL_CERT_DIR`, `REQUESTS_CA_BUNDLE`), with certifi's bundle otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import pycurl

from .._core.progress import ProgressCallback, ProgressKind
from .._core.proxies import ProxyRules
from .._core.speed import LowSpeed
from .._core.types import AssetRef
from .._hubapi.spec import FileMetadata
from .._store.partial import PartialBlob
from .client import HubClient
from .curljob import Job, Leg
from .curlloop import Receiver
from .netenv import ca_locations
from .transfer import Progress, TransferOptions

MiB = 1024 * 1024
_BUFFER = MiB  # libcurl's receive buffer per connection
_PROGRESS_SECONDS = 0.1


class CurlTransfer:
    """`Transfer.run` on libcurl (see the module docstring).

    Args:
        client: headers (the token's scope), statuses and the retry loop.
        options: thresholds, chunk size and parallelism, as for the httpx transfer.
        limiter: bounds the files waited for at once (a worker thread each, blocked, no GIL).
    """

    def __init__(self, client: HubClient, options: TransferOptions, limiter: anyio.CapacityLimiter) -> None:
        self.client, self.options = client, options
        self._limiter = limiter
        self._environment = _environment()
        self._receiver = Receiver(self.configure, options.niceness)
        self.ranges_ignored = False  # learnt once per source: this server answers ranges with 200

    def close(self) -> None:
        """Let the receiving thread end once idle."""
        self._receiver.close()

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
        report = Progress(ref, meta.size, progress)
        report.done = start
        report.send(ProgressKind.STARTED)
        url = [meta.url]

        async def attempt() -> None:
            size = meta.size
            report.done = await anyio.to_thread.run_sync(partial.attempt_start, limiter=self._limiter)
            parallel = (
                size is not None
                and not self.ranges_ignored
                and alone
                and partial.resumable
                and size - partial.watermark >= self.options.parallel_threshold
            )
            job = Job(
                ref,
                meta,
                partial,
                url[0],
                parallel=parallel,
                chunk=self.options.chunk_size,
                width=self.options.connections,
                has_token=self.client.has_token,
                read_timeout=self.client.settings.download_timeout,
            )
            try:
                await self._run_job(job, report)
            finally:
                url[0] = job.url
                self.ranges_ignored = self.ranges_ignored or job.ranges_ignored

        try:
            await self.client.retrying(ref, attempt)
        except BaseException:
            report.done = partial.watermark
            report.send(ProgressKind.FAILED)
            raise
        report.done = partial.watermark
        report.send(ProgressKind.FINISHED)
        return partial.watermark

    async def _run_job(self, job: Job, report: Progress) -> None:
        failures: list[BaseException] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_follow_progress, job, report)
            try:
                await anyio.to_thread.run_sync(self._receiver.submit, job, limiter=self._limiter)
                await anyio.to_thread.run_sync(
                    job.finished.wait, limiter=self._limiter, abandon_on_cancel=True
                )
            except Exception as exc:  # the job could not start (its watermark file): raised below
                failures.append(exc)
            except BaseException:  # cancelled: the receiver stops the job within 10 ms
                if job.submitted:  # its threads may still write: wait for them before leaving
                    job.abort.set()
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(job.finished.wait)
                raise
            finally:
                tg.cancel_scope.cancel()
        if job.failure is not None:
            failures.append(job.failure)
        if failures:
            raise failures[0]

    def configure(self, handle: pycurl.Curl, leg: Leg, job: Job) -> None:
        """Set up `handle` for one request of `job` (called in the receiving thread)."""
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
        leg.reset(LowSpeed(settings.low_speed_limit, settings.low_speed_time))
        handle.setopt(pycurl.HEADERFUNCTION, lambda line: job.on_header(leg, line))
        handle.setopt(pycurl.WRITEFUNCTION, lambda data: job.on_body(leg, data))
        for option, value in self._environment.options_for(leg.url):
            handle.setopt(option, value)


async def _follow_progress(job: Job, report: Progress) -> None:
    """Progress events from the job's byte count, sampled on the loop (no cross-thread calls)."""
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

    proxies: ProxyRules
    ca_file: str | None
    ca_dir: str | None

    def options_for(self, url: str) -> list[tuple[int, Any]]:
        """The libcurl options for a request to `url`."""
        options: list[tuple[int, Any]] = []
        # The proxy is decided as on every other path; "" means none, whatever libcurl would read.
        options.append((pycurl.PROXY, self.proxies.proxy_for(url) or ""))
        if self.ca_file:
            options.append((pycurl.CAINFO, self.ca_file))
        if self.ca_dir:
            options.append((pycurl.CAPATH, self.ca_dir))
        return options


def _environment(env: dict[str, str] | None = None) -> _Environment:
    env = dict(os.environ) if env is None else env
    ca_file, ca_dir = ca_locations(env)  # the same CAs as the httpx client
    return _Environment(ProxyRules.from_env(env), ca_file, ca_dir)


def _user_agent() -> str:
    from .._version import __version__  # noqa: PLC0415

    return f"modelfetch/{__version__}"

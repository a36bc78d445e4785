"""Moving one file body from the Hub into a partial blob: streaming, ranges, resume, progress.

The byte path of `HttpHubSource`, behind one call, `Transfer.run` (and `Transfer.read_whole`
for small files): the body streams on the event loop while a writer task puts blocks on
disk in worker threads; large files on servers that honour `Range` come down as parallel
ranges whose out-of-order arrival advances a watermark over the contiguous prefix only
(`advance_watermark`, pure); every failure resumes from the watermark. This is the piece a
native engine can implement again.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, fields
from typing import Protocol

import anyio
import httpx
from anyio.streams.memory import MemoryObjectSendStream

from .._core.errors import IntegrityError, InvalidRequestError, SourceUnavailableError
from .._core.progress import FileProgress as Progress
from .._core.progress import ProgressCallback, ProgressKind
from .._core.retry import Transient
from .._core.speed import LowSpeed
from .._core.types import AssetRef
from .._core.validate import check_positive_int
from .._hubapi.spec import FileMetadata, judge_body
from .._store.partial import PartialBlob
from .._store.pull import RangeFetch, Thread, parallel_ranges
from .bodies import body_chunks
from .client import HubClient

MiB = 1024 * 1024
_WRITE_BLOCK = MiB
_QUEUE_BLOCKS = 3

ENGINES = ("auto", "native", "httpx")
_ENGINE_ALIASES = {"curl": "native"}  # the libcurl engine's name, until the next release


@dataclass(frozen=True, slots=True)
class TransferOptions:
    """How big files are transferred.

    Attributes:
        parallel_threshold: a file fetched alone and at least this big comes down as
            parallel ranges (when `connections` > 1), once the server has shown it honours
            `Range`.
        small_file_limit: files of known size up to this are fetched whole into memory and
            stored in one step (no temporary-file resume for them); 0 turns that off.
        chunk_size: bytes per range request.
        connections: range requests in flight at once for a file fetched alone. 1 (the
            default) fetches every file in one stream: on a fast link one stream is fastest
            (ranges cost a read-back for the hash; see docs/benchmarks.md). Raise it where
            one connection is slow however fast the link is (a throttled CDN far away).
        max_connections: connections the shared httpx client keeps, for all files together.
        engine: what moves bodies larger than `small_file_limit`: "native" (obstore's HTTP
            client, Rust, in worker threads: no body byte passes through the event loop),
            "httpx" (streamed on the event loop, so a custom transport sees them), or "auto":
            native unless a `transport` was given or respx is mocking httpx. Metadata, API
            calls and small files always go through httpx. "curl" (the engine obstore
            replaced) still means "native", with a `DeprecationWarning`.
    """

    parallel_threshold: int = 64 * MiB
    small_file_limit: int = 4 * MiB
    chunk_size: int = 16 * MiB
    connections: int = 1
    max_connections: int = 32
    engine: str = "auto"

    def __post_init__(self) -> None:
        if self.engine in _ENGINE_ALIASES:
            warnings.warn(
                f"TransferOptions(engine={self.engine!r}) is deprecated: the libcurl engine was replaced "
                f"by obstore's; use engine={_ENGINE_ALIASES[self.engine]!r}.",
                DeprecationWarning,
                stacklevel=3,
            )
            object.__setattr__(self, "engine", _ENGINE_ALIASES[self.engine])
        if self.engine not in ENGINES:
            raise InvalidRequestError(
                f"TransferOptions.engine must be one of {', '.join(ENGINES)}, not {self.engine!r}."
            )
        for option in fields(self):
            if option.name == "engine":
                continue
            value = getattr(self, option.name)
            if option.name == "small_file_limit" and value == 0:  # 0: off
                continue
            check_positive_int(f"TransferOptions.{option.name}", value)


def check_complete(ref: AssetRef, end: int, size: int | None) -> None:
    """Raise unless a whole body ended exactly at `size`: shorter is retried, longer is refused."""
    if size is not None and end < size:
        short = SourceUnavailableError(f"Fetching {ref}: the body kept ending early ({end} of {size} bytes).")
        raise Transient("short body", short)
    if size is not None and end > size:
        raise IntegrityError(f"the body is longer than the {size} bytes announced")


def check_range(ref: AssetRef, response: httpx.Response, first: int, last: int | None) -> None:
    """Raise `Transient` unless `response` is a 206 of bytes `first` to at most `last` (None: any)."""
    headers = response.headers
    verdict = judge_body(response.status_code, headers.get("content-range"), None, first, last)
    if verdict == "whole":
        stopped = SourceUnavailableError(f"Fetching {ref}: the server stopped honouring ranges.")
        raise Transient("range not honoured", stopped)
    if verdict != "part":  # a shorter range is followed up by the caller
        sent = headers.get("content-range", "no Content-Range")[:80]
        wrong = SourceUnavailableError(
            f"Fetching {ref}: asked for bytes {first}-{last}, the server sent {sent!r}."
        )
        raise Transient("wrong range", wrong)


class Engine(Protocol):
    """What moves a large body into a partial blob: `Transfer` (httpx) or `NativeTransfer` (obstore)."""

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
        """Fill `partial` from byte `start` to the end, retrying and resuming; the bytes it holds.

        Parallel ranges are for a file fetched `alone`: files fetched at once take one
        stream each (more connections than files only add requests and read-back hashing).
        """
        ...


async def run_reported(
    client: HubClient,
    ref: AssetRef,
    meta: FileMetadata,
    partial: PartialBlob,
    start: int,
    progress: ProgressCallback | None,
    attempt: Callable[[Progress], Awaitable[None]],
) -> int:
    """`Engine.run` around one engine's `attempt`: STARTED, the client's retries (each resuming
    from the watermark), then FINISHED or FAILED; the bytes the partial blob holds."""
    report = Progress(ref, meta.size, progress)
    report.done = start
    report.send(ProgressKind.STARTED)

    def rewind() -> None:  # a retry resumes from the last byte known good
        report.done = partial.watermark

    try:
        await client.retrying(ref, lambda: attempt(report), rewind)
    except BaseException:
        report.send(ProgressKind.FAILED)
        raise
    report.send(ProgressKind.FINISHED)
    return report.done


class Transfer:
    """Runs body transfers for one source on httpx (see the module docstring).

    Args:
        client: opens bodies and retries.
        options: thresholds, chunk size and parallelism.
        pace: a fresh low-speed check per body.
        thread: runs blocking disk calls in the source's worker threads.

    Attributes:
        ranges: whether this source's server honours `Range`: None until a ranged request
            was answered, then whether it was answered with 206 (shared with the native
            engine, which learns from the same answers).
    """

    def __init__(
        self, client: HubClient, options: TransferOptions, pace: Callable[[], LowSpeed], thread: Thread
    ) -> None:
        self._client, self._options, self._pace, self._thread = client, options, pace, thread
        self.ranges: bool | None = None

    async def read_whole(self, ref: AssetRef, meta: FileMetadata, report: Progress) -> bytes:
        """A small body into memory (at most its announced size), retried from the start."""

        async def once() -> bytes:
            body = bytearray()
            report.done = 0
            async with (
                self._client.open_body(ref, meta.url, 0, None) as response,
                aclosing(body_chunks(response, meta.size, self._pace())) as chunks,
            ):
                async for chunk in chunks:
                    body += chunk
                    report.advance(len(chunk))
            check_complete(ref, len(body), meta.size)
            return bytes(body)

        return await self._client.retrying(ref, once)

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

        async def attempt(report: Progress) -> None:
            await self.fetch_body(ref, meta, partial, report, alone)

        return await run_reported(self._client, ref, meta, partial, start, progress, attempt)

    def wants_ranges(self, partial: PartialBlob, size: int | None, start: int, alone: bool) -> bool:
        """Whether the rest of a file is worth parallel ranges (unless the server ignores them)."""
        return (
            alone
            and self._options.connections > 1
            and self.ranges is not False
            and partial.resumable
            and size is not None
            and size - start >= self._options.parallel_threshold
        )

    async def fetch_body(
        self,
        ref: AssetRef,
        meta: FileMetadata,
        partial: PartialBlob,
        report: Progress,
        alone: bool,
        fetch_range: RangeFetch | None = None,
    ) -> None:
        """One attempt at the rest of the body: one stream, or a first range and then parallel ones.

        The first request of a file worth ranges asks for its first chunk only; a 206 shows
        the server honours `Range` and the rest comes as parallel ranges fetched by
        `fetch_range` (this engine's own by default), a 200 is the whole body in this one
        GET. Either answer is remembered in `ranges`.
        """
        start, size = await self._thread(partial.attempt_start), meta.size
        report.done = start
        if size is not None and start >= size:
            return
        parallel = self.wants_ranges(partial, size, start, alone)
        first_last = (
            min(start + self._options.chunk_size, size) - 1 if parallel and size is not None else None
        )
        async with self._client.open_body(ref, meta.url, start, first_last) as response:
            if start > 0 or first_last is not None:
                self.ranges = response.status_code == 206
            if response.status_code == 200 and start > 0:  # the server ignored Range: start over
                await self._thread(partial.restart)
                report.done = start = 0
            elif response.status_code == 206:
                last = first_last if first_last is not None else (size - 1 if size is not None else None)
                check_range(ref, response, start, last)
            ranged = response.status_code == 206 and first_last is not None and size is not None
            expected = (
                (first_last + 1 if ranged and first_last is not None else size) if size is not None else None
            )
            limit = None if expected is None else expected - start
            end = await self._stream_into(response, partial, start, report, contiguous=True, limit=limit)
            if not ranged:
                check_complete(ref, end, size)
                return
        assert size is not None

        async def fetch_here(first: int, last: int) -> None:
            await self._fetch_range(ref, meta, partial, report, first, last)

        chunk, width = self._options.chunk_size, self._options.connections
        await parallel_ranges(partial, end, size, chunk, width, fetch_range or fetch_here, self._thread)

    async def _stream_into(
        self,
        response: httpx.Response,
        partial: PartialBlob,
        offset: int,
        report: Progress,
        *,
        contiguous: bool,
        limit: int | None,
    ) -> int:
        """Write the body at `offset`, at most `limit` bytes; return the offset after the last byte written.

        Reading and writing overlap: the reader queues blocks (a few, so memory stays
        bounded) while a writer task puts them on disk in a worker thread. If the stream
        fails, every byte that arrived is still written before the error is raised, so a
        retry resumes exactly there.
        """
        send, receive = anyio.create_memory_object_stream[tuple[int, bytearray]](_QUEUE_BLOCKS)
        end = offset
        failures: list[Exception] = []

        async def write_all() -> None:
            nonlocal end
            async with receive:
                async for position, data in receive:
                    try:
                        mark = position + len(data) if contiguous else None
                        await self._thread(partial.write_at, position, data, mark)
                    except Exception as exc:
                        failures.append(exc)
                        return  # closing `receive` stops the reader
                    end = position + len(data)
                    report.advance(len(data))

        async with anyio.create_task_group() as tg:
            tg.start_soon(write_all)
            async with send:
                try:
                    async with aclosing(body_chunks(response, limit, self._pace())) as chunks:
                        await _read_blocks(chunks, offset, send)
                except anyio.BrokenResourceError:
                    pass  # the writer failed; its error is in `failures`
                except Exception as exc:
                    failures.append(exc)
        if failures:
            raise failures[0]
        return end

    async def _fetch_range(
        self, ref: AssetRef, meta: FileMetadata, partial: PartialBlob, report: Progress, first: int, last: int
    ) -> None:
        async with self._client.open_body(ref, meta.url, first, last) as response:
            check_range(ref, response, first, last)
            end = await self._stream_into(
                response, partial, first, report, contiguous=False, limit=last - first + 1
            )
        check_range_end(ref, end, last)


def check_range_end(ref: AssetRef, end: int, last: int) -> None:
    """Raise `Transient` unless a range's body ended right after byte `last`."""
    if end != last + 1:
        short = SourceUnavailableError(f"Fetching {ref}: ranges kept ending early.")
        raise Transient("short range", short)


async def _read_blocks(
    chunks: AsyncIterator[bytes], offset: int, send: MemoryObjectSendStream[tuple[int, bytearray]]
) -> None:
    """Queue the body in blocks of `_WRITE_BLOCK` bytes, tagged with their file offset.

    Each block is handed over as is (no copy) and a fresh buffer started.
    """
    buffer = bytearray()
    position = offset
    try:
        async for chunk in chunks:
            buffer += chunk
            if len(buffer) >= _WRITE_BLOCK:
                block, buffer = buffer, bytearray()
                await send.send((position, block))
                position += len(block)
    except Exception:
        if buffer:  # what arrived before the failure is good: keep it
            await send.send((position, buffer))
        raise
    if buffer:
        await send.send((position, buffer))

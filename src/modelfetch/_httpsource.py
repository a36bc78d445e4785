"""`HttpHubSource`: the Hub's download protocol spoken natively over one `httpx.AsyncClient`.

No thread per transfer: bytes are streamed on the event loop and written at offsets by
short worker-thread calls. Large files on servers that honour `Range` come down as
parallel ranges; partial downloads resume (in this or a later process); every blob is
checked against its etag (sha256 for LFS, git sha1 otherwise) before it is published
with an atomic rename, under the same lock file huggingface_hub uses, into the same
cache layout.
"""

from __future__ import annotations

import errno
import hashlib
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, suppress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import httpx
from anyio.abc import AsyncResource
from anyio.streams.memory import MemoryObjectSendStream

from ._deadline import within_deadline
from ._errmap import ErrorContext, to_fetch_error
from ._errors import FetchError, IntegrityError, OfflineError, SourceUnavailableError, StorageError
from ._hfcache import (
    ensure_room,
    find_cached,
)
from ._hubproto import (
    RETRYABLE_STATUS,
    FileMetadata,
    check_listing,
    checked_commit,
    commit_from_revision_info,
    decode_json,
    error_for_status,
    files_from_tree_page,
    metadata_from_headers,
    not_hub_json,
    parse_content_range,
    parse_retry_after,
    plan_ranges,
    redirect_target,
    resolve_url,
    revision_url,
    safe_blob_name,
    same_origin,
    tree_url,
)
from ._partial import PartialBlob
from ._progress import ProgressCallback, ProgressEvent, ProgressKind, emit
from ._retry import RetryPolicy
from ._settings import Settings
from ._speed import LowSpeed
from ._store import BlobStore
from ._types import AssetRef, Origin, RepoFile, RepoListing, RepoRef, ResolvedAsset
from ._validate import check_instance, check_positive_int
from ._version import __version__ as _version

MiB = 1024 * 1024
_T = TypeVar("_T")
_MAX_REDIRECTS = 5
_WRITE_BLOCK = MiB
_QUEUE_BLOCKS = 3
_KNOWN_COMMITS = 64
_PROGRESS_BYTES = MiB
_PROGRESS_SECONDS = 0.1
MAX_PAGES = 10_000
_MAX_API_BODY = 32 * MiB


@dataclass(frozen=True, slots=True)
class TransferOptions:
    """How big files are transferred.

    Attributes:
        parallel_threshold: files at least this big use parallel ranges (when the server
            honours `Range`).
        small_file_limit: files of known size up to this are fetched whole into memory and
            stored in one step (no temporary-file resume for them); 0 turns that off.
        chunk_size: bytes per range request.
        connections: range requests in flight at once per file.
        max_connections: connections the shared client keeps, for all files together.
    """

    parallel_threshold: int = 64 * MiB
    small_file_limit: int = 4 * MiB
    chunk_size: int = 16 * MiB
    connections: int = 4
    max_connections: int = 32

    def __post_init__(self) -> None:
        for option in fields(self):
            value = getattr(self, option.name)
            if option.name == "small_file_limit" and value == 0:  # 0: no file takes the in-memory path
                continue
            check_positive_int(f"TransferOptions.{option.name}", value)


class _Retry(Exception):
    """A transient failure: try again after backing off (resuming where we were)."""

    def __init__(self, reason: str, final: FetchError, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.final = final
        self.retry_after = retry_after


class _Progress:
    """Rate-limited progress events for one file (at most every 1 MiB or 100 ms)."""

    def __init__(self, ref: AssetRef, total: int | None, callback: ProgressCallback | None) -> None:
        self.ref, self.total, self.callback = ref, total, callback
        self.done = 0
        self._sent_bytes = 0
        self._sent_at = 0.0

    def send(self, kind: ProgressKind) -> None:
        self._sent_bytes, self._sent_at = self.done, time.monotonic()
        emit(self.callback, ProgressEvent(kind, self.ref, self.done, self.total))

    def advance(self, n: int) -> None:
        self.done += n
        if self.callback is not None and (
            self.done - self._sent_bytes >= _PROGRESS_BYTES
            or time.monotonic() - self._sent_at >= _PROGRESS_SECONDS
        ):
            self.send(ProgressKind.ADVANCED)


class HttpHubSource(AsyncResource):
    """Fetch from the Hub with a native async HTTP client (httpx).

    Args:
        settings: where and how to fetch; `Settings.from_env()` when omitted.
        transport: an `httpx.AsyncBaseTransport` to send requests through (tests pass
            `httpx.MockTransport`); the default network transport when omitted.
        retry: the retry policy for connection errors, timeouts, 408, 429 and 5xx.
        options: parallel-range settings for large files.
        sleep: how to wait between attempts (tests pass a fake).

    Example:
        ```python
        async with modelfetch.HttpHubSource() as hub:
            path = await modelfetch.fetch("org/model", "model.safetensors", source=hub)
        ```
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        options: TransferOptions | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.settings = check_instance("settings", settings, Settings) or Settings.from_env()
        self.retry = check_instance("retry", retry, RetryPolicy) or RetryPolicy()
        self.options = check_instance("options", options, TransferOptions) or TransferOptions()
        check_instance("transport", transport, httpx.AsyncBaseTransport)
        self._store = BlobStore(self.settings.hub_cache, self.settings.lock_timeout)
        self._layout = self._store.layout
        self._disk = anyio.CapacityLimiter(16)
        self._sleep = sleep
        # Files seen in commit-pinned listings: a pinned ref among them needs no HEAD.
        self._known: OrderedDict[tuple[str, str, str], dict[str, RepoFile]] = OrderedDict()
        timeout = httpx.Timeout(self.settings.download_timeout, connect=self.settings.etag_timeout)
        limits = httpx.Limits(
            max_connections=self.options.max_connections,
            max_keepalive_connections=self.options.max_connections,
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            limits=limits,
            follow_redirects=False,
            headers={"user-agent": f"modelfetch/{_version}", "accept-encoding": "identity"},
        )

    def __repr__(self) -> str:
        return f"HttpHubSource(endpoint={self.settings.endpoint!r}, cache={str(self.settings.hub_cache)!r})"

    async def aclose(self) -> None:
        """Close the shared HTTP client."""
        await self._client.aclose()

    # ---- the protocol ----------------------------------------------------------------

    async def resolve(self, ref: AssetRef, *, progress: ProgressCallback | None = None) -> ResolvedAsset:
        """Download `ref` into the Hugging Face cache (or find it there); see `ModelAssetSource`."""
        try:
            return await within_deadline(self.settings.deadline, ref, lambda: self._resolve(ref, progress))
        except FetchError:
            raise
        except Exception as exc:
            raise to_fetch_error(exc, self._context(ref)) from exc

    async def list_files(self, repo: RepoRef) -> RepoListing:
        """List `repo` at the commit its revision points to now; see `ModelAssetSource`."""
        return await within_deadline(self.settings.deadline, repo, lambda: self._list_files(repo))

    async def _list_files(self, repo: RepoRef) -> RepoListing:
        if self.settings.offline:
            raise OfflineError(
                f"Listing {repo}: offline mode is on; wrap this source in CachedSource to list the cache."
            )
        endpoint = self.settings.endpoint
        try:
            commit = repo.revision
            if not repo.is_pinned:
                url, info = await self._api(revision_url(endpoint, repo), repo)
                commit = commit_from_revision_info(info, endpoint=endpoint, what=repo, url=url)
                await self._thread(self._store.record_ref, repo, repo.revision, commit)
            files: list[RepoFile] = []
            seen: set[str] = set()
            page: str | None = tree_url(endpoint, repo, commit)
            while page is not None:
                if page in seen or len(seen) >= MAX_PAGES:
                    raise not_hub_json(endpoint, repo, page, "a listing that never ends (a page repeats)")
                seen.add(page)
                url, payload, following = await self._api_page(page, repo)
                files.extend(files_from_tree_page(payload, endpoint=endpoint, what=repo, url=url))
                page = redirect_target(url, following) if following else None
            check_listing(files, endpoint=endpoint, what=repo, url=tree_url(endpoint, repo, commit))
        except FetchError:
            raise
        except Exception as exc:
            raise to_fetch_error(exc, self._context(repo)) from exc
        self._known[(repo.repo_type, repo.repo_id, commit)] = {f.path: f for f in files}
        while len(self._known) > _KNOWN_COMMITS:
            self._known.popitem(last=False)
        return RepoListing(repo, commit, tuple(sorted(files, key=lambda f: f.path)))

    def _listed(self, ref: AssetRef) -> FileMetadata | None:
        """Metadata from a listing of `ref`'s commit, when it is pinned and was listed."""
        if not ref.is_pinned:
            return None
        entry = self._known.get((ref.repo_type, ref.repo_id, ref.revision), {}).get(ref.filename)
        if entry is None:
            return None
        return FileMetadata(ref.revision, entry.etag, entry.size, resolve_url(self.settings.endpoint, ref))

    # ---- resolve ---------------------------------------------------------------------

    def _context(self, what: AssetRef | RepoRef) -> ErrorContext:
        return ErrorContext(what, offline=self.settings.offline, has_token=self.settings.token is not None)

    async def _thread(self, func: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(func, *args, limiter=self._disk)

    async def _resolve(self, ref: AssetRef, progress: ProgressCallback | None) -> ResolvedAsset:
        if ref.is_pinned or self.settings.offline:
            cached = await self._thread(find_cached, self._layout, ref)
            if cached is not None:
                return ResolvedAsset(ref, cached.path, cached.commit, cached.size, cached.etag, Origin.DISK)
            if self.settings.offline:
                raise OfflineError(
                    f"Fetching {ref}: offline mode is on and the file is not in the local cache; "
                    "unset HF_HUB_OFFLINE or fetch it once while online."
                )
        meta = self._listed(ref) or await self._metadata(ref)
        etag = safe_blob_name(meta.etag)
        found: ResolvedAsset | None = await self._thread(self._prepare, ref, meta, etag)
        if found is not None:
            return found
        if etag is not None and meta.size is not None and meta.size <= self.options.small_file_limit:
            return await self._download_small(ref, meta, etag, progress)
        return await self._download(ref, meta, etag, progress)

    def _prepare(self, ref: AssetRef, meta: FileMetadata, etag: str | None) -> ResolvedAsset | None:
        """Record the ref; if the blob is already cached, link it and describe it (one thread hop)."""
        self._store.record_ref(ref, ref.revision, meta.commit)
        return None if etag is None else self._store.link_existing(ref, meta.commit, etag)

    async def _download_small(
        self, ref: AssetRef, meta: FileMetadata, etag: str, progress: ProgressCallback | None
    ) -> ResolvedAsset:
        report = _Progress(ref, meta.size, progress)
        report.send(ProgressKind.STARTED)

        async def once() -> bytes:
            body = bytearray()
            report.done = 0
            async with (
                self._open_body(ref, meta.url, 0, None) as response,
                aclosing(_body_chunks(response, meta.size, self._pace())) as chunks,
            ):
                async for chunk in chunks:
                    body += chunk
                    report.advance(len(chunk))
            self._check_complete(ref, len(body), meta.size)
            return bytes(body)

        try:
            try:
                data = await self._retrying(ref, once)
                pointer = await self._thread(self._store.store_small, ref, meta.commit, etag, data)
            except IntegrityError as exc:
                raise IntegrityError(f"Fetching {ref}: {exc}; nothing was published, retry.") from None
        except BaseException:
            report.send(ProgressKind.FAILED)
            raise
        report.done = len(data)
        report.send(ProgressKind.FINISHED)
        return ResolvedAsset(ref, pointer, meta.commit, len(data), etag, Origin.NETWORK)

    async def _metadata(self, ref: AssetRef) -> FileMetadata:
        endpoint = self.settings.endpoint
        url = resolve_url(endpoint, ref)
        for _ in range(_MAX_REDIRECTS):
            response = await self._request("HEAD", url, ref, allow_status=True)
            location = response.headers.get("location")
            if response.is_redirect and location:
                target = redirect_target(url, location)
                if same_origin(target, endpoint):
                    url = target
                    continue
            if response.is_redirect and not location:
                raise SourceUnavailableError(
                    f"Fetching {ref}: {endpoint} answered HTTP {response.status_code} without a Location; "
                    "check that HF_ENDPOINT is a Hub-compatible server."
                )
            if response.is_redirect or response.is_success:
                meta = metadata_from_headers(
                    response.headers, url=url, endpoint=endpoint, ref=ref, redirected=response.is_redirect
                )
                if meta is None:
                    raise SourceUnavailableError(
                        f"Fetching {ref}: the answer from {endpoint} has no X-Repo-Commit header, "
                        "so it does not look like a Hub endpoint; check HF_ENDPOINT."
                    )
                return meta
            error = error_for_status(response.status_code, response.headers, ref, has_token=self._has_token)
            commit = response.headers.get("x-repo-commit")
            if response.headers.get("x-error-code") == "EntryNotFound" and commit:
                pinned = ref.revision if ref.is_pinned else None
                commit = checked_commit(commit, endpoint=endpoint, what=ref, pinned=pinned)
                await self._thread(self._store.record_missing, ref, ref.revision, commit)
            raise error
        raise SourceUnavailableError(f"Fetching {ref}: more than {_MAX_REDIRECTS} redirects.")

    @property
    def _has_token(self) -> bool:
        return self.settings.token is not None

    def _headers_for(self, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.settings.token is not None and same_origin(url, self.settings.endpoint):
            headers["authorization"] = f"Bearer {self.settings.token}"
        return headers

    # ---- small requests with retries -------------------------------------------------

    async def _request(
        self, method: str, url: str, what: AssetRef | RepoRef, *, allow_status: bool = False
    ) -> httpx.Response:
        async def once() -> httpx.Response:
            request = self._client.build_request(method, url, headers=self._headers_for(url))
            response = await _read_capped(await self._client.send(request, stream=True), _MAX_API_BODY)
            if response.status_code in RETRYABLE_STATUS:
                raise _Retry(
                    f"HTTP {response.status_code}",
                    error_for_status(response.status_code, response.headers, what, has_token=self._has_token),
                    parse_retry_after(response.headers.get("retry-after"), time.time()),
                )
            if not allow_status and response.is_error:
                raise error_for_status(
                    response.status_code, response.headers, what, has_token=self._has_token
                )
            return response

        return await self._retrying(what, once)

    async def _retrying(
        self,
        what: AssetRef | RepoRef,
        once: Callable[[], Awaitable[_T]],
        after_failure: Callable[[], None] | None = None,
    ) -> _T:
        """Call `once` until it succeeds, backing off after transient failures per the policy."""
        started, attempt = time.monotonic(), 0
        while True:
            try:
                return await once()
            except httpx.TransportError as exc:
                failure = _Retry(str(exc), to_fetch_error(exc, self._context(what)))
            except _Retry as exc:
                failure = exc
            attempt += 1
            await self._back_off(failure, attempt, started)
            if after_failure is not None:
                after_failure()

    async def _back_off(self, failure: _Retry, attempt: int, started: float) -> None:
        delay = self.retry.delay(attempt, time.monotonic() - started, failure.retry_after)
        if delay is None:
            raise failure.final
        await self._sleep(delay)

    async def _api(self, url: str, what: AssetRef | RepoRef) -> tuple[str, Any]:
        """GET an API URL: the final URL and its parsed JSON (see `_api_page`)."""
        final, payload, _ = await self._api_page(url, what)
        return final, payload

    async def _api_page(self, url: str, what: AssetRef | RepoRef) -> tuple[str, Any, str | None]:
        """GET an API URL, following redirects (bounded; the token only to the endpoint's origin).

        Returns the final URL, its parsed JSON and its `Link: rel="next"` URL, if any; an
        answer that is not JSON is a `SourceUnavailableError` saying what came back.
        """
        for _ in range(_MAX_REDIRECTS):
            response = await self._request("GET", url, what)
            location = response.headers.get("location")
            if response.is_redirect and location:
                url = redirect_target(url, location)
                continue
            payload = decode_json(
                response.content,
                response.headers.get("content-type", ""),
                endpoint=self.settings.endpoint,
                what=what,
                url=url,
            )
            return url, payload, response.links.get("next", {}).get("url")
        raise SourceUnavailableError(f"Listing {what}: more than {_MAX_REDIRECTS} redirects from {url}.")

    # ---- the transfer ----------------------------------------------------------------

    async def _download(
        self, ref: AssetRef, meta: FileMetadata, etag: str | None, progress: ProgressCallback | None
    ) -> ResolvedAsset:
        name = etag if etag is not None else f"unnamed-{uuid.uuid4().hex}"
        lock = self._store.lock(ref, name)
        await self._thread(self._store.acquire, lock)
        try:
            if etag is not None:  # another process may have finished it meanwhile
                found: ResolvedAsset | None = await self._thread(
                    self._store.link_existing, ref, meta.commit, etag
                )
                if found is not None:
                    return found
            partial = await self._thread(self._store.partial, ref, name, etag or "", meta.size)
            start = await self._thread(partial.open)
            try:
                if meta.size is not None:
                    await self._thread(ensure_room, partial.blob.parent, meta.size - start, ref)
                size = await self._transfer(ref, meta, partial, start, progress)
                await self._thread(partial.verify)
            except IntegrityError as exc:
                with anyio.CancelScope(shield=True):
                    await self._thread(partial.discard)
                raise IntegrityError(f"Fetching {ref}: {exc}; nothing was published, retry.") from None
            except OSError as exc:
                if exc.errno == errno.ENOSPC:  # keeping partial data on a full disk only makes it worse
                    with anyio.CancelScope(shield=True):
                        await self._thread(partial.discard)
                    raise StorageError(
                        f"Fetching {ref}: the disk is full ({self.settings.hub_cache}); nothing was "
                        "published and the partial download was removed. Free space and retry."
                    ) from exc
                with anyio.CancelScope(shield=True):
                    await self._thread(partial.close)
                raise
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._thread(partial.close)  # keep it: the next attempt resumes
                raise
            return await self._publish(ref, meta, partial, etag, size)
        finally:
            with anyio.CancelScope(shield=True):
                await self._thread(lock.release)

    async def _publish(
        self, ref: AssetRef, meta: FileMetadata, partial: PartialBlob, etag: str | None, size: int
    ) -> ResolvedAsset:
        with anyio.CancelScope(shield=True):  # a finished, verified blob is never thrown away
            # Without a usable etag the blob is named by the sha256 we compute.
            name: str = etag if etag is not None else await self._thread(_sha256_of, partial.path)
            pointer = await self._thread(self._store.publish, partial, ref, meta.commit, name)
        return ResolvedAsset(ref, pointer, meta.commit, size, name, Origin.NETWORK)

    async def _transfer(
        self,
        ref: AssetRef,
        meta: FileMetadata,
        partial: PartialBlob,
        start: int,
        progress: ProgressCallback | None,
    ) -> int:
        report = _Progress(ref, meta.size, progress)
        report.done = start
        report.send(ProgressKind.STARTED)

        def rewind() -> None:  # a retry resumes from the last byte known good
            report.done = partial.watermark

        try:
            await self._retrying(ref, lambda: self._fetch_body(ref, meta, partial, report), rewind)
        except BaseException:
            report.send(ProgressKind.FAILED)
            raise
        report.send(ProgressKind.FINISHED)
        return report.done

    async def _fetch_body(
        self, ref: AssetRef, meta: FileMetadata, partial: PartialBlob, report: _Progress
    ) -> None:
        start, size = partial.watermark, meta.size
        if size is not None and start >= size:
            return
        parallel = size is not None and size - start >= self.options.parallel_threshold
        first_last = min(start + self.options.chunk_size, size) - 1 if parallel and size is not None else None
        async with self._open_body(ref, meta.url, start, first_last) as response:
            if response.status_code == 200 and start > 0:  # the server ignored Range: start over
                await self._thread(partial.restart)
                report.done = start = 0
            elif response.status_code == 206:
                last = first_last if first_last is not None else (size - 1 if size is not None else None)
                _check_range(ref, response, start, last)
            ranged = response.status_code == 206 and first_last is not None and size is not None
            expected = (
                (first_last + 1 if ranged and first_last is not None else size) if size is not None else None
            )
            limit = None if expected is None else expected - start
            end = await self._stream_into(response, partial, start, report, contiguous=True, limit=limit)
            if not ranged:
                self._check_complete(ref, end, size)
                return
        assert size is not None
        await self._parallel(ref, meta, partial, end, size, report)

    def _check_complete(self, ref: AssetRef, end: int, size: int | None) -> None:
        if size is not None and end < size:
            raise _Retry(
                "short body",
                SourceUnavailableError(
                    f"Fetching {ref}: the body kept ending early ({end} of {size} bytes)."
                ),
            )
        if size is not None and end > size:
            raise IntegrityError(f"the body is longer than the {size} bytes announced")

    def _pace(self) -> LowSpeed:
        return LowSpeed(self.settings.low_speed_limit, self.settings.low_speed_time)

    def _open_body(self, ref: AssetRef, url: str, start: int, last: int | None) -> _BodyStream:
        return _BodyStream(self, ref, url, start, last)

    async def _stream_into(
        self,
        response: httpx.Response,
        partial: PartialBlob,
        offset: int,
        report: _Progress,
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
                    async with aclosing(_body_chunks(response, limit, self._pace())) as chunks:
                        await _read_blocks(chunks, offset, send)
                except anyio.BrokenResourceError:
                    pass  # the writer failed; its error is in `failures`
                except Exception as exc:
                    failures.append(exc)
        if failures:
            raise failures[0]
        return end

    async def _parallel(
        self,
        ref: AssetRef,
        meta: FileMetadata,
        partial: PartialBlob,
        start: int,
        size: int,
        report: _Progress,
    ) -> None:
        pending = plan_ranges(start, size, self.options.chunk_size)
        count = -(-(size - start) // self.options.chunk_size)
        partial.inline_hash = False  # writes now land out of order; hash_through follows the watermark
        done: set[int] = set()
        watermark = start
        marking = anyio.Lock()
        failures: list[BaseException] = []

        async def advance(first: int) -> None:
            nonlocal watermark
            done.add(first)
            async with marking:  # one watermark write at a time, in order
                moved = watermark
                while moved in done:
                    done.discard(moved)
                    moved = min(moved + self.options.chunk_size, size)
                if moved != watermark:
                    watermark = moved
                    await self._thread(partial.set_watermark, moved)
                    tg.start_soon(hash_through, moved)  # overlap hashing with the transfer

        async def hash_through(upto: int) -> None:
            try:
                await self._thread(partial.hash_through, upto)
            except Exception as exc:
                failures.append(exc)
                tg.cancel_scope.cancel()

        async def fetch_range(first: int, last: int) -> None:
            async with self._open_body(ref, meta.url, first, last) as response:
                _check_range(ref, response, first, last)
                end = await self._stream_into(
                    response, partial, first, report, contiguous=False, limit=last - first + 1
                )
            if end != last + 1:
                short = SourceUnavailableError(f"Fetching {ref}: ranges kept ending early.")
                raise _Retry("short range", short)
            await advance(first)

        async def worker() -> None:
            while not failures and (span := next(pending, None)) is not None:
                first, last = span
                try:
                    await fetch_range(first, last)
                except Exception as exc:  # the first failure stops every worker
                    failures.append(exc)
                    tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            for _ in range(min(self.options.connections, count)):
                tg.start_soon(worker)
        if failures:
            raise failures[0]


async def _read_capped(response: httpx.Response, cap: int) -> httpx.Response:
    """A streamed small (metadata or API) answer, read whole; more than `cap` bytes is refused."""
    body = bytearray()
    try:
        async with aclosing(_body_chunks(response, None, LowSpeed(0, 1.0))) as chunks:
            async for chunk in chunks:
                body += chunk
                if len(body) > cap:
                    raise SourceUnavailableError(
                        f"{response.request.url} answered with more than {cap} bytes; "
                        "no Hub metadata or listing page is that large."
                    )
    finally:
        await response.aclose()
    headers = response.headers.copy()
    headers.pop("content-encoding", None)  # `body` is decoded already
    return httpx.Response(
        response.status_code, headers=headers, content=bytes(body), request=response.request
    )


def _check_range(ref: AssetRef, response: httpx.Response, first: int, last: int | None) -> None:
    """Raise `_Retry` unless `response` is a 206 of bytes from `first` to at most `last` (any end if None)."""
    if response.status_code != 206:
        raise _Retry(
            "range not honoured",
            SourceUnavailableError(f"Fetching {ref}: the server stopped honouring ranges."),
        )
    span = parse_content_range(response.headers.get("content-range"))
    # It must start where asked and end no later; a shorter range is followed up by the caller.
    if span is None or span[0] != first or (last is not None and span[1] > last):
        sent = response.headers.get("content-range", "no Content-Range")
        wrong = SourceUnavailableError(
            f"Fetching {ref}: asked for bytes {first}-{last}, the server sent {sent!r}."
        )
        raise _Retry("wrong range", wrong)


async def _body_chunks(
    response: httpx.Response, limit: int | None, pace: LowSpeed
) -> AsyncGenerator[bytes, None]:
    """The body's bytes, at most `limit` of them, at least at the pace.

    Never decoded: `_BodyStream` refuses any `Content-Encoding` before a byte is read.
    A body that runs past `limit` yields exactly `limit` bytes and then raises
    `IntegrityError`; one that stays below the low-speed limit raises `_Retry`.
    """
    chunks = response.aiter_bytes()
    received = 0
    finished = False
    try:
        async for chunk in chunks:
            received += len(chunk)
            if limit is not None and received > limit:
                keep = len(chunk) - (received - limit)
                if keep:
                    yield chunk[:keep]
                raise IntegrityError(f"the body is longer than the {limit} bytes announced")
            if pace.too_slow(len(chunk)):
                slow = SourceUnavailableError(
                    f"the body stayed below the low-speed limit ({pace.describe()})"
                )
                raise _Retry("too slow", slow)
            yield chunk
        finished = True
    finally:
        if not finished:
            await _drain(response, chunks)


async def _drain(response: httpx.Response, chunks: AsyncIterator[bytes]) -> None:
    """Close a body we stop reading early, and run httpx's nested generators to their end.

    httpx does not close its inner body generators when the outer one is closed; left to the
    garbage collector, trio reports each as a ResourceWarning. With the connection closed
    they end at once.
    """
    with anyio.CancelScope(shield=True):
        await response.aclose()
        with suppress(Exception):
            async for _ in chunks:
                pass


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


class _BodyStream:
    """`async with` a GET of `url` from `start` (to `last`), redirects followed by hand.

    Raises `_Retry` for retryable statuses and the final error for the others.
    """

    def __init__(self, source: HttpHubSource, ref: AssetRef, url: str, start: int, last: int | None) -> None:
        self._source, self._ref, self._url = source, ref, url
        self._range = (
            f"bytes={start}-{'' if last is None else last}" if start > 0 or last is not None else None
        )
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        source, url = self._source, self._url
        extra = {"range": self._range} if self._range else {}
        for _ in range(_MAX_REDIRECTS):
            request = source._client.build_request("GET", url, headers=source._headers_for(url, extra))
            response = await source._client.send(request, stream=True)
            location = response.headers.get("location")
            if response.is_redirect and location:
                await response.aclose()
                url = redirect_target(url, location)
                continue
            if (
                not response.is_success
                and response.status_code not in RETRYABLE_STATUS
                and not response.is_error
            ):
                await response.aclose()  # a 3xx without Location, a 1xx: not a body
                raise SourceUnavailableError(
                    f"Fetching {self._ref}: the server answered HTTP {response.status_code} "
                    f"{'without a Location' if response.is_redirect else 'instead of the file'}."
                )
            if response.status_code in RETRYABLE_STATUS or response.is_error:
                await response.aclose()
                error = error_for_status(
                    response.status_code, response.headers, self._ref, has_token=source._has_token
                )
                if response.status_code in RETRYABLE_STATUS:
                    raise _Retry(
                        f"HTTP {response.status_code}",
                        error,
                        parse_retry_after(response.headers.get("retry-after"), time.time()),
                    )
                raise error
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                await response.aclose()
                raise SourceUnavailableError(
                    f"Fetching {self._ref}: the server sent the file with Content-Encoding "
                    f"{encoding[:40]!r} although identity was asked for; nothing was written."
                )
            self._response = response
            return response
        raise SourceUnavailableError(f"Fetching {self._ref}: more than {_MAX_REDIRECTS} redirects.")

    async def __aexit__(self, *exc: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 * MiB):
            digest.update(block)
    return digest.hexdigest()

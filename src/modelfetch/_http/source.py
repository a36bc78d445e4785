"""`HttpHubSource`: the Hub's download protocol spoken natively, as a thin orchestrator.

    resolve(ref) ─ on disk already (pinned / offline)?             → the cached file
               ├─ metadata: a pinned listing we made, else a HEAD  (HubClient)
               ├─ the blob stored already?                          → link it (BlobStore)
               ├─ small: read whole, verify, store in one call      (Transfer, BlobStore)
               └─ large: lock → partial → engine (ranges, resume) → verify → publish

The engine for large bodies is obstore's HTTP client in worker threads (`NativeTransfer`)
or httpx on the event loop (`Transfer`), per `TransferOptions.engine`. Every blob is checked against its
etag (sha256 for LFS, git sha1 otherwise) before it is published, under the lock file
huggingface_hub uses, into the same cache layout.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
from anyio.abc import AsyncResource

from .._core.deadline import within_deadline
from .._core.errors import (
    FetchError,
    IntegrityError,
    OfflineError,
    StorageError,
    offline_miss,
)
from .._core.force import force_requested
from .._core.lru import Lru
from .._core.mocking import http_mocked
from .._core.progress import FileProgress, ProgressCallback, ProgressEvent, ProgressKind, emit
from .._core.retry import RetryPolicy
from .._core.settings import Settings
from .._core.speed import LowSpeed
from .._core.types import AssetRef, ListedFile, Origin, RepoListing, RepoRef, ResolvedAsset
from .._core.validate import check_instance
from .._hubapi.errmap import to_fetch_error
from .._hubapi.spec import FileMetadata, resolve_url, safe_blob_name
from .._store.blobstore import BlobStore
from .._store.layout import CachedFile, ensure_room, find_cached
from .._store.partial import PartialBlob
from .client import HubClient
from .native import NativeTransfer
from .transfer import Engine, Transfer, TransferOptions

MiB = 1024 * 1024
_KNOWN_COMMITS = 64
_ENGINE_THREADS = 64  # threads the native engine keeps blocked in obstore at once (no GIL held)
log = logging.getLogger("modelfetch.http")


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
        self._disk = anyio.CapacityLimiter(16)
        # Files seen in commit-pinned listings: a pinned ref among them needs no HEAD.
        self._known: Lru[tuple[str, str, str], dict[str, ListedFile]] = Lru(_KNOWN_COMMITS)
        self._client = HubClient(
            self.settings,
            retry=self.retry,
            sleep=sleep,
            transport=transport,
            max_connections=self.options.max_connections,
        )
        self._transfer = Transfer(self._client, self.options, self._pace, self._thread)
        self._engine: Engine = self._pick_engine(transport)
        self._resolving = 0  # files being resolved right now

    def __repr__(self) -> str:
        return f"HttpHubSource(endpoint={self.settings.endpoint!r}, cache={str(self.settings.hub_cache)!r})"

    @property
    def engine(self) -> str:
        """What moves large bodies: "native" or "httpx" (see `TransferOptions.engine`)."""
        return "httpx" if self._engine is self._transfer else "native"

    def _pick_engine(self, transport: httpx.AsyncBaseTransport | None) -> Engine:
        wanted = self.options.engine
        if wanted == "httpx" or (wanted == "auto" and transport is not None):
            return self._transfer
        limiter = anyio.CapacityLimiter(_ENGINE_THREADS)
        return NativeTransfer(self._client, self.options, self._transfer, limiter, self._thread)

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
            raise to_fetch_error(exc, self._client.context(ref)) from exc

    async def list_files(self, repo: RepoRef) -> RepoListing:
        """List `repo` at the commit its revision points to now; see `ModelAssetSource`."""
        return await within_deadline(self.settings.deadline, repo, lambda: self._list_files(repo))

    async def _list_files(self, repo: RepoRef) -> RepoListing:
        if self.settings.offline:
            raise OfflineError(
                f"Listing {repo}: offline mode is on; wrap this source in CachedSource to list the cache."
            )
        try:
            commit = await self._client.commit_of(repo)
            await self._thread(self._store.record_ref, repo, repo.revision, commit)
            files = await self._client.tree(repo, commit)
        except FetchError:
            raise
        except Exception as exc:
            raise to_fetch_error(exc, self._client.context(repo)) from exc
        self._known.put((repo.repo_type, repo.repo_id, commit), {f.path: f for f in files})
        return RepoListing(repo, commit, tuple(sorted(files, key=lambda f: f.path)))

    def _listed(self, ref: AssetRef) -> FileMetadata | None:
        """Metadata from a listing of `ref`'s commit, when it is pinned and was listed."""
        if not ref.is_pinned:
            return None
        entry = (self._known.get((ref.repo_type, ref.repo_id, ref.revision)) or {}).get(ref.filename)
        if entry is None:
            return None
        return FileMetadata(ref.revision, entry.etag, entry.size, resolve_url(self.settings.endpoint, ref))

    # ---- resolve ---------------------------------------------------------------------

    async def _thread(self, func: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(func, *args, limiter=self._disk)

    def _pace(self) -> LowSpeed:
        return LowSpeed(self.settings.low_speed_limit, self.settings.low_speed_time)

    async def _resolve(self, ref: AssetRef, progress: ProgressCallback | None) -> ResolvedAsset:
        self._resolving += 1  # files asked for at once share the connections (see `Engine.run`)
        try:
            return await self._resolve_one(ref, progress)
        finally:
            self._resolving -= 1

    async def _resolve_one(self, ref: AssetRef, progress: ProgressCallback | None) -> ResolvedAsset:
        forced = force_requested()  # download again, whatever the cache holds
        listed = None if self.settings.offline else self._listed(ref)
        if listed is not None:  # a snapshot's file: the disk and the listing, in one thread hop
            meta, etag = listed, safe_blob_name(listed.etag)
            found: ResolvedAsset | None = await self._thread(self._cached_or_prepare, ref, meta, etag, forced)
        else:
            if (ref.is_pinned or self.settings.offline) and not forced:
                cached = await self._thread(find_cached, self._store.layout, ref)
                if cached is not None:
                    return _from_disk(ref, cached)
                if self.settings.offline:
                    raise offline_miss(ref, self.settings.hub_cache)

            async def missing(commit: str) -> None:
                await self._thread(self._store.record_missing, ref, ref.revision, commit)

            meta = await self._client.metadata(ref, missing)
            etag = safe_blob_name(meta.etag)
            found = await self._thread(self._prepare, ref, meta, etag, forced)
        if found is not None:
            return found
        if etag is not None and meta.size is not None and meta.size <= self.options.small_file_limit:
            return await self._download_small(ref, meta, etag, progress, forced)
        return await self._download(ref, meta, etag, progress, forced)

    def _cached_or_prepare(
        self, ref: AssetRef, meta: FileMetadata, etag: str | None, forced: bool
    ) -> ResolvedAsset | None:
        """`find_cached`, then `_prepare` on a miss: what a listed file needs, in one thread hop."""
        cached = None if forced else find_cached(self._store.layout, ref)
        return _from_disk(ref, cached) if cached is not None else self._prepare(ref, meta, etag, forced)

    def _prepare(
        self, ref: AssetRef, meta: FileMetadata, etag: str | None, forced: bool
    ) -> ResolvedAsset | None:
        """Record the ref; if the blob is already cached (and not `forced`), link it and describe it."""
        self._store.record_ref(ref, ref.revision, meta.commit)
        return None if etag is None or forced else self._store.link_existing(ref, meta.commit, etag)

    async def _download_small(
        self, ref: AssetRef, meta: FileMetadata, etag: str, progress: ProgressCallback | None, forced: bool
    ) -> ResolvedAsset:
        report = FileProgress(ref, meta.size, progress)
        report.send(ProgressKind.STARTED)
        try:
            try:
                data = await self._transfer.read_whole(ref, meta, report)
                pointer = await self._thread(self._store.store_small, ref, meta.commit, etag, data, forced)
            except IntegrityError as exc:
                raise IntegrityError(f"Fetching {ref}: {exc}; nothing was published, retry.") from None
        except BaseException:
            report.send(ProgressKind.FAILED)
            raise
        report.done = len(data)
        report.send(ProgressKind.FINISHED)
        return ResolvedAsset(ref, pointer, meta.commit, len(data), etag, Origin.NETWORK)

    async def _download(
        self,
        ref: AssetRef,
        meta: FileMetadata,
        etag: str | None,
        progress: ProgressCallback | None,
        forced: bool = False,
    ) -> ResolvedAsset:
        name = etag if etag is not None else f"unnamed-{uuid.uuid4().hex}"
        lock = self._store.lock(ref, name)
        if not await self._thread(lock.try_acquire):  # say so while another process downloads it
            emit(progress, ProgressEvent(ProgressKind.WAITING, ref, 0, meta.size))
            await self._thread(self._store.acquire, lock)
        try:
            if etag is not None and not forced:  # another process may have finished it meanwhile
                found: ResolvedAsset | None = await self._thread(
                    self._store.link_existing, ref, meta.commit, etag
                )
                if found is not None:
                    return found
            partial = await self._thread(self._store.partial, ref, name, etag or "", meta.size)
            size = await self._fill(ref, meta, partial, progress)
            return await self._publish(ref, meta, partial, etag, size)
        finally:
            with anyio.CancelScope(shield=True):
                await self._thread(lock.release)

    async def _fill(
        self, ref: AssetRef, meta: FileMetadata, partial: PartialBlob, progress: ProgressCallback | None
    ) -> int:
        """Transfer into `partial` and verify it; on failure keep it to resume, or drop it if bad."""
        start = await self._thread(partial.open)
        try:
            if meta.size is not None:
                await self._thread(ensure_room, partial.blob.parent, meta.size - start, ref)
            engine = self._transfer if http_mocked() else self._engine  # respx sees every body
            size = await engine.run(ref, meta, partial, start, progress, alone=self._resolving <= 1)
            await self._thread(partial.verify)
        except IntegrityError as exc:
            with anyio.CancelScope(shield=True):
                await self._thread(partial.discard)
            raise IntegrityError(f"Fetching {ref}: {exc}; nothing was published, retry.") from None
        except OSError as exc:
            full = exc.errno == errno.ENOSPC  # keeping partial data on a full disk only makes it worse
            empty = partial.watermark == 0  # nothing to resume from (the free-space check refused)
            with anyio.CancelScope(shield=True):
                await self._thread(partial.discard if full or empty else partial.close)
            if full:
                raise StorageError(
                    f"Fetching {ref}: the disk is full ({self.settings.hub_cache}); nothing was "
                    "published and the partial download was removed. Free space and retry."
                ) from exc
            raise
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._thread(partial.close)  # keep it: the next attempt resumes
            raise
        return size

    async def _publish(
        self, ref: AssetRef, meta: FileMetadata, partial: PartialBlob, etag: str | None, size: int
    ) -> ResolvedAsset:
        with anyio.CancelScope(shield=True):  # a finished, verified blob is never thrown away
            # Without a usable etag the blob is named by the sha256 we compute.
            name: str = etag if etag is not None else await self._thread(_sha256_of, partial.path)
            pointer = await self._thread(self._store.publish, partial, ref, meta.commit, name)
        return ResolvedAsset(ref, pointer, meta.commit, size, name, Origin.NETWORK)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 * MiB):
            digest.update(block)
    return digest.hexdigest()


def _from_disk(ref: AssetRef, cached: CachedFile) -> ResolvedAsset:
    return ResolvedAsset(ref, cached.path, cached.commit, cached.size, cached.etag, Origin.DISK)

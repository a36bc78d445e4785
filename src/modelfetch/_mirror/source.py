"""`MirrorSource`: a bucket shared by a fleet, read through and written back, in front of the Hub.

    resolve(ref) ─ locate (commit, etag, size): memory → bucket manifest → upstream listing
               ├─ blob already in the local cache → link it                       (disk)
               ├─ blobs/<etag> in the bucket → stream, verify, publish, link      (mirror)
               └─ otherwise claim it: the winner fetches upstream and uploads;   (upstream)
                  the others wait for the blob to appear in the bucket

Any bucket failure (unreachable, refused, timed out) sends this and the next fetches
straight upstream for `MirrorOptions.retry_after` seconds, with one warning; a failed
write-back is logged and counted, never raised. Integrity is checked on every read from
the bucket (sha256 for LFS files, git sha1 otherwise) before anything is published.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import AsyncResource

from .._core.errors import AssetNotFoundError, IntegrityError, InvalidRequestError
from .._core.globs import filter_paths
from .._core.lru import Lru
from .._core.progress import ProgressCallback, ProgressKind
from .._core.protocol import ModelAssetSource
from .._core.settings import Settings
from .._core.threadprogress import TransferWatch
from .._core.types import AssetRef, Origin, RepoFile, RepoListing, RepoRef, ResolvedAsset
from .._core.validate import check_instance, check_source
from .._hubapi.errmap import ErrorContext, to_fetch_error
from .._hubapi.spec import safe_blob_name
from .._store.blobstore import BlobStore
from .breaker import Breaker, Verdict
from .bucket import Bucket, BucketUnavailableError
from .bucket import to_fetch_error as bucket_error
from .claims import HeldClaim, release, renew, try_claim
from .keys import (
    blob_key,
    decode_entry,
    decode_listing,
    encode_entry,
    encode_listing,
    entry_key,
    listing_key,
)
from .options import MirrorOptions, MirrorStats

log = logging.getLogger("modelfetch.mirror")
_LISTINGS = 64


@dataclass(slots=True)
class _Pending:
    """What a waiting fetch knows about the blob it waits for."""

    deadline: float
    interval: float = 0.05
    waited: bool = False


class MirrorSource(AsyncResource):
    """Read through, and write back to, an object-store bucket shared by a fleet of nodes.

    Args:
        url: the bucket, e.g. `s3://models/hf` (credentials and endpoint from the standard
            `AWS_*` variables); also `file:///mnt/share/...` or `memory:///`. Defaults to
            `MODELFETCH_MIRROR_URL`.
        upstream: where blobs come from when the bucket lacks them; the default Hub source
            when omitted.
        settings: local cache and timeouts; `Settings.from_env()` when omitted.
        options: claim, wait and upload behaviour.
        bucket: an already-open `Bucket` (tests), instead of `url`.
        clock: wall-clock time (claims are compared across nodes); replaceable in tests.
        sleep: how to wait between looks at the bucket; replaceable in tests.

    Example:
        ```python
        source = CachedSource(MirrorSource("s3://models/hf", upstream=HttpHubSource()))
        path = await modelfetch.fetch("org/model", "model.safetensors", source=source)
        ```
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        upstream: ModelAssetSource | None = None,
        settings: Settings | None = None,
        options: MirrorOptions | None = None,
        bucket: Bucket | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.settings = check_instance("settings", settings, Settings) or Settings.from_env()
        self.options = check_instance("options", options, MirrorOptions) or MirrorOptions()
        check_instance("bucket", bucket, Bucket)
        if upstream is not None:
            check_source("upstream", upstream)
        if bucket is None:
            url = url or self.settings.mirror_url
            if not url:
                raise InvalidRequestError(
                    "MirrorSource needs a bucket URL: pass one or set MODELFETCH_MIRROR_URL."
                )
            bucket = Bucket.open(url, timeout=self.options.timeout)
        self.bucket = bucket
        if upstream is None:
            from .._default import hub_source  # noqa: PLC0415 - the top layer picks the default

            upstream = hub_source(settings=self.settings)
        self.upstream: ModelAssetSource = upstream
        self._store = BlobStore(self.settings.hub_cache, self.settings.lock_timeout)
        self._limiter = anyio.CapacityLimiter(8)
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._listings: Lru[tuple[str, str, str], dict[str, RepoFile]] = Lru(_LISTINGS)
        self._breaker = Breaker(self.options.retry_after, clock)
        self._stats = MirrorStats()
        self._clock = clock  # wall clock: claims are compared across nodes
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"MirrorSource({self.bucket.url!r}, upstream={self.upstream!r})"

    def stats(self) -> MirrorStats:
        """A copy of the counters."""
        return MirrorStats(**{name: getattr(self._stats, name) for name in MirrorStats.__slots__})

    async def aclose(self) -> None:
        """Close the upstream source."""
        await self.upstream.aclose()

    # ---- bucket plumbing ---------------------------------------------------------------

    async def _run(self, func: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)

    def _usable(self) -> bool:
        verdict = self._breaker.check()
        if verdict is Verdict.RETRY:
            log.warning("mirror %s: trying the bucket again", self.bucket.url)
        return verdict is not Verdict.SKIP

    def _failed(self, exc: BucketUnavailableError, action: str = "reading") -> None:
        """Count a bucket failure; skip the bucket for `retry_after` s, warning once per outage."""
        self._stats.bucket_errors += 1
        if self._breaker.trip():
            log.warning(
                "mirror %s is unavailable (%s failed: %s); using upstream only for the next %.0f s",
                self.bucket.url,
                action,
                exc,
                self.options.retry_after,
            )

    # ---- locating a file ---------------------------------------------------------------

    def _remember(self, listing: RepoListing) -> None:
        key = (listing.repo.repo_type, listing.repo.repo_id, listing.commit)
        self._listings.put(key, {f.path: f for f in listing.files})

    def _known(self, ref: AssetRef, commit: str) -> RepoFile | None:
        return (self._listings.get((ref.repo_type, ref.repo_id, commit)) or {}).get(ref.filename)

    async def list_files(self, repo: RepoRef) -> RepoListing:
        """A commit's listing from the bucket when pinned and known there, else from upstream."""
        if repo.is_pinned and self._usable():
            try:
                found = await self._run(self.bucket.read, listing_key(repo, repo.revision))
            except BucketUnavailableError as exc:
                self._failed(exc)
            else:
                listing = decode_listing(found[0], repo) if found else None
                if listing is not None:
                    self._remember(listing)
                    return listing
        listing = await self.upstream.list_files(repo)
        self._remember(listing)
        if not repo.is_pinned:
            await self._run(self._store.record_ref, repo, repo.revision, listing.commit)
        if self.options.write_back and all(safe_blob_name(f.etag) for f in listing.files) and self._usable():
            await self._write_back(
                self.bucket.create, listing_key(listing.repo, listing.commit), encode_listing(listing)
            )
        return listing

    async def _locate(self, ref: AssetRef) -> tuple[str, RepoFile | None]:
        """The commit and listing entry of `ref` (entry None: upstream gives no content id)."""
        if ref.is_pinned:
            known = self._known(ref, ref.revision)
            if known is not None:
                return ref.revision, known
            if self._usable():
                try:
                    found = await self._run(self.bucket.read, entry_key(ref, ref.revision, ref.filename))
                except BucketUnavailableError as exc:
                    self._failed(exc)
                else:
                    entry = decode_entry(found[0], ref.filename) if found else None
                    if entry is not None:
                        return ref.revision, entry
        listing = await self.list_files(ref.repo)
        entry = self._known(ref, listing.commit)
        if entry is None:
            raise AssetNotFoundError(
                f"Fetching {ref}: the repo has no such file at commit {listing.commit[:12]}; "
                "check the filename."
            )
        return listing.commit, entry if safe_blob_name(entry.etag) else None

    # ---- the protocol ------------------------------------------------------------------

    async def resolve(self, ref: AssetRef, *, progress: ProgressCallback | None = None) -> ResolvedAsset:
        """Fetch `ref` from the local cache, the bucket, or upstream (writing it back)."""
        commit, entry = await self._locate(ref)
        if entry is None:  # no content id (a plain folder upstream): nothing to share
            return await self._from_upstream(ref, commit, progress)
        local: ResolvedAsset | None = await self._run(self._link_local, ref, commit, entry)
        if local is not None:
            return local
        pending = _Pending(deadline=self._clock() + self.options.max_wait)
        while self._usable():
            try:
                found = await self._from_bucket(ref, commit, entry, progress)
                if found is not None:
                    return found
                claim = await self._run(
                    try_claim, self.bucket, entry.etag, self._owner, self.options.lease, self._clock()
                )
                if isinstance(claim, HeldClaim):
                    return await self._fetch_as_claimant(ref, commit, entry, claim, progress)
            except BucketUnavailableError as exc:
                self._failed(exc)
                break
            except IntegrityError as exc:
                self._stats.corrupt += 1
                log.warning("mirror %s: %s; fetching from upstream instead", self.bucket.url, exc)
                return await self._fetch_and_replace(ref, commit, entry, progress)
            if not await self._wait(pending, ref):
                break
        return await self._from_upstream(ref, commit, progress)

    async def _wait(self, pending: _Pending, ref: AssetRef) -> bool:
        """Pause before the next look at the bucket; False once waiting is pointless."""
        if not pending.waited:
            pending.waited = True
            self._stats.waits += 1
            log.info("mirror %s: another node is fetching %s; waiting for it", self.bucket.url, ref)
        if self._clock() >= pending.deadline:
            log.warning(
                "mirror %s: waited %.0f s for %s; fetching it here",
                self.bucket.url,
                self.options.max_wait,
                ref,
            )
            return False
        await self._sleep(pending.interval)
        pending.interval = min(pending.interval * 2, self.options.poll_interval)
        return True

    # ---- the three places a file can come from ----------------------------------------

    def _link_local(self, ref: AssetRef, commit: str, entry: RepoFile) -> ResolvedAsset | None:
        found = self._store.link_existing(ref, commit, entry.etag)
        if found is not None:
            self._store.record_ref(ref, ref.revision, commit)
        return found

    async def _from_bucket(
        self, ref: AssetRef, commit: str, entry: RepoFile, progress: ProgressCallback | None
    ) -> ResolvedAsset | None:
        watch = TransferWatch(ref, progress)
        try:
            found: ResolvedAsset | None = await self._run(self._download, ref, commit, entry, watch)
        except BaseException:
            watch.finish(ProgressKind.FAILED)
            raise
        if found is not None:
            watch.finish(ProgressKind.FINISHED)
            if found.origin is Origin.NETWORK:
                self._stats.mirror_hits += 1
                self._stats.mirror_bytes += watch.done
        return found

    def _download(
        self, ref: AssetRef, commit: str, entry: RepoFile, watch: TransferWatch
    ) -> ResolvedAsset | None:
        """Stream `blobs/<etag>` into the cache under huggingface_hub's lock; None if absent."""
        with self._store.locked(ref, entry.etag):
            local = self._link_local(ref, commit, entry)
            if local is not None:
                return local
            if not self.bucket.exists(blob_key(entry.etag)):
                return None
            partial = self._store.partial(ref, entry.etag, entry.etag, entry.size)
            start = partial.open()
            try:
                watch.started(entry.size, start)

                def sink(offset: int, chunk: memoryview) -> None:
                    partial.write_at(offset, chunk, watermark=offset + len(chunk))
                    watch.advanced(len(chunk))

                try:
                    if self.bucket.download(blob_key(entry.etag), start, sink) is None:
                        return None
                except OSError as exc:  # a local disk error, not the bucket's: keep nothing
                    partial.discard()
                    raise to_fetch_error(exc, ErrorContext(ref)) from exc
                try:
                    partial.verify()
                except IntegrityError as exc:
                    partial.discard()
                    raise IntegrityError(
                        f"blobs/{entry.etag[:16]}... in the bucket for {ref}: {exc}"
                    ) from None
                pointer = self._store.publish(partial, ref, commit, entry.etag)
            finally:
                partial.close()
            self._store.record_ref(ref, ref.revision, commit)
            return ResolvedAsset(ref, pointer, commit, entry.size, entry.etag, Origin.NETWORK)

    async def _from_upstream(
        self, ref: AssetRef, commit: str, progress: ProgressCallback | None
    ) -> ResolvedAsset:
        pinned = AssetRef(ref.repo_id, ref.filename, commit, ref.repo_type)
        got = await self.upstream.resolve(pinned, progress=progress)
        self._stats.upstream_fetches += 1
        if not ref.is_pinned:
            await self._run(self._store.record_ref, ref, ref.revision, got.commit)
        return ResolvedAsset(ref, got.path, got.commit, got.size, got.etag, got.origin)

    async def _fetch_as_claimant(
        self, ref: AssetRef, commit: str, entry: RepoFile, held: HeldClaim, progress: ProgressCallback | None
    ) -> ResolvedAsset:
        """Fetch upstream and upload while renewing the claim; release it however this ends.

        The blob may have landed between our look at the bucket and winning the claim (its
        uploader released the claim just then), so look once more before going upstream.
        """
        async with self._holding(held, ref):
            landed = await self._from_bucket(ref, commit, entry, progress)
            if landed is not None:
                return landed
            got = await self._from_upstream(ref, commit, progress)
            await self._push_blob(ref, commit, entry, got.path)
        return got

    @asynccontextmanager
    async def _holding(self, held: HeldClaim, ref: AssetRef) -> AsyncIterator[None]:
        """Keep `held` renewed while the block runs; release it (shielded) however the block ends."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keep_renewing, held)
                yield
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self._run(release, self.bucket, held)
                except BucketUnavailableError as exc:
                    log.warning("mirror %s: could not release the claim on %s: %s", self.bucket.url, ref, exc)

    async def _keep_renewing(self, held: HeldClaim | None) -> None:
        while held is not None:
            await anyio.sleep(self.options.lease / 3)
            try:
                held = await self._run(renew, self.bucket, held, self.options.lease, self._clock())
            except BucketUnavailableError as exc:
                log.warning("mirror %s: could not renew a claim: %s", self.bucket.url, exc)
                return

    async def _fetch_and_replace(
        self, ref: AssetRef, commit: str, entry: RepoFile, progress: ProgressCallback | None
    ) -> ResolvedAsset:
        got = await self._from_upstream(ref, commit, progress)
        if self.options.write_back:
            await self._write_back(self.bucket.delete, blob_key(entry.etag))
            await self._push_blob(ref, commit, entry, got.path)
        return got

    # ---- write-back --------------------------------------------------------------------

    async def _push_blob(
        self, ref: AssetRef, commit: str, entry: RepoFile, path: Path, *, strict: bool = False
    ) -> None:
        """Upload the blob (unless present) and its manifest entry.

        Failures are logged and counted; with `strict` (a push, which writes even when
        write-back is off) they are raised.
        """
        if not self.options.write_back and not strict:
            return
        sent = [0]

        def upload() -> bool:
            uploaded = not self.bucket.exists(blob_key(entry.etag))
            if uploaded:
                self.bucket.upload(
                    blob_key(entry.etag), path, part_size=self.options.part_size, on_chunk=count
                )
            self.bucket.create(entry_key(ref, commit, entry.path), encode_entry(entry))
            return uploaded

        def count(n: int) -> None:
            anyio.from_thread.check_cancelled()
            sent[0] += n

        if await self._write_back(upload, strict=strict):  # counters change on the loop thread only
            self._stats.uploads += 1
            self._stats.upload_bytes += sent[0]

    async def _write_back(self, func: Callable[..., Any], *args: Any, strict: bool = False) -> Any:
        """`func(*args)` in a worker thread; its result, or None after a logged, counted failure.

        With `strict` (a push, whose whole job is the write) the failure is raised instead.
        """
        try:
            return await self._run(func, *args)
        except (BucketUnavailableError, OSError) as exc:
            if strict:
                raise
            self._stats.upload_failures += 1
            if isinstance(exc, BucketUnavailableError):
                self._failed(exc, "write-back (the fetch itself succeeded)")
            else:
                log.warning(
                    "mirror %s: write-back failed (%s); the fetch itself succeeded", self.bucket.url, exc
                )
            return None

    async def push(
        self,
        repo: RepoRef,
        *,
        include: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
    ) -> RepoListing:
        """Copy `repo` (the files `include`/`exclude` keep) from upstream into the bucket.

        What `modelfetch mirror push` runs to pre-seed a bucket from a machine with Hub
        access. Files already in the bucket are not uploaded again. Unlike a fetch, a push
        fails when the bucket does: its whole job is the write.

        Returns:
            The listing of the commit that was pushed (every file, kept or not).

        Raises:
            SourceUnavailableError: the bucket could not be written (the message says why).
            AuthenticationError: the bucket refused the credentials.
            StorageError: a local file could not be read for the upload.
        """
        what = f"Pushing {repo} to {self.bucket.url}"
        listing = await self.list_files(repo)
        pinned = RepoRef(repo.repo_id, listing.commit, repo.repo_type)
        by_path = {f.path: f for f in listing.files}
        try:
            for path in filter_paths(by_path, include, exclude):
                got = await self.resolve(pinned.asset(path))
                if safe_blob_name(by_path[path].etag):
                    await self._push_blob(got.ref, listing.commit, by_path[path], got.path, strict=True)
            if all(safe_blob_name(f.etag) for f in listing.files):  # the manifest, after the content
                await self._run(
                    self.bucket.create, listing_key(pinned, listing.commit), encode_listing(listing)
                )
        except BucketUnavailableError as exc:
            raise bucket_error(exc, what) from None
        except OSError as exc:
            raise to_fetch_error(exc, ErrorContext(pinned)) from exc
        return listing

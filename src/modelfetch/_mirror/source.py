"""`MirrorSource`: a bucket shared by a fleet, read through and written back, in front of the Hub.

    resolve(ref) ─ locate (commit, etag, size): memory → bucket manifest → upstream listing
               ├─ blob already in the local cache → link it                       (disk)
               ├─ blobs/<etag>, or all its parts, in the bucket → stream, verify,  (mirror)
               │  publish, link
               └─ otherwise claim it: the winner fetches upstream, returns, and   (upstream)
                  uploads in the background (a large blob part by part as it
                  arrives); the others read the parts there are and wait for more

Any bucket failure (unreachable, refused, timed out) sends this and the next fetches
straight upstream for `MirrorOptions.retry_after` seconds, with one warning; a failed
write-back is logged and counted, never raised. Integrity is checked on every read from
the bucket (sha256 for LFS files, git sha1 otherwise) before anything is published.

This module only orchestrates. The pieces: `access` (threads, breaker, counters),
`manifests` (what a commit holds), `claims` (who fetches, and the `Keeper` renewing them),
`ingest` (bucket to cache), `parts` (a large blob as parts), `writeback` (cache to bucket,
and `push`), `uploads` (write-back in the background, drained by `aclose`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from anyio.abc import AsyncResource

from .._core.defaults import default_hub_source
from .._core.errors import AssetNotFoundError, IntegrityError, InvalidRequestError
from .._core.progress import ProgressCallback, ProgressKind
from .._core.protocol import ModelAssetSource
from .._core.settings import Settings
from .._core.threadprogress import TransferWatch
from .._core.types import AssetRef, ListedFile, Origin, RepoListing, RepoRef, ResolvedAsset
from .._core.validate import check_instance, check_source
from .._hubapi.spec import safe_blob_name
from .._store.blobstore import BlobStore
from . import writeback
from .access import BucketAccess
from .bucket import Bucket, BucketUnavailableError

if TYPE_CHECKING:
    from obstore.store import ObjectStore
from .claims import HeldClaim, Keeper, release_quietly, try_claim
from .ingest import ingest, link_local
from .keys import wanted_key
from .manifests import Manifests
from .options import MIN_PART_SIZE, MirrorOptions, MirrorStats
from .parts import PartPublisher
from .uploads import Uploads
from .writeback import WriteBack

log = logging.getLogger("modelfetch.mirror")


_FIRST_POLL = 0.05
_PARTS_IN_MEMORY = 4  # parts of large blobs being sent at once, all publishers together


@dataclass(slots=True)
class _Pending:
    """What a waiting fetch knows about the blob it waits for."""

    deadline: float
    interval: float = _FIRST_POLL
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
        bucket: instead of `url`, an obstore store you configured yourself (`S3Store`,
            `GCSStore`, `AzureStore`, `LocalStore`, `MemoryStore`: any
            `obstore.store.ObjectStore`, its prefix included).
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
        bucket: ObjectStore | Bucket | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.settings = check_instance("settings", settings, Settings) or Settings.from_env()
        self.options = check_instance("options", options, MirrorOptions) or MirrorOptions()
        if bucket is not None and not isinstance(bucket, Bucket):
            bucket = Bucket.wrap(bucket)
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
        self._access = BucketAccess(bucket, self.options.retry_after, clock)
        self._manifests = Manifests(self._access)
        self._store = BlobStore(self.settings.hub_cache, self.settings.lock_timeout)
        self._write_back = WriteBack(
            self._access,
            self._store.layout,
            enabled=self.options.write_back,
            part_size=self.options.part_size,
        )
        self._keeper = Keeper(bucket, self.options.lease, clock)
        self._uploads = Uploads(self._access, self._keeper, concurrency=self.options.uploads)
        self._part_slots = threading.BoundedSemaphore(_PARTS_IN_MEMORY)
        if upstream is None:
            upstream = default_hub_source(self.settings)
        self.upstream: ModelAssetSource = upstream
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock = clock  # wall clock: claims are compared across nodes
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"MirrorSource({self.bucket.url!r}, upstream={self.upstream!r})"

    def stats(self) -> MirrorStats:
        """The counters so far (see `MirrorStats`)."""
        return self._access.stats(uploads_pending=self._uploads.pending)

    async def flush(self) -> None:
        """Wait until every upload started so far has finished (or failed: see `stats()`).

        A fetch returns before its upload to the bucket is done; `aclose()` waits for them
        too, with a bound. Use this to be sure the bucket has what this node fetched without
        closing the source (a job that pre-seeds, a test). Cancellable: the uploads go on.
        """
        await anyio.to_thread.run_sync(self._uploads.wait, abandon_on_cancel=True)

    async def aclose(self) -> None:
        """Wait for the background uploads (at most `MirrorOptions.close_timeout` s), then close upstream.

        Uploads still running after that are abandoned: they stop at their next chunk, and
        their claims are released (or lapse) so that another node uploads instead.
        """
        try:
            abandoned = await anyio.to_thread.run_sync(
                self._uploads.drain, self.options.close_timeout, abandon_on_cancel=True
            )
            if abandoned:
                self._access.add("uploads_abandoned", abandoned)
                log.warning(
                    "mirror %s: %d upload(s) still running after %.0f s were abandoned at close",
                    self.bucket.url,
                    abandoned,
                    self.options.close_timeout,
                )
        finally:
            self._keeper.close()
            await self.upstream.aclose()

    # ---- locating a file ---------------------------------------------------------------

    async def list_files(self, repo: RepoRef) -> RepoListing:
        """A commit's listing from the bucket when pinned and known there, else from upstream."""
        if repo.is_pinned:
            listing = await self._manifests.listing(repo)
            if listing is not None:
                return listing
        listing = await self.upstream.list_files(repo)
        self._manifests.remember(listing)
        if not repo.is_pinned:
            await self._access.run(self._store.record_ref, repo, repo.revision, listing.commit)
        if self._write_back.enabled and self._access.usable():
            self._uploads.submit(self._write_back.listing_job(listing), None, listing.repo)
        return listing

    async def _locate(self, ref: AssetRef) -> tuple[str, ListedFile | None]:
        """The commit and listing entry of `ref` (entry None: upstream gives no content id)."""
        if ref.is_pinned:
            entry = self._manifests.known(ref, ref.revision) or await self._manifests.entry(ref)
            if entry is not None:
                return ref.revision, entry
        listing = await self.list_files(ref.repo)
        entry = self._manifests.known(ref, listing.commit)
        if entry is None:
            raise AssetNotFoundError(
                f"Fetching {ref}: the repo has no such file at commit {listing.commit[:12]}; "
                "check the filename."
            )
        return listing.commit, entry if safe_blob_name(entry.etag) else None

    # ---- the protocol ------------------------------------------------------------------

    async def resolve(self, ref: AssetRef, *, progress: ProgressCallback | None = None) -> ResolvedAsset:
        """Fetch `ref` from the local cache, the bucket, or upstream (writing it back)."""
        self._uploads.fetching(+1)
        try:
            return await self._resolve(ref, progress)
        finally:
            self._uploads.fetching(-1)

    async def _resolve(self, ref: AssetRef, progress: ProgressCallback | None) -> ResolvedAsset:
        commit, entry = await self._locate(ref)
        if entry is None:  # no content id (a plain folder upstream): nothing to share
            return await self._from_upstream(ref, commit, progress)
        local: ResolvedAsset | None = await self._access.run(link_local, self._store, ref, commit, entry)
        if local is not None:
            return local
        pending = _Pending(deadline=self._clock() + self.options.max_wait)
        while self._access.usable():
            try:
                found, pulled = await self._from_bucket(ref, commit, entry, progress)
                if found is not None:
                    return found
                if pulled:  # parts of it are arriving: look again soon, and do not give up
                    pending.interval = _FIRST_POLL
                    pending.deadline = self._clock() + self.options.max_wait
                if not self._write_back.enabled:  # nothing will be uploaded: no claim to wait for
                    break
                claim = await self._access.run(
                    try_claim, self.bucket, entry.etag, self._owner, self.options.lease, self._clock()
                )
                if isinstance(claim, HeldClaim):
                    return await self._fetch_as_claimant(ref, commit, entry, claim, progress)
                if not pending.waited:  # its claimant then uploads at once, a large one in parts
                    await self._access.run(self.bucket.create, wanted_key(entry.etag), b"")
            except BucketUnavailableError as exc:
                self._access.failed(exc)
                break
            except IntegrityError as exc:
                self._access.add("corrupt")
                log.warning("mirror %s: %s; fetching from upstream instead", self.bucket.url, exc)
                return await self._fetch_and_replace(ref, commit, entry, progress)
            if not await self._wait(pending, ref):
                break
        return await self._from_upstream(ref, commit, progress)

    async def _wait(self, pending: _Pending, ref: AssetRef) -> bool:
        """Pause before the next look at the bucket; False once waiting is pointless."""
        if not pending.waited:
            pending.waited = True
            self._access.add("waits")
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

    async def _from_bucket(
        self, ref: AssetRef, commit: str, entry: ListedFile, progress: ProgressCallback | None
    ) -> tuple[ResolvedAsset | None, int]:
        """The file from the bucket (whole, or all its parts), and how many bytes were read.

        A large blob not complete there keeps the parts read so far in its partial file.
        """
        watch = TransferWatch(ref, progress)
        parts = entry.size > MIN_PART_SIZE  # a node with other options may have split it
        try:
            found, pulled = await self._access.run(
                ingest, self._store, self.bucket, ref, commit, entry, watch, parts
            )
        except BaseException:
            watch.finish(ProgressKind.FAILED)
            raise
        self._access.add("mirror_bytes", pulled)
        if found is not None:
            watch.finish(ProgressKind.FINISHED)
            if found.origin is Origin.NETWORK:
                self._access.add("mirror_hits")
        return found, pulled

    async def _from_upstream(
        self, ref: AssetRef, commit: str, progress: ProgressCallback | None
    ) -> ResolvedAsset:
        pinned = AssetRef(ref.repo_id, ref.filename, commit, ref.repo_type)
        got = await self.upstream.resolve(pinned, progress=progress)
        self._access.add("upstream_fetches")
        if not ref.is_pinned:
            await self._access.run(self._store.record_ref, ref, ref.revision, got.commit)
        return ResolvedAsset(ref, got.path, got.commit, got.size, got.etag, got.origin)

    async def _fetch_as_claimant(
        self,
        ref: AssetRef,
        commit: str,
        entry: ListedFile,
        held: HeldClaim,
        progress: ProgressCallback | None,
    ) -> ResolvedAsset:
        """Fetch upstream holding the claim; return once published here, uploading in the background.

        The blob may have landed between our look at the bucket and winning the claim (its
        uploader released the claim just then), so look once more before going upstream;
        parts found then stay in the partial file and the fetch upstream resumes after them.
        The claim is renewed until the upload is done, and released at once if this fails.
        """
        self._keeper.hold(held)
        handed_over = False
        try:
            landed, _ = await self._from_bucket(ref, commit, entry, progress)
            if landed is not None:
                return landed
            publisher = self._publisher(ref, entry)
            try:
                got = await self._from_upstream(ref, commit, progress)
            except BaseException as exc:
                if publisher is not None:
                    publisher.stop()
                    if isinstance(exc, IntegrityError):  # what it published may be bad too
                        await self._access.run(publisher.withdraw)
                raise
            if self._write_back.enabled:
                job = (
                    self._write_back.parts_job(publisher, ref, commit, entry)
                    if publisher is not None
                    else self._write_back.blob_job(ref, commit, entry)
                )
                self._uploads.submit(job, held, ref, wanted=wanted_key(entry.etag))  # see Uploads
                handed_over = True
                if self._uploads.crowded:  # uploads fell far behind: let them catch up
                    await anyio.to_thread.run_sync(self._uploads.room, abandon_on_cancel=True)
            return got
        finally:
            if not handed_over:
                self._keeper.let_go(held)
                with anyio.CancelScope(shield=True):
                    await self._access.run(release_quietly, self.bucket, held)

    def _publisher(self, ref: AssetRef, entry: ListedFile) -> PartPublisher | None:
        """A publisher of `entry`'s parts, following the fetch (None: small, or no write-back)."""
        if not self._write_back.enabled or entry.size <= self.options.part_size:
            return None
        publisher = PartPublisher(
            self.bucket,
            self._store.layout,
            ref,
            entry,
            self.options.part_size,
            slots=self._part_slots,
            sent=lambda n: self._access.add("upload_bytes", n),
        )
        publisher.start()
        return publisher

    async def _fetch_and_replace(
        self, ref: AssetRef, commit: str, entry: ListedFile, progress: ProgressCallback | None
    ) -> ResolvedAsset:
        got = await self._from_upstream(ref, commit, progress)
        if self._write_back.enabled:
            self._uploads.submit(self._write_back.blob_job(ref, commit, entry, replace=True), None, ref)
        return got

    # ---- pre-seeding -------------------------------------------------------------------

    async def push(
        self,
        repo: RepoRef,
        *,
        include: Sequence[str] | str | None = None,
        exclude: Sequence[str] | str | None = None,
    ) -> RepoListing:
        """Copy `repo` (the files `include`/`exclude` keep) from upstream into the bucket.

        What `modelfetch mirror push` runs to pre-seed a bucket from a machine with Hub
        access. Files already in the bucket are neither fetched nor uploaded again. Unlike a
        fetch, a push fails when the bucket does: its whole job is the write.

        Returns:
            The listing of the commit that was pushed (every file, kept or not).

        Raises:
            SourceUnavailableError: the bucket could not be written (the message says why).
            AuthenticationError: the bucket refused the credentials.
            StorageError: a local file could not be read for the upload.
        """
        writer = self._write_back
        return await writeback.push(self, self.upstream, self.bucket, writer, repo, include, exclude)

"""Writing back to the bucket: blobs fetched upstream, their manifests, and `push`.

During a fetch, write-back is a courtesy to the fleet: a failure is logged and counted,
never raised (the fetch itself succeeded). `push`'s whole job is the write, so there every
failure is raised as a `FetchError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio.from_thread

from .._core.errors import IntegrityError
from .._core.globs import filter_paths
from .._core.protocol import ModelAssetSource
from .._core.types import AssetRef, ListedFile, RepoListing, RepoRef
from .._hubapi.errmap import ErrorContext, to_fetch_error
from .._hubapi.spec import safe_blob_name
from .._store.anchored import open_regular, unsafe
from .._store.layout import CacheLayout
from .access import BucketAccess
from .bucket import BucketUnavailableError
from .bucket import to_fetch_error as bucket_error
from .keys import blob_key, encode_entry, encode_listing, entry_key, listing_key

if TYPE_CHECKING:
    from .bucket import Bucket

log = logging.getLogger("modelfetch.mirror")


class WriteBack:
    """Uploads to the bucket of one mirror (counted in its `MirrorStats`)."""

    def __init__(self, access: BucketAccess, layout: CacheLayout, *, enabled: bool, part_size: int) -> None:
        self._access = access
        self._layout = layout
        self._bucket = access.bucket
        self.enabled = enabled
        self._part_size = part_size

    async def blob(self, ref: AssetRef, commit: str, entry: ListedFile, *, strict: bool = False) -> None:
        """Upload the cached blob of `entry` (unless the bucket has it) and its manifest entry.

        The blob is read from the cache's `blobs/<etag>` without following any link planted
        there, only if it is a regular file, and hashed as it is sent: what does not match its
        etag is not uploaded (`IntegrityError`). Skipped when write-back is off, unless
        `strict` (a push, which also raises failures).
        """
        if not self.enabled and not strict:
            return
        sent = [0]

        def count(n: int) -> None:
            anyio.from_thread.check_cancelled()
            sent[0] += n

        def upload() -> bool:
            uploaded = not self._bucket.exists(blob_key(entry.etag))
            if uploaded:
                self._upload_blob(ref, entry, count)
            self._bucket.create(entry_key(ref, commit, entry.path), encode_entry(entry))
            return uploaded

        if await self.run(upload, strict=strict):  # counters change on the loop thread only
            self._access.counts["uploads"] += 1
            self._access.counts["upload_bytes"] += sent[0]

    def _upload_blob(self, ref: AssetRef, entry: ListedFile, count: Callable[[int], None]) -> None:
        blob = self._layout.blob(ref, entry.etag)
        fd = open_regular(self._layout.root, blob)
        if fd is None:
            raise unsafe(blob, "is missing, or is not a regular file reached without links")
        with open(fd, "rb") as f:
            size = os.fstat(fd).st_size
            self._bucket.upload(
                blob_key(entry.etag),
                f,
                size=size,
                etag=entry.etag,
                part_size=self._part_size,
                on_chunk=count,
            )

    async def listing(self, listing: RepoListing) -> None:
        """Upload the manifest of `listing` (when every file has a content id)."""
        if self.enabled and all(safe_blob_name(f.etag) for f in listing.files) and self._access.usable():
            await self.run(
                self._bucket.create, listing_key(listing.repo, listing.commit), encode_listing(listing)
            )

    async def replace_corrupt(self, ref: AssetRef, commit: str, entry: ListedFile) -> None:
        """Overwrite a blob that failed verification in the bucket with the good one in the cache."""
        if self.enabled:
            await self.run(self._bucket.delete, blob_key(entry.etag))
            await self.blob(ref, commit, entry)

    async def run(self, func: Callable[..., Any], *args: Any, strict: bool = False) -> Any:
        """`func(*args)` in a worker thread; its result, or None after a logged, counted failure.

        With `strict` the failure is raised instead.
        """
        try:
            return await self._access.run(func, *args)
        except (BucketUnavailableError, IntegrityError, OSError) as exc:
            if strict:
                raise
            self._access.counts["upload_failures"] += 1
            if isinstance(exc, BucketUnavailableError):
                self._access.failed(exc, "write-back (the fetch itself succeeded)")
            else:
                log.warning(
                    "mirror %s: write-back failed (%s); the fetch itself succeeded", self._access.url, exc
                )
            return None


async def push(
    mirror: ModelAssetSource,
    bucket: Bucket,
    writer: WriteBack,
    repo: RepoRef,
    include: Sequence[str] | str | None,
    exclude: Sequence[str] | str | None,
) -> RepoListing:
    """Copy `repo` (the files `include`/`exclude` keep) through `mirror` into `bucket`.

    Files are fetched through the mirror (so what the bucket has is not fetched again) and
    uploaded by `writer`. Raises where a fetch would only log: the bucket failing is a
    `FetchError` here.
    """
    what = f"Pushing {repo} to {bucket.url}"
    listing = await mirror.list_files(repo)
    pinned = RepoRef(repo.repo_id, listing.commit, repo.repo_type)
    by_path = {f.path: f for f in listing.files}
    try:
        for path in filter_paths(by_path, include, exclude):
            got = await mirror.resolve(pinned.asset(path))
            if safe_blob_name(by_path[path].etag):
                await writer.blob(got.ref, listing.commit, by_path[path], strict=True)
        if all(safe_blob_name(f.etag) for f in listing.files):  # the manifest, after the content
            await writer.run(
                bucket.create,
                listing_key(pinned, listing.commit),
                encode_listing(listing),
                strict=True,
            )
    except BucketUnavailableError as exc:
        raise bucket_error(exc, what) from None
    except OSError as exc:
        raise to_fetch_error(exc, ErrorContext(pinned)) from exc
    return listing

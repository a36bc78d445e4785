"""Writing back to the bucket: blobs fetched upstream, their manifests, and `push`.

During a fetch, write-back is a courtesy to the fleet, run in the background (`Uploads`): a
failure is logged and counted, never raised (the fetch itself succeeded). `push`'s whole
job is the write, so there every failure is raised as a `FetchError`.
"""

from __future__ import annotations

import logging
import os
import threading
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
from .._store.pull import Abandoned
from .access import BucketAccess
from .bucket import BucketUnavailableError
from .bucket import to_fetch_error as bucket_error
from .keys import blob_key, encode_entry, encode_listing, entry_key, listing_key, wanted_key
from .parts import PartPublisher, complete_in, listed_parts
from .uploads import Job

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
        """Upload the cached blob of `entry` (unless the bucket has it) and its manifest entry, now.

        Skipped when write-back is off, unless `strict` (a push, which also raises failures).
        A fetch does not wait for this: it submits `blob_job` to the background instead.
        """
        if self.enabled or strict:
            stop = anyio.from_thread.check_cancelled
            await self.run(self.send_blob, ref, commit, entry, stop, strict=strict)

    def blob_job(self, ref: AssetRef, commit: str, entry: ListedFile, *, replace: bool = False) -> Job:
        """`send_blob` as a background job (see `Uploads`); with `replace`, the bucket's copy
        failed verification: it and any parts of it are deleted first."""

        def job(abandon: threading.Event) -> None:
            def stop() -> None:
                if abandon.is_set():
                    raise Abandoned

            if replace:
                self._bucket.delete(blob_key(entry.etag))
                for _, _, key in listed_parts(self._bucket, entry):
                    self._bucket.delete(key)
            self.send_blob(ref, commit, entry, stop)
            self._bucket.delete(wanted_key(entry.etag))

        return job

    def parts_job(self, publisher: PartPublisher, ref: AssetRef, commit: str, entry: ListedFile) -> Job:
        """A background job: the parts `publisher` has not stored yet, then the manifest entry."""

        def job(abandon: threading.Event) -> None:
            if publisher.finish(abandon):
                self._access.add("uploads")
            self._bucket.create(entry_key(ref, commit, entry.path), encode_entry(entry))

        return job

    def send_blob(self, ref: AssetRef, commit: str, entry: ListedFile, stop: Callable[[], None]) -> None:
        """Upload the cached blob of `entry` unless the bucket has it, then its manifest entry. Blocking.

        The blob is read from the cache's `blobs/<etag>` without following any link planted
        there, only if it is a regular file, and hashed as it is sent: what does not match its
        etag is not uploaded (`IntegrityError`). `stop()` runs before each chunk and may raise
        to abort the upload (nothing is then stored).
        """
        sent = [0]

        def count(n: int) -> None:
            stop()
            sent[0] += n

        if not self._bucket.exists(blob_key(entry.etag)):
            self._upload_blob(ref, entry, count)
            self._access.add("uploads")
            self._access.add("upload_bytes", sent[0])
        self._bucket.create(entry_key(ref, commit, entry.path), encode_entry(entry))

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

    def listing_job(self, listing: RepoListing) -> Job:
        """A background job: the manifest of `listing` (when every file has a content id)."""

        def job(abandon: threading.Event) -> None:
            if all(safe_blob_name(f.etag) for f in listing.files):
                self._bucket.create(listing_key(listing.repo, listing.commit), encode_listing(listing))

        return job

    async def run(self, func: Callable[..., Any], *args: Any, strict: bool = False) -> Any:
        """`func(*args)` in a worker thread; its result, or None after a logged, counted failure.

        With `strict` the failure is raised instead.
        """
        try:
            return await self._access.run(func, *args)
        except (BucketUnavailableError, IntegrityError, OSError) as exc:
            if strict:
                raise
            self._access.add("upload_failures")
            if isinstance(exc, BucketUnavailableError):
                self._access.failed(exc, "write-back (the fetch itself succeeded)")
            else:
                log.warning(
                    "mirror %s: write-back failed (%s); the fetch itself succeeded", self._access.url, exc
                )
            return None


async def push(
    mirror: ModelAssetSource,
    upstream: ModelAssetSource,
    bucket: Bucket,
    writer: WriteBack,
    repo: RepoRef,
    include: Sequence[str] | str | None,
    exclude: Sequence[str] | str | None,
) -> RepoListing:
    """Copy `repo` (the files `include`/`exclude` keep) from `upstream` into `bucket`.

    The listing comes through `mirror` (which records it in the bucket); a file the bucket
    already holds, whole or as all its parts, is not fetched at all; the others are fetched
    from `upstream` and uploaded by `writer`, now, not in the background. Raises where a
    fetch would only log: the bucket failing is a `FetchError` here. Files without a content
    id (a plain folder upstream) cannot be shared and are skipped.
    """
    what = f"Pushing {repo} to {bucket.url}"
    listing = await mirror.list_files(repo)
    pinned = RepoRef(repo.repo_id, listing.commit, repo.repo_type)
    by_path = {f.path: f for f in listing.files}
    try:
        for path in filter_paths(by_path, include, exclude):
            entry = by_path[path]
            if not safe_blob_name(entry.etag):
                continue
            if await writer.run(complete_in, bucket, entry, strict=True):
                key = entry_key(pinned, listing.commit, path)
                await writer.run(bucket.create, key, encode_entry(entry), strict=True)
                continue
            got = await upstream.resolve(pinned.asset(path))
            await writer.blob(got.ref, listing.commit, entry, strict=True)
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

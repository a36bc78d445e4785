"""Bucket to cache: stream `blobs/<etag>` (or its parts) into a partial blob, verify it, publish it. Blocking.

The bytes go through the same store-level routine as the Hub engine's (`_store.pull.pull`):
resume from the watermark, never past the announced size, progress per chunk.

Runs in a worker thread under huggingface_hub's lock for the blob, so a `hf_hub_download`
in another process and this never write the same blob at once. Nothing unverified is
ever published: a blob whose bytes do not match its etag is discarded and reported.
"""

from __future__ import annotations

from .._core.errors import IntegrityError
from .._core.threadprogress import TransferWatch
from .._core.types import AssetRef, ListedFile, Origin, ResolvedAsset
from .._hubapi.errmap import ErrorContext, to_fetch_error
from .._store.blobstore import BlobStore
from .._store.partial import PartialBlob
from .._store.pull import Gate, Tally, pull
from .bucket import Bucket
from .keys import blob_key
from .parts import listed_parts, pull_parts


def link_local(store: BlobStore, ref: AssetRef, commit: str, entry: ListedFile) -> ResolvedAsset | None:
    """`ref` from the local cache when its blob is already there (recording the ref)."""
    found = store.link_existing(ref, commit, entry.etag)
    if found is not None:
        store.record_ref(ref, ref.revision, commit)
    return found


def ingest(
    store: BlobStore,
    bucket: Bucket,
    ref: AssetRef,
    commit: str,
    entry: ListedFile,
    watch: TransferWatch,
    parts: bool,
) -> tuple[ResolvedAsset | None, int]:
    """Copy `ref`'s blob from `bucket` into the cache; the file (None when the bucket lacks it)
    and how many bytes were read.

    From `blobs/<etag>` when it exists; otherwise, with `parts`, from the parts of it the
    bucket has (`_mirror.parts`): those that continue the partial file are written into it
    and kept there, and the file is published once they make the whole blob.

    Raises:
        IntegrityError: the bucket's bytes do not match the etag (nothing is kept).
        BucketUnavailableError: the bucket failed (what was received is kept for a resume).
        FetchError: the local disk failed (nothing is kept).
    """
    with store.locked(ref, entry.etag):
        local = link_local(store, ref, commit, entry)
        if local is not None:
            return local, 0
        whole = bucket.exists(blob_key(entry.etag))
        listed = listed_parts(bucket, entry) if parts and not whole else []
        if not whole and not listed:  # nothing to read: no partial file touched
            return None, 0
        partial = store.partial(ref, entry.etag, entry.etag, entry.size)
        start = partial.open()
        try:
            watch.started(entry.size, start)
            try:
                reached = _fill(bucket, partial, entry, start, watch, listed)
                if reached < entry.size:
                    return None, reached - start
                partial.verify()
            except IntegrityError as exc:
                partial.discard()
                raise IntegrityError(f"blobs/{entry.etag[:16]}... in the bucket for {ref}: {exc}") from None
            except OSError as exc:  # a local disk error, not the bucket's: keep nothing
                partial.discard()
                raise to_fetch_error(exc, ErrorContext(ref)) from exc
            pointer = store.publish(partial, ref, commit, entry.etag)
        finally:
            partial.close()
        store.record_ref(ref, ref.revision, commit)
    return ResolvedAsset(ref, pointer, commit, entry.size, entry.etag, Origin.NETWORK), entry.size - start


def _fill(
    bucket: Bucket,
    partial: PartialBlob,
    entry: ListedFile,
    start: int,
    watch: TransferWatch,
    parts: list[tuple[int, int, str]],
) -> int:
    """Write what the bucket has of the blob from `start` on (from `parts` when listed, else
    from the whole blob); the offset reached."""
    if parts:
        return pull_parts(bucket, partial, entry, start, watch.advanced, parts)
    chunks = bucket.stream(blob_key(entry.etag), start)
    if chunks is None:  # deleted since we looked
        return start
    limit = entry.size - start
    return pull(partial, chunks, start, limit=limit, gate=Gate(), tally=Tally(start), check=watch.advanced)

"""`BlobStore`: the one writer of a Hugging Face cache folder. Blocking: call from worker threads.

Every source that writes the cache does it through its store, which knows the root:
linking a blob already there, the blob's lock (shared with huggingface_hub), a resumable
partial file, publishing a verified one, small blobs in one step, refs and `.no_exist`
markers. The path arithmetic is `CacheLayout` (pure); the file primitives (exclusive,
no-follow creation, atomic renames) are in `modelfetch._store.layout`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import filelock

from .._core.types import AssetRef, Origin, RepoRef, ResolvedAsset
from .layout import (
    SWEEP_MIN_SIZE,
    CacheLayout,
    link_snapshot,
    mark_missing,
    publish_blob,
    remove_stale_partials,
    sweep_stale_partials,
    temp_blob_path,
    write_new,
    write_ref,
)
from .partial import PartialBlob, acquire_lock, verify_bytes


class BlobStore:
    """Writes one cache folder in huggingface_hub's layout, under huggingface_hub's locks.

    Args:
        root: the cache folder (`HF_HUB_CACHE`).
        lock_timeout: seconds to wait for another process's lock on a blob.
    """

    def __init__(self, root: Path, lock_timeout: float) -> None:
        self.layout = CacheLayout(root)
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"BlobStore({str(self.layout.root)!r})"

    def record_ref(self, repo: RepoRef | AssetRef, revision: str, commit: str) -> None:
        """Record that `revision` points to `commit` (no-op for commit ids)."""
        write_ref(self.layout, repo, revision, commit)

    def record_missing(self, ref: AssetRef, revision: str, commit: str) -> None:
        """Record that `ref`'s file does not exist at `commit` (huggingface_hub's marker), and the ref."""
        mark_missing(self.layout, ref, commit)
        write_ref(self.layout, ref, revision, commit)

    def link_existing(self, ref: AssetRef, commit: str, etag: str) -> ResolvedAsset | None:
        """If the blob `etag` is already stored, link `ref`'s snapshot entry to it and describe it."""
        blob = self.layout.blob(ref, etag)
        try:
            size = blob.stat().st_size
        except FileNotFoundError:
            return None
        pointer = self.layout.snapshot(ref, commit)
        if not pointer.exists():
            link_snapshot(blob, pointer)
        return ResolvedAsset(ref, pointer, commit, size, etag, Origin.DISK)

    def lock(self, ref: AssetRef, name: str) -> filelock.BaseFileLock:
        """The (not yet acquired) lock huggingface_hub takes while writing blob `name`."""
        return filelock.FileLock(str(self.layout.lock(ref, name)), thread_local=False)

    def acquire(self, lock: filelock.BaseFileLock) -> None:
        """Take `lock` within the store's lock timeout (cancellable; `StorageError` after it)."""
        acquire_lock(lock, self.lock_timeout)

    @contextlib.contextmanager
    def locked(self, ref: AssetRef, name: str) -> Iterator[None]:
        """Hold blob `name`'s lock for the block (for callers that stay in one worker thread)."""
        lock = self.lock(ref, name)
        self.acquire(lock)
        try:
            yield
        finally:
            lock.release()

    def partial(self, ref: AssetRef, name: str, etag: str, size: int | None) -> PartialBlob:
        """The resumable partial file of blob `name`; call under its lock.

        Orphans of killed huggingface_hub downloads beside a big blob are removed first (only
        under the lock is that safe).
        """
        blob = self.layout.blob(ref, name)
        if size is None or size >= SWEEP_MIN_SIZE:
            remove_stale_partials(blob)
        return PartialBlob(blob, etag, size)

    def publish(self, partial: PartialBlob, ref: AssetRef, commit: str, name: str) -> Path:
        """Publish a verified partial as blob `name` and link `ref`'s snapshot entry; its path."""
        partial.blob = self.layout.blob(ref, name)
        partial.publish()
        pointer = self.layout.snapshot(ref, commit)
        link_snapshot(partial.blob, pointer)
        return pointer

    def sweep(self, ref: AssetRef, etag: str, size: int) -> None:
        """After a download made by someone else's code (huggingface_hub): remove orphans of
        killed downloads beside a big blob, if nobody holds its lock right now."""
        if size >= SWEEP_MIN_SIZE:
            sweep_stale_partials(self.layout.blob(ref, etag), self.layout.lock(ref, etag))

    def withdraw(self, ref: AssetRef, commit: str, etag: str) -> None:
        """Remove a published blob found corrupt, and `ref`'s snapshot entry pointing at it."""
        for path in (self.layout.snapshot(ref, commit), self.layout.blob(ref, etag)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def store_small(self, ref: AssetRef, commit: str, etag: str, data: bytes, replace: bool = False) -> Path:
        """Verify, write and publish a whole small blob and link `ref` to it, in one call.

        A temporary file created exclusively without following links, an atomic rename, a
        relative link, in a single worker-thread call: for small files the thread hops and
        the files created cost more than the bytes. No lock is taken: the bytes are verified
        before anything is written, the temporary name is ours alone (no sweep matches it),
        and the rename is atomic, so writers racing on the same blob (other processes,
        huggingface_hub under its lock) each publish the same verified content. That saves
        the two files a lock creates (filelock's probe and the lock file), which on a busy
        ext4 cost more than the write. With `replace` (force_download) an existing blob is
        replaced, by rename, too.
        """
        verify_bytes(data, etag)
        blob = self.layout.blob(ref, etag)
        if replace or not blob.exists():
            blob.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_blob_path(blob)
            try:
                write_new(tmp, data)
                publish_blob(tmp, blob)
            except OSError:  # e.g. Windows refusing to rename over a blob a reader holds open
                if replace or not blob.exists():
                    raise  # otherwise a racing writer published the same verified bytes
            finally:  # after a failed write (disk full) nothing is left behind
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        pointer = self.layout.snapshot(ref, commit)
        link_snapshot(blob, pointer)
        return pointer

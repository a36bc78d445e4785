"""`BlobStore`: the one writer of a Hugging Face cache folder. Blocking: call from worker threads.

Every source that writes the cache does it through its store, which knows the root:
linking a blob already there, the blob's lock (shared with huggingface_hub), a resumable
partial file, publishing a verified one, small blobs in one step, refs and `.no_exist`
markers. The path arithmetic is `CacheLayout` (pure); the file primitives (exclusive,
no-follow creation, atomic renames) are in `modelfetch._store.layout`.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from .._core.types import AssetRef, Origin, RepoRef, ResolvedAsset
from .anchored import Folder, open_below, parent_folder
from .layout import (
    SWEEP_MIN_SIZE,
    CacheLayout,
    link_in,
    link_snapshot,
    look_up_entry,
    mark_missing,
    remove_stale_partials,
    repo_folder,
    repo_folder_name,
    sweep_leftovers,
    temp_blob_name,
    write_new,
    write_ref,
)
from .locks import NoFollowLock
from .partial import PartialBlob, verify_bytes


class BlobStore:
    """Writes one cache folder in huggingface_hub's layout, under huggingface_hub's locks.

    Nothing is written, replaced or deleted through a link planted below the root
    (`modelfetch._store.anchored`); the root itself may be a link.

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

    def blob_size(self, ref: RepoRef | AssetRef, etag: str) -> int | None:
        """The size of blob `etag` if it is stored as a regular file (not a link, FIFO...), else None.

        A read-only check by `lstat` (see `look_up_entry` for why not a descriptor walk).
        """
        storage = os.path.join(os.fspath(self.layout.root), repo_folder_name(ref.repo_id, ref.repo_type))
        try:
            for folder in (storage, os.path.join(storage, "blobs")):
                if not stat.S_ISDIR(os.lstat(folder).st_mode):
                    return None
            st = os.lstat(os.path.join(storage, "blobs", etag))
        except OSError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def link_existing(self, ref: AssetRef, commit: str, etag: str) -> ResolvedAsset | None:
        """If the blob `etag` is already stored, link `ref`'s snapshot entry to it and describe it."""
        size = self.blob_size(ref, etag)
        if size is None:
            return None
        found = look_up_entry(self.layout, ref, commit)
        if found is None or found[0] != etag:
            link_snapshot(self.layout, ref, commit, etag)
        return ResolvedAsset(ref, self.layout.snapshot(ref, commit), commit, size, etag, Origin.DISK)

    def lock(self, ref: AssetRef, name: str) -> NoFollowLock:
        """The (not yet acquired) lock huggingface_hub takes while writing blob `name`."""
        return NoFollowLock(self.layout.root, self.layout.lock(ref, name))

    def acquire(self, lock: NoFollowLock) -> None:
        """Take `lock` within the store's lock timeout (cancellable; `StorageError` after it)."""
        lock.acquire(self.lock_timeout)

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
            remove_stale_partials(self.layout, blob)
        return PartialBlob(self.layout.root, blob, etag, size)

    def publish(self, partial: PartialBlob, ref: AssetRef, commit: str, name: str) -> Path:
        """Publish a verified partial as blob `name` and link `ref`'s snapshot entry; its path."""
        partial.blob = self.layout.blob(ref, name)
        partial.publish()
        return link_snapshot(self.layout, ref, commit, name)

    def sweep(self, ref: AssetRef, etag: str, size: int) -> None:
        """After blob `etag` was published without our lock (huggingface_hub's download, a small
        blob): remove what killed downloads of it left, if nobody holds its lock right now.

        Our own partial's name is checked for every blob; huggingface_hub's, which need a
        listing of the folder, beside big blobs only.
        """
        with (
            contextlib.suppress(FileNotFoundError, NotADirectoryError),
            parent_folder(self.layout.root, self.layout.blob(ref, etag), create=False) as (folder, name),
        ):
            sweep_leftovers(folder, name, self.lock(ref, etag), listing=size >= SWEEP_MIN_SIZE)

    def withdraw(self, ref: AssetRef, commit: str, etag: str) -> None:
        """Remove a published blob found corrupt, and `ref`'s snapshot entry pointing at it."""
        for path in (self.layout.snapshot(ref, commit), self.layout.blob(ref, etag)):
            with (
                contextlib.suppress(FileNotFoundError, NotADirectoryError),
                parent_folder(self.layout.root, path, create=False) as (folder, name),
            ):
                folder.unlink(name)

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
        replaced, by rename, too; so is anything that is not a regular file at its name.
        """
        verify_bytes(data, etag)
        with repo_folder(self.layout, ref, create=True) as storage:
            with open_below(storage, ("blobs",), create=True) as blobs:
                st = blobs.lstat(etag)
                if replace or st is None or not stat.S_ISREG(st.st_mode):
                    self._write_blob(blobs, etag, data, replace)
                sweep_leftovers(blobs, etag, self.lock(ref, etag), listing=len(data) >= SWEEP_MIN_SIZE)
            link_in(storage, ref, commit, etag)
        return self.layout.snapshot(ref, commit)

    @staticmethod
    def _write_blob(blobs: Folder, etag: str, data: bytes, replace: bool) -> None:
        tmp = temp_blob_name(etag)
        try:
            write_new(blobs, tmp, data)
            blobs.replace(tmp, etag)
        except OSError:  # e.g. Windows refusing to rename over a blob a reader holds open
            blobs.unlink(tmp)  # after a failed write (disk full) nothing is left behind
            st = blobs.lstat(etag)
            if replace or st is None or not stat.S_ISREG(st.st_mode):
                raise  # otherwise a racing writer published the same verified bytes

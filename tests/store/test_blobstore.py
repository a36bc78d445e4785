"""BlobStore: the one writer of a cache folder (link, lock, partial, publish, refs, markers)."""

from __future__ import annotations

import os
from pathlib import Path

import filelock
import pytest

from modelfetch import AssetRef, IntegrityError, Origin
from modelfetch._hubapi.spec import git_blob_id
from modelfetch._store.anchored import Folder
from modelfetch._store.blobstore import BlobStore
from modelfetch._store.layout import (
    ORPHAN_TEMP,
    find_cached,
    is_marked_missing,
    read_ref,
    remove_stale_partials,
    temp_blob_name,
)

COMMIT = "c" * 40
REF = AssetRef("org/model", "sub/a.json")


def test_small_blobs_are_verified_published_and_linked(tmp_path: Path) -> None:
    """store_small writes blobs/<etag>, links the snapshot entry relatively, and refuses bad bytes."""
    store = BlobStore(tmp_path, lock_timeout=5)
    data = b'{"a": 1}'
    with pytest.raises(IntegrityError):
        store.store_small(REF, COMMIT, git_blob_id(b"other"), data)
    assert not list(tmp_path.glob("models--org--model/blobs/*"))
    pointer = store.store_small(REF, COMMIT, git_blob_id(data), data)
    assert pointer.read_bytes() == data
    assert pointer.is_symlink()
    assert not os.readlink(pointer).startswith("/")
    cached = find_cached(store.layout, REF, COMMIT)
    assert cached is not None
    assert cached.etag == git_blob_id(data)


def test_link_existing_describes_a_stored_blob_for_another_commit(tmp_path: Path) -> None:
    """A blob stored once is linked, not downloaded, for a second commit."""
    store = BlobStore(tmp_path, lock_timeout=5)
    data = b"x" * 10
    etag = git_blob_id(data)
    assert store.link_existing(REF, COMMIT, etag) is None
    store.store_small(REF, COMMIT, etag, data)
    other = "d" * 40
    found = store.link_existing(REF, other, etag)
    assert found is not None
    assert (found.commit, found.size, found.origin) == (other, 10, Origin.DISK)
    assert found.path.read_bytes() == data


def test_refs_and_missing_markers(tmp_path: Path) -> None:
    """record_ref and record_missing leave what huggingface_hub reads."""
    store = BlobStore(tmp_path, lock_timeout=5)
    store.record_ref(REF, "main", COMMIT)
    assert read_ref(store.layout, REF, "main") == COMMIT
    store.record_missing(AssetRef("org/model", "nope.txt"), "dev", COMMIT)
    assert is_marked_missing(store.layout, AssetRef("org/model", "nope.txt"), COMMIT)
    assert read_ref(store.layout, REF, "dev") == COMMIT


def test_withdraw_removes_blob_and_entry(tmp_path: Path) -> None:
    """A corrupt published blob is taken back with its snapshot entry."""
    store = BlobStore(tmp_path, lock_timeout=5)
    data = b"y"
    pointer = store.store_small(REF, COMMIT, git_blob_id(data), data)
    store.withdraw(REF, COMMIT, git_blob_id(data))
    assert not pointer.exists()
    assert not store.layout.blob(REF, git_blob_id(data)).exists()


def test_partials_of_big_blobs_sweep_orphans_under_the_lock(tmp_path: Path) -> None:
    """A big blob's partial (opened under its lock) removes huggingface_hub orphans; a small one's not."""
    store = BlobStore(tmp_path, lock_timeout=5)
    etag = "e" * 64
    blobs = store.layout.blob(REF, etag).parent
    blobs.mkdir(parents=True)
    orphan = blobs / f"{etag}.0123abcd.incomplete"
    orphan.write_bytes(b"half")
    with store.locked(REF, etag):
        store.partial(REF, etag, etag, 1024)
        assert orphan.exists()
        store.partial(REF, etag, etag, 64 * 1024 * 1024)
        assert not orphan.exists()


def test_small_blobs_are_stored_without_taking_the_blob_lock(tmp_path: Path) -> None:
    """A verified whole blob needs no lock: a holder of it (huggingface_hub downloading) does not
    delay it, no lock file is left, and the temporary name is one no sweep of partials matches."""
    store = BlobStore(tmp_path, lock_timeout=0.05)
    data = b"tokenizer"
    etag = git_blob_id(data)
    held = filelock.FileLock(str(store.layout.lock(REF, etag)))
    held.acquire()
    try:
        pointer = store.store_small(REF, COMMIT, etag, data)  # would time out waiting for the lock
    finally:
        held.release()
    assert pointer.read_bytes() == data
    blob = store.layout.blob(REF, etag)
    assert sorted(p.name for p in blob.parent.iterdir()) == [etag]
    other = BlobStore(tmp_path / "other", lock_timeout=5)
    assert not (other.layout.root / ".locks").exists()
    other.store_small(REF, COMMIT, etag, data)
    assert not (other.layout.root / ".locks").exists()
    temp = blob.with_name(temp_blob_name(blob.name))
    assert ORPHAN_TEMP.fullmatch(temp.name)
    temp.write_bytes(data)
    # a lock holder's sweep leaves a writer's temp alone
    assert remove_stale_partials(store.layout, blob) == 0
    assert temp.exists()


def test_a_rename_refused_because_a_racing_writer_published_first_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows refuses to rename over a blob a reader holds open; the racer's bytes are the same."""
    store = BlobStore(tmp_path, lock_timeout=5)
    data = b"vocab"
    etag = git_blob_id(data)
    blob = store.layout.blob(REF, etag)

    real_replace = Folder.replace

    def racer_wins(self: Folder, src: str, dst: str) -> None:
        if dst != blob.name:
            return real_replace(self, src, dst)
        blob.write_bytes(data)  # the other writer's rename landed first
        raise PermissionError("in use")

    monkeypatch.setattr(Folder, "replace", racer_wins)
    pointer = store.store_small(REF, COMMIT, etag, data)
    assert pointer.read_bytes() == data
    assert sorted(p.name for p in blob.parent.iterdir()) == [etag]  # no temp left
    with pytest.raises(PermissionError):  # force_download must replace it: the failure is reported
        store.store_small(REF, COMMIT, etag, data, replace=True)

"""The Hugging Face cache layout: pure paths and the atomic publish helpers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from huggingface_hub import scan_cache_dir, try_to_load_from_cache

from modelfetch import AssetRef, RepoRef
from modelfetch._store.layout import (
    CacheLayout,
    find_cached,
    link_snapshot,
    read_ref,
    repo_folder_name,
    write_ref,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_paths_match_huggingface_hub() -> None:
    """Folder names and paths are the ones huggingface_hub uses."""
    layout = CacheLayout(Path("/c"))
    ref = AssetRef("org/model", "onnx/model.onnx", "main", "dataset")
    assert repo_folder_name("org/model", "model") == "models--org--model"
    assert layout.snapshot(ref, COMMIT) == Path(f"/c/datasets--org--model/snapshots/{COMMIT}/onnx/model.onnx")
    assert layout.lock(ref, "abc") == Path("/c/.locks/datasets--org--model/abc.lock")
    assert layout.no_exist(ref, COMMIT) == Path(f"/c/datasets--org--model/.no_exist/{COMMIT}/onnx/model.onnx")
    assert layout.ref(RepoRef("gpt2"), "refs/pr/1") == Path("/c/models--gpt2/refs/refs/pr/1")


def _publish(layout: CacheLayout, ref: AssetRef, data: bytes, etag: str) -> Path:
    blob = layout.blob(ref, etag)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    link_snapshot(layout, ref, COMMIT, etag)
    write_ref(layout, ref, "main", COMMIT)
    return blob


def test_published_file_is_what_huggingface_hub_expects(tmp_path: Path) -> None:
    """A relative symlink to the blob, a ref file, readable by try_to_load_from_cache and scan_cache_dir."""
    layout = CacheLayout(tmp_path)
    ref = AssetRef("org/model", "sub/file.txt")
    blob = _publish(layout, ref, b"hello", "e" * 40)
    pointer = layout.snapshot(ref, COMMIT)
    assert os.readlink(pointer) == "../../../blobs/" + "e" * 40
    assert try_to_load_from_cache("org/model", "sub/file.txt", cache_dir=tmp_path) == str(pointer)
    report = scan_cache_dir(tmp_path)
    assert report.warnings == []
    assert report.size_on_disk == 5
    assert not list(blob.parent.glob("*.incomplete"))
    assert stat.S_IMODE(blob.stat().st_mode) & 0o444 == 0o444


def test_find_cached_reads_refs_and_ignores_dangling_links(tmp_path: Path) -> None:
    """Lookups follow refs/<branch>; a link whose blob is gone is a miss."""
    layout = CacheLayout(tmp_path)
    ref = AssetRef("org/model", "a.txt")
    blob = _publish(layout, ref, b"A", "a" * 40)
    assert read_ref(layout, ref, "main") == COMMIT
    hit = find_cached(layout, ref)
    assert hit is not None
    assert (hit.commit, hit.etag, hit.size) == (COMMIT, "a" * 40, 1)
    blob.unlink()
    assert find_cached(layout, ref) is None
    assert find_cached(layout, AssetRef("org/model", "a.txt", "other")) is None


def test_relinking_replaces_atomically(tmp_path: Path) -> None:
    """Linking over an existing entry replaces it and leaves no temporary names."""
    layout = CacheLayout(tmp_path)
    ref = AssetRef("org/model", "a.txt")
    _publish(layout, ref, b"A", "a" * 40)
    second = layout.blob(ref, "b" * 40)
    second.write_bytes(b"B")
    link_snapshot(layout, ref, COMMIT, "b" * 40)
    assert layout.snapshot(ref, COMMIT).read_bytes() == b"B"
    assert [p.name for p in layout.snapshot_dir(ref, COMMIT).iterdir()] == ["a.txt"]

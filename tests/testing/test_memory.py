"""MemorySource: a ModelAssetSource with no server, writing real HF-cache paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import try_to_load_from_cache

import modelfetch
from modelfetch import AssetRef, Origin, RepoRef
from modelfetch.testing import MemorySource


async def test_fetch_and_snapshot_through_memory_source(tmp_path: Path) -> None:
    """fetch and snapshot work with MemorySource, and huggingface_hub finds the files."""
    files = {"config.json": b'{"a": 1}', "onnx/model.onnx": b"onnx"}
    async with MemorySource({"org/model": files}, cache_dir=tmp_path) as source:
        path = await modelfetch.fetch("org/model", "config.json", source=source)
        assert path.read_bytes() == b'{"a": 1}'
        assert try_to_load_from_cache("org/model", "config.json", cache_dir=tmp_path) == str(path)
        folder = await modelfetch.snapshot("org/model", source=source)
        assert (folder / "onnx" / "model.onnx").read_bytes() == b"onnx"
        assert source.resolved[0].filename == "config.json"


async def test_second_resolve_comes_from_disk() -> None:
    """The first resolve writes (network-like), the second finds it on disk."""
    async with MemorySource({"org/model": {"a.txt": b"A"}}) as source:
        ref = AssetRef("org/model", "a.txt")
        first, second = await source.resolve(ref), await source.resolve(ref)
        assert (first.origin, second.origin) == (Origin.NETWORK, Origin.DISK)
        assert first.path == second.path
        cache = source.cache_dir
    assert not cache.exists()


async def test_errors_are_typed() -> None:
    """Missing repos, revisions and files raise the matching FetchError."""
    async with MemorySource({"org/model": {"a.txt": b"A"}}) as source:
        with pytest.raises(modelfetch.RepoNotFoundError):
            await source.resolve(AssetRef("org/other", "a.txt"))
        with pytest.raises(modelfetch.RevisionNotFoundError):
            await source.resolve(AssetRef("org/model", "a.txt", "v9"))
        with pytest.raises(modelfetch.AssetNotFoundError):
            await source.resolve(AssetRef("org/model", "b.txt"))


async def test_new_commits_move_the_branch() -> None:
    """add_files makes a new commit; the old commit stays resolvable."""
    async with MemorySource() as source:
        old = source.add_files("org/model", {"a.txt": b"1"})
        new = source.add_files("org/model", {"a.txt": b"2"})
        listing = await source.list_files(RepoRef("org/model"))
        assert listing.commit == new
        assert (await source.resolve(AssetRef("org/model", "a.txt", old))).path.read_bytes() == b"1"
        assert (await source.resolve(AssetRef("org/model", "a.txt"))).path.read_bytes() == b"2"

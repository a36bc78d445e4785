"""fetch_safetensors: config and every shard, concurrently, in index order, from one commit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import modelfetch
from modelfetch import CachedSource, HubSource, Settings
from modelfetch.testing import FakeHub, MemorySource, write_model_repo


async def test_sharded_model_in_index_order(fake_hub: FakeHub, settings: Settings, tmp_path: Path) -> None:
    """Shards come back in the order the index names them, with config and index, all one commit."""
    repo = write_model_repo(tmp_path / "repo", shards=3, shard_size=64 * 1024)
    commit = fake_hub.add_folder("org/model", repo.folder)
    async with CachedSource(HubSource(settings)) as source:
        model = await modelfetch.fetch_safetensors("org/model", source=source)
    assert model.commit == commit
    assert [p.name for p in model.shards] == list(repo.shards)
    assert all(p.parent == model.folder for p in model.shards)
    assert model.config is not None
    assert json.loads(model.config.read_text())["model_type"] == "fake"
    assert model.index is not None
    assert model.index.name == "model.safetensors.index.json"
    assert fake_hub.count("GET", "tokenizer") == 0  # only what a loader needs


async def test_single_file_model() -> None:
    """A repo with one model.safetensors and no index works too."""
    async with MemorySource({"org/m": {"config.json": b"{}", "model.safetensors": b"w"}}) as source:
        model = await modelfetch.fetch_safetensors("org/m", source=source)
    assert [p.name for p in model.shards] == ["model.safetensors"]
    assert model.index is None


async def test_subfolder() -> None:
    """Weights in a subfolder (diffusers style) are found there."""
    index = json.dumps({"weight_map": {"a": "d.safetensors"}}).encode()
    files = {
        "unet/model.safetensors.index.json": index,
        "unet/d.safetensors": b"w",
        "unet/config.json": b"{}",
    }
    async with MemorySource({"org/m": files}) as source:
        model = await modelfetch.fetch_safetensors("org/m", subfolder="unet", source=source)
    assert [p.relative_to(model.folder).as_posix() for p in model.shards] == ["unet/d.safetensors"]
    assert model.config is not None
    assert model.config.relative_to(model.folder).as_posix() == "unet/config.json"


async def test_missing_weights_and_broken_index() -> None:
    """No weights is AssetNotFoundError; a malformed index is IntegrityError; a hostile one is refused."""
    async with MemorySource({"org/m": {"config.json": b"{}"}}) as source:
        with pytest.raises(modelfetch.AssetNotFoundError, match=r"model\.safetensors"):
            await modelfetch.fetch_safetensors("org/m", source=source)
    async with MemorySource({"org/m": {"model.safetensors.index.json": b"{not json"}}) as source:
        with pytest.raises(modelfetch.IntegrityError):
            await modelfetch.fetch_safetensors("org/m", source=source)
    hostile = json.dumps({"weight_map": {"a": "../../../etc/passwd"}}).encode()
    async with MemorySource({"org/m": {"model.safetensors.index.json": hostile}}) as source:
        with pytest.raises(modelfetch.SnapshotError, match=r"etc/passwd.*is not valid"):
            await modelfetch.fetch_safetensors("org/m", source=source)


async def test_a_missing_shard_names_it(fake_hub: FakeHub, settings: Settings, tmp_path: Path) -> None:
    """If the index names a shard the repo lacks, the error names that shard."""
    index = json.dumps({"weight_map": {"a": "one.safetensors", "b": "two.safetensors"}}).encode()
    fake_hub.add_files("org/m", {"model.safetensors.index.json": index, "one.safetensors": b"1"})
    async with CachedSource(HubSource(settings)) as source:
        with pytest.raises(modelfetch.SnapshotError, match=r"two\.safetensors"):
            await modelfetch.fetch_safetensors("org/m", source=source)

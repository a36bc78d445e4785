"""A hostile safetensors index cannot exhaust memory, tasks or requests ([security] 6 and 9)."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

import modelfetch
from modelfetch import AssetRef, HttpHubSource, ListedFile, RepoListing, RepoRef, ResolvedAsset, Settings
from modelfetch._api import fetch_many
from modelfetch._weights import MAX_INDEX_BYTES, MAX_SHARDS
from modelfetch.testing import FakeHub

from .conftest import FAST

INDEX = "model.safetensors.index.json"
CONFIG = b'{"model_type": "bert"}'


async def _fetch(hub: FakeHub, tmp_path: Path) -> modelfetch.SafetensorsModel:
    settings = Settings.from_env({}, endpoint=hub.endpoint, hub_cache=tmp_path / "cache")
    async with HttpHubSource(settings, retry=FAST) as source:
        return await modelfetch.fetch_safetensors("org/model", source=source)


def _index(weight_map: object) -> bytes:
    return json.dumps({"metadata": {}, "weight_map": weight_map}).encode()


async def test_an_index_over_the_size_limit_is_not_even_downloaded(fake_hub: FakeHub, tmp_path: Path) -> None:
    """The listing says the index is past MAX_INDEX_BYTES: SnapshotError naming the limit, no GET of it."""
    padded = b'{"weight_map": {"a": "model.safetensors"}' + b" " * MAX_INDEX_BYTES + b"}"
    fake_hub.add_files("org/model", {INDEX: padded, "config.json": CONFIG, "model.safetensors": b"w"})
    with pytest.raises(modelfetch.SnapshotError, match=str(MAX_INDEX_BYTES)):
        await _fetch(fake_hub, tmp_path)
    assert fake_hub.count("GET", INDEX) == 0


async def test_an_index_naming_too_many_shards_is_refused_before_any_shard(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    """MAX_SHARDS + 1 shard names: SnapshotError, and not one shard is asked for."""
    names = {f"w{i}": f"model-{i:06d}.safetensors" for i in range(MAX_SHARDS + 1)}
    fake_hub.add_files("org/model", {INDEX: _index(names), "config.json": CONFIG})
    with pytest.raises(modelfetch.SnapshotError, match=f"over the limit of {MAX_SHARDS}"):
        await _fetch(fake_hub, tmp_path)
    assert fake_hub.count("GET", "model-0") == 0


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (b'{"weight_map": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
        (_index({"a": 1, "b": ["model.safetensors"]}), "must be a shard file name"),
        (_index({"a": "model-00001-of-00002.safetensors"}), "the commit does not have"),
    ],
    ids=["deeply-nested", "not-strings", "not-listed"],
)
async def test_odd_indexes_are_typed_errors_before_any_shard_request(
    fake_hub: FakeHub, tmp_path: Path, index: bytes, message: str
) -> None:
    """Deep nesting, non-string values, shards the listing lacks: SnapshotError, no shard GET."""
    fake_hub.add_files("org/model", {INDEX: index, "config.json": CONFIG, "other.safetensors": b"w"})
    with pytest.raises(modelfetch.SnapshotError, match=message):
        await _fetch(fake_hub, tmp_path)
    assert fake_hub.count("GET", ".safetensors") == fake_hub.count("GET", INDEX)


class _CountingSource:
    """Resolves any file instantly, recording the most tasks alive at once."""

    def __init__(self) -> None:
        self.most_tasks = 0

    async def resolve(self, ref: AssetRef, *, progress: object = None) -> ResolvedAsset:
        self.most_tasks = max(self.most_tasks, len(anyio.get_running_tasks()))
        await anyio.lowlevel.checkpoint()
        return ResolvedAsset(ref, Path("/nowhere") / ref.filename, "c" * 40, 0, "", modelfetch.Origin.MEMORY)

    async def list_files(self, repo: RepoRef) -> RepoListing:
        return RepoListing(repo, "c" * 40, (ListedFile("x", 0, ""),))

    async def aclose(self) -> None:
        return None


async def test_many_files_are_fetched_by_a_bounded_number_of_tasks() -> None:
    """2,000 files with 4 workers: a handful of tasks alive at once, not one per file."""
    source = _CountingSource()
    names = [f"f{i}" for i in range(2000)]
    paths = await fetch_many(source, RepoRef("org/model", "c" * 40), names, max_workers=4)  # type: ignore[arg-type]
    assert len(paths) == 2000
    assert source.most_tasks <= 4 + 4  # the workers, plus the test's own task and the runner's

"""Refs are recorded by the source that owns the cache, never beside a folder served in place."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import modelfetch
from modelfetch import CachedSource, HttpHubSource, HubSource, LocalDirSource, ModelAssetSource, Settings
from modelfetch.testing import FakeHub, write_model_repo

SOURCES: dict[str, Callable[[Settings], ModelAssetSource]] = {"hub": HubSource, "httpx": HttpHubSource}

_OFFLINE_CHECK = """
import sys
from huggingface_hub import hf_hub_download
path = hf_hub_download("org/model", "config.json", cache_dir=sys.argv[1])  # by branch name, offline
print(path)
"""


def _tree(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*"))


@pytest.fixture(params=list(SOURCES))
def hub_source(request: pytest.FixtureRequest) -> Callable[[Settings], ModelAssetSource]:
    """Each Hub source."""
    return SOURCES[request.param]


async def test_fetch_safetensors_records_the_branch(
    fake_hub: FakeHub, settings: Settings, tmp_path: Path, hub_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """After fetch_safetensors by branch, refs/main is set and offline huggingface_hub finds config.json."""
    repo = write_model_repo(tmp_path / "repo", shards=2, shard_size=32 * 1024)
    commit = fake_hub.add_folder("org/model", repo.folder)
    async with CachedSource(hub_source(settings)) as source:
        model = await modelfetch.fetch_safetensors("org/model", source=source)
    ref = settings.hub_cache / "models--org--model" / "refs" / "main"
    assert ref.read_text() == commit
    found = await anyio.run_process(
        [sys.executable, "-c", _OFFLINE_CHECK, str(settings.hub_cache)],
        env={"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert found.returncode == 0, found.stderr.decode()
    assert Path(found.stdout.decode().strip()) == model.config


async def test_snapshot_over_a_plain_folder_writes_nothing_beside_it(tmp_path: Path) -> None:
    """A snapshot served in place from a plain-folder LocalDirSource leaves the share untouched."""
    share = tmp_path / "share"
    (share / "org" / "model").mkdir(parents=True)
    (share / "org" / "model" / "config.json").write_text("{}")
    before = _tree(tmp_path)
    async with LocalDirSource(share) as source:
        folder = await modelfetch.snapshot("org/model", source=source)
    assert folder == share / "org" / "model"
    assert _tree(tmp_path) == before


async def test_snapshot_by_branch_records_the_ref(
    fake_hub: FakeHub, settings: Settings, hub_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """snapshot() by branch leaves refs/<branch> in the source's own cache."""
    commit = fake_hub.add_file("org/model", "config.json", b"{}")
    async with hub_source(settings) as source:
        folder = await modelfetch.snapshot("org/model", source=source)
    assert folder.name == commit
    assert (settings.hub_cache / "models--org--model" / "refs" / "main").read_text() == commit

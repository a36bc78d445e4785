"""Mocking the Hub with respx: no server, the default stack, a cache in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
import respx

import modelfetch
from modelfetch.testing import hub_headers, mock_repo

from .loader import load_config

pytestmark = pytest.mark.asyncio

URL = "https://huggingface.co/org/model/resolve/main/config.json"


async def test_load_config_from_a_mocked_hub(hub_cache: Path) -> None:
    """Answer the file's HEAD and GET; `hub_headers` gives the headers the Hub would send."""
    data = b'{"hidden_size": 64}'
    with respx.mock(assert_all_mocked=True) as hub:  # an unmocked request fails, never leaves
        head = hub.head(URL).respond(200, headers=hub_headers(data))
        get = hub.get(URL).respond(200, headers=hub_headers(data), content=data)
        assert await load_config("org/model") == {"hidden_size": 64}
    assert head.call_count == 1
    assert get.call_count == 1


async def test_a_mocked_outage_is_a_typed_error(hub_cache: Path) -> None:
    """A 404 with the Hub's error code is the typed error your loader would see."""
    with respx.mock(assert_all_mocked=True) as hub:
        hub.head(URL).respond(404, headers={"X-Error-Code": "RepoNotFound"})
        with pytest.raises(modelfetch.RepoNotFoundError):
            await load_config("org/model")


async def test_bytes_that_do_not_match_the_etag_are_refused(hub_cache: Path) -> None:
    """modelfetch verifies what it downloads: a mock serving other bytes fails loudly."""
    with respx.mock(assert_all_mocked=True) as hub:
        hub.head(URL).respond(200, headers=hub_headers(b"{}"))
        hub.get(URL).respond(200, headers=hub_headers(b"{}"), content=b"[]")
        with pytest.raises(modelfetch.IntegrityError):
            await load_config("org/model")
    published = [path async for path in anyio.Path(hub_cache).rglob("config.json")]
    assert published == []


# A whole repo in one call: `mock_repo` registers the revision info, the listing and every
# file (the answers FakeHub gives), so snapshot, fetch_safetensors and get_paths_info work too.
INDEX = {"metadata": {}, "weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}
FILES = {
    "config.json": b'{"hidden_size": 64}',
    "model.safetensors.index.json": json.dumps(INDEX).encode(),
    "model-1.safetensors": b"\x01" * 4096,
    "model-2.safetensors": b"\x02" * 4096,
}


async def test_a_whole_repo_for_fetch_and_snapshot(hub_cache: Path) -> None:
    """`fetch` and `snapshot` of a mocked repo; nothing unmocked is ever sent."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as hub:
        commit = mock_repo(hub, "org/model", FILES)
        config = await modelfetch.fetch("org/model", "config.json")
        folder = await modelfetch.snapshot("org/model", include=["*.json"])
    assert config.read_bytes() == FILES["config.json"]
    assert folder.name == commit
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors.index.json"]


async def test_a_whole_repo_for_fetch_safetensors(hub_cache: Path) -> None:
    """The index is read and every shard it names is fetched, in index order."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as hub:
        mock_repo(hub, "org/model", FILES)
        model = await modelfetch.fetch_safetensors("org/model")
    assert [p.name for p in model.shards] == ["model-1.safetensors", "model-2.safetensors"]
    assert model.shards[1].read_bytes() == FILES["model-2.safetensors"]


async def test_a_whole_repo_for_get_paths_info(hub_cache: Path) -> None:
    """Sizes and LFS status from the mocked listing; nothing is downloaded."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as hub:
        mock_repo(hub, "org/model", FILES)
        infos = await modelfetch.get_paths_info("org/model", ["config.json", "model-1.safetensors"])
    sizes = {info.path: (info.size, info.lfs) for info in infos.files}
    assert sizes == {"config.json": (19, False), "model-1.safetensors": (4096, True)}


async def test_a_file_the_repo_lacks_is_asset_not_found(hub_cache: Path) -> None:
    """A file not in `files` is a 404 with the Hub's error code: AssetNotFoundError."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as hub:
        mock_repo(hub, "org/model", FILES)
        with pytest.raises(modelfetch.AssetNotFoundError):
            await modelfetch.fetch("org/model", "tokenizer.json")

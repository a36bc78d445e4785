"""huggingface_hub parity: hf_hub_url, get_paths_info, fetch_safetensors_sync."""

from __future__ import annotations

import hashlib
from pathlib import Path

import huggingface_hub
import pytest

import modelfetch
from modelfetch.testing import FakeHub, write_model_repo

CASES = [
    ("org/model", "config.json", {}),
    ("org/model", "weights/model 1.safetensors", {"revision": "refs/pr/1"}),
    ("org/data", "train.csv", {"repo_type": "dataset", "revision": "v1.0"}),
    ("org/app", "app.py", {"repo_type": "space", "subfolder": "src"}),
]


@pytest.mark.parametrize(("repo", "name", "extra"), CASES)
def test_hf_hub_url_builds_what_huggingface_hub_builds(repo: str, name: str, extra: dict[str, str]) -> None:
    """Same URL as huggingface_hub.hf_hub_url, quoting included, for every repo type."""
    endpoint = "http://127.0.0.1:9"
    ours = modelfetch.hf_hub_url(repo, name, endpoint=endpoint, **extra)  # type: ignore[arg-type]
    theirs = huggingface_hub.hf_hub_url(repo, name, endpoint=endpoint, **extra)
    assert ours == theirs


def test_hf_hub_url_reads_the_endpoint_and_refuses_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_ENDPOINT when none is given; a traversal in the file name is refused."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    assert modelfetch.hf_hub_url("org/model", "a.json") == "http://127.0.0.1:9/org/model/resolve/main/a.json"
    with pytest.raises(modelfetch.InvalidRequestError):
        modelfetch.hf_hub_url("org/model", "../a.json")


async def test_get_paths_info_lists_without_downloading(hub_env: FakeHub) -> None:
    """Sizes, etags, LFS and the commit for files and a folder; missing paths left out; no body sent."""
    big = b"w" * 2048
    commit = hub_env.add_files(
        "org/model", {"config.json": b"{}", "weights/a.safetensors": big, "weights/b.safetensors": big}
    )
    info = await modelfetch.get_paths_info("org/model", ["config.json", "weights", "missing.txt"])
    assert info.commit == commit
    assert [f.path for f in info.files] == ["config.json", "weights/a.safetensors", "weights/b.safetensors"]
    lfs = info.files[1]
    assert (lfs.size, lfs.lfs, lfs.etag) == (2048, True, hashlib.sha256(big).hexdigest())
    assert info.files[0].lfs is False
    assert hub_env.count("GET", "/resolve/") == 0
    one = await modelfetch.get_paths_info("org/model", "config.json", revision=commit)
    assert [f.path for f in one.files] == ["config.json"]
    with pytest.raises(modelfetch.InvalidRequestError):
        await modelfetch.get_paths_info("org/model", ["../x"])
    with pytest.raises(modelfetch.RepoNotFoundError):
        await modelfetch.get_paths_info("org/nothing", "config.json")


def test_fetch_safetensors_sync_is_the_async_call_for_sync_code(hub_env: FakeHub, tmp_path: Path) -> None:
    """Same result as fetch_safetensors: shards in index order, all from one commit."""
    model = write_model_repo(tmp_path / "repo", shards=2, shard_size=64 * 1024)
    commit = hub_env.add_folder("org/model", model.folder)
    weights = modelfetch.fetch_safetensors_sync("org/model")
    assert weights.commit == commit
    assert [p.name for p in weights.shards] == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]
    assert all(p.is_file() for p in weights.shards)


async def test_fetch_safetensors_sync_refuses_to_block_a_loop() -> None:
    """From a thread running an event loop: a typed error, nothing fetched."""
    with pytest.raises(modelfetch.BlockingCallError, match="fetch_safetensors"):
        modelfetch.fetch_safetensors_sync("org/model")

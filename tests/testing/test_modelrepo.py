"""write_model_repo builds a realistic, deterministic sharded model."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from modelfetch.testing import write_model_repo


def _header(path: Path) -> dict[str, dict[str, object]]:
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length))  # type: ignore[no-any-return]


def test_shards_have_valid_safetensors_headers_and_index(tmp_path: Path) -> None:
    """Each shard's header describes exactly its data, and the index maps every tensor to its shard."""
    repo = write_model_repo(tmp_path, shards=3, shard_size=64 * 1024)
    assert len(repo.shards) == 3
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == sorted(repo.shards)
    for shard in repo.shards:
        path = tmp_path / shard
        header = _header(path)
        (length,) = struct.unpack("<Q", path.read_bytes()[:8])
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        end = max(v["data_offsets"][1] for v in tensors.values())  # type: ignore[index]
        assert path.stat().st_size == 8 + length + end
    assert {"config.json", "tokenizer.json", "generation_config.json"} <= set(repo.files)


def test_content_is_deterministic(tmp_path: Path) -> None:
    """The same arguments give the same bytes; another seed gives others."""

    def digest(folder: Path, seed: int) -> str:
        repo = write_model_repo(folder, shards=2, shard_size=32 * 1024, seed=seed)
        return hashlib.sha256(b"".join((folder / f).read_bytes() for f in repo.files)).hexdigest()

    assert digest(tmp_path / "a", 1) == digest(tmp_path / "b", 1)
    assert digest(tmp_path / "c", 2) != digest(tmp_path / "a", 1)


def test_single_shard_is_model_safetensors(tmp_path: Path) -> None:
    """One shard is named model.safetensors and needs no index."""
    repo = write_model_repo(tmp_path, shards=1, shard_size=1024)
    assert repo.shards == ("model.safetensors",)
    assert not (tmp_path / "model.safetensors.index.json").exists()

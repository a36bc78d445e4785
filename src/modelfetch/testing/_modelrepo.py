"""A realistic, deterministic model repo for demos, tests and benchmarks."""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

_BLOCK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ModelRepoFiles:
    """What `write_model_repo` wrote.

    Attributes:
        folder: where the repo's files are.
        files: every path, relative to `folder`, sorted.
        shards: the safetensors shard paths, in index order.
        total_bytes: the size of everything.
    """

    folder: Path
    files: tuple[str, ...]
    shards: tuple[str, ...]
    total_bytes: int


def write_model_repo(
    folder: str | Path, *, shards: int = 2, shard_size: int = 4 * _BLOCK, seed: int = 0
) -> ModelRepoFiles:
    """Write a small transformer-shaped repo into `folder`.

    It holds `config.json`, `generation_config.json`, `tokenizer.json`,
    `tokenizer_config.json`, and `shards` safetensors files of about `shard_size` bytes
    each, with real safetensors headers and a valid `model.safetensors.index.json`. The
    bytes depend only on the arguments, so checksums are reproducible.

    Returns:
        What was written.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    if shards < 1:
        raise ValueError("shards must be at least 1")
    config = {
        "architectures": ["FakeForCausalLM"],
        "model_type": "fake",
        "hidden_size": 64,
        "vocab_size": 256,
    }
    _write_json(root / "config.json", config)
    _write_json(root / "generation_config.json", {"max_new_tokens": 32, "do_sample": False})
    vocab = {chr(33 + i): i for i in range(94)}
    _write_json(root / "tokenizer.json", {"version": "1.0", "model": {"type": "WordLevel", "vocab": vocab}})
    _write_json(root / "tokenizer_config.json", {"model_max_length": 512})
    names = [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    if shards == 1:
        names = ["model.safetensors"]
    weight_map: dict[str, str] = {}
    total = 0
    for index, name in enumerate(names):
        tensor = f"layers.{index}.weight"
        total += _write_shard(root / name, tensor, shard_size, seed=seed * 1000 + index)
        weight_map[tensor] = name
    if shards > 1:
        _write_json(
            root / "model.safetensors.index.json",
            {"metadata": {"total_size": total}, "weight_map": weight_map},
        )
    files = tuple(sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()))
    size = sum((root / f).stat().st_size for f in files)
    return ModelRepoFiles(root, files, tuple(names), size)


def _write_json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_shard(path: Path, tensor: str, size: int, *, seed: int) -> int:
    count = max(size // 4, 1)
    header = {
        tensor: {"dtype": "F32", "shape": [count], "data_offsets": [0, count * 4]},
        "__metadata__": {"format": "pt"},
    }
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    remaining = count * 4
    block = hashlib.sha256(f"modelfetch-{seed}".encode()).digest() * (_BLOCK // 32)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        while remaining:
            step = min(remaining, len(block))
            f.write(block[:step])
            remaining -= step
    return count * 4

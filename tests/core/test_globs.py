"""include/exclude filtering matches huggingface_hub's allow_patterns/ignore_patterns exactly."""

from __future__ import annotations

import pytest
from huggingface_hub.utils._paths import filter_repo_objects

from modelfetch._core.globs import filter_paths

PATHS = [
    "config.json",
    "model.safetensors",
    "model-00001-of-00002.safetensors",
    "onnx/model.onnx",
    "onnx/config.json",
    "onnx/sub/deep.bin",
    ".gitattributes",
    "README.md",
    "tokenizer/vocab.txt",
    "Model.SAFETENSORS",
]

PATTERNS: list[tuple[object, object]] = [
    (None, None),
    ("*.json", None),
    (["*.json", "*.safetensors"], None),
    ("onnx/*", None),
    ("onnx/", None),
    ("onnx\\*", None),
    (None, "onnx/*"),
    (None, ".*"),
    ("*", "*.bin"),
    (["*.safetensors"], ["model-*"]),
    ("*config*", "onnx/"),
    ("tokenizer/", None),
    ("[cm]*", None),
    ("?ODEL*", None),
    ([], None),
    (None, []),
]


@pytest.mark.parametrize(("include", "exclude"), PATTERNS)
def test_parity_with_filter_repo_objects(include: object, exclude: object) -> None:
    """Every pattern pair keeps exactly the files snapshot_download would keep."""
    expected = list(filter_repo_objects(PATHS, allow_patterns=include, ignore_patterns=exclude))  # type: ignore[arg-type]
    assert filter_paths(PATHS, include, exclude) == expected  # type: ignore[arg-type]

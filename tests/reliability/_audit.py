"""Checks of a Hugging Face cache's integrity, used after every reliability scenario."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def _digest(path: Path, kind: str) -> str:
    size = path.stat().st_size
    h = hashlib.sha256() if kind == "sha256" else hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def bad_links(cache: Path) -> list[str]:
    """Snapshot entries whose blob is missing or whose content does not match the blob's etag."""
    problems = []
    for link in cache.glob("*/snapshots/**/*"):
        if not link.is_symlink():
            continue
        blob = link.resolve()
        if not blob.is_file():
            problems.append(f"{link}: dangling")
            continue
        etag = blob.name
        kind = "sha256" if len(etag) == 64 else "git-sha1" if len(etag) == 40 else None
        if kind and _digest(blob, kind) != etag:
            problems.append(f"{link}: content does not match {etag}")
    return problems


def leftovers(cache: Path) -> list[str]:
    """Temporary files other than resumable partial downloads (which are allowed to stay)."""
    out = []
    for root, _dirs, files in os.walk(cache):
        for name in files:
            if name.endswith(".incomplete") and ".modelfetch." not in name:
                out.append(os.path.join(root, name))
            if name.endswith(".tmp"):
                out.append(os.path.join(root, name))
    return out

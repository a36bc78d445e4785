"""The code under test in the testing guide: an async loader in your application."""

from __future__ import annotations

import json

import anyio

import modelfetch


async def load_config(
    repo_id: str, *, source: modelfetch.ModelAssetSource | None = None
) -> dict[str, object]:
    """Fetch and parse a model's config.json."""
    path = await modelfetch.fetch(repo_id, "config.json", source=source)
    config: dict[str, object] = json.loads(await anyio.Path(path).read_text())
    return config

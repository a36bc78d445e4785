"""Testing sync code (a constructor that calls fetch_sync): plain pytest, no plugin."""

from __future__ import annotations

import json

import modelfetch
from modelfetch.testing import FakeHub, MemorySource


class Model:
    """The code under test: a sync constructor that needs a config."""

    def __init__(self, repo_id: str, *, source: modelfetch.ModelAssetSource | None = None) -> None:
        path = modelfetch.fetch_sync(repo_id, "config.json", source=source)
        self.config = json.loads(path.read_text())


def test_a_sync_constructor_with_a_memory_source() -> None:
    """A source passed to fetch_sync lives on its loop: close it with close_sync."""
    source = MemorySource({"org/model": {"config.json": b'{"layers": 2}'}})
    try:
        assert Model("org/model", source=source).config == {"layers": 2}
    finally:
        modelfetch.close_sync(source)  # removes its temporary cache


def test_a_sync_constructor_through_the_hub(hub_env: FakeHub) -> None:
    """`hub_env` works for sync tests too: fetch_sync's default source sees the fake Hub."""
    hub_env.add_file("org/model", "config.json", b'{"layers": 4}')
    assert Model("org/model").config == {"layers": 4}

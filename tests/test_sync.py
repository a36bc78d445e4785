"""fetch_sync / snapshot_sync: the blocking facade over one shared portal loop."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest

import modelfetch
from modelfetch.testing import FakeHub


def test_fetch_sync_returns_the_cache_path(hub_env: FakeHub, tmp_path: Path) -> None:
    """From plain synchronous code, fetch_sync returns the snapshot path."""
    hub_env.add_file("org/model", "config.json", b"{}")
    path = modelfetch.fetch_sync("org/model", "config.json")
    assert path.read_bytes() == b"{}"
    assert path.is_relative_to(tmp_path)


def test_fetch_sync_from_eight_threads(hub_env: FakeHub) -> None:
    """Eight threads fetching at once all get the same path, and the body is transferred once."""
    data = b"x" * 3_000_000
    hub_env.add_file("org/model", "model.safetensors", data)
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: modelfetch.fetch_sync("org/model", "model.safetensors"), range(8)))
    assert len(set(paths)) == 1
    assert paths[0].read_bytes() == data
    assert hub_env.count("GET", "model.safetensors") == 1


def test_snapshot_sync(hub_env: FakeHub) -> None:
    """snapshot_sync returns the snapshot folder."""
    commit = hub_env.add_files("org/model", {"a.json": b"{}", "b.txt": b"b"})
    folder = modelfetch.snapshot_sync("org/model", include="*.json")
    assert folder.name == commit
    assert [p.name for p in folder.iterdir()] == ["a.json"]


async def test_fetch_sync_refuses_to_block_a_running_loop(hub_env: FakeHub) -> None:
    """Called on a thread running an event loop, fetch_sync raises instead of deadlocking."""
    with pytest.raises(modelfetch.BlockingCallError, match=r"await modelfetch\.fetch"):
        modelfetch.fetch_sync("org/model", "config.json")
    with pytest.raises(modelfetch.BlockingCallError):
        modelfetch.snapshot_sync("org/model")
    assert hub_env.requests == []


async def test_fetch_sync_works_from_a_worker_thread_of_a_loop(hub_env: FakeHub) -> None:
    """A sync constructor run in a worker thread (to_thread) may call fetch_sync."""
    hub_env.add_file("org/model", "config.json", b"{}")
    path = await anyio.to_thread.run_sync(lambda: modelfetch.fetch_sync("org/model", "config.json"))
    assert path.read_bytes() == b"{}"


def test_errors_cross_the_portal(hub_env: FakeHub) -> None:
    """A FetchError raised on the portal loop reaches the sync caller as itself."""
    hub_env.add_file("org/model", "config.json", b"{}")
    with pytest.raises(modelfetch.AssetNotFoundError):
        modelfetch.fetch_sync("org/model", "missing.json")

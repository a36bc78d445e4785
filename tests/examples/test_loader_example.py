"""The runnable example of docs/testing.md: unit-testing an async model loader."""

from __future__ import annotations

import json

import anyio
import pytest

import modelfetch
from modelfetch.testing import FakeHub, Fault, MemorySource


# --- the code under test: an async loader in your application -------------------------
async def load_config(
    repo_id: str, *, source: modelfetch.ModelAssetSource | None = None
) -> dict[str, object]:
    """Fetch and parse a model's config.json."""
    path = await modelfetch.fetch(repo_id, "config.json", source=source)
    return json.loads(await anyio.Path(path).read_text())  # type: ignore[no-any-return]


# --- 1. no server at all: MemorySource ---------------------------------------------------
async def test_load_config_from_memory() -> None:
    """The loader parses whatever config the source holds."""
    async with MemorySource({"org/model": {"config.json": b'{"hidden_size": 64}'}}) as source:
        assert await load_config("org/model", source=source) == {"hidden_size": 64}


# --- 2. the real download path against a local fake Hub: the hub_env fixture -----------
async def test_load_config_through_the_hub(hub_env: FakeHub) -> None:
    """With hub_env, the default source talks to the FakeHub on 127.0.0.1."""
    hub_env.add_file("org/model", "config.json", b'{"hidden_size": 64}')
    try:
        assert await load_config("org/model") == {"hidden_size": 64}
    finally:
        await modelfetch.aclose_default_source()
    assert hub_env.count("GET", "config.json") == 1


# --- 3. failure paths: typed errors and injected faults ---------------------------------
async def test_load_config_reports_a_missing_repo(hub_env: FakeHub) -> None:
    """A missing repo surfaces as a typed error naming it."""
    try:
        with pytest.raises(modelfetch.RepoNotFoundError, match="org/missing"):
            await load_config("org/missing")
    finally:
        await modelfetch.aclose_default_source()


async def test_load_config_survives_a_flaky_hub(hub_env: FakeHub) -> None:
    """A 503 on the metadata request and another on the download are retried; the loader never notices."""
    hub_env.add_file("org/model", "config.json", b"{}")
    hub_env.inject(Fault(status=503), method="HEAD", times=1)
    hub_env.inject(Fault(status=503, retry_after="0"), method="GET", path="config.json", times=1)
    try:
        assert await load_config("org/model") == {}
    finally:
        await modelfetch.aclose_default_source()
    assert hub_env.count("GET", "config.json") == 2  # the failed download, then the good one

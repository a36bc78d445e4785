"""Testing an async loader with pytest-asyncio (strict or auto mode, any loop scope)."""

from __future__ import annotations

import pytest

import modelfetch
from modelfetch.testing import FakeHub, Fault, MemorySource

from .loader import load_config

pytestmark = pytest.mark.asyncio  # strict mode needs it; auto mode does not mind it


async def test_load_config_from_memory() -> None:
    """No server at all: pass a MemorySource as `source=`."""
    async with MemorySource({"org/model": {"config.json": b'{"hidden_size": 64}'}}) as source:
        assert await load_config("org/model", source=source) == {"hidden_size": 64}


async def test_load_config_through_the_hub(hub_env: FakeHub) -> None:
    """With `hub_env`, the default source talks to a FakeHub on 127.0.0.1."""
    hub_env.add_file("org/model", "config.json", b'{"hidden_size": 64}')
    assert await load_config("org/model") == {"hidden_size": 64}
    assert hub_env.count("GET", "config.json") == 1


async def test_each_test_gets_its_own_hub(hub_env: FakeHub) -> None:
    """Same repo, other content: never the previous test's file, even on a shared event loop."""
    hub_env.add_file("org/model", "config.json", b'{"hidden_size": 128}')
    assert await load_config("org/model") == {"hidden_size": 128}
    assert hub_env.count("GET", "config.json") == 1


async def test_load_config_reports_a_missing_repo(hub_env: FakeHub) -> None:
    """A missing repo surfaces as a typed error naming it."""
    with pytest.raises(modelfetch.RepoNotFoundError, match="org/missing"):
        await load_config("org/missing")


async def test_load_config_survives_a_flaky_hub(hub_env: FakeHub) -> None:
    """A 503 on the metadata request and another on the download are retried."""
    hub_env.add_file("org/model", "config.json", b"{}")
    hub_env.inject(Fault(status=503), method="HEAD", times=1)
    hub_env.inject(Fault(status=503, retry_after="0"), method="GET", path="config.json", times=1)
    assert await load_config("org/model") == {}
    assert hub_env.count("GET", "config.json") == 2  # the failed download, then the good one

"""Testing an async loader with anyio's pytest plugin, on asyncio and trio."""

from __future__ import annotations

import pytest

from modelfetch.testing import FakeHub

from .loader import load_config

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Both backends; module scope: the tests of a backend share one event loop."""
    backend: str = request.param
    return backend


async def test_load_config_through_the_hub(hub_env: FakeHub) -> None:
    """With `hub_env`, the default source talks to a FakeHub on 127.0.0.1."""
    hub_env.add_file("org/model", "config.json", b'{"hidden_size": 64}')
    assert await load_config("org/model") == {"hidden_size": 64}


async def test_each_test_gets_its_own_hub(hub_env: FakeHub) -> None:
    """The loop is shared, the default source is not: this test's hub serves this test."""
    hub_env.add_file("org/model", "config.json", b'{"hidden_size": 128}')
    assert await load_config("org/model") == {"hidden_size": 128}
    assert hub_env.count("GET", "config.json") == 1

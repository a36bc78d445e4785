"""Shared fixtures: every async test runs on asyncio, asyncio with uvloop, and trio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import modelfetch
from modelfetch import Settings
from modelfetch.testing import FakeHub

_BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param(("trio", {}), id="trio"),
]


@pytest.fixture(params=_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """The event loop each async test runs on."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def settings(fake_hub: FakeHub, tmp_path: Path) -> Settings:
    """Settings aimed at the test's FakeHub and a fresh cache, independent of the environment."""
    return Settings.from_env({}, endpoint=fake_hub.endpoint, hub_cache=tmp_path / "cache")


@pytest.fixture
async def default_env(hub_env: FakeHub) -> AsyncIterator[FakeHub]:
    """`hub_env`, with the event loop's default source closed when the test ends."""
    yield hub_env
    await modelfetch.aclose()

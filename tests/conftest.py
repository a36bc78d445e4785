"""Shared fixtures, and which event loops each async test runs on.

Where loop semantics matter — the cache layer, cancellation, the engines end to end, the
sources, the mirror, reliability, conformance, the sync facade and the test kit users run
under every loop — async tests run on asyncio, asyncio with uvloop, and trio. Elsewhere
(argument checks, pure parsing behind an async call, CLI output, hostile answers to one
request) the loop cannot change the outcome and they run on asyncio alone.
`MODELFETCH_TEST_ALL_LOOPS=1` (`make test-all-loops`, run in CI) runs every test on all three.
"""

from __future__ import annotations

import os
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


_EVERY_LOOP = (
    "cached/",
    "http/",
    "hub/",
    "mirror/",
    "reliability/",
    "testing/",
    "fleet/",
    "examples/",
    "core/test_background.py",
    "core/test_threadprogress.py",
    "security/test_hangs.py",
    "security/test_stalled_headers.py",
    "test_cancellation.py",
    "test_conformance.py",
    "test_sync.py",
)
_TESTS = Path(__file__).parent


def _every_loop(path: Path) -> bool:
    if os.environ.get("MODELFETCH_TEST_ALL_LOOPS") == "1":
        return True
    relative = path.relative_to(_TESTS).as_posix()
    return relative.startswith(_EVERY_LOOP)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give `anyio_backend` all three loops, or asyncio alone (see the module docstring)."""
    if "anyio_backend" not in metafunc.fixturenames:
        return
    if "anyio_backend" in vars(metafunc.module) or "anyio_backend" in vars(metafunc.cls or object):
        return  # the module chose its loops itself
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else ""
        if "anyio_backend" in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return  # so did the test
    params = _BACKENDS if _every_loop(Path(metafunc.definition.path)) else _BACKENDS[:1]
    metafunc.parametrize("anyio_backend", params, indirect=True)


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """The event loop this async test runs on (`pytest_generate_tests` chooses)."""
    return getattr(request, "param", ("asyncio", {}))  # type: ignore[no-any-return]


@pytest.fixture
def settings(fake_hub: FakeHub, tmp_path: Path) -> Settings:
    """Settings aimed at the test's FakeHub and a fresh cache, independent of the environment."""
    return Settings.from_env({}, endpoint=fake_hub.endpoint, hub_cache=tmp_path / "cache")


@pytest.fixture
async def default_env(hub_env: FakeHub) -> AsyncIterator[FakeHub]:
    """`hub_env`, with the event loop's default source closed when the test ends."""
    yield hub_env
    await modelfetch.aclose()

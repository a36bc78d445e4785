"""The pytest plugin (registered through the `pytest11` entry point).

Fixtures:
    fake_hub: a running `FakeHub`, stopped after the test.
    hub_cache: an empty cache in `tmp_path`, the endpoint left at huggingface.co, for
        tests that mock HTTP with respx.
    hub_env: the same hub, with `HF_ENDPOINT`, `HF_HOME` and `HF_HUB_CACHE` pointing at it
        and at the test's `tmp_path`, `HF_HUB_DISABLE_TELEMETRY=1`, no token and online.
        `huggingface_hub`'s import-time constants are patched to match, so plain
        `hf_hub_download(...)` calls in the test hit the fake hub too. modelfetch's default
        sources are rebuilt for each test, whatever the event loop's scope.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .._core.settings import DEFAULT_ENDPOINT
from ._environ import hub_environment
from ._fakehub import FakeHub


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    """A running FakeHub on 127.0.0.1 (ephemeral port), stopped after the test."""
    with FakeHub() as hub:
        yield hub


@pytest.fixture
def hub_env(fake_hub: FakeHub, tmp_path: Path) -> Iterator[FakeHub]:
    """`fake_hub`, with the `HF_*` environment (and huggingface_hub's constants) aimed at it.

    modelfetch's default sources are made stale before and after the test, so a test never
    gets a file another test's hub served, even when tests share one event loop.
    """
    with hub_environment(fake_hub.endpoint, tmp_path / "hf-home"):
        yield fake_hub


@pytest.fixture
def hub_cache(tmp_path: Path) -> Iterator[Path]:
    """An empty Hugging Face cache in `tmp_path`, for tests that mock HTTP themselves (respx).

    Like `hub_env` without a server: `HF_HOME`/`HF_HUB_CACHE` point into `tmp_path`, the
    endpoint is huggingface.co's (what your mocks answer for), no token, online, and
    modelfetch's default sources are fresh. Yields the cache folder.
    """
    with hub_environment(DEFAULT_ENDPOINT, tmp_path / "hf-home") as cache:
        yield cache

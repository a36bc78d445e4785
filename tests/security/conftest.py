"""Hostile-server tests: every source, and a tree snapshot to prove nothing was written outside the cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modelfetch import HttpHubSource, HubSource, ModelAssetSource, Settings, TransferOptions

from .._units import SHORT_RETRY

FAST = SHORT_RETRY  # the name the security tests import
SOURCES: dict[str, Callable[[Settings], ModelAssetSource]] = {
    "hub": lambda s: HubSource(s, retry=FAST),
    "httpx": lambda s: HttpHubSource(s, retry=FAST),
    # every body through the native engine, however small
    "native": lambda s: HttpHubSource(
        s, retry=FAST, options=TransferOptions(small_file_limit=0, engine="native")
    ),
}


@pytest.fixture(params=list(SOURCES))
def make_source(request: pytest.FixtureRequest) -> Callable[[Settings], ModelAssetSource]:
    """Each Hub source, with a short retry policy."""
    return SOURCES[request.param]


def tree(root: Path) -> set[str]:
    """Every path under `root` (links not followed), relative."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def settings_for(endpoint: str, tmp_path: Path, **extra: object) -> Settings:
    """Settings aimed at a hostile server, with the cache in `tmp_path/cache`."""
    return Settings.from_env({}, endpoint=endpoint, hub_cache=tmp_path / "cache", **extra)

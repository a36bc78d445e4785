"""Typing as a user's project sees it (checked with mypy --strict in CI)."""

from __future__ import annotations

from pathlib import Path

import modelfetch
from modelfetch.testing import Fault


async def load(source: modelfetch.ModelAssetSource) -> Path:
    """Any source is an async context manager to the type checker, too."""
    async with source:
        return await modelfetch.fetch("org/model", "config.json", source=source)


FLAKY = Fault(status=503, retry_after=0)

"""Headers trickled line by line, endless `100 Continue`, API bodies: all end ([security] 7)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import modelfetch
from modelfetch import AssetRef, ModelAssetSource, RepoRef, Settings

from ._hub import MiniHub, is_head
from ._server import Answer, Hostile, Request
from .conftest import settings_for

DATA = b"x" * 4096
BOUND = 30  # a hang guard only: the calls below end in a few seconds
# The bounds are anyio's on every loop and worker threads' for HubSource: asyncio is enough here.
pytestmark = [pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])]


def _settings(url: str, tmp_path: Path) -> Settings:
    # The read timeout bounds the whole header section; the low-speed window bounds bodies.
    return settings_for(url, tmp_path, download_timeout=0.5, etag_timeout=0.5, low_speed_time=0.5)


@pytest.mark.parametrize("stall", ["header-lines", "continues"])
@pytest.mark.parametrize("where", ["head", "get"])
async def test_an_answer_whose_headers_never_end_fails_within_the_read_timeout(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource], stall: str, where: str
) -> None:
    """A header line (or a `100 Continue`) every 0.1 s forever, on the HEAD or the file GET: fails soon."""

    def tweak(request: Request, answer: Answer) -> Answer:
        hit = is_head(request) if where == "head" else request.method == "GET" and "/resolve/" in request.path
        if not hit:
            return answer
        return Answer(header_trickle=0.1) if stall == "header-lines" else Answer(continues=0.1)

    with Hostile(MiniHub({"w.bin": DATA}, tweak=tweak)) as server:
        async with make_source(_settings(server.url, tmp_path)) as source:
            with anyio.fail_after(BOUND), pytest.raises(modelfetch.SourceUnavailableError):
                await source.resolve(AssetRef("org/model", "w.bin"))
    assert not list((tmp_path / "cache").glob("*/snapshots/*/w.bin"))


async def test_a_listing_trickled_a_byte_at_a_time_is_cut_by_the_low_speed_limit(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """The tree API's body at one byte per 0.1 s (never a read timeout): the listing fails, soon."""

    def tweak(request: Request, answer: Answer) -> Answer:
        if "/api/models/org/model/tree/" in request.path:
            answer.trickle = 0.1
        return answer

    with Hostile(MiniHub({"w.bin": DATA}, tweak=tweak)) as server:
        async with make_source(_settings(server.url, tmp_path)) as source:
            with anyio.fail_after(BOUND), pytest.raises(modelfetch.SourceUnavailableError):
                await source.list_files(RepoRef("org/model"))

"""Mocking the Hub with respx: no server, the default stack, a cache in tmp_path."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
import respx

import modelfetch
from modelfetch.testing import hub_headers

from .loader import load_config

pytestmark = pytest.mark.asyncio

URL = "https://huggingface.co/org/model/resolve/main/config.json"


async def test_load_config_from_a_mocked_hub(hub_cache: Path) -> None:
    """Answer the file's HEAD and GET; `hub_headers` gives the headers the Hub would send."""
    data = b'{"hidden_size": 64}'
    with respx.mock(assert_all_mocked=True) as hub:  # an unmocked request fails, never leaves
        head = hub.head(URL).respond(200, headers=hub_headers(data))
        get = hub.get(URL).respond(200, headers=hub_headers(data), content=data)
        assert await load_config("org/model") == {"hidden_size": 64}
    assert head.call_count == 1
    assert get.call_count == 1


async def test_a_mocked_outage_is_a_typed_error(hub_cache: Path) -> None:
    """A 404 with the Hub's error code is the typed error your loader would see."""
    with respx.mock(assert_all_mocked=True) as hub:
        hub.head(URL).respond(404, headers={"X-Error-Code": "RepoNotFound"})
        with pytest.raises(modelfetch.RepoNotFoundError):
            await load_config("org/model")


async def test_bytes_that_do_not_match_the_etag_are_refused(hub_cache: Path) -> None:
    """modelfetch verifies what it downloads: a mock serving other bytes fails loudly."""
    with respx.mock(assert_all_mocked=True) as hub:
        hub.head(URL).respond(200, headers=hub_headers(b"{}"))
        hub.get(URL).respond(200, headers=hub_headers(b"{}"), content=b"[]")
        with pytest.raises(modelfetch.IntegrityError):
            await load_config("org/model")
    published = [path async for path in anyio.Path(hub_cache).rglob("config.json")]
    assert published == []

"""The token only goes to the endpoint's origin; listings that never end are refused ([security] 4, 5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import modelfetch
from modelfetch import ModelAssetSource, RepoRef, Settings

from ._hub import MiniHub
from ._server import Answer, Hostile, Request, loopback_available
from .conftest import settings_for

TOKEN = "hf_thisIsASecretTokenValue1234567890"


async def test_a_listing_page_that_links_to_itself_is_refused(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """`Link: <same URL>; rel="next"` on the tree listing: SourceUnavailableError, a handful of requests."""

    def tweak(request: Request, answer: Answer) -> Answer:
        if "/tree/" in request.path:
            server_url = hub_url[0]
            answer.headers["Link"] = f'<{server_url}{request.path}>; rel="next"'
        return answer

    hub_url: list[str] = []
    with Hostile(MiniHub({"config.json": b"{}"}, tweak=tweak)) as server:
        hub_url.append(server.url)
        async with make_source(settings_for(server.url, tmp_path)) as source:
            with anyio.fail_after(20), pytest.raises(modelfetch.SourceUnavailableError, match="page"):
                await source.list_files(RepoRef("org/model"))
        assert len([r for r in server.requests if "/tree/" in r.path]) <= 3


@pytest.mark.skipif(not loopback_available("127.0.0.2"), reason="127.0.0.2 is not a loopback address here")
async def test_a_next_page_on_another_origin_gets_no_token(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """A listing whose next page is on 127.0.0.2: that origin never sees the Authorization header."""
    with Hostile(
        lambda request: Answer(200, {"Content-Type": "application/json"}, b"[]"), host="127.0.0.2"
    ) as other:

        def tweak(request: Request, answer: Answer) -> Answer:
            if "/tree/" in request.path:
                answer.headers["Link"] = f'<{other.url}/api/models/org/model/tree/page2>; rel="next"'
            return answer

        with Hostile(MiniHub({"config.json": b"{}"}, tweak=tweak)) as server:
            async with make_source(settings_for(server.url, tmp_path, token=TOKEN)) as source:
                listing = await source.list_files(RepoRef("org/model"))
            assert any("authorization" in r.headers for r in server.requests)  # the endpoint gets it
        assert [f.path for f in listing.files] == ["config.json"]
        assert other.requests  # the page was fetched...
        assert not any("authorization" in r.headers for r in other.requests)  # ...without the token
        assert not any(TOKEN in str(r) for r in other.requests)

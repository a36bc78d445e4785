"""Hub servers that are not huggingface.co: redirected API routes and answers that are not Hub JSON."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import modelfetch
from modelfetch import HttpHubSource, HubSource, ModelAssetSource, RepoRef, Settings
from modelfetch.testing import FakeHub, Fault

SOURCES: dict[str, Callable[[Settings], ModelAssetSource]] = {"hub": HubSource, "httpx": HttpHubSource}
TOKEN = "hf_secret_token_for_tests"


@pytest.fixture(params=list(SOURCES))
def hub_source(request: pytest.FixtureRequest) -> Callable[[Settings], ModelAssetSource]:
    """Each Hub source."""
    return SOURCES[request.param]


@pytest.mark.parametrize("route", ["/tree/", "/revision/"])
async def test_api_routes_redirected_to_a_slashed_path_are_followed(
    fake_hub: FakeHub, settings: Settings, hub_source: Callable[[Settings], ModelAssetSource], route: str
) -> None:
    """An olah-style 307 to `<path>/` on an API route is followed; the snapshot completes."""
    commit = fake_hub.add_files("org/model", {"config.json": b"{}", "a/b.txt": b"b"})
    fake_hub.inject(Fault(redirect_slash=True), method="GET", path=route)
    async with hub_source(settings) as source:
        folder = await modelfetch.snapshot("org/model", source=source)
    assert folder.name == commit
    assert (folder / "a" / "b.txt").read_bytes() == b"b"
    assert fake_hub.count("GET", route) == 2  # the redirect, then the slashed path


async def test_same_origin_api_redirects_keep_the_token(fake_hub: FakeHub, settings: Settings) -> None:
    """The token still reaches the endpoint after a same-origin API redirect (a private repo lists)."""
    hub = FakeHub(tokens=(TOKEN,))
    with hub:
        hub.create_repo("org/private", private=True)
        hub.add_file("org/private", "config.json", b"{}")
        hub.inject(Fault(redirect_slash=True), method="GET", path="/tree/")
        private = Settings.from_env({}, endpoint=hub.endpoint, hub_cache=settings.hub_cache, token=TOKEN)
        async with HttpHubSource(private) as source:
            listing = await source.list_files(RepoRef("org/private"))
    assert [f.path for f in listing.files] == ["config.json"]


BAD_ANSWERS = {
    "html": Fault(body=b"<!doctype html><html><body>Welcome to nginx!</body></html>"),
    "empty": Fault(body=b"", content_type="application/json"),
    "truncated": Fault(body=b'[{"type": "file", "path": "a', content_type="application/json"),
    "wrong-shape": Fault(body=b'{"files": []}', content_type="application/json"),
    "bad-entry": Fault(
        body=b'[{"type": "file", "path": "a", "size": "big"}]', content_type="application/json"
    ),
    "unsafe-path": Fault(
        body=b'[{"type": "file", "path": "../x", "size": 1, "oid": "' + b"a" * 40 + b'"}]',
        content_type="application/json",
    ),
    "clash": Fault(
        body=b'[{"type": "file", "path": "a", "size": 1, "oid": "'
        + b"a" * 40
        + b'"}, {"type": "file", "path": "a/b", "size": 1, "oid": "'
        + b"b" * 40
        + b'"}]',
        content_type="application/json",
    ),
}


@pytest.mark.parametrize("answer", list(BAD_ANSWERS))
async def test_a_listing_that_is_not_hub_json_is_source_unavailable(
    fake_hub: FakeHub, settings: Settings, hub_source: Callable[[Settings], ModelAssetSource], answer: str
) -> None:
    """HTML, empty, truncated or malformed listings: SourceUnavailableError naming the endpoint."""
    fake_hub.add_file("org/model", "config.json", b"{}")
    fake_hub.inject(BAD_ANSWERS[answer], method="GET", path="/tree/")
    async with hub_source(settings) as source:
        with pytest.raises(modelfetch.SourceUnavailableError) as caught:
            await modelfetch.snapshot("org/model", source=source)
    assert not isinstance(caught.value, modelfetch.InvalidRequestError)
    assert fake_hub.endpoint in str(caught.value)


async def test_revision_info_that_is_html_is_source_unavailable(
    fake_hub: FakeHub, settings: Settings, hub_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """An HTML page where the revision's JSON belongs is the server's fault, named as such."""
    fake_hub.add_file("org/model", "config.json", b"{}")
    fake_hub.inject(BAD_ANSWERS["html"], method="GET", path="/revision/")
    async with hub_source(settings) as source:
        with pytest.raises(modelfetch.SourceUnavailableError, match="Hub"):
            await source.list_files(RepoRef("org/model"))


async def test_a_chain_falls_through_a_server_that_is_not_a_hub(
    fake_hub: FakeHub, settings: Settings
) -> None:
    """ChainSource treats a non-Hub answer as a miss and asks the next source."""
    fake_hub.add_file("org/model", "config.json", b"{}")
    with FakeHub() as impostor:
        impostor.inject(BAD_ANSWERS["html"])
        wrong = Settings.from_env({}, endpoint=impostor.endpoint, hub_cache=settings.hub_cache)
        async with modelfetch.ChainSource([HttpHubSource(wrong), HttpHubSource(settings)]) as chain:
            folder = await modelfetch.snapshot("org/model", source=chain)
    assert (folder / "config.json").read_bytes() == b"{}"

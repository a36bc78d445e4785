"""The guard on huggingface_hub's client: installed on every client, silent outside our calls."""

from __future__ import annotations

import httpx2
from huggingface_hub.utils import _http as hf_http
from huggingface_hub.utils import get_session, set_client_factory

from modelfetch import AssetRef, HubSource, Settings
from modelfetch._hub.guard import CallGuard, install, on_request, on_response, run_guarded
from modelfetch.testing import FakeHub


def test_the_factory_and_the_current_client_carry_the_hooks() -> None:
    """After install(), the shared client has the hooks, and so does any client built later."""
    install()
    assert on_request in get_session().event_hooks["request"]
    assert on_response in get_session().event_hooks["response"]
    assert getattr(hf_http._GLOBAL_CLIENT_FACTORY, "_modelfetch_guarded", False)
    fresh = hf_http._GLOBAL_CLIENT_FACTORY()
    assert on_request in fresh.event_hooks["request"]
    fresh.close()


def test_a_factory_set_later_is_wrapped_again_at_the_next_call() -> None:
    """A user's own set_client_factory() does not remove the guard from our next call."""
    set_client_factory(lambda: httpx2.Client(follow_redirects=True))
    try:
        run_guarded(CallGuard("x", "http://127.0.0.1:1"), lambda: None)
        assert on_request in get_session().event_hooks["request"]
    finally:
        set_client_factory(hf_http.default_client_factory)


def test_outside_our_calls_the_hooks_change_nothing() -> None:
    """A user's own request keeps its token cross-origin and a 503 is left to huggingface_hub."""
    request = httpx2.Request("GET", "https://elsewhere.example/x", headers={"authorization": "Bearer t"})
    on_request(request)
    assert request.headers["authorization"] == "Bearer t"
    on_response(httpx2.Response(503, request=request))  # no exception: not our call


async def test_hub_source_still_works_with_the_guard(fake_hub: FakeHub, settings: Settings) -> None:
    """HubSource fetches through the guarded client as before."""
    fake_hub.add_file("org/model", "config.json", b"{}")
    async with HubSource(settings) as source:
        got = await source.resolve(AssetRef("org/model", "config.json"))
    assert got.path.read_bytes() == b"{}"

"""`NO_PROXY` in CIDR form and httpoxy, the same on every path ([security] 8)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from huggingface_hub.utils import close_session

from modelfetch import AssetRef, ModelAssetSource, Settings
from modelfetch._core.proxies import ProxyRules

from ._hub import MiniHub
from ._server import Hostile
from .conftest import settings_for

DATA = os.urandom(64 * 1024)
TOKEN = "hf_proxysecret"


@pytest.mark.parametrize(
    ("no_proxy", "url", "direct"),
    [
        ("127.0.0.0/8", "http://127.0.0.1:8080/x", True),
        ("10.0.0.0/8,127.0.0.0/8", "http://127.12.0.5/x", True),
        ("127.0.0.0/8", "http://128.0.0.1/x", False),
        ("::1/128", "http://[::1]:8080/x", True),
        ("[::1]:8080", "http://[::1]:8080/x", True),
        ("127.0.0.1:8080", "http://127.0.0.1/x", True),  # a port on an entry is ignored, as curl does
        ("example.com", "https://cdn.example.com/x", True),
        (".example.com", "https://example.com/x", True),
        ("example.com", "https://notexample.com/x", False),
        ("*", "https://anything.invalid/x", True),
        ("", "http://127.0.0.1/x", False),
    ],
)
def test_no_proxy_entries_follow_curl(no_proxy: str, url: str, direct: bool) -> None:
    """CIDR blocks, addresses (v4 and v6, with or without a port), domains and `*` bypass the proxy."""
    rules = ProxyRules.from_env(
        {"HTTP_PROXY": "proxy:3128", "HTTPS_PROXY": "http://p:1", "NO_PROXY": no_proxy}
    )
    assert (rules.proxy_for(url) is None) is direct


def test_under_cgi_the_uppercase_http_proxy_is_ignored() -> None:
    """REQUEST_METHOD set: HTTP_PROXY may come from a client's Proxy: header; http_proxy still counts."""
    assert (
        ProxyRules.from_env({"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://evil:1"}).proxy_for("http://h/")
        is None
    )
    cgi = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://evil:1", "http_proxy": "http://ok:2"}
    assert ProxyRules.from_env(cgi).proxy_for("http://h/") == "http://ok:2"
    assert ProxyRules.from_env({"HTTP_PROXY": "http://p:1"}).proxy_for("http://h/") == "http://p:1"


@pytest.mark.parametrize("case", ["cidr", "httpoxy"])
async def test_every_source_goes_direct_where_the_environment_says_so(
    tmp_path: Path,
    make_source: Callable[[Settings], ModelAssetSource],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """NO_PROXY=127.0.0.0/8, or CGI with HTTP_PROXY: the proxy sees no request (and so never the token)."""
    hub = MiniHub({"w.bin": DATA}, lfs={"w.bin"})
    with Hostile(hub) as proxy, Hostile(hub) as server:
        for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY", "REQUEST_METHOD"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        if case == "cidr":
            monkeypatch.setenv("NO_PROXY", "10.0.0.0/8,127.0.0.0/8")
        else:
            monkeypatch.setenv("REQUEST_METHOD", "GET")
        close_session()  # huggingface_hub's shared client is built again, from this environment
        try:
            async with make_source(settings_for(server.url, tmp_path, token=TOKEN)) as source:
                got = await source.resolve(AssetRef("org/model", "w.bin"))
        finally:
            close_session()
        assert got.path.read_bytes() == DATA
        assert proxy.requests == []
        assert server.requests

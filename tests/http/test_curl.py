"""The native engine (libcurl): chosen as documented, and as careful as the httpx path."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import anyio
import httpx
import pytest
import respx

import modelfetch
from modelfetch import AssetRef, HttpHubSource, Settings, TransferOptions
from modelfetch._http import curlloop
from modelfetch.testing import FakeHub

from ..security._hub import COMMIT, MiniHub, is_head
from ..security._server import Answer, Hostile, Request, loopback_available

MiB = 1024 * 1024
TOKEN = "hf_curlEngineSecretToken0123456789"
CURL = TransferOptions(small_file_limit=0, engine="curl")


def _settings(endpoint: str, tmp_path: Path, **extra: object) -> Settings:
    return Settings.from_env({}, endpoint=endpoint, hub_cache=tmp_path / "cache", **extra)


def test_the_engine_is_chosen_as_documented(tmp_path: Path) -> None:
    """auto is curl; a custom transport (tests, mocks) keeps every byte on httpx; a bad name is refused."""
    settings = _settings("http://127.0.0.1:9", tmp_path)
    assert HttpHubSource(settings).engine == "curl"
    assert HttpHubSource(settings, options=TransferOptions(engine="httpx")).engine == "httpx"
    mock = httpx.MockTransport(lambda request: httpx.Response(404))
    assert HttpHubSource(settings, transport=mock).engine == "httpx"
    assert HttpHubSource(settings, transport=mock, options=TransferOptions(engine="curl")).engine == "curl"
    with pytest.raises(modelfetch.InvalidRequestError, match="engine"):
        TransferOptions(engine="wget")


@pytest.mark.parametrize("parallel", [False, True], ids=["one-stream", "ranges"])
async def test_a_large_file_arrives_whole_with_progress(
    fake_hub: FakeHub, settings: Settings, parallel: bool
) -> None:
    """A 24 MiB LFS file: byte-exact, verified, published; progress starts, advances and finishes."""
    data = os.urandom(24 * MiB)
    fake_hub.add_file("org/model", "w.safetensors", data)
    options = TransferOptions(
        small_file_limit=0, engine="curl", parallel_threshold=MiB if parallel else 1 << 40, chunk_size=4 * MiB
    )
    events: list[modelfetch.ProgressEvent] = []
    async with HttpHubSource(settings, options=options) as source:
        resolved = await source.resolve(AssetRef("org/model", "w.safetensors"), progress=events.append)
    assert resolved.path.read_bytes() == data
    assert resolved.etag == hashlib.sha256(data).hexdigest()
    kinds = [e.kind for e in events]
    assert kinds[0] is modelfetch.ProgressKind.STARTED
    assert kinds[-1] is modelfetch.ProgressKind.FINISHED
    assert events[-1].done == len(data)
    ranged = [r for r in fake_hub.requests if r.method == "GET" and r.range]
    assert (len(ranged) == 6) if parallel else (ranged == [])


@pytest.mark.parametrize("engine", ["curl", "httpx"])
async def test_files_fetched_at_once_take_one_stream_each(
    fake_hub: FakeHub, settings: Settings, engine: str
) -> None:
    """Three big files at once: no parallel ranges (curl --parallel's way); alone, the same file uses them."""
    files = {f"w{i}.safetensors": os.urandom(6 * MiB) for i in range(3)}
    fake_hub.add_files("org/model", files)
    options = TransferOptions(small_file_limit=0, engine=engine, parallel_threshold=MiB, chunk_size=2 * MiB)
    async with HttpHubSource(settings, options=options) as source:
        async with anyio.create_task_group() as tg:
            for name in files:
                tg.start_soon(source.resolve, AssetRef("org/model", name))
        at_once = [r for r in fake_hub.requests if r.method == "GET" and r.range]
        for name, data in files.items():
            resolved = await source.resolve(AssetRef("org/model", name))
            assert resolved.path.read_bytes() == data
    assert at_once == []
    fake_hub.add_file("org/model", "alone.safetensors", os.urandom(6 * MiB))
    fake_hub.clear_requests()
    async with HttpHubSource(settings, options=options) as source:
        await source.resolve(AssetRef("org/model", "alone.safetensors"))
    assert len([r for r in fake_hub.requests if r.method == "GET" and r.range]) == 3


@pytest.mark.skipif(not loopback_available("127.0.0.2"), reason="needs 127.0.0.2 as a second origin")
@pytest.mark.parametrize("redirected", ["HEAD", "GET"])
@pytest.mark.parametrize("engine", ["curl", "httpx"])
async def test_the_token_never_reaches_a_cdn_on_another_origin(
    tmp_path: Path, redirected: str, engine: str
) -> None:
    """A body redirected to 127.0.0.2 (by the HEAD or only by the GET): the CDN never sees the token."""
    data = os.urandom(3 * MiB)
    etag = hashlib.sha256(data).hexdigest()
    with Hostile(
        lambda request: Answer(200, {"Content-Length": str(len(data))}, data), host="127.0.0.2"
    ) as cdn:

        def tweak(request: Request, answer: Answer) -> Answer:
            if "/resolve/" not in request.path:
                return answer
            location = {"Location": f"{cdn.url}/blobs/{etag}"}
            if is_head(request) and redirected == "HEAD":
                return Answer(302, answer.headers | location)
            if not is_head(request) and redirected == "GET":
                return Answer(302, location)
            return answer

        hub = MiniHub({"w.bin": data}, lfs={"w.bin"}, tweak=tweak)
        with Hostile(hub) as server:
            options = TransferOptions(small_file_limit=0, engine=engine)
            settings = _settings(server.url, tmp_path, token=TOKEN)
            async with HttpHubSource(settings, options=options) as source:
                resolved = await source.resolve(AssetRef("org/model", "w.bin", COMMIT))
            assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in server.requests)
        assert resolved.path.read_bytes() == data
        assert cdn.requests  # the bytes came from the CDN...
        assert not any("authorization" in r.headers for r in cdn.requests)  # ...which never saw the token
        assert not any(TOKEN in str(r) for r in cdn.requests)


async def test_proxies_from_the_environment_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY, as httpx reads it: metadata and the libcurl body both go through the proxy."""
    data = os.urandom(2 * MiB)
    with Hostile(MiniHub({"w.bin": data}, lfs={"w.bin"})) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        endpoint = "http://hub.invalid"  # only reachable through the proxy
        async with HttpHubSource(_settings(endpoint, tmp_path), options=CURL) as source:
            resolved = await source.resolve(AssetRef("org/model", "w.bin", COMMIT))
    assert resolved.path.read_bytes() == data
    gets = [r for r in proxy.requests if r.method == "GET"]
    assert gets
    assert all(r.path.startswith("http://hub.invalid/") for r in gets)  # absolute-form: sent to a proxy


async def test_a_respx_mock_is_never_gone_around(tmp_path: Path) -> None:
    """Under respx, a large body of the default engine is served by the mock, not fetched by libcurl."""
    data = os.urandom(5 * MiB)
    etag = hashlib.sha256(data).hexdigest()
    endpoint = "http://hub.invalid"
    url = f"{endpoint}/org/model/resolve/{COMMIT}/w.bin"
    headers = {"X-Repo-Commit": COMMIT, "X-Linked-Etag": etag, "X-Linked-Size": str(len(data)), "ETag": etag}
    async with HttpHubSource(_settings(endpoint, tmp_path)) as source:
        assert source.engine == "curl"
        with respx.mock(assert_all_mocked=True) as mock:
            mock.head(url).respond(200, headers=headers)
            mock.get(url).respond(200, headers=headers, content=data)
            resolved = await source.resolve(AssetRef("org/model", "w.bin", COMMIT))
            assert [call.request.method for call in mock.calls] == ["HEAD", "GET"]
    assert resolved.path.read_bytes() == data


def test_without_pycurl_large_bodies_stream_through_httpx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """pycurl missing: auto falls back to httpx with one DEBUG line; engine='curl' says what to install."""
    monkeypatch.setitem(sys.modules, "pycurl", None)  # `import pycurl` now raises ImportError
    monkeypatch.delitem(sys.modules, "modelfetch._http.curl", raising=False)
    settings = _settings("http://127.0.0.1:9", tmp_path)
    with caplog.at_level(logging.DEBUG, logger="modelfetch.http"):
        assert HttpHubSource(settings).engine == "httpx"
    assert [r.levelno for r in caplog.records if "pycurl" in r.getMessage()] == [logging.DEBUG]
    with pytest.raises(modelfetch.InvalidRequestError, match="pip install pycurl"):
        HttpHubSource(settings, options=TransferOptions(engine="curl"))


async def test_a_failing_engine_thread_fails_the_fetch_typed_and_recovers(
    fake_hub: FakeHub, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receiving thread dying on a bug ends its jobs with SourceUnavailableError, not a hang."""
    data = os.urandom(2 * MiB)
    fake_hub.add_file("org/model", "w.bin", data)
    original = curlloop.Receiver._drive

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(curlloop.Receiver, "_drive", broken)
    async with HttpHubSource(settings, options=CURL) as source:
        with (
            anyio.fail_after(10),
            pytest.raises(modelfetch.SourceUnavailableError, match="libcurl engine failed"),
        ):
            await source.resolve(AssetRef("org/model", "w.bin"))
        monkeypatch.setattr(curlloop.Receiver, "_drive", original)
        resolved = await source.resolve(AssetRef("org/model", "w.bin"))  # a new thread takes over
    assert resolved.path.read_bytes() == data

"""The native engine (obstore): chosen as documented, and as careful as the httpx path."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import threading
import warnings
from pathlib import Path

import anyio
import httpx
import pytest
import respx

import modelfetch
from modelfetch import AssetRef, HttpHubSource, RetryPolicy, Settings, TransferOptions
from modelfetch.testing import FakeHub, Fault

from .._units import MiB
from ..security._hub import COMMIT, MiniHub, is_head
from ..security._server import Answer, Hostile, Request, loopback_available

TOKEN = "hf_nativeEngineSecretToken0123456789"
NATIVE = TransferOptions(small_file_limit=0, engine="native")
RANGES = TransferOptions(small_file_limit=0, parallel_threshold=MiB, chunk_size=2 * MiB, connections=3)


def _settings(endpoint: str, tmp_path: Path, **extra: object) -> Settings:
    return Settings.from_env({}, endpoint=endpoint, hub_cache=tmp_path / "cache", **extra)


def _ranged_gets(hub: FakeHub) -> list[str]:
    return [r.range for r in hub.requests if r.method == "GET" and r.range]


def test_the_engine_is_chosen_as_documented(tmp_path: Path) -> None:
    """auto is native; a custom transport keeps every byte on httpx; curl is a deprecated alias;
    a bad name is refused."""
    settings = _settings("http://127.0.0.1:9", tmp_path)
    assert HttpHubSource(settings).engine == "native"
    assert HttpHubSource(settings, options=TransferOptions(engine="httpx")).engine == "httpx"
    mock = httpx.MockTransport(lambda request: httpx.Response(404))
    assert HttpHubSource(settings, transport=mock).engine == "httpx"
    assert HttpHubSource(settings, transport=mock, options=NATIVE).engine == "native"
    with pytest.warns(DeprecationWarning, match="engine='native'"):
        assert TransferOptions(engine="curl").engine == "native"
    with pytest.raises(modelfetch.InvalidRequestError, match="engine"):
        TransferOptions(engine="wget")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TransferOptions(engine="native")  # no warning for the current names


@pytest.mark.parametrize("parallel", [False, True], ids=["one-stream", "ranges"])
async def test_a_large_file_arrives_whole_with_progress(
    fake_hub: FakeHub, settings: Settings, parallel: bool
) -> None:
    """A 24 MiB LFS file: byte-exact, verified, published; progress starts, advances and finishes."""
    data = os.urandom(24 * MiB)
    fake_hub.add_file("org/model", "w.safetensors", data)
    options = dataclasses.replace(RANGES, chunk_size=4 * MiB) if parallel else NATIVE
    events: list[modelfetch.ProgressEvent] = []
    async with HttpHubSource(settings, options=options) as source:
        resolved = await source.resolve(AssetRef("org/model", "w.safetensors"), progress=events.append)
    assert resolved.path.read_bytes() == data
    assert resolved.etag == hashlib.sha256(data).hexdigest()
    kinds = [e.kind for e in events]
    assert kinds[0] is modelfetch.ProgressKind.STARTED
    assert modelfetch.ProgressKind.ADVANCED in kinds
    assert kinds[-1] is modelfetch.ProgressKind.FINISHED
    assert events[-1].done == len(data)
    assert len(_ranged_gets(fake_hub)) == (6 if parallel else 0)


async def test_range_support_is_learnt_from_the_first_ranged_answer(
    fake_hub: FakeHub, settings: Settings
) -> None:
    """The first file's first request asks for a range (through httpx); a 206 makes the rest, and the
    next file, parallel ranges without asking again."""
    first, second = os.urandom(6 * MiB), os.urandom(6 * MiB)
    fake_hub.add_files("org/model", {"a.bin": first, "b.bin": second})
    async with HttpHubSource(settings, options=RANGES) as source:
        await source.resolve(AssetRef("org/model", "a.bin"))
        assert len(_ranged_gets(fake_hub)) == 3
        fake_hub.clear_requests()
        resolved = await source.resolve(AssetRef("org/model", "b.bin"))
    assert resolved.path.read_bytes() == second
    assert sorted(_ranged_gets(fake_hub)) == sorted(
        f"bytes={n * 2 * MiB}-{(n + 1) * 2 * MiB - 1}" for n in range(3)
    )


async def test_a_server_that_ignores_ranges_costs_one_get_per_file(
    fake_hub: FakeHub, settings: Settings
) -> None:
    """Ranged GETs answered with 200 and the whole (throttled) body: exactly one GET per file, and
    16 tasks awaiting one file make one GET too."""
    files = {f"w{i}.bin": os.urandom(3 * MiB) for i in range(3)}
    fake_hub.add_files("org/model", files)
    fake_hub.inject(Fault(ignore_range=True, throttle=64 * MiB), method="GET")
    async with modelfetch.CachedSource(HttpHubSource(settings, options=RANGES)) as source:
        for name, data in files.items():
            if name == "w2.bin":
                async with anyio.create_task_group() as tg:
                    for _ in range(16):
                        tg.start_soon(source.resolve, AssetRef("org/model", name))
            resolved = await source.resolve(AssetRef("org/model", name))
            assert resolved.path.read_bytes() == data
    gets = [r for r in fake_hub.requests if r.method == "GET"]
    assert len(gets) == len(files)
    assert [r.status for r in gets] == [200] * len(files)


async def test_a_resume_on_a_server_that_ignores_ranges_starts_over_once(
    fake_hub: FakeHub, settings: Settings
) -> None:
    """A dropped body on a server that answers ranges whole: the retry is one whole GET, byte-exact."""
    data = os.urandom(4 * MiB)
    fake_hub.add_file("org/model", "w.bin", data)
    fake_hub.inject(Fault(ignore_range=True), method="GET")
    fake_hub.inject(Fault(drop_after=3 * MiB), method="GET", times=1)
    async with HttpHubSource(settings, options=NATIVE, retry=RetryPolicy(base=0.01, cap=0.01)) as source:
        resolved = await source.resolve(AssetRef("org/model", "w.bin"))
    assert resolved.path.read_bytes() == data
    statuses = [(r.status, r.range is not None) for r in fake_hub.requests if r.method == "GET"]
    assert statuses[0] == (200, False)
    assert statuses[-1] == (200, False)  # the whole body again, after at most one ranged try
    assert len(statuses) <= 3


async def test_a_503_is_retried_after_the_retry_after_the_server_sent(
    fake_hub: FakeHub, settings: Settings
) -> None:
    """obstore hides the status; one cheap GET of ours learns it and its Retry-After."""
    data = os.urandom(2 * MiB)
    fake_hub.add_file("org/model", "w.bin", data)
    fake_hub.inject(Fault(status=503, retry_after="7"), method="GET", times=2)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async with HttpHubSource(settings, options=NATIVE, sleep=sleep) as source:
        resolved = await source.resolve(AssetRef("org/model", "w.bin"))
    assert resolved.path.read_bytes() == data
    assert sleeps
    assert sleeps[0] >= 7
    gets = [r for r in fake_hub.requests if r.method == "GET"]
    assert gets[1].range == "bytes=0-0"  # the diagnosis: one byte asked for


async def test_a_status_that_is_final_is_not_retried(fake_hub: FakeHub, settings: Settings) -> None:
    """A 403 on the body (not on the HEAD): the typed error at once, nothing published."""
    fake_hub.add_file("org/model", "w.bin", os.urandom(2 * MiB))
    fake_hub.inject(Fault(status=403), method="GET")
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async with HttpHubSource(settings, options=NATIVE, sleep=sleep) as source:
        with pytest.raises(modelfetch.FetchError) as caught:
            await source.resolve(AssetRef("org/model", "w.bin"))
    assert not isinstance(caught.value, modelfetch.SourceUnavailableError)
    assert sleeps == []
    blobs = settings.hub_cache / "models--org--model" / "blobs"
    assert not [p for p in blobs.iterdir() if re.fullmatch("[0-9a-f]{64}", p.name)]


@pytest.mark.skipif(not loopback_available("127.0.0.2"), reason="needs 127.0.0.2 as a second origin")
@pytest.mark.parametrize("redirected", ["HEAD", "GET"])
@pytest.mark.parametrize("engine", ["native", "httpx"])
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
    """HTTP_PROXY: metadata (httpx) and the body (obstore) both go through the proxy."""
    data = os.urandom(2 * MiB)
    with Hostile(MiniHub({"w.bin": data}, lfs={"w.bin"})) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        endpoint = "http://hub.invalid"  # only reachable through the proxy
        async with HttpHubSource(_settings(endpoint, tmp_path), options=NATIVE) as source:
            resolved = await source.resolve(AssetRef("org/model", "w.bin", COMMIT))
    assert resolved.path.read_bytes() == data
    gets = [r for r in proxy.requests if r.method == "GET"]
    assert gets
    assert all(r.path.startswith("http://hub.invalid/") for r in gets)  # absolute-form: sent to a proxy


async def test_a_respx_mock_is_never_gone_around(tmp_path: Path) -> None:
    """Under respx, a large body of the default engine is served by the mock, not fetched by obstore."""
    data = os.urandom(5 * MiB)
    etag = hashlib.sha256(data).hexdigest()
    endpoint = "http://hub.invalid"
    url = f"{endpoint}/org/model/resolve/{COMMIT}/w.bin"
    headers = {"X-Repo-Commit": COMMIT, "X-Linked-Etag": etag, "X-Linked-Size": str(len(data)), "ETag": etag}
    async with HttpHubSource(_settings(endpoint, tmp_path)) as source:
        assert source.engine == "native"
        with respx.mock(assert_all_mocked=True) as mock:
            mock.head(url).respond(200, headers=headers)
            mock.get(url).respond(200, headers=headers, content=data)
            resolved = await source.resolve(AssetRef("org/model", "w.bin", COMMIT))
            assert [call.request.method for call in mock.calls] == ["HEAD", "GET"]
    assert resolved.path.read_bytes() == data


async def test_nothing_is_written_after_a_cancelled_call_returns(
    fake_hub: FakeHub, settings: Settings
) -> None:
    """The body is held after 2 MiB; the call is cancelled and returns while the worker thread
    still waits in obstore; once the body is released, the partial file does not change."""
    data = os.urandom(8 * MiB)
    fake_hub.add_file("org/model", "w.bin", data)
    hold = threading.Event()
    fake_hub.inject(Fault(hold=hold, stall_after=2 * MiB), method="GET", times=1)
    advanced = anyio.Event()

    def on_progress(event: modelfetch.ProgressEvent) -> None:
        if event.kind is modelfetch.ProgressKind.ADVANCED and event.done >= MiB:
            advanced.set()

    blobs = settings.hub_cache / "models--org--model" / "blobs"
    async with HttpHubSource(settings, options=NATIVE) as source:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: source.resolve(AssetRef("org/model", "w.bin"), progress=on_progress))
                with anyio.fail_after(30):
                    await advanced.wait()
                scope.cancel()
        assert not hold.is_set()  # returned while the body was held: the thread was abandoned
        partial = next(blobs.glob("*.incomplete"))
        before = partial.read_bytes()
        hold.set()  # the abandoned thread now receives the rest of the body...
        await anyio.to_thread.run_sync(lambda: fake_hub.wait_for_requests("GET", at_least=1))
        assert partial.read_bytes() == before  # ...and writes none of it
        resolved = await source.resolve(AssetRef("org/model", "w.bin"))  # resumes from the watermark
    assert resolved.path.read_bytes() == data
    resumed = [r.range for r in fake_hub.requests if r.method == "GET"][-1]
    assert resumed is not None
    assert int(resumed.removeprefix("bytes=").split("-")[0]) >= MiB


@pytest.mark.slow
async def test_a_slow_but_steady_body_is_not_cut_by_the_low_speed_limit(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    """256 KiB/s against a 16 KiB/s limit over 2 s windows: obstore hands over chunks often enough
    (about 3 a second) for every window to see bytes; with 1 MiB chunks the first window saw
    none and the download was given up."""
    data = os.urandom(MiB)
    fake_hub.add_file("org/model", "w.bin", data)
    fake_hub.inject(Fault(throttle=256 * 1024), method="GET")
    slow = {"low_speed_limit": 16 * 1024, "low_speed_time": 2}
    settings = Settings.from_env({}, endpoint=fake_hub.endpoint, hub_cache=tmp_path / "cache", **slow)
    async with HttpHubSource(settings, options=NATIVE, retry=RetryPolicy(attempts=1)) as source:
        resolved = await source.resolve(AssetRef("org/model", "w.bin"))
    assert resolved.path.read_bytes() == data
    assert len([r for r in fake_hub.requests if r.method == "GET"]) == 1


def test_obstore_errors_reach_messages_without_urls_or_terminal_controls() -> None:
    """obstore quotes the URL (a signed CDN URL's query is a secret) and the server's answer."""
    from modelfetch._http.native import _first_line

    raw = RuntimeError(
        "Error performing GET https://cdn.example/x?X-Amz-Signature=secret - 500: \x1b]0;owned\x07 body\nmore"
    )
    line = _first_line(raw)
    assert "secret" not in line
    assert "<url>" in line
    assert "\x1b" not in line
    assert "\x07" not in line
    assert "more" not in line

"""HttpHubSource against unusual servers (MockTransport, respx): headers, ranges, retries, auth."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import httpx
import pytest
import respx

import modelfetch
from modelfetch import (
    AssetRef,
    HttpHubSource,
    Origin,
    ProgressEvent,
    ProgressKind,
    RetryPolicy,
    Settings,
    TransferOptions,
)
from modelfetch.testing import FakeHub

E = "http://hub.test"
COMMIT = "c" * 40
DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()
GIT = hashlib.sha1(b"blob %d\0" % len(DATA) + DATA, usedforsecurity=False).hexdigest()
REF = AssetRef("org/model", "w.bin")


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings.from_env({}, endpoint=E, hub_cache=tmp_path / "cache", **kw)


def _source(
    tmp_path: Path,
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    retry: RetryPolicy | None = None,
    options: TransferOptions | None = None,
    **kw: object,
) -> HttpHubSource:
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:  # no real waiting in unit tests
        slept.append(delay)

    source = HttpHubSource(
        _settings(tmp_path, **kw),
        transport=httpx.MockTransport(handler),
        sleep=fake_sleep,
        retry=retry,
        options=options,
    )
    source.slept = slept  # type: ignore[attr-defined]
    return source


def _body(request: httpx.Request, data: bytes = DATA) -> httpx.Response:
    """Serve `data`, honouring a single `Range: bytes=N-[M]`."""
    wanted = request.headers.get("range")
    if wanted:
        first, _, last = wanted.removeprefix("bytes=").partition("-")
        end = int(last) + 1 if last else len(data)
        chunk = data[int(first) : end]
        headers = {"content-range": f"bytes {first}-{end - 1}/{len(data)}"}
        return httpx.Response(206, content=chunk, headers=headers)
    return httpx.Response(200, content=data)


async def test_plain_server_with_git_etag(tmp_path: Path) -> None:
    """No X-Linked-* headers, an unquoted git-sha1 ETag: the blob is verified and named by it."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(
                200, headers={"x-repo-commit": COMMIT, "etag": GIT, "content-length": str(len(DATA))}
            )
        return _body(request)

    async with _source(tmp_path, handler) as source:
        resolved = await source.resolve(REF)
    assert resolved.path.read_bytes() == DATA
    assert (resolved.etag, resolved.commit, resolved.origin) == (GIT, COMMIT, Origin.NETWORK)


async def test_chunked_body_without_length_or_etag(tmp_path: Path) -> None:
    """A server sending neither ETag nor Content-Length still works: the blob is named by its sha256."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(200, headers={"x-repo-commit": COMMIT})

        async def chunks() -> AsyncIterator[bytes]:
            yield DATA[:1000]
            yield DATA[1000:]

        return httpx.Response(200, content=chunks())  # chunked: no Content-Length

    async with _source(tmp_path, handler) as source:
        resolved = await source.resolve(REF)
    assert resolved.etag == SHA
    assert resolved.path.read_bytes() == DATA


async def test_server_that_ignores_range_on_resume(tmp_path: Path) -> None:
    """A resume answered with 200 (Range ignored) starts over cleanly instead of corrupting the file."""
    settings = _settings(tmp_path)
    blob = settings.hub_cache / "models--org--model" / "blobs" / SHA
    partial = blob.with_name(f"{SHA}.modelfetch.incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\0" * 1000)  # garbage a previous run left, claimed good by its watermark
    partial.with_name(partial.name + ".progress").write_text("1000")
    ranges: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(
                200, headers={"x-repo-commit": COMMIT, "x-linked-etag": SHA, "x-linked-size": str(len(DATA))}
            )
        ranges.append(request.headers.get("range"))
        return httpx.Response(200, content=DATA)

    # small_file_limit=0: the resumable path, even for a small file
    source = _source(tmp_path, handler, options=TransferOptions(small_file_limit=0))
    async with source:
        resolved = await source.resolve(REF)
    assert ranges == ["bytes=1000-"]
    assert resolved.path.read_bytes() == DATA
    assert not partial.exists()


async def test_401_for_a_missing_file_is_an_authentication_error(tmp_path: Path) -> None:
    """Servers that answer 401 instead of 404 give a clear AuthenticationError."""
    async with _source(tmp_path, lambda request: httpx.Response(401)) as source:
        with pytest.raises(modelfetch.AuthenticationError, match=r"w\.bin"):
            await source.resolve(REF)


async def test_retry_after_is_honoured(tmp_path: Path) -> None:
    """503 with Retry-After: 2 is retried after at least 2 s (as asked of the sleep function)."""
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            calls["n"] += 1
            if calls["n"] == 1:
                return httpx.Response(503, headers={"retry-after": "2"})
            return httpx.Response(
                200, headers={"x-repo-commit": COMMIT, "x-linked-etag": SHA, "x-linked-size": str(len(DATA))}
            )
        if calls["n"] == 2:
            calls["n"] += 1
            return httpx.Response(429, headers={"retry-after": "3"})
        return _body(request)

    source = _source(tmp_path, handler)
    async with source:
        resolved = await source.resolve(REF)
    assert resolved.path.read_bytes() == DATA
    assert [d >= 2 for d in source.slept][:1] == [True]  # type: ignore[attr-defined]
    assert any(d >= 3 for d in source.slept)  # type: ignore[attr-defined]


async def test_persistent_500_gives_up_within_the_policy(tmp_path: Path) -> None:
    """A server that keeps failing yields SourceUnavailableError after `attempts` tries."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return httpx.Response(500)

    source = _source(tmp_path, handler, retry=RetryPolicy(attempts=4))
    async with source:
        with pytest.raises(modelfetch.SourceUnavailableError, match="500"):
            await source.resolve(REF)
    assert len(seen) == 4


async def test_corrupt_body_is_never_published(tmp_path: Path) -> None:
    """Bytes that do not match the sha256 etag raise IntegrityError and leave nothing in blobs/."""
    bad = bytearray(DATA)
    bad[7] ^= 1

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(
                200, headers={"x-repo-commit": COMMIT, "x-linked-etag": SHA, "x-linked-size": str(len(DATA))}
            )
        return httpx.Response(200, content=bytes(bad))

    async with _source(tmp_path, handler) as source:
        with pytest.raises(modelfetch.IntegrityError, match="nothing was published"):
            await source.resolve(REF)
    blobs = tmp_path / "cache" / "models--org--model" / "blobs"
    assert not blobs.exists() or list(blobs.iterdir()) == []
    assert not (tmp_path / "cache" / "models--org--model" / "snapshots").exists()


async def test_not_a_hub_endpoint(tmp_path: Path) -> None:
    """A server that sends no X-Repo-Commit is reported as not being a Hub endpoint."""
    async with _source(tmp_path, lambda request: httpx.Response(200, content=b"<html>")) as source:
        with pytest.raises(modelfetch.SourceUnavailableError, match="X-Repo-Commit"):
            await source.resolve(REF)


@respx.mock(assert_all_called=True)
async def test_token_goes_to_the_hub_only(tmp_path: Path, respx_mock: respx.MockRouter) -> None:
    """The token is sent to the endpoint's origin and never to a cross-origin CDN."""
    head = respx_mock.head(f"{E}/org/model/resolve/main/w.bin").respond(
        302,
        headers={
            "location": "https://cdn.test/blob?sig=1",
            "x-repo-commit": COMMIT,
            "x-linked-etag": SHA,
            "x-linked-size": str(len(DATA)),
        },
    )
    cdn = respx_mock.get("https://cdn.test/blob?sig=1").respond(200, content=DATA)
    settings = _settings(tmp_path, token="hf_secret_token")
    async with HttpHubSource(settings) as source:
        resolved = await source.resolve(REF)
    assert resolved.path.read_bytes() == DATA
    assert head.calls.last.request.headers["authorization"] == "Bearer hf_secret_token"
    assert "authorization" not in cdn.calls.last.request.headers
    assert "hf_secret_token" not in repr(source)


async def test_offline_never_touches_the_network(tmp_path: Path) -> None:
    """Offline, a miss is OfflineError and no request is made."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may be sent offline")

    settings = dataclasses.replace(_settings(tmp_path), offline=True)
    async with HttpHubSource(settings, transport=httpx.MockTransport(handler)) as source:
        with pytest.raises(modelfetch.OfflineError):
            await source.resolve(REF)
        with pytest.raises(modelfetch.OfflineError):
            await source.list_files(modelfetch.RepoRef("org/model"))


async def test_waiting_for_another_process_is_a_progress_event(fake_hub: FakeHub, tmp_path: Path) -> None:
    """A blob another process holds the lock of: WAITING first, then the transfer once it lets go."""
    import filelock

    data = os.urandom(5 * 1024 * 1024)
    commit = fake_hub.add_files("org/model", {"w.bin": data}, lfs=True)
    settings = Settings.from_env({}, endpoint=fake_hub.endpoint, hub_cache=tmp_path / "cache")
    etag = hashlib.sha256(data).hexdigest()
    held = filelock.FileLock(str(tmp_path / "cache" / ".locks" / "models--org--model" / f"{etag}.lock"))
    held.acquire()
    waiting = anyio.Event()
    kinds: list[ProgressKind] = []

    def progress(event: ProgressEvent) -> None:
        kinds.append(event.kind)
        if event.kind is ProgressKind.WAITING:
            waiting.set()

    async with HttpHubSource(settings) as source, anyio.create_task_group() as tg:
        result: list[Path] = []

        async def fetch() -> None:
            result.append(
                (await source.resolve(AssetRef("org/model", "w.bin", commit), progress=progress)).path
            )

        tg.start_soon(fetch)
        with anyio.fail_after(30):
            await waiting.wait()
        held.release()
    assert result[0].read_bytes() == data
    assert kinds[0] is ProgressKind.WAITING
    assert kinds[-1] is ProgressKind.FINISHED

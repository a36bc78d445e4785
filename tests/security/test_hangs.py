"""Servers that stall, trickle or ask for a day's wait never hang the caller ([security] 3, 7)."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

import modelfetch
from modelfetch import AssetRef, ModelAssetSource, Settings

from ._hub import MiniHub, is_head
from ._server import Answer, Hostile, Request
from .conftest import settings_for

BODY = bytes(range(256)) * 64  # 16 KiB: at 1 B/s, hours


def _started_body(started: threading.Event, answer: Answer) -> Answer:
    started.set()
    return answer


async def _cancelled_while_running(call: Callable[[], Awaitable[object]], started: threading.Event) -> None:
    """Start `call`, wait until the server is answering it, cancel; the call must return promptly."""
    returned = anyio.Event()
    scope = anyio.CancelScope()

    async def run() -> None:
        with scope:
            await call()
        returned.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        with anyio.fail_after(20):
            await anyio.to_thread.run_sync(started.wait)
        scope.cancel()
        with anyio.fail_after(10):  # a hang guard: the server will not finish for hours
            await returned.wait()


@pytest.mark.parametrize("stall", ["trickle", "never-answers"])
@pytest.mark.slow
async def test_a_cancelled_fetch_returns_at_once_whatever_the_server_does(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource], stall: str
) -> None:
    """A body trickled at 1 B/s, or a request never answered: cancel returns at once, nothing published."""
    started = threading.Event()

    def tweak(request: Request, answer: Answer) -> Answer:
        if request.method == "GET" and "/resolve/" in request.path and stall == "trickle":
            answer.trickle = 1.0
            return _started_body(started, answer)
        if is_head(request) and stall == "never-answers":
            return _started_body(started, Answer(hang=True))
        return answer

    with Hostile(MiniHub({"w.bin": BODY}, tweak=tweak)) as server:
        # Short timeouts only so that closing the source (which waits for an abandoned worker
        # thread stuck in a read) is quick; the cancelled call itself returns at once regardless.
        settings = settings_for(server.url, tmp_path, etag_timeout=1, download_timeout=1)
        async with make_source(settings) as source:
            await _cancelled_while_running(lambda: source.resolve(AssetRef("org/model", "w.bin")), started)
    storage = tmp_path / "cache" / "models--org--model"
    assert not list(storage.glob("snapshots/*/w.bin"))
    assert not [p for p in storage.glob("blobs/*") if "incomplete" not in p.name]


async def test_a_day_long_retry_after_is_not_slept(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """429 with Retry-After: 86400 is longer than the policy's cap: SourceUnavailableError at once."""

    def tweak(request: Request, answer: Answer) -> Answer:
        return Answer(429, {"Retry-After": "86400"}) if is_head(request) else answer

    with Hostile(MiniHub({"config.json": b"{}"}, tweak=tweak)) as server:
        async with make_source(settings_for(server.url, tmp_path)) as source:
            with anyio.fail_after(20), pytest.raises(modelfetch.SourceUnavailableError, match="429"):
                await source.resolve(AssetRef("org/model", "config.json"))
        assert len([r for r in server.requests if r.method == "HEAD"]) == 1


async def test_a_body_below_the_low_speed_limit_is_cut(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """A body at ~20 B/s against a 1000 B/s limit over 0.3 s: given up with SourceUnavailableError."""

    def tweak(request: Request, answer: Answer) -> Answer:
        if request.method == "GET" and "/resolve/" in request.path:
            answer.trickle = 0.05
        return answer

    with Hostile(MiniHub({"w.bin": BODY}, tweak=tweak)) as server:
        settings = settings_for(server.url, tmp_path, low_speed_limit=1000, low_speed_time=0.3)
        async with make_source(settings) as source:
            with anyio.fail_after(30), pytest.raises(modelfetch.SourceUnavailableError, match="low-speed"):
                await source.resolve(AssetRef("org/model", "w.bin"))


@pytest.mark.slow
async def test_the_overall_deadline_ends_a_call_that_never_gets_an_answer(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """A server that never answers, with deadline=0.5: SourceUnavailableError naming the deadline."""
    with Hostile(lambda request: Answer(hang=True)) as server:
        settings = settings_for(server.url, tmp_path, deadline=0.5, etag_timeout=1, download_timeout=1)
        async with make_source(settings) as source:
            with anyio.fail_after(20), pytest.raises(modelfetch.SourceUnavailableError, match="deadline"):
                await source.resolve(AssetRef("org/model", "config.json"))

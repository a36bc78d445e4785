"""A cancelled waiter returns at once, whichever waiter started the shared transfer ([correct] 1).

Each test holds the transfer on the server (a `Fault(hold=...)`), so "at once" is checked
without clocks: the cancelled waiter must return while the body cannot possibly be complete.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

import modelfetch
from modelfetch import (
    AssetRef,
    CachedSource,
    HttpHubSource,
    HubSource,
    MirrorSource,
    ModelAssetSource,
    ProgressEvent,
    ProgressKind,
    Settings,
)
from modelfetch._mirror.bucket import Bucket
from modelfetch.testing import FakeHub, Fault

from ._units import MiB

BIG = "model.safetensors"


def _hub_stack(settings: Settings) -> ModelAssetSource:
    return CachedSource(HubSource(settings))


def _http_stack(settings: Settings) -> ModelAssetSource:
    return CachedSource(HttpHubSource(settings))


def _mirror_stack(settings: Settings) -> ModelAssetSource:
    bucket = Bucket.open("memory:///", timeout=5)
    return CachedSource(MirrorSource(bucket=bucket, upstream=HubSource(settings), settings=settings))


STACKS: dict[str, Callable[[Settings], ModelAssetSource]] = {
    "hub": _hub_stack,
    "httpx": _http_stack,
    "mirror": _mirror_stack,
}


@pytest.fixture(params=list(STACKS))
def stack(request: pytest.FixtureRequest) -> Callable[[Settings], ModelAssetSource]:
    """Each source stack that shares transfers between waiters."""
    return STACKS[request.param]


def _held_model(hub: FakeHub, data: bytes) -> threading.Event:
    """Add config + one big weight file whose body stops after 1 MiB until the event is set."""
    hub.add_files("org/model", {"config.json": b'{"model_type": "tiny"}', BIG: data})
    hold = threading.Event()
    hub.inject(Fault(hold=hold, stall_after=MiB), method="GET", path=BIG)
    return hold


def _on_start(started: anyio.Event | asyncio.Event) -> Callable[[ProgressEvent], None]:
    """A progress callback that sets `started` when a transfer starts."""

    def on_progress(event: ProgressEvent) -> None:
        if event.kind is ProgressKind.STARTED:
            started.set()

    return on_progress


async def _first_waiter_cancelled(
    call: Callable[[Callable[[ProgressEvent], None] | None], Awaitable[object]], hold: threading.Event
) -> object:
    """Start A (which starts the transfer), join B, cancel A; A must return while the body is held.

    Returns B's result, which arrives once the hold is released.
    """
    started = anyio.Event()
    a_left = anyio.Event()
    results: list[object] = []

    on_progress = _on_start(started)

    a_scope = anyio.CancelScope()

    async def task_a() -> None:
        with a_scope:
            await call(on_progress)
            pytest.fail("the cancelled waiter got a result")
        a_left.set()

    async def task_b() -> None:
        results.append(await call(None))

    async with anyio.create_task_group() as tg:
        tg.start_soon(task_a)
        with anyio.fail_after(30):
            await started.wait()
        tg.start_soon(task_b)
        await anyio.wait_all_tasks_blocked()
        a_scope.cancel()
        with anyio.fail_after(10):  # generous: the body is held, so only a prompt return gets here
            await a_left.wait()
        assert not hold.is_set()
        assert results == []  # B is still waiting for the shared transfer
        hold.set()
    assert len(results) == 1
    return results[0]


async def test_cancelling_the_waiter_that_started_a_transfer_returns_at_once(
    fake_hub: FakeHub, settings: Settings, stack: Callable[[Settings], ModelAssetSource]
) -> None:
    """A cancelled first waiter returns while the body is still held; B then gets the whole file."""
    data = os.urandom(8 * MiB)
    hold = _held_model(fake_hub, data)
    ref = AssetRef("org/model", BIG)
    async with stack(settings) as source:
        got = await _first_waiter_cancelled(lambda p: source.resolve(ref, progress=p), hold)
    assert isinstance(got, modelfetch.ResolvedAsset)
    assert got.path.read_bytes() == data


async def test_fail_after_on_the_first_waiter_is_a_timeout(fake_hub: FakeHub, settings: Settings) -> None:
    """`fail_after` on the waiter that started the transfer raises TimeoutError while B keeps waiting."""
    hold = _held_model(fake_hub, os.urandom(4 * MiB))
    ref = AssetRef("org/model", BIG)
    started = anyio.Event()
    timed_out = anyio.Event()
    results: list[Path] = []

    on_progress = _on_start(started)

    async with _hub_stack(settings) as source:

        async def task_a() -> None:
            with pytest.raises(TimeoutError):
                with anyio.fail_after(0.2):
                    await source.resolve(ref, progress=on_progress)
            timed_out.set()

        async def task_b() -> None:
            await started.wait()
            results.append((await source.resolve(ref)).path)

        async with anyio.create_task_group() as tg:
            tg.start_soon(task_a)
            tg.start_soon(task_b)
            with anyio.fail_after(30):
                await timed_out.wait()
            assert not hold.is_set()
            assert results == []
            hold.set()
    assert len(results) == 1


async def test_snapshot_cancelled_while_another_shares_its_files(
    fake_hub: FakeHub, settings: Settings, stack: Callable[[Settings], ModelAssetSource]
) -> None:
    """A cancelled `snapshot` returns at once; a concurrent one over the same source completes."""
    data = os.urandom(4 * MiB)
    hold = _held_model(fake_hub, data)
    async with stack(settings) as source:
        folder = await _first_waiter_cancelled(
            lambda p: modelfetch.snapshot("org/model", source=source, progress=p), hold
        )
    assert isinstance(folder, Path)
    assert (folder / BIG).read_bytes() == data


async def test_fetch_safetensors_cancelled_while_another_shares_its_files(
    fake_hub: FakeHub, settings: Settings
) -> None:
    """A cancelled `fetch_safetensors` returns at once; a concurrent one gets every shard."""
    data = os.urandom(4 * MiB)
    hold = _held_model(fake_hub, data)
    async with _http_stack(settings) as source:
        model = await _first_waiter_cancelled(
            lambda p: modelfetch.fetch_safetensors("org/model", source=source, progress=p), hold
        )
    assert isinstance(model, modelfetch.SafetensorsModel)
    assert model.shards[0].read_bytes() == data


async def test_default_source_first_waiter_cancelled(default_env: FakeHub) -> None:
    """The per-event-loop default source behaves the same: the cancelled starter returns at once."""
    data = os.urandom(4 * MiB)
    hold = _held_model(default_env, data)
    path = await _first_waiter_cancelled(lambda p: modelfetch.fetch("org/model", BIG, progress=p), hold)
    assert isinstance(path, Path)
    assert path.read_bytes() == data


async def test_closing_the_source_stops_what_it_hosts(fake_hub: FakeHub, settings: Settings) -> None:
    """aclose() while a waiter awaits a held transfer: the waiter gets a FetchError, nothing is published."""
    hold = _held_model(fake_hub, os.urandom(4 * MiB))
    ref = AssetRef("org/model", BIG)
    started = anyio.Event()
    errors: list[BaseException] = []

    on_progress = _on_start(started)

    source = _http_stack(settings)

    async def waiter() -> None:
        try:
            await source.resolve(ref, progress=on_progress)
        except modelfetch.FetchError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        with anyio.fail_after(30):
            await started.wait()
        with anyio.fail_after(10):
            await source.aclose()
    assert len(errors) == 1
    assert "closed" in str(errors[0])
    assert not hold.is_set()
    assert not list((settings.hub_cache / "models--org--model" / "snapshots").rglob(BIG))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_wait_for_on_the_first_waiter(fake_hub: FakeHub, settings: Settings) -> None:
    """Native asyncio cancellation (`asyncio.wait_for`) of the starter is a prompt TimeoutError too."""
    hold = _held_model(fake_hub, os.urandom(4 * MiB))
    ref = AssetRef("org/model", BIG)
    started = asyncio.Event()

    on_progress = _on_start(started)

    async with _hub_stack(settings) as source:
        first = asyncio.ensure_future(asyncio.wait_for(source.resolve(ref, progress=on_progress), 0.5))
        await asyncio.wait_for(started.wait(), 30)
        second = asyncio.ensure_future(source.resolve(ref))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(first, 10)  # the outer bound only guards against a hang
        assert not hold.is_set()
        assert not second.done()
        hold.set()
        assert (await asyncio.wait_for(second, 30)).size == 4 * MiB

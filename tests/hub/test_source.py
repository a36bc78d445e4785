"""HubSource: huggingface_hub in worker threads, with progress and cancellation bridged back."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from huggingface_hub import hf_hub_download, try_to_load_from_cache

import modelfetch
from modelfetch import AssetRef, HubSource, Origin, ProgressEvent, ProgressKind, RepoRef, Settings
from modelfetch.testing import FakeHub, Fault

from .._units import MiB

TOKEN = "hf_test_token"


@dataclasses.dataclass
class Heartbeat:
    """Counts 10 ms ticks: a free loop ticks about 100 times a second, a blocked one never."""

    ticks: int = 0

    async def run(self) -> None:
        while True:
            await anyio.sleep(0.01)
            self.ticks += 1


async def test_resolve_lands_in_the_hf_cache(fake_hub: FakeHub, settings: Settings) -> None:
    """A resolved file is a snapshot path huggingface_hub finds; a second resolve comes from disk."""
    data = os.urandom(50_000)
    commit = fake_hub.add_file("org/model", "model.safetensors", data)
    async with HubSource(settings) as hub:
        first = await hub.resolve(AssetRef("org/model", "model.safetensors"))
        second = await hub.resolve(AssetRef("org/model", "model.safetensors"))
    assert first.path.read_bytes() == data
    assert (
        first.path == settings.hub_cache / "models--org--model" / "snapshots" / commit / "model.safetensors"
    )
    assert (first.commit, first.size, first.etag) == (commit, len(data), hashlib.sha256(data).hexdigest())
    assert (first.origin, second.origin) == (Origin.NETWORK, Origin.DISK)
    found = try_to_load_from_cache("org/model", "model.safetensors", cache_dir=settings.hub_cache)
    assert found == str(first.path)
    assert fake_hub.count("GET", "model.safetensors") == 1


async def test_finds_what_huggingface_hub_fetched(fake_hub: FakeHub, settings: Settings) -> None:
    """A file fetched by plain hf_hub_download is found by commit with no request at all."""
    commit = fake_hub.add_file("org/model", "config.json", b"{}")
    hf_hub_download("org/model", "config.json", endpoint=fake_hub.endpoint, cache_dir=settings.hub_cache)
    fake_hub.clear_requests()
    async with HubSource(settings) as hub:
        resolved = await hub.resolve(AssetRef("org/model", "config.json", commit))
    assert resolved.origin is Origin.DISK
    assert fake_hub.requests == []


async def test_list_files_pins_the_commit(fake_hub: FakeHub, settings: Settings) -> None:
    """list_files reports the branch's commit and every file, LFS ones by sha256."""
    data = b"w" * 1000
    commit = fake_hub.add_files("org/model", {"config.json": b"{}", "model.safetensors": data})
    async with HubSource(settings) as hub:
        listing = await hub.list_files(RepoRef("org/model"))
    assert listing.commit == commit
    assert [(f.path, f.lfs) for f in listing.files] == [("config.json", False), ("model.safetensors", True)]
    assert listing.files[1].etag == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("repo", "filename", "revision", "error"),
    [
        ("org/nope", "config.json", "main", modelfetch.RepoNotFoundError),
        ("org/model", "nope.json", "main", modelfetch.AssetNotFoundError),
        ("org/model", "config.json", "nope", modelfetch.RevisionNotFoundError),
        ("org/private", "config.json", "main", modelfetch.RepoNotFoundError),
        ("org/gated", "config.json", "main", modelfetch.AuthenticationError),
    ],
)
async def test_errors_are_typed_and_name_the_request(
    tmp_path: Path, repo: str, filename: str, revision: str, error: type[Exception]
) -> None:
    """Each Hub failure becomes the matching FetchError naming repo, file and revision."""
    with FakeHub(tokens=(TOKEN,)) as hub:
        hub.add_file("org/model", "config.json", b"{}")
        for name, flags in (("org/private", {"private": True}), ("org/gated", {"gated": True})):
            hub.create_repo(name, **flags)
            hub.add_file(name, "config.json", b"{}")
        settings = Settings.from_env({}, endpoint=hub.endpoint, hub_cache=tmp_path)
        async with HubSource(settings) as source:
            with pytest.raises(error) as info:
                await source.resolve(AssetRef(repo, filename, revision))
    message = str(info.value)
    assert repo in message
    assert filename in message
    assert revision in message


async def test_token_opens_private_repos_and_never_leaks(tmp_path: Path) -> None:
    """With a token, a private repo resolves; the token is in no repr and no error message."""
    with FakeHub(tokens=(TOKEN,)) as hub:
        hub.create_repo("org/private", private=True)
        hub.add_file("org/private", "config.json", b"{}")
        settings = Settings.from_env({"HF_TOKEN": TOKEN}, endpoint=hub.endpoint, hub_cache=tmp_path)
        async with HubSource(settings) as source:
            resolved = await source.resolve(AssetRef("org/private", "config.json"))
            assert resolved.path.read_bytes() == b"{}"
            with pytest.raises(modelfetch.AssetNotFoundError) as info:
                await source.resolve(AssetRef("org/private", "other.json"))
            assert TOKEN not in repr(source)
        bad = dataclasses.replace(settings, token="hf_wrong", hub_cache=tmp_path / "2")
        async with HubSource(bad) as source:
            with pytest.raises(modelfetch.AuthenticationError) as bad_info:
                await source.resolve(AssetRef("org/private", "config.json"))
    for err in (info.value, bad_info.value):
        assert TOKEN not in str(err)
        assert "hf_wrong" not in str(err)


async def test_offline_serves_from_disk_and_misses_cleanly(fake_hub: FakeHub, settings: Settings) -> None:
    """Offline, a cached branch ref resolves with no request; a miss is an OfflineError."""
    fake_hub.add_file("org/model", "config.json", b"{}")
    async with HubSource(settings) as hub:
        await hub.resolve(AssetRef("org/model", "config.json"))
    fake_hub.clear_requests()
    async with HubSource(dataclasses.replace(settings, offline=True)) as hub:
        resolved = await hub.resolve(AssetRef("org/model", "config.json"))
        assert resolved.origin is Origin.DISK
        with pytest.raises(modelfetch.OfflineError, match=r"other\.json"):
            await hub.resolve(AssetRef("org/model", "other.json"))
    assert fake_hub.requests == []


async def test_transient_server_error_is_retried(fake_hub: FakeHub, settings: Settings) -> None:
    """One 500 on the metadata request is retried by huggingface_hub and the fetch succeeds."""
    fake_hub.add_file("org/model", "config.json", b"{}")
    fake_hub.inject(Fault(status=500), method="HEAD", times=1)
    async with HubSource(settings) as hub:
        resolved = await hub.resolve(AssetRef("org/model", "config.json"))
    assert resolved.path.read_bytes() == b"{}"
    assert fake_hub.count("HEAD", "config.json") == 2


async def test_progress_arrives_on_the_event_loop_thread(fake_hub: FakeHub, settings: Settings) -> None:
    """Progress events start with the total, add up to it, end with FINISHED, on the loop's thread."""
    data = os.urandom(25 * MiB)
    fake_hub.add_file("org/model", "model.safetensors", data)
    events: list[ProgressEvent] = []
    threads: set[int] = set()

    def record(event: ProgressEvent) -> None:
        events.append(event)
        threads.add(threading.get_ident())

    async with HubSource(settings) as hub:
        await hub.resolve(AssetRef("org/model", "model.safetensors"), progress=record)
    assert threads == {threading.get_ident()}
    assert events[0].kind is ProgressKind.STARTED
    assert events[0].total == len(data)
    assert events[-1].kind is ProgressKind.FINISHED
    assert events[-1].done == len(data)
    assert sum(1 for e in events if e.kind is ProgressKind.ADVANCED) >= 3


async def test_cancellation_stops_the_worker_thread(
    fake_hub: FakeHub, settings: Settings, tmp_path: Path
) -> None:
    """A cancelled fetch of a slow large file ends its connection early and publishes nothing."""
    size = 64 * MiB
    with (tmp_path / "big.bin").open("wb") as f:
        f.truncate(size)
    fake_hub.add_file("org/model", "model.safetensors", tmp_path / "big.bin")
    fake_hub.inject(Fault(throttle=16 * MiB), method="GET", path="model.safetensors")
    started = anyio.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.kind is ProgressKind.STARTED:
            started.set()

    async with HubSource(settings) as hub, anyio.create_task_group() as tg:

        async def fetch() -> None:
            await hub.resolve(AssetRef("org/model", "model.safetensors"), progress=on_progress)
            pytest.fail("the fetch should have been cancelled")

        tg.start_soon(fetch)
        await started.wait()
        tg.cancel_scope.cancel()

    record = (await anyio.to_thread.run_sync(fake_hub.wait_for_requests, "GET", "model.safetensors"))[0]
    assert not record.completed
    assert record.bytes_sent < size
    storage = settings.hub_cache / "models--org--model"
    assert list((storage / "blobs").iterdir()) == []
    assert not (storage / "snapshots").exists() or not any((storage / "snapshots").rglob("*.safetensors"))


@pytest.mark.slow
async def test_event_loop_keeps_running_during_a_stalled_download(
    fake_hub: FakeHub, settings: Settings
) -> None:
    """While the server stalls a body for 2 s, a 10 ms heartbeat keeps ticking."""
    fake_hub.add_file("org/model", "config.json", b"{}" * 1000)
    fake_hub.inject(Fault(stall=2.0, stall_after=100), method="GET", path="config.json")
    beat = Heartbeat()

    async with HubSource(settings) as hub, anyio.create_task_group() as tg:
        tg.start_soon(beat.run)
        await hub.resolve(AssetRef("org/model", "config.json"))
        tg.cancel_scope.cancel()
    assert beat.ticks >= 50  # a blocked loop ticks zero times; an idle one about 200


@pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])
@pytest.mark.slow
async def test_the_heartbeat_detects_a_blocked_loop(fake_hub: FakeHub, settings: Settings) -> None:
    """Control: plain hf_hub_download inside a coroutine freezes the loop, and the heartbeat shows it."""
    fake_hub.add_file("org/model", "config.json", b"{}" * 1000)
    fake_hub.inject(Fault(stall=1.0, stall_after=100), method="GET", path="config.json")
    beat = Heartbeat()

    async with anyio.create_task_group() as tg:
        tg.start_soon(beat.run)
        await anyio.lowlevel.checkpoint()
        before = beat.ticks
        hf_hub_download("org/model", "config.json", endpoint=fake_hub.endpoint, cache_dir=settings.hub_cache)
        during = beat.ticks - before
        tg.cancel_scope.cancel()
    assert during == 0


@pytest.mark.parametrize("verify", [True, False])
async def test_verify_guards_against_corrupt_downloads(
    fake_hub: FakeHub, settings: Settings, verify: bool
) -> None:
    """A corrupt download is an IntegrityError and is removed; verify=False keeps hf's behaviour."""
    data = os.urandom(100_000)
    fake_hub.add_file("org/model", "w.safetensors", data)
    fake_hub.inject(Fault(corrupt_at=500), method="GET")
    async with HubSource(settings, verify=verify) as hub:
        if verify:
            with pytest.raises(modelfetch.IntegrityError, match=r"removed from the cache"):
                await hub.resolve(AssetRef("org/model", "w.safetensors"))
            assert not list(settings.hub_cache.rglob("w.safetensors"))
        else:
            resolved = await hub.resolve(AssetRef("org/model", "w.safetensors"))
            assert resolved.path.read_bytes() != data  # huggingface_hub publishes what it received


async def test_under_a_respx_mock_hubsource_refuses_instead_of_going_around_it(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    """respx cannot see huggingface_hub's client: HubSource says so at once and sends nothing."""
    import respx

    fake_hub.add_files("org/model", {"config.json": b"{}"})
    settings = Settings.from_env({}, endpoint=fake_hub.endpoint, hub_cache=tmp_path / "cache")
    async with HubSource(settings) as source:
        with respx.mock(assert_all_mocked=True), pytest.raises(modelfetch.InvalidRequestError, match="respx"):
            await source.resolve(AssetRef("org/model", "config.json"))
        assert fake_hub.count() == 0
        got = await source.resolve(AssetRef("org/model", "config.json"))  # without the mock: as before
    assert got.path.read_bytes() == b"{}"

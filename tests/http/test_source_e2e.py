"""HttpHubSource against FakeHub: parallel ranges, faults, resume, interop, locks, CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import anyio
import filelock
import pytest
from huggingface_hub import hf_hub_download, scan_cache_dir, try_to_load_from_cache

import modelfetch
from modelfetch import (
    AssetRef,
    CachedSource,
    HttpHubSource,
    Origin,
    ProgressEvent,
    ProgressKind,
    RepoRef,
    Settings,
    TransferOptions,
)
from modelfetch._cli.main import main
from modelfetch.testing import FakeHub, Fault

from .._units import FAST_RETRY, MiB

BIG = os.urandom(5 * MiB + 123)
SMALL_PARTS = TransferOptions(
    parallel_threshold=MiB, chunk_size=512 * 1024, connections=3, small_file_limit=0
)


def _source(settings: Settings, **kw: object) -> HttpHubSource:
    return HttpHubSource(settings, options=SMALL_PARTS, retry=FAST_RETRY, **kw)  # type: ignore[arg-type]


async def test_large_file_comes_down_in_parallel_ranges(fake_hub: FakeHub, settings: Settings) -> None:
    """A large LFS file is fetched as several range requests through the CDN and is byte-exact."""
    fake_hub.add_file("org/model", "model.safetensors", BIG)
    async with _source(settings) as source:
        resolved = await source.resolve(AssetRef("org/model", "model.safetensors"))
    assert resolved.path.read_bytes() == BIG
    assert resolved.etag == hashlib.sha256(BIG).hexdigest()
    ranges = [r.range for r in fake_hub.requests if r.method == "GET"]
    assert len(ranges) == 11
    assert all(r and r.startswith("bytes=") for r in ranges)
    assert not list(settings.hub_cache.rglob("*.incomplete*"))


async def test_small_file_is_one_plain_get(fake_hub: FakeHub, settings: Settings) -> None:
    """A small file is one HEAD and one GET with no Range."""
    fake_hub.add_file("org/model", "config.json", b'{"a": 1}')
    async with _source(settings) as source:
        resolved = await source.resolve(AssetRef("org/model", "config.json"))
    assert resolved.path.read_bytes() == b'{"a": 1}'
    assert [(r.method, r.range) for r in fake_hub.requests] == [("HEAD", None), ("GET", None)]


async def test_dropped_connection_resumes_from_the_last_byte(fake_hub: FakeHub, settings: Settings) -> None:
    """A body cut mid-way is resumed with Range from where it stopped, not restarted.

    The native engine is handed the body in chunks of 1 MiB or more: a drop loses the one in flight.
    """
    data = os.urandom(3 * MiB)
    fake_hub.add_file("org/model", "w.bin", data, lfs=True)
    fake_hub.inject(Fault(drop_after=2 * MiB + 300_000), method="GET", times=1)
    one_stream = TransferOptions(small_file_limit=0)
    async with HttpHubSource(settings, options=one_stream, retry=FAST_RETRY) as source:
        resolved = await source.resolve(AssetRef("org/model", "w.bin"))
    assert resolved.path.read_bytes() == data
    gets = [r for r in fake_hub.requests if r.method == "GET"]
    assert gets[0].range is None
    assert gets[1].range is not None
    assert gets[1].range.startswith("bytes=")
    assert int(gets[1].range.removeprefix("bytes=").split("-")[0]) >= MiB


async def test_stalled_server_times_out_then_retries(fake_hub: FakeHub, settings: Settings) -> None:
    """A stalled body hits the read timeout and the retry completes the file."""
    data = os.urandom(200_000)
    fake_hub.add_file("org/model", "w.bin", data, lfs=False)
    fake_hub.inject(Fault(stall=10, stall_after=50_000), method="GET", times=1)
    fast = dataclasses.replace(settings, download_timeout=0.5)
    async with _source(fast) as source:
        resolved = await source.resolve(AssetRef("org/model", "w.bin"))
    assert resolved.path.read_bytes() == data
    assert fake_hub.count("GET", "w.bin") == 2


async def test_corrupted_bytes_raise_and_publish_nothing(fake_hub: FakeHub, settings: Settings) -> None:
    """Corrupted bytes fail the sha256 check: IntegrityError, no blob, no snapshot, no temporary file."""
    fake_hub.add_file("org/model", "model.safetensors", BIG)
    fake_hub.inject(Fault(corrupt_at=3 * MiB), method="GET")
    async with _source(settings) as source:
        with pytest.raises(modelfetch.IntegrityError, match=r"model\.safetensors"):
            await source.resolve(AssetRef("org/model", "model.safetensors"))
    storage = settings.hub_cache / "models--org--model"
    assert list((storage / "blobs").iterdir()) == []
    assert not (storage / "snapshots").exists()


async def test_git_sha1_is_checked_for_regular_files(fake_hub: FakeHub, settings: Settings) -> None:
    """Non-LFS files are checked against their git blob id too."""
    fake_hub.add_file("org/model", "config.json", b'{"x": 1}')
    fake_hub.inject(Fault(corrupt_at=2), method="GET")
    async with _source(settings) as source:
        with pytest.raises(modelfetch.IntegrityError):
            await source.resolve(AssetRef("org/model", "config.json"))


async def test_cancelled_download_resumes_in_a_new_source(fake_hub: FakeHub, settings: Settings) -> None:
    """A cancelled transfer keeps its good prefix; a later source (a 'new process') resumes from it."""
    data = os.urandom(3 * MiB)
    fake_hub.add_file("org/model", "w.bin", data, lfs=True)
    rule = fake_hub.inject(Fault(throttle=2 * MiB), method="GET")
    halfway = anyio.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.kind is ProgressKind.ADVANCED and event.done >= MiB:
            halfway.set()

    plain = TransferOptions(parallel_threshold=100 * MiB, small_file_limit=0)
    async with (
        HttpHubSource(settings, options=plain, retry=FAST_RETRY) as source,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(lambda: source.resolve(AssetRef("org/model", "w.bin"), progress=on_progress))
        await halfway.wait()
        tg.cancel_scope.cancel()
    storage = settings.hub_cache / "models--org--model"
    assert not (storage / "snapshots").exists() or not list((storage / "snapshots").rglob("w.bin"))
    assert [
        p.name for p in (storage / "blobs").iterdir() if not p.name.endswith((".incomplete", ".progress"))
    ] == []
    fake_hub.remove_fault(rule)
    async with HttpHubSource(settings, options=plain, retry=FAST_RETRY) as again:
        resolved = await again.resolve(AssetRef("org/model", "w.bin"))
    assert hashlib.sha256(resolved.path.read_bytes()).digest() == hashlib.sha256(data).digest()
    resume = [r for r in fake_hub.requests if r.method == "GET"][-1]
    assert resume.range is not None
    assert int(resume.range.removeprefix("bytes=").split("-")[0]) >= MiB


async def test_interop_both_ways_with_huggingface_hub(fake_hub: FakeHub, settings: Settings) -> None:
    """Each client finds what the other fetched, in one cache, and scan_cache_dir sees no problem."""
    commit = fake_hub.add_files("org/model", {"a.safetensors": BIG, "b.json": b"{}"})
    hf_hub_download("org/model", "a.safetensors", endpoint=fake_hub.endpoint, cache_dir=settings.hub_cache)
    fake_hub.clear_requests()
    async with _source(settings) as source:
        first = await source.resolve(AssetRef("org/model", "a.safetensors"))
        second = await source.resolve(AssetRef("org/model", "b.json"))
    assert first.origin is Origin.DISK
    assert fake_hub.count("GET", "a.safetensors") == 0
    fake_hub.clear_requests()
    got = hf_hub_download(
        "org/model", "b.json", endpoint=fake_hub.endpoint, cache_dir=settings.hub_cache, revision=commit
    )
    assert got == str(second.path)
    assert fake_hub.requests == []
    assert try_to_load_from_cache("org/model", "b.json", cache_dir=settings.hub_cache) == str(second.path)
    assert scan_cache_dir(settings.hub_cache).warnings == []


async def test_token_and_the_separate_cdn(tmp_path: Path) -> None:
    """A private repo opens with the token; the CDN on another origin never receives it."""
    with FakeHub(tokens=("hf_tok",), cdn="separate") as hub:
        hub.create_repo("org/private", private=True)
        hub.add_file("org/private", "model.safetensors", BIG)
        settings = Settings.from_env({"HF_TOKEN": "hf_tok"}, endpoint=hub.endpoint, hub_cache=tmp_path)
        async with _source(settings) as source:
            resolved = await source.resolve(AssetRef("org/private", "model.safetensors"))
        assert resolved.path.read_bytes() == BIG
        hub_port = int(hub.endpoint.rsplit(":", 1)[1])
        assert all(r.authorized for r in hub.requests if r.port == hub_port)
        cdn = [r for r in hub.requests if r.port != hub_port]
        assert cdn
        assert not any(r.authorized for r in cdn)


async def test_listing_follows_pagination(tmp_path: Path) -> None:
    """list_files pins the commit and follows Link pages."""
    with FakeHub(page_size=2) as hub:
        files = {f"f{i}.json": b"{}" for i in range(5)} | {"w.safetensors": b"w"}
        commit = hub.add_files("org/model", files)
        settings = Settings.from_env({}, endpoint=hub.endpoint, hub_cache=tmp_path)
        async with _source(settings) as source:
            listing = await source.list_files(RepoRef("org/model"))
        assert listing.commit == commit
        assert [f.path for f in listing.files] == sorted(files)
        assert [f.lfs for f in listing.files][-1] is True
        assert hub.count("GET", "/tree/") == 3


async def test_missing_file_leaves_the_no_exist_marker(fake_hub: FakeHub, settings: Settings) -> None:
    """A 404 EntryNotFound writes huggingface_hub's .no_exist marker for that commit."""
    commit = fake_hub.add_file("org/model", "a.json", b"{}")
    async with _source(settings) as source:
        with pytest.raises(modelfetch.AssetNotFoundError):
            await source.resolve(AssetRef("org/model", "missing.json"))
    assert (settings.hub_cache / "models--org--model" / ".no_exist" / commit / "missing.json").exists()


async def test_lock_held_elsewhere_times_out_clearly(fake_hub: FakeHub, settings: Settings) -> None:
    """Another process holding huggingface_hub's blob lock makes us wait a bounded time, then fail clearly."""
    fake_hub.add_file("org/model", "w.safetensors", BIG)
    sha = hashlib.sha256(BIG).hexdigest()
    lock_path = settings.hub_cache / ".locks" / "models--org--model" / f"{sha}.lock"
    lock_path.parent.mkdir(parents=True)
    held = filelock.FileLock(str(lock_path), thread_local=False)
    held.acquire()
    try:
        async with _source(dataclasses.replace(settings, lock_timeout=0.3)) as source:
            with pytest.raises(modelfetch.StorageError, match="lock"):
                await source.resolve(AssetRef("org/model", "w.safetensors"))
    finally:
        held.release()
    assert fake_hub.count("GET", "w.safetensors") == 0


async def test_cached_httpx_stack_makes_one_transfer(fake_hub: FakeHub, settings: Settings) -> None:
    """CachedSource over HttpHubSource: 50 concurrent awaits, one HEAD, one set of range GETs."""
    fake_hub.add_file("org/model", "model.safetensors", BIG)
    async with CachedSource(_source(settings)) as source, anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(source.resolve, AssetRef("org/model", "model.safetensors"))
    assert fake_hub.count("HEAD") == 1
    assert fake_hub.count("GET") == 11


def test_cli_backend_httpx(hub_env: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    """`modelfetch get --backend httpx` prints the path of the fetched file."""
    hub_env.add_file("org/model", "config.json", b"{}")
    assert main(["get", "org/model", "config.json", "--backend", "httpx"]) == 0
    assert Path(capsys.readouterr().out.strip()).read_bytes() == b"{}"


async def test_snapshot_needs_no_metadata_requests(fake_hub: FakeHub, settings: Settings) -> None:
    """Files of a listed commit are fetched with one GET each: the listing already gave etag and size."""
    files = {f"f{i}.json": b"{}" * (i + 1) for i in range(6)} | {"model.safetensors": BIG}
    commit = fake_hub.add_files("org/model", files)
    async with CachedSource(HttpHubSource(settings)) as source:
        folder = await modelfetch.snapshot("org/model", source=source)
    assert folder.name == commit
    assert fake_hub.count("HEAD") == 0
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files


async def test_small_files_report_progress(fake_hub: FakeHub, settings: Settings) -> None:
    """A file under the small-file limit still reports STARTED, ADVANCED and FINISHED."""
    data = os.urandom(3 * MiB)
    fake_hub.add_file("org/model", "w.bin", data, lfs=True)
    events: list[ProgressEvent] = []
    async with HttpHubSource(settings) as source:
        await source.resolve(AssetRef("org/model", "w.bin"), progress=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] is ProgressKind.STARTED
    assert kinds[-1] is ProgressKind.FINISHED
    assert ProgressKind.ADVANCED in kinds
    assert events[-1].done == len(data)

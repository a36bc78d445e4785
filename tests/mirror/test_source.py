"""MirrorSource over FakeHub and an in-memory bucket: read-through, write-back, claims, outages."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import obstore
import pytest

import modelfetch
from modelfetch import (
    AssetRef,
    CachedSource,
    HttpHubSource,
    HubSource,
    MirrorOptions,
    MirrorSource,
    ModelAssetSource,
    Origin,
    ProgressEvent,
    ProgressKind,
    RepoRef,
    Settings,
)
from modelfetch._mirror.bucket import Bucket, BucketUnavailableError
from modelfetch._mirror.keys import Claim, blob_key, claim_key, encode_claim
from modelfetch.testing import FakeHub

from .._net import closed_port
from .._units import MiB

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
FAST = MirrorOptions(poll_interval=0.05, part_size=5 * MiB)
Upstream = Callable[[Settings], ModelAssetSource]
UPSTREAMS: dict[str, Upstream] = {"hub": HubSource, "httpx": HttpHubSource}


@pytest.fixture(params=list(UPSTREAMS))
def upstream(request: pytest.FixtureRequest) -> Upstream:
    """Each Hub source as the mirror's upstream."""
    return UPSTREAMS[request.param]


@pytest.fixture
def bucket() -> Bucket:
    """A fresh in-memory bucket."""
    return Bucket.open("memory:///", timeout=5)


def _node(hub: FakeHub, tmp: Path, name: str) -> Settings:
    return Settings.from_env({}, endpoint=hub.endpoint, hub_cache=tmp / name / "cache")


def _model(hub: FakeHub) -> tuple[str, dict[str, bytes]]:
    files = {
        "config.json": b'{"model_type": "tiny"}',
        "model-00001-of-00002.safetensors": os.urandom(7 * MiB),  # written back as parts of 5 + 2 MiB
        "model-00002-of-00002.safetensors": os.urandom(3 * MiB),
    }
    return hub.add_files("org/model", files), files


def _keys(bucket: Bucket) -> list[str]:
    return sorted(str(m["path"]) for batch in obstore.list(bucket.store) for m in batch)


async def test_nodes_one_after_another_fetch_each_blob_from_the_hub_once(
    fake_hub: FakeHub, tmp_path: Path, bucket: Bucket, upstream: Upstream
) -> None:
    """Three nodes snapshot the model in turn: the Hub sends each blob once; all copies are exact."""
    _, files = _model(fake_hub)
    for name in ("a", "b", "c"):
        settings = _node(fake_hub, tmp_path, name)
        async with MirrorSource(
            bucket=bucket, upstream=upstream(settings), settings=settings, options=FAST
        ) as m:
            folder = await modelfetch.snapshot("org/model", source=m)
        stats = m.stats()  # after aclose(): the background uploads are done
        assert {p: (folder / p).read_bytes() for p in files} == files
        if name == "a":
            assert (stats.upstream_fetches, stats.uploads) == (3, 3)
        else:
            assert (stats.mirror_hits, stats.upstream_fetches) == (3, 0)
    assert fake_hub.file_bytes_served() == sum(map(len, files.values()))
    assert sum(k.startswith("blobs/") for k in _keys(bucket)) == 2  # the two small files
    assert [k.rsplit("/", 1)[1] for k in _keys(bucket) if k.startswith("parts/")] == [
        f"{0:020d}-{5 * MiB:020d}",
        f"{5 * MiB:020d}-{7 * MiB:020d}",
    ]
    assert not [k for k in _keys(bucket) if k.startswith("claims/")]


async def test_a_pinned_file_comes_from_the_bucket_with_no_hub_request(
    fake_hub: FakeHub, tmp_path: Path, bucket: Bucket
) -> None:
    """Once a commit is in the bucket, a new node resolves a commit-pinned file without asking the Hub."""
    commit, files = _model(fake_hub)
    first = _node(fake_hub, tmp_path, "a")
    async with MirrorSource(bucket=bucket, upstream=HttpHubSource(first), settings=first, options=FAST) as m:
        await m.resolve(AssetRef("org/model", "config.json", commit))
    before = len(fake_hub.requests)
    second = _node(fake_hub, tmp_path, "b")
    async with MirrorSource(
        bucket=bucket, upstream=HttpHubSource(second), settings=second, options=FAST
    ) as m:
        got = await m.resolve(AssetRef("org/model", "config.json", commit))
    assert got.path.read_bytes() == files["config.json"]
    assert (got.origin, got.commit) == (Origin.NETWORK, commit)
    assert len(fake_hub.requests) == before


async def test_a_pinned_listing_comes_from_the_bucket(
    fake_hub: FakeHub, tmp_path: Path, bucket: Bucket
) -> None:
    """A commit listed once through the mirror is listed again from the bucket alone."""
    commit, files = _model(fake_hub)
    first, second = _node(fake_hub, tmp_path, "a"), _node(fake_hub, tmp_path, "b")
    async with MirrorSource(bucket=bucket, upstream=HttpHubSource(first), settings=first) as m:
        listed = await m.list_files(RepoRef("org/model", commit))
    before = len(fake_hub.requests)
    async with MirrorSource(bucket=bucket, upstream=HttpHubSource(second), settings=second) as m:
        again = await m.list_files(RepoRef("org/model", commit))
    assert again == listed
    assert sorted(f.path for f in again.files) == sorted(files)
    assert len(fake_hub.requests) == before


async def test_concurrent_nodes_share_one_hub_transfer_per_blob(
    fake_hub: FakeHub, tmp_path: Path, bucket: Bucket, upstream: Upstream
) -> None:
    """Three nodes starting together: claims make the Hub send each blob once; the rest wait and read."""
    _, files = _model(fake_hub)
    folders: dict[str, Path] = {}
    stats = {}

    async def node(name: str) -> None:
        settings = _node(fake_hub, tmp_path, name)
        async with MirrorSource(
            bucket=bucket, upstream=upstream(settings), settings=settings, options=FAST
        ) as m:
            folders[name] = await modelfetch.snapshot("org/model", source=m)
            stats[name] = m.stats()

    async with anyio.create_task_group() as tg:
        for name in ("a", "b", "c"):
            tg.start_soon(node, name)
    for folder in folders.values():
        assert {p: (folder / p).read_bytes() for p in files} == files
    assert fake_hub.file_bytes_served() == sum(map(len, files.values()))
    assert sum(s.upstream_fetches for s in stats.values()) == 3
    assert sum(s.mirror_hits for s in stats.values()) == 6


async def test_an_unreachable_bucket_falls_back_to_the_hub_with_one_warning(
    fake_hub: FakeHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With nothing listening at the bucket's endpoint, fetches succeed from the Hub and warn once."""
    _, files = _model(fake_hub)
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}", "AWS_ACCESS_KEY_ID": "k"}
    down = Bucket.open("s3://fleet", timeout=1, env={**env, "AWS_SECRET_ACCESS_KEY": SECRET})
    settings = _node(fake_hub, tmp_path, "a")
    caplog.set_level(logging.WARNING, logger="modelfetch.mirror")
    async with MirrorSource(bucket=down, upstream=HttpHubSource(settings), settings=settings) as m:
        folder = await modelfetch.snapshot("org/model", source=m)
        await m.flush()  # the write-back of the listing, in the background, fails too
        stats = m.stats()
        errors = stats.bucket_errors
        fake_hub.add_file("org/other", "config.json", b"{}")
        await modelfetch.fetch("org/other", "config.json", source=m)
        assert m.stats().bucket_errors == errors  # the bucket is skipped for retry_after seconds
    assert {p: (folder / p).read_bytes() for p in files} == files
    assert stats.upstream_fetches == 3
    assert errors >= 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "is unavailable" in warnings[0]
    assert "using upstream only" in warnings[0]
    assert SECRET not in caplog.text
    assert SECRET not in repr(m) + repr(down)


class _FailingUploads(Bucket):
    def upload(self, key: str, file: BinaryIO, **options: Any) -> None:
        raise BucketUnavailableError(f"uploading {key}: 503 Slow Down")


async def test_a_failed_write_back_is_counted_and_logged_not_raised(
    fake_hub: FakeHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An upload that fails leaves the user's fetch successful; the failure is logged and counted."""
    commit, files = _model(fake_hub)
    settings = _node(fake_hub, tmp_path, "a")
    failing = _FailingUploads(Bucket.open("memory:///", timeout=5).store, "memory:///")
    caplog.set_level(logging.WARNING, logger="modelfetch.mirror")
    async with MirrorSource(bucket=failing, upstream=HttpHubSource(settings), settings=settings) as m:
        got = await m.resolve(AssetRef("org/model", "config.json", commit))
    stats = m.stats()  # after aclose(): the background uploads are done
    assert got.path.read_bytes() == files["config.json"]
    assert (stats.upload_failures, stats.uploads) == (1, 0)
    assert any("503 Slow Down" in r.getMessage() for r in caplog.records)
    # No claim is left behind, and no manifest entry points at a blob that is not there.
    assert not [k for k in _keys(failing) if k.startswith(("claims/", "blobs/")) or "/files/" in k]


async def test_a_corrupt_blob_in_the_bucket_is_not_published_and_gets_replaced(
    fake_hub: FakeHub, tmp_path: Path, bucket: Bucket
) -> None:
    """Bytes in the bucket that fail the sha256 check are refused, fetched upstream and re-uploaded."""
    commit, files = _model(fake_hub)
    name = "model-00002-of-00002.safetensors"
    first, second = _node(fake_hub, tmp_path, "a"), _node(fake_hub, tmp_path, "b")
    async with MirrorSource(bucket=bucket, upstream=HttpHubSource(first), settings=first) as m:
        got = await m.resolve(AssetRef("org/model", name, commit))
    tampered = bytearray(files[name])
    tampered[1000] ^= 0xFF
    obstore.put(bucket.store, blob_key(got.etag), bytes(tampered))
    async with MirrorSource(bucket=bucket, upstream=HttpHubSource(second), settings=second) as m:
        again = await m.resolve(AssetRef("org/model", name, commit))
        stats = m.stats()
    assert again.path.read_bytes() == files[name]
    assert (stats.corrupt, stats.upstream_fetches) == (1, 1)
    assert bytes(obstore.get(bucket.store, blob_key(got.etag)).bytes()) == files[name]


async def test_a_dead_nodes_claim_is_taken_over_once_it_lapses(
    fake_hub: FakeHub, tmp_path: Path, bucket: Bucket
) -> None:
    """A claim left by a node that died makes the next node wait until it lapses, then fetch and upload."""
    commit, files = _model(fake_hub)
    settings = _node(fake_hub, tmp_path, "b")
    now = [time.time()]
    waited: list[float] = []

    async def sleep(seconds: float) -> None:  # time passes only when the mirror waits
        waited.append(seconds)
        now[0] += seconds
        await anyio.lowlevel.checkpoint()

    async with MirrorSource(
        bucket=bucket,
        upstream=HttpHubSource(settings),
        settings=settings,
        options=FAST,
        clock=lambda: now[0],
        sleep=sleep,
    ) as m:
        entry = (await m.list_files(RepoRef("org/model", commit))).files[0]
        bucket.create(claim_key(entry.etag), encode_claim(Claim("dead-node", now[0] + 10)))
        got = await m.resolve(AssetRef("org/model", entry.path, commit))
    stats = m.stats()  # after aclose(): the background uploads are done
    assert sum(waited) >= 10  # it waited for the claim to lapse, on the clock it was given
    assert got.path.read_bytes() == files[entry.path]
    assert (stats.waits, stats.upstream_fetches, stats.uploads) == (1, 1, 1)
    assert bucket.exists(blob_key(entry.etag))
    assert not bucket.exists(claim_key(entry.etag))


async def test_cancelling_the_claimant_releases_its_claim_and_leaves_no_blob(
    fake_hub: FakeHub, tmp_path: Path, bucket: Bucket
) -> None:
    """A fetch cancelled mid-transfer frees its claim at once and publishes nothing to the bucket."""
    commit, _ = _model(fake_hub)
    name = "model-00001-of-00002.safetensors"
    settings = _node(fake_hub, tmp_path, "a")
    # HubSource upstream: cancelling HttpHubSource mid-body on trio can leave httpcore's
    # async generators to the garbage collector (a ResourceWarning that -W error turns into
    # a flaky failure); the claim handling under test is the same for both upstreams.
    async with MirrorSource(bucket=bucket, upstream=HubSource(settings), settings=settings) as m:
        with anyio.CancelScope() as scope:

            def on_progress(event: ProgressEvent) -> None:
                if event.kind is ProgressKind.ADVANCED:
                    scope.cancel()

            await m.resolve(AssetRef("org/model", name, commit), progress=on_progress)
    assert scope.cancelled_caught
    assert [k for k in _keys(bucket) if not k.endswith("listing.json")] == []


async def test_default_source_reads_through_the_mirror_named_by_the_environment(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MODELFETCH_MIRROR_URL makes the default stack CachedSource(MirrorSource(upstream=HubSource()))."""
    from modelfetch._default import build_default_source

    monkeypatch.setenv("MODELFETCH_MIRROR_URL", f"file://{tmp_path / 'share'}")
    (tmp_path / "share").mkdir()
    settings = Settings.from_env(endpoint=fake_hub.endpoint, hub_cache=tmp_path / "cache")
    source = build_default_source(settings)
    assert isinstance(source, CachedSource)
    assert isinstance(source.inner, MirrorSource)
    commit, files = _model(fake_hub)
    async with source:
        got = await source.resolve(AssetRef("org/model", "config.json", commit))
    assert got.path.read_bytes() == files["config.json"]
    assert any(p.name.startswith(got.etag) for p in (tmp_path / "share" / "blobs").iterdir())


def test_options_are_validated() -> None:
    """Nonsense options are refused with a typed error naming the option."""
    with pytest.raises(modelfetch.InvalidRequestError, match="lease"):
        MirrorOptions(lease=0)
    with pytest.raises(modelfetch.InvalidRequestError, match="part_size"):
        MirrorOptions(part_size=1024)
    with pytest.raises(modelfetch.InvalidRequestError, match="MODELFETCH_MIRROR_URL"):
        MirrorSource(settings=Settings.from_env({}), upstream=HubSource(Settings.from_env({})))


async def test_an_obstore_store_of_your_own_is_a_bucket(fake_hub: FakeHub, tmp_path: Path) -> None:
    """`bucket=` takes an obstore store configured by the caller (no modelfetch-internal type);
    anything else is refused before any I/O."""
    commit, files = _model(fake_hub)
    store = obstore.store.MemoryStore()
    first, second = _node(fake_hub, tmp_path, "a"), _node(fake_hub, tmp_path, "b")
    async with MirrorSource(bucket=store, upstream=HttpHubSource(first), settings=first, options=FAST) as m:
        await m.resolve(AssetRef("org/model", "config.json", commit))
    before = len(fake_hub.requests)
    async with MirrorSource(bucket=store, upstream=HttpHubSource(second), settings=second, options=FAST) as m:
        got = await m.resolve(AssetRef("org/model", "config.json", commit))
    assert got.path.read_bytes() == files["config.json"]
    assert len(fake_hub.requests) == before  # the second node read it from the store
    with pytest.raises(modelfetch.InvalidRequestError, match="obstore store"):
        MirrorSource(bucket="s3://not-a-store", settings=first)  # type: ignore[arg-type]

"""Network faults, for both Hub sources: the fetch recovers byte-exact or fails typed, never corrupt."""

from __future__ import annotations

import hashlib
import os
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import modelfetch
from modelfetch import (
    AssetRef,
    CachedSource,
    HttpHubSource,
    HubSource,
    ModelAssetSource,
    RetryPolicy,
    Settings,
    TransferOptions,
)
from modelfetch.testing import FakeHub, Fault

from .._units import FAST_RETRY
from ._audit import bad_links, leftovers
from .conftest import Ledger

TRIALS = 50
SIZE = 256 * 1024

SourceFactory = Callable[[Settings], ModelAssetSource]
SOURCES: dict[str, SourceFactory] = {
    "hub": HubSource,
    "httpx": lambda s: HttpHubSource(
        s, retry=FAST_RETRY, options=TransferOptions(small_file_limit=0, engine="httpx")
    ),
    "native": lambda s: HttpHubSource(
        s, retry=FAST_RETRY, options=TransferOptions(small_file_limit=0, engine="native")
    ),
    "httpx-small": lambda s: HttpHubSource(s, retry=FAST_RETRY),
}


@pytest.fixture(params=list(SOURCES))
def make_source(request: pytest.FixtureRequest) -> tuple[str, SourceFactory]:
    """Each Hub source (httpx both through resumable temp files and its small-file path)."""
    return request.param, SOURCES[request.param]


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    """These scenarios are about the network, not the loop: asyncio is enough."""
    return ("asyncio", {})


async def _fetch_all(source: ModelAssetSource, names: list[str]) -> dict[str, Path | BaseException]:
    results: dict[str, Path | BaseException] = {}

    async def one(name: str) -> None:
        try:
            results[name] = (await source.resolve(AssetRef("org/model", name))).path
        except modelfetch.FetchError as exc:
            results[name] = exc

    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(one, name)
    return results


@pytest.mark.slow
async def test_dropped_connections_at_random_offsets(
    fake_hub: FakeHub, settings: Settings, make_source: tuple[str, SourceFactory], ledger: Ledger
) -> None:
    """50 seeded trials: the body is cut at a random offset once; every file ends byte-exact."""
    kind, factory = make_source
    rng = random.Random(f"drop-{kind}")
    files = {f"f{i:02d}.bin": rng.randbytes(SIZE) for i in range(TRIALS)}
    fake_hub.add_files("org/model", files, lfs=True)
    for name in files:
        fake_hub.inject(Fault(drop_after=rng.randrange(1, SIZE)), method="GET", path=name, times=1)
    async with CachedSource(factory(settings)) as source:
        results = await _fetch_all(source, list(files))
    wrong = [n for n, r in results.items() if not isinstance(r, Path) or r.read_bytes() != files[n]]
    lost = bad_links(settings.hub_cache)
    ledger.record(
        f"connection dropped at a random offset ({kind})", trials=TRIALS, failures=len(wrong), lost=len(lost)
    )
    assert wrong == []
    assert lost == []


async def test_corrupted_bytes_are_never_served(
    fake_hub: FakeHub, settings: Settings, make_source: tuple[str, SourceFactory], ledger: Ledger
) -> None:
    """Corrupted bodies raise IntegrityError; nothing corrupt stays in the cache."""
    rng = random.Random("corrupt")
    files = {f"c{i}.bin": rng.randbytes(SIZE) for i in range(10)}
    fake_hub.add_files("org/model", files, lfs=True)
    for name in files:
        fake_hub.inject(Fault(corrupt_at=rng.randrange(SIZE)), method="GET", path=name)
    kind, factory = make_source
    async with CachedSource(factory(settings)) as source:
        results = await _fetch_all(source, list(files))
    wrong = [n for n, r in results.items() if not isinstance(r, modelfetch.IntegrityError)]
    lost = bad_links(settings.hub_cache)
    ledger.record(f"corrupted bytes ({kind})", trials=len(files), failures=len(wrong), lost=len(lost))
    assert wrong == []
    assert lost == []
    blobs = settings.hub_cache / "models--org--model" / "blobs"
    published = (
        [p for p in blobs.iterdir() if re.fullmatch("[0-9a-f]{40,64}", p.name)] if blobs.exists() else []
    )
    assert published == []


@pytest.mark.parametrize("delta", [64, -64])
@pytest.mark.slow
async def test_wrong_content_length(
    fake_hub: FakeHub, settings: Settings, make_source: tuple[str, SourceFactory], ledger: Ledger, delta: int
) -> None:
    """A lying Content-Length on the first answer is a failed attempt: retried, the file ends byte-exact."""
    data = os.urandom(SIZE)
    fake_hub.add_file("org/model", "w.bin", data, lfs=True)
    fake_hub.inject(Fault(length_delta=delta), method="GET", times=1)
    kind, factory = make_source
    async with CachedSource(factory(settings)) as source:
        result = (await _fetch_all(source, ["w.bin"]))["w.bin"]
    ok = isinstance(result, Path) and result.read_bytes() == data
    ledger.record(f"wrong Content-Length ({kind})", trials=1, failures=0 if ok else 1)
    assert ok
    assert bad_links(settings.hub_cache) == []


@pytest.mark.slow
async def test_retry_after_is_waited(fake_hub: FakeHub, settings: Settings, ledger: Ledger) -> None:
    """503 and 429 with Retry-After: 1 are waited out (at least a second), then the fetch succeeds."""
    fake_hub.add_file("org/model", "a.bin", b"a" * 1000)
    fake_hub.inject(Fault(status=503, retry_after="1"), method="HEAD", times=1)
    fake_hub.inject(Fault(status=429, retry_after="1"), method="GET", times=1)
    async with HttpHubSource(settings, retry=FAST_RETRY) as source:
        started = time.monotonic()
        resolved = await source.resolve(AssetRef("org/model", "a.bin"))
        elapsed = time.monotonic() - started
    ledger.record("429/503 with Retry-After (httpx)", trials=2, failures=0 if elapsed >= 2 else 1)
    assert resolved.path.read_bytes() == b"a" * 1000
    assert elapsed >= 2.0


async def test_persistent_500_gives_up_within_the_bound(
    fake_hub: FakeHub, settings: Settings, ledger: Ledger
) -> None:
    """A server failing forever yields SourceUnavailableError after the policy's attempts."""
    fake_hub.add_file("org/model", "a.bin", b"a")
    fake_hub.inject(Fault(status=500))
    async with HttpHubSource(settings, retry=RetryPolicy(attempts=4, base=0.01, cap=0.02)) as source:
        with pytest.raises(modelfetch.SourceUnavailableError, match="500"):
            await source.resolve(AssetRef("org/model", "a.bin"))
    ledger.record("persistent 500 (httpx)", trials=1, failures=0 if fake_hub.count("HEAD") == 4 else 1)
    assert fake_hub.count("HEAD") == 4


async def test_stalled_server_then_recovery(fake_hub: FakeHub, settings: Settings, ledger: Ledger) -> None:
    """A stalled body hits the read timeout; the retry resumes and completes."""
    data = os.urandom(SIZE)
    fake_hub.add_file("org/model", "s.bin", data, lfs=True)
    fake_hub.inject(Fault(stall=30, stall_after=SIZE // 2), method="GET", times=1)
    fast = Settings.from_env(
        {}, endpoint=settings.endpoint, hub_cache=settings.hub_cache, download_timeout=0.3
    )
    async with HttpHubSource(fast, retry=FAST_RETRY, options=TransferOptions(small_file_limit=0)) as source:
        resolved = await source.resolve(AssetRef("org/model", "s.bin"))
    ok = hashlib.sha256(resolved.path.read_bytes()).digest() == hashlib.sha256(data).digest()
    ledger.record("stalled server (httpx)", trials=1, failures=0 if ok else 1)
    assert ok
    assert leftovers(settings.hub_cache) == []

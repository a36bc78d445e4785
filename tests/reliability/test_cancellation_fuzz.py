"""Cancellation fuzzing: waiters cancelled at seeded random moments never see a wrong file, nor leave one."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from modelfetch import (
    AssetRef,
    CachedSource,
    HttpHubSource,
    HubSource,
    ModelAssetSource,
    ProgressEvent,
    ProgressKind,
    RetryPolicy,
    Settings,
    TransferOptions,
)
from modelfetch.testing import FakeHub, Fault

from ._audit import bad_links
from .conftest import Ledger

TRIALS = 60  # per backend and source: 2 backends x 2 sources = 240 trials
FILES = 12
SIZE = 384 * 1024
TRIGGERS = ("at once", "after start", "after progress", "after a random delay", "never")


@dataclass
class Trial:
    """One trial: some waiters on one file, some of them cancelled when the trigger fires."""

    name: str
    waiters: int
    doomed: set[int]
    trigger: str
    delay: float
    started: anyio.Event = field(default_factory=anyio.Event)
    progressed: anyio.Event = field(default_factory=anyio.Event)
    results: list[Path] = field(default_factory=list)

    def on_progress(self, event: ProgressEvent) -> None:
        self.started.set()
        if event.kind is ProgressKind.ADVANCED:
            self.progressed.set()

    async def wait(self, source: ModelAssetSource, scope: anyio.CancelScope) -> None:
        try:
            with scope:
                resolved = await source.resolve(AssetRef("org/model", self.name), progress=self.on_progress)
                self.results.append(resolved.path)
        finally:  # a finished waiter releases the trigger: there is nothing left to interrupt
            self.started.set()
            self.progressed.set()

    async def fire(self) -> None:
        """Wait for the trigger's moment."""
        if self.trigger == "after start":
            with anyio.move_on_after(5):
                await self.started.wait()
        elif self.trigger == "after progress":
            with anyio.move_on_after(5):
                await self.progressed.wait()
        elif self.trigger == "after a random delay":
            await anyio.sleep(self.delay)

    async def run(self, source: ModelAssetSource) -> int:
        """Run the trial; return how many waiters the cancellation interrupted."""
        scopes = [anyio.CancelScope() for _ in range(self.waiters)]
        async with anyio.create_task_group() as tg:
            for scope in scopes:
                tg.start_soon(self.wait, source, scope)
            await self.fire()
            if self.trigger != "never":
                for i in self.doomed:
                    scopes[i].cancel()
        return sum(1 for scope in scopes if scope.cancelled_caught)


def _random_trial(rng: random.Random, names: list[str]) -> Trial:
    waiters = rng.randint(1, 4)
    doomed = set(rng.sample(range(waiters), rng.randint(0, waiters)))
    return Trial(rng.choice(names), waiters, doomed, rng.choice(TRIGGERS), rng.uniform(0, 0.03))


def _evict(cache: Path, name: str) -> None:
    """Remove every snapshot entry of `name` and the blobs they point to (partial downloads stay)."""
    for link in cache.glob(f"models--org--model/snapshots/*/{name}"):
        blob = link.resolve()
        link.unlink()
        blob.unlink(missing_ok=True)


def _inner(kind: str, settings: Settings) -> ModelAssetSource:
    if kind == "hub":
        return HubSource(settings)
    options = TransferOptions(
        small_file_limit=0, parallel_threshold=128 * 1024, chunk_size=96 * 1024, connections=4, engine=kind
    )
    return HttpHubSource(settings, retry=RetryPolicy(base=0.01, cap=0.05), options=options)


@pytest.fixture(params=["hub", "httpx", "native"])
def source_kind(request: pytest.FixtureRequest) -> str:
    """Which Hub source sits under the cache layer."""
    return str(request.param)


@pytest.fixture(params=[pytest.param(("asyncio", {}), id="asyncio"), pytest.param(("trio", {}), id="trio")])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Cancellation differs between loops: fuzz on both."""
    return request.param  # type: ignore[no-any-return]


@pytest.mark.slow
async def test_random_cancellations(
    fake_hub: FakeHub, settings: Settings, source_kind: str, ledger: Ledger, anyio_backend: tuple[str, object]
) -> None:
    """Seeded trials cancel 0-all of several waiters at random moments; afterwards the cache is sound."""
    rng = random.Random(f"cancel-{source_kind}-{anyio_backend[0]}")
    files = {f"m{i:02d}.safetensors": rng.randbytes(SIZE) for i in range(FILES)}
    digests = {n: hashlib.sha256(d).digest() for n, d in files.items()}
    fake_hub.add_files("org/model", files)
    fake_hub.inject(Fault(throttle=16 * 1024 * 1024), method="GET")
    wrong = interrupted = 0
    async with _inner(source_kind, settings) as inner:
        for _ in range(TRIALS):
            trial = _random_trial(rng, list(files))
            await anyio.to_thread.run_sync(
                _evict, settings.hub_cache, trial.name
            )  # a real transfer each time
            interrupted += await trial.run(CachedSource(inner))
            wrong += sum(
                1 for p in trial.results if hashlib.sha256(p.read_bytes()).digest() != digests[trial.name]
            )
        fresh = [await CachedSource(inner).resolve(AssetRef("org/model", n)) for n in files]
    wrong += sum(1 for r in fresh if hashlib.sha256(r.path.read_bytes()).digest() != digests[r.ref.filename])
    problems = bad_links(settings.hub_cache)
    ledger.record(
        "cancellation fuzzing (waiters cancelled at random moments)",
        trials=TRIALS,
        failures=wrong + len(problems),
    )
    assert wrong == 0
    assert problems == []
    assert interrupted >= TRIALS // 4  # the fuzzer really did interrupt waiters mid-flight

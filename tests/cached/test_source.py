"""CachedSource: single flight, memo, disk fast path, offline, negative cache, cancellation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

import modelfetch
from modelfetch import (
    AssetRef,
    CachedSource,
    FetchError,
    Origin,
    ProgressEvent,
    ProgressKind,
    RepoListing,
    RepoRef,
    ResolvedAsset,
    Settings,
)

COMMIT = "c" * 40


@dataclass
class FakeClock:
    """A monotonic clock the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class GateSource:
    """An inner source whose resolutions wait for `release`, counting calls and cancellations."""

    root: Path
    calls: int = 0
    cancelled: int = 0
    error: FetchError | None = None
    release: anyio.Event = field(default_factory=anyio.Event)
    started: anyio.Event = field(default_factory=anyio.Event)
    stopped: anyio.Event = field(default_factory=anyio.Event)

    @property
    def settings(self) -> Settings:
        return Settings.from_env({}, hub_cache=self.root)

    async def resolve(self, ref: AssetRef, *, progress: object = None) -> ResolvedAsset:
        self.calls += 1
        self.started.set()
        if callable(progress):
            progress(ProgressEvent(ProgressKind.STARTED, ref, 0, 1))
        try:
            await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            self.stopped.set()
            raise
        if self.error is not None:
            raise self.error
        path = self.root / ref.filename
        return ResolvedAsset(ref, path, COMMIT, 1, "e", Origin.NETWORK)

    async def list_files(self, repo: RepoRef) -> RepoListing:
        self.calls += 1
        return RepoListing(repo, COMMIT, ())

    async def aclose(self) -> None:
        pass


@pytest.fixture
def gate(tmp_path: Path) -> GateSource:
    """A GateSource over a folder holding one file, `a.bin`."""
    (tmp_path / "a.bin").write_bytes(b"A")
    return GateSource(tmp_path)


REF = AssetRef("org/model", "a.bin")


async def _gather(source: CachedSource, n: int, ref: AssetRef = REF) -> list[ResolvedAsset | BaseException]:
    results: list[ResolvedAsset | BaseException] = []

    async def one() -> None:
        try:
            results.append(await source.resolve(ref))
        except FetchError as exc:
            results.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return results


async def test_concurrent_awaits_share_one_resolution(gate: GateSource) -> None:
    """Ten tasks awaiting the same file cause one inner resolution."""
    source = CachedSource(gate)
    async with anyio.create_task_group() as tg:
        tg.start_soon(gate.release.wait)  # keeps the group open until released
        results: list[ResolvedAsset | BaseException] = []

        async def run() -> None:
            results.extend(await _gather(source, 10))

        tg.start_soon(run)
        await gate.started.wait()
        assert source.stats().in_flight == 1
        gate.release.set()
    assert gate.calls == 1
    assert {r.path for r in results if isinstance(r, ResolvedAsset)} == {gate.root / "a.bin"}
    assert source.stats().joined == 9


async def test_repeat_awaits_are_memory_hits(gate: GateSource) -> None:
    """After one resolution, awaits come from memory with no inner call."""
    gate.release.set()
    source = CachedSource(gate)
    first = await source.resolve(REF)
    again = [await source.resolve(REF) for _ in range(5)]
    assert first.origin is Origin.NETWORK
    assert {a.origin for a in again} == {Origin.MEMORY}
    assert gate.calls == 1
    assert source.stats().hits == 5


async def test_branch_refs_are_revalidated_after_the_ttl(gate: GateSource) -> None:
    """A branch ref is asked again after `ttl`; a commit-pinned ref never is."""
    gate.release.set()
    clock = FakeClock()
    source = CachedSource(gate, ttl=60, clock=clock)
    pinned = AssetRef("org/model", "a.bin", COMMIT)
    await source.resolve(REF)
    await source.resolve(pinned)
    clock.now += 61
    await source.resolve(REF)
    await source.resolve(pinned)
    assert gate.calls == 3


async def test_zero_ttl_always_revalidates(gate: GateSource) -> None:
    """With ttl=0 every await of a branch ref goes to the inner source."""
    gate.release.set()
    source = CachedSource(gate, ttl=0)
    for _ in range(3):
        await source.resolve(REF)
    assert gate.calls == 3


async def test_deleted_file_is_noticed_and_refetched(gate: GateSource) -> None:
    """A memoised file that vanished from disk is fetched again once the recheck is due."""
    gate.release.set()
    clock = FakeClock()
    source = CachedSource(gate, recheck=1, clock=clock)
    await source.resolve(REF)
    (gate.root / "a.bin").unlink()
    assert (await source.resolve(REF)).origin is Origin.MEMORY  # within the recheck window: no I/O
    clock.now += 1
    resolved = await source.resolve(REF)
    assert resolved.origin is Origin.NETWORK
    assert gate.calls == 2
    assert source.stats().stale == 1


async def test_cancelling_one_waiter_does_not_disturb_the_others(gate: GateSource) -> None:
    """Of five waiters, one cancelled: the other four get the file and the inner source is not cancelled."""
    source = CachedSource(gate)
    results: list[ResolvedAsset] = []
    victim = anyio.CancelScope()

    async def waiter(scope: anyio.CancelScope | None) -> None:
        if scope is None:
            results.append(await source.resolve(REF))
            return
        with scope:
            await source.resolve(REF)
            pytest.fail("the cancelled waiter should not get a result")

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, victim)
        for _ in range(4):
            tg.start_soon(waiter, None)
        await gate.started.wait()
        await anyio.wait_all_tasks_blocked()
        victim.cancel()
        await anyio.wait_all_tasks_blocked()
        gate.release.set()
    assert len(results) == 4
    assert gate.cancelled == 0
    assert gate.calls == 1


async def test_cancelling_every_waiter_stops_the_transfer(gate: GateSource) -> None:
    """When all waiters leave, the inner resolution is cancelled; the next await starts afresh."""
    source = CachedSource(gate)
    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(source.resolve, REF)
        await gate.started.wait()
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert source.stats().in_flight == 0
    with anyio.fail_after(5):
        await gate.stopped.wait()
    assert gate.cancelled == 1
    gate.release.set()
    assert (await source.resolve(REF)).path == gate.root / "a.bin"
    assert gate.calls == 2


async def test_timeouts_behave_like_cancellation(gate: GateSource) -> None:
    """fail_after on every waiter raises TimeoutError in each and stops the inner resolution."""
    source = CachedSource(gate)
    timeouts = 0

    async def waiter() -> None:
        nonlocal timeouts
        try:
            with anyio.fail_after(0.05):
                await source.resolve(REF)
        except TimeoutError:
            timeouts += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        tg.start_soon(waiter)
    assert timeouts == 2
    with anyio.fail_after(5):
        await gate.stopped.wait()
    assert gate.cancelled == 1


async def test_errors_reach_every_waiter_separately_and_are_not_cached(gate: GateSource) -> None:
    """A shared failure is raised in each waiter as its own exception object; the next await retries."""
    gate.error = modelfetch.SourceUnavailableError("hub down")
    source = CachedSource(gate)
    async with anyio.create_task_group() as tg:
        results: list[ResolvedAsset | BaseException] = []

        async def run() -> None:
            results.extend(await _gather(source, 3))

        tg.start_soon(run)
        await gate.started.wait()
        await anyio.wait_all_tasks_blocked()
        gate.release.set()
    assert all(isinstance(r, modelfetch.SourceUnavailableError) for r in results)
    assert len({id(r) for r in results}) == 3
    assert len({id(r.__traceback__) for r in results if isinstance(r, BaseException)}) == 3
    gate.error = None
    assert (await source.resolve(REF)).origin is Origin.NETWORK
    assert gate.calls == 2


async def test_missing_files_are_remembered(gate: GateSource) -> None:
    """A 'no such file' answer is remembered until negative_ttl passes."""
    gate.release.set()
    gate.error = modelfetch.AssetNotFoundError("no such file")
    clock = FakeClock()
    source = CachedSource(gate, negative_ttl=30, clock=clock)
    for _ in range(3):
        with pytest.raises(modelfetch.AssetNotFoundError):
            await source.resolve(REF)
    assert gate.calls == 1
    assert source.stats().negative_hits == 2
    clock.now += 30
    with pytest.raises(modelfetch.AssetNotFoundError):
        await source.resolve(REF)
    assert gate.calls == 2


async def test_progress_reaches_every_waiter_that_asked(gate: GateSource) -> None:
    """Each waiter's callback gets the shared transfer's events; one joining late gets STARTED first."""
    source = CachedSource(gate)
    seen: dict[str, list[ProgressEvent]] = {"a": [], "b": []}
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: source.resolve(REF, progress=seen["a"].append))
        await gate.started.wait()
        tg.start_soon(lambda: source.resolve(REF, progress=seen["b"].append))
        await anyio.wait_all_tasks_blocked()
        gate.release.set()
    assert [e.kind for e in seen["a"]] == [ProgressKind.STARTED]
    assert [e.kind for e in seen["b"]] == [ProgressKind.STARTED]  # joined after it was sent: replayed
    assert seen["b"][0].ref == REF


async def test_listings_are_shared_and_remembered(gate: GateSource) -> None:
    """A pinned listing is asked once; a branch listing again after the TTL."""
    clock = FakeClock()
    source = CachedSource(gate, ttl=10, clock=clock)
    pinned, branch = RepoRef("org/model", COMMIT), RepoRef("org/model")
    for _ in range(3):
        await source.list_files(pinned)
        await source.list_files(branch)
    assert gate.calls == 2
    clock.now += 10
    await source.list_files(pinned)
    await source.list_files(branch)
    assert gate.calls == 3


async def test_stats_and_repr(gate: GateSource) -> None:
    """stats() counts what happened; repr shows the inner source."""
    gate.release.set()
    source = CachedSource(gate)
    await source.resolve(REF)
    await source.resolve(REF)
    stats = source.stats()
    assert (stats.misses, stats.hits, stats.entries, stats.in_flight) == (1, 1, 1, 0)
    assert "GateSource" in repr(source)

"""fetch and snapshot: the async entry points, with the default source and with explicit ones."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from huggingface_hub import try_to_load_from_cache

import modelfetch
from modelfetch import (
    AssetRef,
    HubSource,
    ProgressCallback,
    RepoListing,
    RepoRef,
    ResolvedAsset,
    Settings,
    SnapshotError,
)
from modelfetch.testing import FakeHub, Fault, MemorySource


async def test_fetch_uses_the_environment_by_default(default_env: FakeHub, tmp_path: Path) -> None:
    """With no source, fetch reads HF_* and lands the file where huggingface_hub looks."""
    default_env.add_file("org/model", "config.json", b'{"x": 1}')
    path = await modelfetch.fetch("org/model", "config.json")
    assert path.is_relative_to(tmp_path / "hf-home" / "hub")
    assert path.read_bytes() == b'{"x": 1}'
    assert try_to_load_from_cache("org/model", "config.json") == str(path)


async def test_default_source_is_shared_on_one_loop(hub_env: FakeHub) -> None:
    """Every fetch on one event loop uses the same default source until it is closed."""
    from modelfetch._default import current_default_source

    first = await current_default_source()
    assert await current_default_source() is first
    await modelfetch.aclose()
    assert await current_default_source() is not first
    await modelfetch.aclose()


async def test_a_stale_default_source_is_replaced_and_closed(hub_env: FakeHub) -> None:
    """After `reset_default_sources` the next fetch builds a new source and closes the old one."""
    from modelfetch._default import current_default_source, reset_default_sources

    hub_env.add_file("org/model", "config.json", b"{}")
    await modelfetch.fetch("org/model", "config.json")
    first = await current_default_source()
    reset_default_sources()
    await modelfetch.fetch("org/model", "config.json")
    second = await current_default_source()
    assert second is not first
    assert isinstance(first, modelfetch.CachedSource)
    assert first.closed
    assert isinstance(second, modelfetch.CachedSource)
    assert not second.closed
    await modelfetch.aclose()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_default_source_nobody_closed_closes_with_its_loop(hub_env: FakeHub, backend: str) -> None:
    """A script that never calls modelfetch.aclose() leaks no connection: the loop's end closes it."""
    import anyio

    from modelfetch._default import current_default_source

    hub_env.add_file("org/model", "config.json", b"{}")

    async def main() -> modelfetch.ModelAssetSource:
        await modelfetch.fetch("org/model", "config.json")
        return await current_default_source()

    source = anyio.run(main, backend=backend)
    assert isinstance(source, modelfetch.CachedSource)
    assert source.closed


async def test_bad_input_fails_before_any_request(fake_hub: FakeHub, settings: Settings) -> None:
    """Invalid repo ids and filenames raise InvalidRequestError and send nothing."""
    async with HubSource(settings) as source:
        with pytest.raises(modelfetch.InvalidRequestError):
            await modelfetch.fetch("../etc", "passwd", source=source)
        with pytest.raises(modelfetch.InvalidRequestError):
            await modelfetch.fetch("org/model", "../../etc/passwd", source=source)
    assert fake_hub.requests == []


async def test_snapshot_filters_and_pins(fake_hub: FakeHub, settings: Settings) -> None:
    """snapshot fetches the matching files of one commit and records the branch ref."""
    commit = fake_hub.add_files(
        "org/model",
        {"config.json": b"{}", "model.safetensors": b"w" * 10, "onnx/model.onnx": b"o", "README.md": b"#"},
    )
    async with HubSource(settings) as source:
        folder = await modelfetch.snapshot("org/model", include=["*.json", "*.safetensors"], source=source)
    assert folder == settings.hub_cache / "models--org--model" / "snapshots" / commit
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert (settings.hub_cache / "models--org--model" / "refs" / "main").read_text() == commit


async def test_snapshot_names_every_failed_file(fake_hub: FakeHub, settings: Settings) -> None:
    """When files fail, one SnapshotError lists them; completed files stay valid."""
    fake_hub.add_files("org/model", {"a.json": b"{}", "b.json": b"[]"})
    fake_hub.inject(Fault(status=404), path="b.json")
    async with HubSource(settings) as source:
        with pytest.raises(SnapshotError) as info:
            await modelfetch.snapshot("org/model", source=source, max_workers=1)
    assert list(info.value.errors) == ["b.json"]
    assert "b.json" in str(info.value)


async def test_snapshot_with_no_match_is_an_error() -> None:
    """Patterns that match nothing raise AssetNotFoundError naming the patterns."""
    async with MemorySource({"org/model": {"a.txt": b"a"}}) as source:
        with pytest.raises(modelfetch.AssetNotFoundError, match=r"\*\.bin"):
            await modelfetch.snapshot("org/model", include="*.bin", source=source)


async def test_snapshot_stays_on_the_pinned_commit_when_main_moves(
    fake_hub: FakeHub, settings: Settings
) -> None:
    """Moving main during a snapshot does not mix commits: every file comes from the first one."""
    old = fake_hub.add_files("org/model", {"a.json": b"old-a", "b.json": b"old-b"})

    class MovesMainAfterTheFirstFile:
        def __init__(self, inner: HubSource) -> None:
            self.inner = inner

        async def list_files(self, repo: RepoRef) -> RepoListing:
            return await self.inner.list_files(repo)

        async def aclose(self) -> None:
            await self.inner.aclose()

        async def resolve(self, ref: AssetRef, *, progress: ProgressCallback | None = None) -> ResolvedAsset:
            got = await self.inner.resolve(ref, progress=progress)
            if ref.filename == "a.json":  # mid-snapshot: the second file is still to come
                await anyio.to_thread.run_sync(
                    lambda: fake_hub.add_files("org/model", {"a.json": b"new-a", "b.json": b"new-b"})
                )
            return got

    async with HubSource(settings) as hub:
        folder = await modelfetch.snapshot("org/model", source=MovesMainAfterTheFirstFile(hub), max_workers=1)
    assert folder.name == old
    assert (folder / "b.json").read_bytes() == b"old-b"
    assert fake_hub.count("GET", "b.json") == 1  # fetched after main moved, from the old commit


async def test_snapshot_progress_carries_totals(fake_hub: FakeHub, settings: Settings) -> None:
    """During a snapshot each event also reports bytes done and total across all its files."""
    files = {"a.bin": b"a" * 3000, "b.bin": b"b" * 5000, "c.json": b"{}"}
    fake_hub.add_files("org/model", files, lfs=False)
    events: list[modelfetch.ProgressEvent] = []
    async with HubSource(settings) as source:
        await modelfetch.snapshot("org/model", source=source, progress=events.append)
    assert events
    assert {e.snapshot_total for e in events} == {8002}
    finished = [e for e in events if e.kind is modelfetch.ProgressKind.FINISHED]
    assert {e.ref.filename for e in finished} == set(files)
    assert max(e.snapshot_done or 0 for e in events) == 8002


_FIRST_FETCH = """
import asyncio, importlib.abc, sys, threading

loop_thread = threading.get_ident()
importing_threads = []


class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "huggingface_hub":
            importing_threads.append(threading.get_ident())
        return None


sys.meta_path.insert(0, Watch())
import modelfetch


async def main():
    try:
        await modelfetch.fetch("org/model", "config.json")
    except modelfetch.OfflineError:
        pass
    await modelfetch.aclose()


asyncio.run(main())
print("loop" if loop_thread in importing_threads else "worker" if importing_threads else "never")
"""


def test_the_first_default_fetch_imports_the_hub_client_off_the_loop(tmp_path: Path) -> None:
    """Building the default stack imports huggingface_hub in a worker thread, not on the event loop."""
    import subprocess
    import sys

    env = {"HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_FETCH], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "worker", done.stderr


async def test_a_failed_snapshot_says_what_was_fetched_and_what_was_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One failure among five files, one at a time: the message counts fetched, stopped and bytes left."""
    from modelfetch._api import fetch_many

    monkeypatch.setattr("modelfetch._api.random.randrange", lambda n: 0)  # in listing order

    class Failing:
        async def resolve(
            self, ref: modelfetch.AssetRef, *, progress: object = None
        ) -> modelfetch.ResolvedAsset:
            if ref.filename == "b":
                raise modelfetch.StorageError("the disk is full")
            origin = modelfetch.Origin.MEMORY
            return modelfetch.ResolvedAsset(ref, Path("/nowhere") / ref.filename, "c" * 40, 1, "", origin)

    names = ["a", "b", "c", "d", "e"]
    sizes = dict.fromkeys(names, 10)
    with pytest.raises(modelfetch.SnapshotError) as caught:
        await fetch_many(Failing(), modelfetch.RepoRef("org/m", "c" * 40), names, max_workers=1, sizes=sizes)  # type: ignore[arg-type]
    assert "1 of 5 files failed (1 fetched, 3 stopped at the first failure; 40 bytes still to fetch)" in str(
        caught.value
    )


async def test_a_snapshot_starts_at_a_random_file_and_fetches_every_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nodes snapshotting one model at once begin on different files (so each claims different ones
    through a shared mirror): the order is the listing's, rotated to a random start."""
    from modelfetch._api import fetch_many

    asked: list[str] = []

    class Recording:
        async def resolve(
            self, ref: modelfetch.AssetRef, *, progress: object = None
        ) -> modelfetch.ResolvedAsset:
            asked.append(ref.filename)
            origin = modelfetch.Origin.MEMORY
            return modelfetch.ResolvedAsset(ref, Path("/nowhere") / ref.filename, "c" * 40, 1, "", origin)

    names = ["a", "b", "c", "d", "e"]
    starts = iter([3, 0])
    monkeypatch.setattr("modelfetch._api.random.randrange", lambda n: next(starts))
    pinned = modelfetch.RepoRef("org/m", "c" * 40)
    got = await fetch_many(Recording(), pinned, names, max_workers=1)  # type: ignore[arg-type]
    assert asked == ["d", "e", "a", "b", "c"]
    assert sorted(got) == names
    asked.clear()
    await fetch_many(Recording(), pinned, names, max_workers=1)  # type: ignore[arg-type]
    assert asked == names

"""Every source shipped passes the public conformance kit; ChainSource falls through only on misses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import obstore
import pytest
from huggingface_hub import snapshot_download

import modelfetch
import modelfetch.testing
from modelfetch import (
    AssetRef,
    CachedSource,
    ChainSource,
    HttpHubSource,
    HubSource,
    LocalDirSource,
    MirrorSource,
    ModelAssetSource,
    Settings,
    TransferOptions,
)
from modelfetch.testing import FakeHub, MemorySource, check_source

FILES = {"config.json": b'{"a": 1}', "sub/tokenizer.json": b"{}", "model.safetensors": b"w" * 70_000}

Factory = Callable[[FakeHub, Settings, Path], ModelAssetSource]


def _plain_folder(hub: FakeHub, settings: Settings, tmp: Path) -> ModelAssetSource:
    for name, data in FILES.items():
        (tmp / "share" / "org" / "model" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "share" / "org" / "model" / name).write_bytes(data)
    return LocalDirSource(tmp / "share")


def _hf_cache_folder(hub: FakeHub, settings: Settings, tmp: Path) -> ModelAssetSource:
    snapshot_download("org/model", endpoint=hub.endpoint, cache_dir=tmp / "nfs")
    return LocalDirSource(tmp / "nfs")


SOURCES: dict[str, Factory] = {
    "memory": lambda hub, settings, tmp: MemorySource({"org/model": FILES}),
    "hub": lambda hub, settings, tmp: HubSource(settings),
    "httpx": lambda hub, settings, tmp: HttpHubSource(settings),
    "native": lambda hub, settings, tmp: HttpHubSource(
        settings, options=TransferOptions(small_file_limit=0, engine="native")
    ),
    "cached-hub": lambda hub, settings, tmp: CachedSource(HubSource(settings)),
    "cached-httpx": lambda hub, settings, tmp: CachedSource(HttpHubSource(settings)),
    "localdir-plain": _plain_folder,
    "localdir-hf-cache": _hf_cache_folder,
    "chain": lambda hub, settings, tmp: ChainSource([LocalDirSource(tmp / "empty"), HubSource(settings)]),
    "mirror": lambda hub, settings, tmp: MirrorSource(
        bucket=obstore.store.MemoryStore(), upstream=HttpHubSource(settings), settings=settings
    ),
}


KIT_CASE_OF = {  # every public source, and the case above that runs the kit against it
    "MemorySource": "memory",
    "HubSource": "hub",
    "HttpHubSource": "native",
    "CachedSource": "cached-httpx",
    "LocalDirSource": "localdir-hf-cache",
    "ChainSource": "chain",
    "MirrorSource": "mirror",
}


def test_every_public_source_is_run_through_the_kit() -> None:
    """A source class exported by modelfetch or modelfetch.testing that the conformance kit does
    not exercise fails here (a name-only protocol check would pass a source that misbehaves)."""
    public = {
        name
        for module in (modelfetch, modelfetch.testing)
        for name in module.__all__
        if isinstance(value := getattr(module, name), type)
        and value is not modelfetch.ModelAssetSource
        and all(hasattr(value, member) for member in ("resolve", "list_files", "aclose"))
    }
    assert public == set(KIT_CASE_OF)
    assert set(KIT_CASE_OF.values()) <= set(SOURCES)


@pytest.fixture(params=list(SOURCES))
async def source(
    request: pytest.FixtureRequest, fake_hub: FakeHub, settings: Settings, tmp_path: Path
) -> AsyncIterator[ModelAssetSource]:
    """Each shipped source, serving FILES as org/model."""
    fake_hub.add_files("org/model", dict(FILES))
    made = SOURCES[request.param](fake_hub, settings, tmp_path)
    yield made
    await made.aclose()


async def test_conformance(source: ModelAssetSource) -> None:
    """The source keeps every promise of the protocol."""
    await check_source(source, "org/model", FILES)


async def test_the_kit_catches_a_broken_source(tmp_path: Path) -> None:
    """A source serving wrong bytes fails the kit (so the kit's checks can fail)."""
    async with MemorySource({"org/model": {**FILES, "config.json": b"tampered"}}) as bad:
        with pytest.raises(AssertionError, match=r"config\.json"):
            await check_source(bad, "org/model", FILES)


async def test_chain_prefers_the_local_copy(fake_hub: FakeHub, settings: Settings, tmp_path: Path) -> None:
    """A file in the local folder is served from there with no request to the Hub."""
    fake_hub.add_files("org/model", dict(FILES))
    local = _plain_folder(fake_hub, settings, tmp_path)
    async with ChainSource([local, HubSource(settings)]) as chain:
        resolved = await chain.resolve(AssetRef("org/model", "config.json"))
    assert resolved.path.is_relative_to(tmp_path / "share")
    assert fake_hub.requests == []


async def test_chain_stops_at_a_hard_error() -> None:
    """An IntegrityError from the first source is raised, not papered over by the next."""

    class Corrupt(MemorySource):
        async def resolve(self, ref: AssetRef, *, progress: object = None) -> modelfetch.ResolvedAsset:
            raise modelfetch.IntegrityError("bad bytes")

    async with ChainSource([Corrupt(), MemorySource({"org/model": FILES})]) as chain:
        with pytest.raises(modelfetch.IntegrityError):
            await chain.resolve(AssetRef("org/model", "config.json"))

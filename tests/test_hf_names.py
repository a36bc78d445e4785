"""Code written against huggingface_hub's names works with modelfetch's ([api] 1): errors, listings."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

import modelfetch
from modelfetch import AssetRef, HttpHubSource, HubSource, ModelAssetSource, Settings
from modelfetch._core.errors import HF_NAMES
from modelfetch.testing import FakeHub

SOURCES: dict[str, Callable[[Settings], ModelAssetSource]] = {"hub": HubSource, "http": HttpHubSource}


def test_every_hf_name_is_exported_as_the_class_that_means_the_same() -> None:
    """Each of huggingface_hub's names is a modelfetch class, in `__all__`, and a FetchError."""
    import huggingface_hub.errors as hf

    for name, ours in HF_NAMES.items():
        assert hasattr(hf, name)  # a name huggingface_hub really has
        assert getattr(modelfetch, name) is ours
        assert name in modelfetch.__all__
        assert issubclass(ours, modelfetch.FetchError)
    assert issubclass(modelfetch.GatedRepoError, modelfetch.AuthenticationError)
    assert hasattr(hf, "GatedRepoError")
    assert hasattr(hf, "RevisionNotFoundError")


@pytest.fixture(params=list(SOURCES))
def make_source(request: pytest.FixtureRequest) -> Callable[[Settings], ModelAssetSource]:
    """Both Hub sources."""
    return SOURCES[request.param]


async def test_hf_style_except_clauses_catch_each_failure(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """`except modelfetch.<hf name>` catches the failure huggingface_hub would have raised it for."""
    with FakeHub() as hub:
        hub.add_file("org/model", "config.json", b"{}")
        hub.create_repo("org/gated", gated=True)
        hub.add_file("org/gated", "config.json", b"{}")
        settings = Settings.from_env({}, endpoint=hub.endpoint, hub_cache=tmp_path / "cache")
        async with make_source(settings) as source:
            with pytest.raises(modelfetch.EntryNotFoundError):
                await source.resolve(AssetRef("org/model", "missing.json"))
            with pytest.raises(modelfetch.RepositoryNotFoundError):
                await source.resolve(AssetRef("org/nothing", "config.json"))
            with pytest.raises(modelfetch.GatedRepoError):
                await source.resolve(AssetRef("org/gated", "config.json"))
            with pytest.raises(modelfetch.RevisionNotFoundError):
                await source.resolve(AssetRef("org/model", "config.json", "no-such-branch"))
    offline = Settings.from_env({}, endpoint="http://127.0.0.1:9", hub_cache=tmp_path / "cache", offline=True)
    async with make_source(offline) as source:
        with pytest.raises(modelfetch.LocalEntryNotFoundError):
            await source.resolve(AssetRef("org/model", "never-fetched.json"))


async def test_a_listing_is_used_like_get_paths_info_s_list(
    fake_hub: FakeHub, settings: Settings, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """`get_paths_info` returns a RepoListing that iterates, indexes and counts like a list."""
    fake_hub.add_files("org/model", {"a.json": b"1", "b.json": b"22", "c.json": b"333"})
    async with make_source(settings) as source:
        listing = await modelfetch.get_paths_info("org/model", ["c.json", "a.json"], source=source)
    assert isinstance(listing, Sequence)
    assert len(listing) == 2
    assert [f.path for f in listing] == ["a.json", "c.json"]
    assert listing[0].path == "a.json"
    assert listing[-1].size == 3
    assert [f.path for f in listing[:1]] == ["a.json"]
    assert listing[0] in listing


def test_repo_file_is_listed_file_under_its_old_name_with_a_warning() -> None:
    """`modelfetch.RepoFile` (it shadowed huggingface_hub's) still works for one release."""
    with pytest.warns(DeprecationWarning, match="ListedFile"):
        old = modelfetch.RepoFile  # type: ignore[attr-defined]
    assert old is modelfetch.ListedFile
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert modelfetch.ListedFile("a", 1, "b" * 40).path == "a"

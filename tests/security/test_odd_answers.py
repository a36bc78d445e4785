"""Odd answers are typed errors, never a wrong file, a hang or a traceback ([security] 10)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import modelfetch
from modelfetch import (
    AssetRef,
    HttpHubSource,
    ModelAssetSource,
    RepoListing,
    RepoRef,
    Settings,
    TransferOptions,
)
from modelfetch._mirror.keys import decode_listing
from modelfetch._store.layout import SWEEP_MIN_SIZE, CacheLayout, remove_stale_partials

from .._units import MiB
from ._hub import COMMIT, MiniHub, is_head
from ._server import Answer, Hostile, Request
from .conftest import FAST, settings_for

BARE = [(403, modelfetch.AuthenticationError), (404, modelfetch.AssetNotFoundError)]


@pytest.mark.parametrize(("status", "error"), BARE)
async def test_a_bare_status_on_metadata_says_what_it_means(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource], status: int, error: type[Exception]
) -> None:
    """A 403/404 with no X-Error-Code is refused access / not found, not "could not be reached"."""
    with Hostile(lambda request: Answer(status, {}, b"no")) as server:
        async with make_source(settings_for(server.url, tmp_path)) as source:
            with pytest.raises(error) as caught:
                await source.resolve(AssetRef("org/model", "config.json"))
    assert "could not be reached" not in str(caught.value)
    if status == 404:  # no X-Error-Code: perhaps no Hub at all
        assert "HF_ENDPOINT" in str(caught.value)


@pytest.mark.parametrize("where", ["HEAD", "GET"])
async def test_a_redirect_without_location_is_not_a_file(tmp_path: Path, where: str) -> None:
    """A 302 with no Location, on the metadata or the download: SourceUnavailableError, nothing published."""

    def tweak(request: Request, answer: Answer) -> Answer:
        if request.method == where and "/resolve/" in request.path:
            return Answer(302, {"X-Repo-Commit": COMMIT}, b"<html>moved</html>")
        if is_head(request):
            answer.headers.pop("ETag", None)  # no etag: the content could not be checked
        return answer

    with Hostile(MiniHub({"config.json": b"{}"}, tweak=tweak)) as server:
        async with HttpHubSource(settings_for(server.url, tmp_path), retry=FAST) as source:
            with pytest.raises(modelfetch.SourceUnavailableError, match="302"):
                await source.resolve(AssetRef("org/model", "config.json"))
    assert not list((tmp_path / "cache").rglob("config.json"))


async def test_ranges_from_the_wrong_offset_are_never_published(tmp_path: Path) -> None:
    """206 answers whose Content-Range is not what was asked: refused before any hash is needed."""
    data = os.urandom(3 * MiB)

    def tweak(request: Request, answer: Answer) -> Answer:
        if "range" in request.headers and not is_head(request):
            first, last = (int(x) for x in request.headers["range"].removeprefix("bytes=").split("-"))
            if first == 0:  # the first range is right; the parallel ones that follow are not
                return Answer(206, {"Content-Range": f"bytes 0-{last}/{len(data)}"}, data[: last + 1])
            shifted = data[first + 1 : last + 2]
            return Answer(206, {"Content-Range": f"bytes {first + 1}-{last + 1}/{len(data)}"}, shifted)
        return answer

    options = TransferOptions(parallel_threshold=MiB, chunk_size=MiB, small_file_limit=0, connections=4)
    with Hostile(MiniHub({"w.bin": data}, tweak=tweak)) as server:
        async with HttpHubSource(settings_for(server.url, tmp_path), retry=FAST, options=options) as source:
            with pytest.raises(modelfetch.SourceUnavailableError, match="asked for bytes"):
                await source.resolve(AssetRef("org/model", "w.bin"))
    assert not list((tmp_path / "cache").glob("*/snapshots/*/w.bin"))


def test_orphaned_partials_are_removed_under_the_lock(tmp_path: Path) -> None:
    """huggingface_hub's `<etag>.<8 hex>.incomplete` orphans go; our resumable partial stays."""
    blob = tmp_path / ("a" * 64)
    orphans = [tmp_path / f"{blob.name}.0123abcd.incomplete", tmp_path / f"{blob.name}.incomplete"]
    ours = tmp_path / f"{blob.name}.modelfetch.incomplete"
    other = tmp_path / f"{'b' * 64}.0123abcd.incomplete"
    for path in [*orphans, ours, other]:
        path.write_bytes(b"x")
    assert remove_stale_partials(CacheLayout(tmp_path.parent), blob) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ours.name, other.name])


def test_a_bucket_listing_with_a_file_that_is_also_a_folder_is_a_miss() -> None:
    """A mirror listing.json naming both `a` and `a/b` decodes to None (a miss), not an error."""
    entry = {"size": 1, "etag": "a" * 40, "lfs": False}
    raw = json.dumps({"commit": COMMIT, "files": [{"path": "a", **entry}, {"path": "a/b", **entry}]}).encode()
    assert decode_listing(raw, RepoRef("org/model", COMMIT)) is None
    good = json.dumps({"commit": COMMIT, "files": [{"path": "a", **entry}]}).encode()
    assert isinstance(decode_listing(good, RepoRef("org/model", COMMIT)), RepoListing)


async def test_integrity_messages_say_fetching_once(tmp_path: Path) -> None:
    """An IntegrityError names the file once ("Fetching X: ..."), not "Fetching X: Fetching X: ..."."""
    data = os.urandom(2 * MiB)

    def tweak(request: Request, answer: Answer) -> Answer:
        if request.method == "GET" and "/resolve/" in request.path:
            answer.body = data + b"extra bytes the HEAD never announced"
            answer.headers["Content-Length"] = str(len(answer.body))
        return answer

    options = TransferOptions(small_file_limit=0)
    with Hostile(MiniHub({"w.bin": data}, lfs={"w.bin"}, tweak=tweak)) as server:
        async with HttpHubSource(settings_for(server.url, tmp_path), retry=FAST, options=options) as source:
            with pytest.raises(modelfetch.IntegrityError) as caught:
                await source.resolve(AssetRef("org/model", "w.bin"))
    assert str(caught.value).count("Fetching") == 1


async def test_hub_source_sweeps_orphans_of_killed_downloads(tmp_path: Path) -> None:
    """After a fresh HubSource download, huggingface_hub orphans beside that blob are gone."""
    from modelfetch import HubSource

    data = os.urandom(SWEEP_MIN_SIZE)  # smaller blobs are not swept: a sweep lists the folder
    hub = MiniHub({"w.bin": data}, lfs={"w.bin"})
    blobs = tmp_path / "cache" / "models--org--model" / "blobs"
    blobs.mkdir(parents=True)
    orphan = blobs / f"{hub.etag('w.bin')}.deadbeef.incomplete"
    orphan.write_bytes(b"half")
    with Hostile(hub) as server:
        async with HubSource(settings_for(server.url, tmp_path), retry=FAST) as source:
            got = await source.resolve(AssetRef("org/model", "w.bin"))
    assert got.path.read_bytes() == data
    assert not orphan.exists()

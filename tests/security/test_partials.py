"""Partials: never stitched from two versions, never left behind by the finisher ([security] 11, 12)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import modelfetch
from modelfetch import AssetRef, HttpHubSource, HubSource, ModelAssetSource, Settings, TransferOptions
from modelfetch.testing import FakeHub

from .._units import MiB
from ._hub import COMMIT
from ._server import Answer, Hostile, Request
from .conftest import FAST, settings_for

VERSION_A = os.urandom(3 * MiB)
VERSION_B = os.urandom(3 * MiB)


class _SwitchingServer:
    """`w.bin` with an ETag that is no hash; the first GET sends 1 MiB of A and drops, later ones B."""

    def __init__(self) -> None:
        self.gets: list[str] = []

    def __call__(self, request: Request) -> Answer:
        headers = {"X-Repo-Commit": COMMIT, "ETag": '"v1"', "Content-Length": str(3 * MiB)}
        if request.method == "HEAD":
            return Answer(200, headers)
        self.gets.append(request.headers.get("range", ""))
        if len(self.gets) == 1:
            return Answer(200, headers, chunks=iter([VERSION_A[:MiB]]))  # then the connection drops
        ranged = request.headers.get("range", "")
        if ranged.startswith("bytes="):
            first = int(ranged[6:].split("-")[0])
            headers |= {
                "Content-Length": str(3 * MiB - first),
                "Content-Range": f"bytes {first}-{3 * MiB - 1}/{3 * MiB}",
            }
            return Answer(206, headers, VERSION_B[first:])
        return Answer(200, headers, VERSION_B)


@pytest.mark.parametrize("engine", ["httpx", "native"])
async def test_a_resume_without_a_verifiable_etag_is_never_stitched(tmp_path: Path, engine: str) -> None:
    """The server switches content between attempts: the blob is all of B, never A's start + B's rest."""
    script = _SwitchingServer()
    options = TransferOptions(small_file_limit=0, engine=engine)  # type: ignore[arg-type]
    with Hostile(script) as server:
        async with HttpHubSource(settings_for(server.url, tmp_path), retry=FAST, options=options) as source:
            got = await source.resolve(AssetRef("org/model", "w.bin", COMMIT))
    assert got.path.read_bytes() == VERSION_B
    assert script.gets == ["", ""]  # the retry started over: no Range, nothing stitched


@pytest.mark.parametrize("kind", ["small", "hub"])
async def test_the_finisher_removes_a_killed_downloads_partial(
    fake_hub: FakeHub, tmp_path: Path, kind: str
) -> None:
    """A killed process left <etag>.modelfetch.incomplete and its watermark: the publisher removes both."""
    data = os.urandom(64 * 1024)
    commit = fake_hub.add_files("org/model", {"w.bin": data}, lfs=True)
    settings = Settings.from_env({}, endpoint=fake_hub.endpoint, hub_cache=tmp_path / "cache")
    etag = hashlib.sha256(data).hexdigest()
    blobs = tmp_path / "cache" / "models--org--model" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{etag}.modelfetch.incomplete").write_bytes(data[:1000])
    (blobs / f"{etag}.modelfetch.incomplete.progress").write_bytes(b"00000000000000001000\n")
    source: ModelAssetSource = HttpHubSource(settings, retry=FAST) if kind == "small" else HubSource(settings)
    async with source:
        got = await source.resolve(AssetRef("org/model", "w.bin", commit))
    assert got.path.read_bytes() == data
    assert sorted(p.name for p in blobs.iterdir()) == [etag]


async def test_the_free_space_check_leaves_no_empty_partial(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file larger than the free space: StorageError before any byte, and no 0-byte partial left."""
    from collections import namedtuple

    from modelfetch._store import layout

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(layout.shutil, "disk_usage", lambda path: usage(1 << 30, 1 << 30, 1024))
    commit = fake_hub.add_files("org/model", {"w.bin": os.urandom(3 * MiB)}, lfs=True)
    settings = Settings.from_env({}, endpoint=fake_hub.endpoint, hub_cache=tmp_path / "cache")
    options = TransferOptions(small_file_limit=0)
    async with HttpHubSource(settings, retry=FAST, options=options) as source:
        with pytest.raises(modelfetch.StorageError, match="more bytes are needed"):
            await source.resolve(AssetRef("org/model", "w.bin", commit))
    assert not [p.name for p in (tmp_path / "cache").rglob("*.incomplete*")]

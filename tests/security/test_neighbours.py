"""Another local user of a shared cache cannot make us write through a planted symlink ([security] 8)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import modelfetch
from modelfetch import AssetRef, HttpHubSource, TransferOptions

from .._units import MiB
from ._hub import MiniHub
from ._server import Hostile
from .conftest import FAST, settings_for

DATA = os.urandom(3 * MiB)
VICTIM = b"do not overwrite me"


@pytest.mark.parametrize(
    "suffix",
    [".modelfetch.incomplete", ".modelfetch.incomplete.progress", ".modelfetch.incomplete.progress.tmp"],
)
async def test_planted_symlinks_at_our_temporary_names_are_not_followed(tmp_path: Path, suffix: str) -> None:
    """Links planted at the partial file, its watermark or its old temp name: the victim stays intact."""
    hub = MiniHub({"w.bin": DATA}, lfs={"w.bin"})
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    blobs = tmp_path / "cache" / "models--org--model" / "blobs"
    blobs.mkdir(parents=True)
    os.symlink(victim, blobs / (hub.etag("w.bin") + suffix))
    with Hostile(hub) as server:
        options = TransferOptions(small_file_limit=0)  # the streamed path, with watermarks
        async with HttpHubSource(settings_for(server.url, tmp_path), retry=FAST, options=options) as source:
            try:
                got = await source.resolve(AssetRef("org/model", "w.bin"))
            except modelfetch.StorageError:
                got = None
    assert victim.read_bytes() == VICTIM
    if got is not None:
        assert got.path.read_bytes() == DATA


async def test_files_we_create_honour_the_umask(tmp_path: Path) -> None:
    """With umask 027 the blob, ref and watermark files are not world-readable."""
    hub = MiniHub({"w.bin": DATA}, lfs={"w.bin"})
    old = os.umask(0o027)
    try:
        with Hostile(hub) as server:
            options = TransferOptions(small_file_limit=0)
            async with HttpHubSource(
                settings_for(server.url, tmp_path), retry=FAST, options=options
            ) as source:
                got = await source.resolve(AssetRef("org/model", "w.bin"))
    finally:
        os.umask(old)
    storage = tmp_path / "cache" / "models--org--model"
    for path in (storage / "blobs" / got.etag, storage / "refs" / "main"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0, path

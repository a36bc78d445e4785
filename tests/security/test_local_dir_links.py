"""Links planted inside a `local_dir` are never written through ([security] 5)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import modelfetch
from modelfetch import HttpHubSource, Settings
from modelfetch.testing import FakeHub

from .conftest import FAST


def _settings(hub: FakeHub, tmp_path: Path) -> Settings:
    return Settings.from_env({}, endpoint=hub.endpoint, hub_cache=tmp_path / "cache")


async def test_a_linked_subfolder_of_local_dir_is_not_written_through(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    """local_dir/sub planted as a link to another folder: that folder's x.json is not replaced."""
    fake_hub.add_files("org/model", {"sub/x.json": b'{"from": "the repo"}'})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.json").write_bytes(b"the user's own x.json")
    local = tmp_path / "local"
    local.mkdir()
    os.symlink(elsewhere, local / "sub")
    async with HttpHubSource(_settings(fake_hub, tmp_path), retry=FAST) as source:
        with pytest.raises(modelfetch.StorageError, match="link"):
            await modelfetch.fetch("org/model", "sub/x.json", source=source, local_dir=local)
    assert (elsewhere / "x.json").read_bytes() == b"the user's own x.json"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["x.json"]


async def test_a_dangling_metadata_link_does_not_create_its_target(fake_hub: FakeHub, tmp_path: Path) -> None:
    """A dangling link at .cache/huggingface/download/<f>.metadata: its target is never created."""
    fake_hub.add_files("org/model", {"config.json": b"{}"})
    local = tmp_path / "local"
    download = local / ".cache" / "huggingface" / "download"
    download.mkdir(parents=True)
    target = tmp_path / "ssh" / "authorized_keys"
    target.parent.mkdir()
    os.symlink(target, download / "config.json.metadata")
    async with HttpHubSource(_settings(fake_hub, tmp_path), retry=FAST) as source:
        got = await modelfetch.fetch("org/model", "config.json", source=source, local_dir=local)
    assert got == local / "config.json"
    assert got.read_bytes() == b"{}"
    assert not target.exists()
    assert not (download / "config.json.metadata").is_symlink()  # replaced by our own file


async def test_the_local_dir_itself_may_be_a_link(fake_hub: FakeHub, tmp_path: Path) -> None:
    """The caller named the folder: a local_dir that is itself a link works, and huggingface_hub agrees."""
    from huggingface_hub._local_folder import read_download_metadata

    commit = fake_hub.add_files("org/model", {"a/config.json": b"{}"})
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "named")
    async with HttpHubSource(_settings(fake_hub, tmp_path), retry=FAST) as source:
        got = await modelfetch.fetch(
            "org/model", "a/config.json", source=source, local_dir=tmp_path / "named"
        )
    assert (real / "a" / "config.json").read_bytes() == b"{}"
    assert got == tmp_path / "named" / "a" / "config.json"
    meta = read_download_metadata(real, "a/config.json")
    assert meta is not None
    assert meta.commit_hash == commit


@pytest.mark.parametrize("size", [100, 2 * 1024 * 1024], ids=["copied", "hard-linked"])
def test_local_dir_takes_the_blob_not_whatever_the_snapshot_entry_points_to_now(
    tmp_path: Path, size: int
) -> None:
    """The entry swapped for a link to a private file after the fetch: local_dir still gets the blob."""
    import hashlib

    from modelfetch._localdir_out import place

    data = os.urandom(size)
    etag, commit = hashlib.sha256(data).hexdigest(), "c" * 40
    storage = tmp_path / "cache" / "models--org--model"
    (storage / "blobs").mkdir(parents=True)
    (storage / "blobs" / etag).write_bytes(data)
    entry = storage / "snapshots" / commit / "w.bin"
    entry.parent.mkdir(parents=True)
    secret = tmp_path / "id_ed25519"
    secret.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    os.symlink(secret, entry)  # what a neighbour swapped in after the fetch returned
    got = place(tmp_path / "local", "w.bin", entry, commit, etag)
    assert got.read_bytes() == data
    assert got.stat().st_ino != secret.stat().st_ino

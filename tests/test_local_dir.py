"""`local_dir=`: copies in a folder, laid out and recorded as huggingface_hub's local_dir does."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from huggingface_hub import hf_hub_download

import modelfetch
from modelfetch._cli.main import main
from modelfetch.testing import FakeHub


async def test_fetch_copies_into_local_dir_and_huggingface_hub_recognises_it(
    hub_env: FakeHub, tmp_path: Path
) -> None:
    """The copy is at local_dir/<path>; hf_hub_download(local_dir=) then sends no GET."""
    commit = hub_env.add_files("org/model", {"sub/config.json": b'{"a": 1}'})
    target = tmp_path / "out"
    path = await modelfetch.fetch("org/model", "sub/config.json", local_dir=target, revision=commit)
    assert path == target / "sub" / "config.json"
    assert path.read_bytes() == b'{"a": 1}'
    assert not path.is_symlink()
    hub_env.clear_requests()
    theirs = hf_hub_download("org/model", "sub/config.json", revision=commit, local_dir=target)
    assert Path(theirs) == path
    assert hub_env.count("GET") == 0  # their metadata check found our copy up to date
    await modelfetch.aclose()


def test_a_copy_made_by_huggingface_hub_is_reused(hub_env: FakeHub, tmp_path: Path) -> None:
    """hf_hub_download(local_dir=) first: our fetch leaves its file as it is (same inode, same mtime)."""
    hub_env.add_file("org/model", "config.json", b"{}")
    target = tmp_path / "out"
    theirs = Path(hf_hub_download("org/model", "config.json", local_dir=target))
    before = theirs.stat()
    ours = modelfetch.fetch_sync("org/model", "config.json", local_dir=target)
    assert ours == theirs
    after = ours.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


async def test_a_changed_file_is_replaced_whole(hub_env: FakeHub, tmp_path: Path) -> None:
    """A new commit: the copy is replaced by rename (a reader holding the old one keeps it)."""
    hub_env.add_file("org/model", "w.bin", b"old")
    target = tmp_path / "out"
    first = await modelfetch.fetch("org/model", "w.bin", local_dir=target)
    with first.open("rb") as reader:
        hub_env.add_file("org/model", "w.bin", b"new!")
        await modelfetch.aclose()  # forget the memo: main moved
        second = await modelfetch.fetch("org/model", "w.bin", local_dir=target)
        assert reader.read() == b"old"
    assert second.read_bytes() == b"new!"
    assert not [p for p in target.iterdir() if p.name.endswith(".incomplete")]
    await modelfetch.aclose()


def test_snapshot_and_the_cli_fill_local_dir(
    hub_env: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """snapshot_sync(local_dir=) returns the folder with every file; the CLI prints it."""
    hub_env.add_files("org/model", {"a.json": b"A", "w/b.bin": b"B"})
    folder = modelfetch.snapshot_sync("org/model", local_dir=tmp_path / "snap")
    assert folder == tmp_path / "snap"
    assert (folder / "a.json").read_bytes() == b"A"
    assert (folder / "w" / "b.bin").read_bytes() == b"B"
    assert main(["get", "org/model", "a.json", "--quiet", "--local-dir", str(tmp_path / "cli")]) == 0
    assert Path(capsys.readouterr().out.strip()) == tmp_path / "cli" / "a.json"


async def test_local_dir_errors_are_typed(hub_env: FakeHub, tmp_path: Path) -> None:
    """A bad argument is an InvalidRequestError; a folder that cannot be made is a StorageError."""
    hub_env.add_file("org/model", "config.json", b"{}")
    with pytest.raises(modelfetch.InvalidRequestError):
        await modelfetch.fetch("org/model", "config.json", local_dir=b"bytes")  # type: ignore[arg-type]
    not_a_folder = tmp_path / "a-file"
    await anyio.Path(not_a_folder).write_bytes(b"")
    try:
        with pytest.raises(modelfetch.StorageError, match="a-file"):
            await modelfetch.fetch("org/model", "config.json", local_dir=not_a_folder / "out")
    finally:
        await modelfetch.aclose()


async def test_weights_in_local_dir_share_the_cache_blob_configs_are_copies(
    hub_env: FakeHub, tmp_path: Path
) -> None:
    """One copy on disk: a 2 MiB file is a hard link to its blob; a small config is a copy of its own."""
    weights, config = os.urandom(2 * 1024 * 1024), b'{"a": 1}'
    hub_env.add_files("org/model", {"w.safetensors": weights, "config.json": config})
    local = tmp_path / "local"
    folder = await modelfetch.snapshot("org/model", local_dir=local)
    cache = Path(modelfetch.Settings.from_env().hub_cache)
    (blob,) = [
        p for p in (cache / "models--org--model" / "blobs").iterdir() if p.stat().st_size == len(weights)
    ]
    linked = (folder / "w.safetensors").stat()
    assert (linked.st_ino, linked.st_nlink) == (blob.stat().st_ino, 2)
    assert (folder / "w.safetensors").read_bytes() == weights
    assert (folder / "config.json").stat().st_nlink == 1
    assert (folder / "config.json").read_bytes() == config

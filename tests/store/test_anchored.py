"""anchored: folders below a root opened without following links, and what each operation refuses."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from modelfetch import StorageError
from modelfetch._store.anchored import HAS_DIR_FD, open_folder, open_regular, parent_folder, walk_files


def test_the_race_free_walk_is_what_runs_here() -> None:
    """On Linux the descriptor walk is used, never the lstat fallback that can race."""
    assert HAS_DIR_FD or sys.platform == "win32"


def test_a_linked_folder_below_the_root_is_refused_but_the_root_may_be_a_link(tmp_path: Path) -> None:
    """root/a linked elsewhere: StorageError naming it; a root that is itself a link works."""
    real, elsewhere = tmp_path / "real", tmp_path / "elsewhere"
    real.mkdir()
    elsewhere.mkdir()
    os.symlink(real, tmp_path / "root")
    os.symlink(elsewhere, real / "a")
    with (
        pytest.raises(StorageError, match="symbolic link"),
        open_folder(tmp_path / "root", ("a", "b"), create=True),
    ):
        pass
    assert list(elsewhere.iterdir()) == []
    with open_folder(tmp_path / "root", ("c", "d"), create=True) as folder:
        folder.symlink("target", "link")
    assert os.readlink(real / "c" / "d" / "link") == "target"


def test_only_regular_files_are_opened_for_reading(tmp_path: Path) -> None:
    """A FIFO, a link and a folder are None (no hang); a regular file gives a descriptor."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "file").write_bytes(b"data")
    os.symlink(tmp_path / "file", tmp_path / "link")
    (tmp_path / "dir").mkdir()
    for name in ("fifo", "link", "dir", "missing"):
        assert open_regular(tmp_path, tmp_path / name) is None, name
    fd = open_regular(tmp_path, tmp_path / "file")
    assert fd is not None
    with open(fd, "rb") as f:
        assert f.read() == b"data"


def test_rmtree_and_unlink_never_touch_what_a_link_points_to(tmp_path: Path) -> None:
    """Removing a folder holding a link to a file and to a folder outside leaves both targets."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"keep")
    doomed = tmp_path / "root" / "doomed"
    doomed.mkdir(parents=True)
    os.symlink(outside / "keep", doomed / "file-link")
    os.symlink(outside, doomed / "dir-link")
    with parent_folder(tmp_path / "root", doomed, create=False) as (folder, name):
        folder.rmtree(name)
    assert not doomed.exists()
    assert (outside / "keep").read_bytes() == b"keep"


def test_walk_files_does_not_enter_linked_folders(tmp_path: Path) -> None:
    """Files below a linked folder are not listed; the link itself is listed as a non-folder or not at all."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    (top / "sub" / "a").write_bytes(b"a")
    os.symlink(outside, top / "linked")
    with open_folder(tmp_path, ("top",), create=False) as folder:
        names = [rel for rel, _, _ in walk_files(folder)]
    assert "sub/a" in names
    assert not any(name.startswith("linked/") for name in names)

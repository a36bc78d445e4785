"""`mock_repo`: a whole repo on a respx router answers as FakeHub does, large files and ranges included."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import respx

from modelfetch import AssetRef, HttpHubSource, RepoRef, Settings
from modelfetch.testing import mock_repo

ENDPOINT = "https://hub.example"
BIG = os.urandom(6 * 1024 * 1024)  # above the small-file limit: streamed, through httpx under respx


async def test_a_large_lfs_file_and_a_dataset_come_through_the_default_engine(tmp_path: Path) -> None:
    """A 6 MiB LFS file is streamed and verified against its sha256; a dataset repo lists its files."""
    settings = Settings.from_env({}, endpoint=ENDPOINT, hub_cache=tmp_path / "cache")
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        commit = mock_repo(router, "org/model", {"w.bin": BIG}, endpoint=ENDPOINT, lfs=True)
        mock_repo(router, "org/data", {"a/b.csv": b"x,y\n"}, endpoint=ENDPOINT, repo_type="dataset")
        async with HttpHubSource(settings) as source:
            got = await source.resolve(AssetRef("org/model", "w.bin"))
            listing = await source.list_files(RepoRef("org/data", repo_type="dataset"))
    assert got.path.read_bytes() == BIG
    assert (got.commit, len(got.etag)) == (commit, 64)
    assert [f.path for f in listing.files] == ["a/b.csv"]


def test_ranges_are_honoured_and_the_commit_is_pinned_too() -> None:
    """A Range gets a 206 with its bytes; the commit URL answers as the branch URL does."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        commit = mock_repo(router, "org/model", {"w.bin": BIG}, endpoint=ENDPOINT, commit="c" * 40)
        part = httpx.get(f"{ENDPOINT}/org/model/resolve/{commit}/w.bin", headers={"Range": "bytes=10-19"})
        head = httpx.head(f"{ENDPOINT}/org/model/resolve/main/w.bin")
    assert commit == "c" * 40
    assert (part.status_code, part.content) == (206, BIG[10:20])
    assert part.headers["content-range"] == f"bytes 10-19/{len(BIG)}"
    assert head.headers["x-repo-commit"] == commit
    assert int(head.headers["content-length"]) == len(BIG)

"""`LocalDirSource`: a read-only folder of repos (say, an NFS share), served in place."""

from __future__ import annotations

import os
from pathlib import Path

import anyio.to_thread
from anyio.abc import AsyncResource

from .._core.errors import AssetNotFoundError, RepoNotFoundError, RevisionNotFoundError
from .._core.progress import ProgressCallback
from .._core.types import AssetRef, ListedFile, Origin, RepoListing, RepoRef, ResolvedAsset
from .._core.validate import check_path
from .._store.layout import CacheLayout, find_cached, list_cached

LOCAL_COMMIT = "0" * 40
"""The commit reported for plain folders, which have none."""


class LocalDirSource(AsyncResource):
    """Serve files from a local folder without copying them.

    The folder may hold repos in either layout:

    - a Hugging Face cache (`models--org--name/snapshots/<commit>/...` with `refs/`): refs
      and commits resolve as in the cache;
    - plain folders, `<root>/<org>/<name>/<path>` (and `datasets/<org>/<name>/...`,
      `spaces/...`): any revision resolves to the folder's current content, reported with
      the all-zero commit.

    A miss raises `RepoNotFoundError`/`AssetNotFoundError`, so `ChainSource` falls through
    to the next source. Paths returned point into the folder itself.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = check_path("root", root)
        self._layout = CacheLayout(self.root)

    def __repr__(self) -> str:
        return f"LocalDirSource({str(self.root)!r})"

    def _plain(self, repo: RepoRef | AssetRef) -> Path:
        prefix = {"model": "", "dataset": "datasets", "space": "spaces"}[repo.repo_type]
        return self.root.joinpath(prefix, *repo.repo_id.split("/"))

    async def resolve(self, ref: AssetRef, *, progress: ProgressCallback | None = None) -> ResolvedAsset:
        """Find `ref` in the folder; see `ModelAssetSource`."""
        found: ResolvedAsset | None = await anyio.to_thread.run_sync(self._find, ref)
        if found is None:
            raise AssetNotFoundError(f"Fetching {ref}: not in the local folder {self.root}.")
        return found

    def _find(self, ref: AssetRef) -> ResolvedAsset | None:
        cached = find_cached(self._layout, ref)
        if cached is not None:
            return ResolvedAsset(ref, cached.path, cached.commit, cached.size, cached.etag, Origin.DISK)
        path = self._plain(ref).joinpath(*ref.filename.split("/"))
        if path.is_file():
            return ResolvedAsset(ref, path, LOCAL_COMMIT, path.stat().st_size, "", Origin.DISK)
        return None

    async def list_files(self, repo: RepoRef) -> RepoListing:
        """The repo's files in the folder (cache layout first, then plain)."""
        listing: RepoListing | None
        listing, repo_known = await anyio.to_thread.run_sync(self._list, repo)
        if listing is None:
            if repo_known:
                raise RevisionNotFoundError(f"Listing {repo}: that revision is not in {self.root}.")
            raise RepoNotFoundError(f"Listing {repo}: not in the local folder {self.root}.")
        return listing

    def _list(self, repo: RepoRef) -> tuple[RepoListing | None, bool]:
        """The listing, or None and whether the repo itself is there (so the revision is the miss)."""
        cached = list_cached(self._layout, repo)
        if cached is not None:
            return cached, True
        folder = self._plain(repo)
        if not folder.is_dir():
            return None, (self._layout.storage(repo) / "refs").is_dir()
        files = tuple(
            ListedFile(p.relative_to(folder).as_posix(), p.stat().st_size, "")
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        )
        return RepoListing(repo, LOCAL_COMMIT, files), True

    async def aclose(self) -> None:
        """Nothing to release."""

"""`MemorySource`: a `ModelAssetSource` over in-memory files, for unit tests with no server."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread
from anyio.abc import AsyncResource

from .._core.errors import AssetNotFoundError, RepoNotFoundError, RevisionNotFoundError
from .._core.progress import ProgressCallback, ProgressEvent, ProgressKind, emit
from .._core.settings import Settings
from .._core.types import AssetRef, ListedFile, Origin, RepoListing, RepoRef, ResolvedAsset
from .._core.validate import check_filename, check_repo_id, check_repo_type
from .._hubapi.spec import git_blob_id
from .._store.blobstore import BlobStore
from .._store.layout import (
    find_cached,
)


@dataclass(slots=True)
class _MemoryRepo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None


class MemorySource(AsyncResource):
    """Serve files from memory, written into a Hugging Face cache layout on first resolve.

    Use it as `source=` in unit tests of an async model loader: no server, no network,
    real paths. `resolved` lists every ref resolved, for assertions.

    Args:
        files: `{repo_id: {path_in_repo: bytes}}`, committed to `main` of model repos.
        cache_dir: where to write; a temporary folder removed by `aclose()` when omitted.

    Example:
        ```python
        async with MemorySource({"org/model": {"config.json": b"{}"}}) as source:
            path = await modelfetch.fetch("org/model", "config.json", source=source)
        ```
    """

    def __init__(
        self,
        files: Mapping[str, Mapping[str, bytes]] | None = None,
        *,
        cache_dir: str | Path | None = None,
    ) -> None:
        self._own_cache = cache_dir is None
        self.cache_dir = (
            Path(tempfile.mkdtemp(prefix="memorysource-")) if cache_dir is None else Path(cache_dir)
        )
        self._store = BlobStore(self.cache_dir, lock_timeout=60.0)
        self._layout = self._store.layout
        self._repos: dict[tuple[str, str], _MemoryRepo] = {}
        self.resolved: list[AssetRef] = []
        for repo_id, contents in (files or {}).items():
            self.add_files(repo_id, dict(contents))

    def __repr__(self) -> str:
        return f"MemorySource(repos={len(self._repos)}, cache_dir={str(self.cache_dir)!r})"

    @property
    def settings(self) -> Settings:
        """Settings naming this source's cache folder (so `CachedSource` finds its files)."""
        return Settings.from_env({}, hub_cache=self.cache_dir, offline=False)

    def add_files(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        *,
        repo_type: str = "model",
        branch: str = "main",
    ) -> str:
        """Commit `files` on top of `branch` (created if missing); return the commit id."""
        check_repo_id(repo_id)
        kind = check_repo_type(repo_type)
        repo = self._repos.setdefault((kind, repo_id), _MemoryRepo())
        parent = repo.branches.get(branch)
        tree = dict(repo.commits[parent]) if parent else {}
        for path, data in files.items():
            tree[check_filename(path)] = bytes(data)
        seed = f"{kind}/{repo_id}\n{parent}\n" + "\n".join(
            f"{p} {git_blob_id(d)}" for p, d in sorted(tree.items())
        )
        commit = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
        repo.commits[commit] = tree
        repo.branches[branch] = commit
        return commit

    def _lookup(self, repo: RepoRef | AssetRef) -> tuple[str, dict[str, bytes]]:
        found = self._repos.get((repo.repo_type, repo.repo_id))
        if found is None:
            raise RepoNotFoundError(
                f"MemorySource has no {repo.repo_type} repo {repo.repo_id!r}; add it first."
            )
        commit = found.resolve(repo.revision)
        if commit is None:
            raise RevisionNotFoundError(f"MemorySource: {repo.repo_id} has no revision {repo.revision!r}.")
        return commit, found.commits[commit]

    async def resolve(self, ref: AssetRef, *, progress: ProgressCallback | None = None) -> ResolvedAsset:
        """Write `ref`'s bytes into the cache (once) and describe them."""
        self.resolved.append(ref)
        commit, tree = self._lookup(ref)
        if ref.filename not in tree:
            raise AssetNotFoundError(f"MemorySource: {ref} does not exist; check the filename.")
        data = tree[ref.filename]
        cached = await anyio.to_thread.run_sync(find_cached, self._layout, ref, commit)
        if cached is None:
            emit(progress, ProgressEvent(ProgressKind.STARTED, ref, 0, len(data)))
            await anyio.to_thread.run_sync(self._write, ref, commit, data)
            emit(progress, ProgressEvent(ProgressKind.FINISHED, ref, len(data), len(data)))
        else:
            await anyio.to_thread.run_sync(self._store.record_ref, ref, ref.revision, commit)
        origin = Origin.NETWORK if cached is None else Origin.DISK
        return ResolvedAsset(
            ref, self._layout.snapshot(ref, commit), commit, len(data), git_blob_id(data), origin
        )

    def _write(self, ref: AssetRef, commit: str, data: bytes) -> None:
        self._store.store_small(ref, commit, git_blob_id(data), data)
        self._store.record_ref(ref, ref.revision, commit)

    async def list_files(self, repo: RepoRef) -> RepoListing:
        """Every file of `repo` at the commit its revision names."""
        commit, tree = self._lookup(repo)
        await anyio.to_thread.run_sync(self._store.record_ref, repo, repo.revision, commit)
        files = tuple(ListedFile(p, len(d), git_blob_id(d)) for p, d in sorted(tree.items()))
        return RepoListing(repo, commit, files)

    async def aclose(self) -> None:
        """Remove the temporary cache folder, if this source made it."""
        if self._own_cache:
            await anyio.to_thread.run_sync(shutil.rmtree, self.cache_dir, True)

"""`HubSource`: huggingface_hub's own client, run in worker threads.

It keeps everything the official client does (Xet, auth, retries, the cache layout) and
only moves it off the event loop: each download runs through `anyio.to_thread.run_sync`
under a `CapacityLimiter` of its own, so big downloads never starve the process's default
thread pool. Cancellation reaches the thread through `BridgeTqdm`: a cancelled fetch stops
at the next chunk and huggingface_hub removes its temporary file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import AsyncResource
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.hf_api import RepoFile as HfRepoFile

from ._errmap import ErrorContext, to_fetch_error
from ._errors import IntegrityError
from ._hfcache import CacheLayout, write_ref
from ._partial import verify_file
from ._progress import ProgressCallback, ProgressKind
from ._settings import Settings
from ._threadwatch import BridgeTqdm, TransferWatch, run_watched
from ._types import AssetRef, Origin, RepoFile, RepoListing, RepoRef, ResolvedAsset
from ._validate import is_commit

DEFAULT_MAX_WORKERS = 8


class HubSource(AsyncResource):
    """Fetch from the Hub with `huggingface_hub.hf_hub_download` in worker threads.

    Args:
        settings: where and how to fetch; `Settings.from_env()` when omitted.
        max_workers: how many downloads may run at once (threads of its own limiter).
        verify: check each fresh download against its etag (sha256 for LFS files, git
            sha1 otherwise) and remove it from the cache on a mismatch. huggingface_hub
            itself does not; it costs one hashing pass (about 1 CPU-second per GiB).

    Example:
        ```python
        async with modelfetch.HubSource() as hub:
            path = await modelfetch.fetch("org/model", "config.json", source=hub)
        ```
    """

    def __init__(
        self, settings: Settings | None = None, *, max_workers: int = DEFAULT_MAX_WORKERS, verify: bool = True
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self.verify = verify
        self._layout = CacheLayout(self.settings.hub_cache)
        self._limiter = anyio.CapacityLimiter(max_workers)

    def __repr__(self) -> str:
        return f"HubSource(endpoint={self.settings.endpoint!r}, cache={str(self.settings.hub_cache)!r})"

    async def resolve(self, ref: AssetRef, *, progress: ProgressCallback | None = None) -> ResolvedAsset:
        """Download `ref` into the Hugging Face cache (or find it there); see `ModelAssetSource`."""
        watch = TransferWatch(ref, progress)
        try:
            resolved: ResolvedAsset = await anyio.to_thread.run_sync(
                run_watched, watch, self._download, ref, watch, limiter=self._limiter
            )
        except Exception as exc:
            watch.finish(ProgressKind.FAILED)
            raise to_fetch_error(exc, self._context(ref)) from exc
        watch.finish(ProgressKind.FINISHED)
        return resolved

    async def list_files(self, repo: RepoRef) -> RepoListing:
        """List `repo` at the commit its revision points to now; see `ModelAssetSource`."""
        try:
            return await anyio.to_thread.run_sync(self._list, repo, limiter=self._limiter)
        except Exception as exc:
            raise to_fetch_error(exc, self._context(repo)) from exc

    async def aclose(self) -> None:
        """Nothing to release: threads are borrowed per call."""

    def _context(self, what: AssetRef | RepoRef) -> ErrorContext:
        return ErrorContext(what, offline=self.settings.offline, has_token=self.settings.token is not None)

    def _download(self, ref: AssetRef, watch: TransferWatch) -> ResolvedAsset:
        s = self.settings
        raw = hf_hub_download(
            ref.repo_id,
            ref.filename,
            repo_type=ref.repo_type,
            revision=ref.revision,
            cache_dir=s.hub_cache,
            endpoint=s.endpoint,
            token=s.token or False,
            local_files_only=s.offline,
            etag_timeout=s.etag_timeout,
            tqdm_class=BridgeTqdm,
        )
        resolved = self._describe(ref, Path(str(raw)), Origin.NETWORK if watch.transferred else Origin.DISK)
        if self.verify and resolved.origin is Origin.NETWORK:
            self._check(resolved)
        return resolved

    def _check(self, resolved: ResolvedAsset) -> None:
        """Verify a fresh download against its etag, which huggingface_hub does not do.

        huggingface_hub has already published the blob, so a corrupt one was briefly
        visible; it is removed (blob and snapshot link) before anyone is told about it.
        `HttpHubSource` verifies before publishing.
        """
        blob = self._layout.blob(resolved.ref, resolved.etag)
        try:
            verify_file(blob, resolved.etag)
        except IntegrityError as exc:
            for path in (resolved.path, blob):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            raise IntegrityError(
                f"Fetching {resolved.ref}: {exc}; the corrupt download was removed from the cache, retry."
            ) from None

    def _describe(self, ref: AssetRef, raw: Path, origin: Origin) -> ResolvedAsset:
        commit_dir = raw
        for _ in ref.filename.split("/"):
            commit_dir = commit_dir.parent
        commit = commit_dir.name
        path = self._layout.snapshot(ref, commit)
        etag = Path(os.readlink(raw)).name if raw.is_symlink() else ""
        return ResolvedAsset(ref, path, commit, raw.stat().st_size, etag, origin)

    def _list(self, repo: RepoRef) -> RepoListing:
        s = self.settings
        api = HfApi(endpoint=s.endpoint, token=s.token or False)
        commit = repo.revision
        if not is_commit(commit):
            info = api.repo_info(repo.repo_id, revision=repo.revision, repo_type=repo.repo_type)
            commit = str(info.sha)
            write_ref(self._layout, repo, repo.revision, commit)
        entries = api.list_repo_tree(repo.repo_id, recursive=True, revision=commit, repo_type=repo.repo_type)
        files = sorted((_repo_file(e) for e in entries if isinstance(e, HfRepoFile)), key=lambda f: f.path)
        return RepoListing(repo, commit, tuple(files))


def _repo_file(entry: Any) -> RepoFile:
    if entry.lfs is not None:
        return RepoFile(entry.path, int(entry.lfs.size), str(entry.lfs.sha256), lfs=True)
    return RepoFile(entry.path, int(entry.size), str(entry.blob_id))

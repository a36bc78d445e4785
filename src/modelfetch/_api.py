"""`fetch` and `snapshot`: the async entry points."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.to_thread

from ._core.errors import AssetNotFoundError, FetchError, InvalidRequestError, SnapshotError
from ._core.force import forcing
from ._core.globs import filter_paths
from ._core.progress import ProgressCallback, SnapshotProgress
from ._core.protocol import ModelAssetSource
from ._core.types import DEFAULT_REVISION, AssetRef, RepoRef
from ._core.validate import RepoType, check_flag, check_path, check_positive_int, check_source
from ._default import current_default_source, preload_default_stack
from ._localdir_out import place

DEFAULT_SNAPSHOT_WORKERS = 8


async def fetch(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    repo_type: RepoType = "model",
    source: ModelAssetSource | None = None,
    progress: ProgressCallback | None = None,
    local_dir: str | os.PathLike[str] | None = None,
    token: str | None = None,
    force_download: bool = False,
) -> Path:
    """Fetch one file of a Hub repository and return its local path.

    The event loop keeps running while bytes move.

    Args:
        repo_id: `namespace/name`.
        filename: path of the file inside the repo, like `"config.json"`.
        revision: branch, tag or commit id; `"main"` when omitted.
        repo_type: `"model"`, `"dataset"` or `"space"`.
        source: where to fetch from; the current event loop's default source when omitted.
        progress: called with `ProgressEvent`s on the event loop thread.
        local_dir: also copy the file to `local_dir/<filename>`, as huggingface_hub's
            `local_dir` does (with its metadata, so either library recognises the copy),
            and return that path.
        token: the access token for this call instead of the environment's (`HF_TOKEN`);
            only with the default source.
        force_download: download again even if the file is cached (the new copy replaces
            the cached one by rename). The Hub sources honour it; a mirror's bucket or a
            local folder still serve what they hold.

    Returns:
        The file's snapshot path in the Hugging Face cache
        (`.../models--org--name/snapshots/<commit>/<filename>`), or its copy in `local_dir`.

    Raises:
        FetchError: a subclass saying what failed (see `modelfetch.FetchError`).

    Example:
        ```python
        config = await modelfetch.fetch("org/model", "config.json")
        ```
    """
    ref = AssetRef(repo_id, filename, revision or DEFAULT_REVISION, repo_type)
    folder = None if local_dir is None else check_path("local_dir", local_dir)
    src = await pick_source(source, progress, token)
    with forcing(check_flag("force_download", force_download)):
        resolved = await src.resolve(ref, progress=progress)
    if folder is None:
        return resolved.path
    return await anyio.to_thread.run_sync(
        place, folder, ref.filename, resolved.path, resolved.commit, resolved.etag
    )


async def snapshot(
    repo_id: str,
    *,
    revision: str | None = None,
    repo_type: RepoType = "model",
    include: Sequence[str] | str | None = None,
    exclude: Sequence[str] | str | None = None,
    source: ModelAssetSource | None = None,
    max_workers: int = DEFAULT_SNAPSHOT_WORKERS,
    progress: ProgressCallback | None = None,
    local_dir: str | os.PathLike[str] | None = None,
    token: str | None = None,
    force_download: bool = False,
) -> Path:
    """Fetch every matching file of one revision and return the snapshot folder.

    The revision is pinned to one commit first, so every file comes from that commit
    even if the branch moves meanwhile. Files are fetched `max_workers` at a time. If any
    fails, the rest are cancelled and one `SnapshotError` names every failed file; files
    already fetched stay valid in the cache.

    Args:
        repo_id: `namespace/name`.
        revision: branch, tag or commit id; `"main"` when omitted.
        repo_type: `"model"`, `"dataset"` or `"space"`.
        include: glob(s) a file must match, like `allow_patterns` in `snapshot_download`.
        exclude: glob(s) a file must not match, like `ignore_patterns`.
        source: where to fetch from; the current event loop's default source when omitted.
        max_workers: how many files to fetch at once.
        progress: called with each file's `ProgressEvent`s on the event loop thread.
        local_dir: also copy the files into `local_dir` (see `fetch`) and return it.
        token: the access token for this call (see `fetch`).
        force_download: download every file again even if cached (see `fetch`).

    Returns:
        The snapshot folder, `.../models--org--name/snapshots/<commit>`, or `local_dir`.

    Raises:
        AssetNotFoundError: no file matches `include`/`exclude`.
        SnapshotError: some files failed; `.errors` maps each path to its error.
        FetchError: the listing itself failed.
    """
    repo = RepoRef(repo_id, revision or DEFAULT_REVISION, repo_type)
    check_positive_int("max_workers", max_workers)
    check_patterns(include, exclude)
    folder = None if local_dir is None else check_path("local_dir", local_dir)
    src = await pick_source(source, progress, token)
    listing = await src.list_files(repo)
    names = filter_paths([f.path for f in listing.files], include, exclude)
    if not names:
        raise AssetNotFoundError(
            f"Snapshot of {repo}: no file matches include={include!r} exclude={exclude!r} "
            f"among {len(listing.files)} files; check the patterns."
        )
    pinned = RepoRef(repo.repo_id, listing.commit, repo.repo_type)
    sizes = {f.path: f.size for f in listing.files}
    with forcing(check_flag("force_download", force_download)):
        paths = await fetch_many(src, pinned, names, max_workers=max_workers, progress=progress, sizes=sizes)
    if folder is not None:
        etags = {f.path: f.etag for f in listing.files}

        def place_all() -> None:  # one worker-thread hop for every file
            for name in names:
                place(folder, name, paths[name], listing.commit, etags.get(name))

        await anyio.to_thread.run_sync(place_all)
        return folder
    # The source recorded refs/<revision> when it listed the revision (a source that serves
    # files in place, like LocalDirSource, records nothing).
    return _snapshot_folder(names[0], paths[names[0]])


async def fetch_many(
    src: ModelAssetSource,
    pinned: RepoRef,
    names: list[str],
    *,
    max_workers: int = DEFAULT_SNAPSHOT_WORKERS,
    progress: ProgressCallback | None = None,
    sizes: dict[str, int] | None = None,
) -> dict[str, Path]:
    """Fetch `names` of one pinned revision, `max_workers` at a time; return name -> path.

    If any file fails, the others are cancelled and one `SnapshotError` names every
    failure; files already fetched stay valid in the cache. With `sizes` (from the
    listing), progress events also carry snapshot-wide totals.
    """
    paths: dict[str, Path] = {}
    errors: dict[str, FetchError] = {}
    totals = SnapshotProgress(progress, {n: sizes.get(n, 0) for n in names}) if progress and sizes else None

    # Each worker takes the next name when it is free, starting at a random place in the list:
    # nodes of a fleet that snapshot the same model at once (through a shared mirror) then
    # begin on different files, and each claims different ones instead of all queueing
    # behind whichever node claimed the first few.
    start = random.randrange(len(names)) if names else 0
    pending = iter(names[start:] + names[:start])

    async def worker() -> None:
        for name in pending:
            try:
                paths[name] = (await src.resolve(pinned.asset(name), progress=totals or progress)).path
                if totals is not None:
                    totals.file_done(name)
            except FetchError as exc:
                errors[name] = exc
                tg.cancel_scope.cancel()
                return

    async with anyio.create_task_group() as tg:  # max_workers tasks, not one per file
        for _ in range(min(max_workers, len(names))):
            tg.start_soon(worker)
    if errors:
        lines = "; ".join(f"{p}: {e}" for p, e in sorted(errors.items()))
        stopped = len(names) - len(errors) - len(paths)
        left = sum((sizes or {}).get(n, 0) for n in names if n not in paths)
        raise SnapshotError(
            f"Fetching from {pinned}: {len(errors)} of {len(names)} files failed ({len(paths)} fetched"
            + (f", {stopped} stopped at the first failure" if stopped else "")
            + (f"; {left} bytes still to fetch" if left else "")
            + f"): {lines}",
            errors,
        )
    return paths


async def pick_source(
    source: ModelAssetSource | None, progress: ProgressCallback | None, token: str | None = None
) -> ModelAssetSource:
    """The source an entry point uses: `source` (checked), else the event loop's default.

    `token` picks the default source that uses that token (see `current_default_source`);
    a source you built carries its own settings, so both together are refused.

    Building the default stack the first time imports huggingface_hub (half a second or
    more); that import runs in a worker thread, never on the event loop.
    """
    if progress is not None and not callable(progress):
        raise InvalidRequestError(f"progress must be a callable taking a ProgressEvent, not {progress!r}.")
    if source is None:
        await preload_default_stack()
        return await current_default_source(token)
    check_source("source", source)
    if token is not None:
        raise InvalidRequestError(
            "token= applies to the default source; a source you pass carries its own "
            "(build it with Settings.from_env(token=...))."
        )
    return source


def check_patterns(*patterns: Sequence[str] | str | None) -> None:
    """Raise `InvalidRequestError` unless each of include/exclude is None, a glob or a list of globs."""
    for value in patterns:
        globs = [value] if isinstance(value, str) else value
        if globs is not None and (isinstance(globs, bytes) or not all(isinstance(g, str) for g in globs)):
            raise InvalidRequestError(f"include/exclude must be glob strings, not {value!r}.")


def _snapshot_folder(name: str, path: Path) -> Path:
    folder = path
    for _ in name.split("/"):
        folder = folder.parent
    return folder

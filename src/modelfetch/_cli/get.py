"""`modelfetch get`: files of one repo, fetched at once, every result reported in order."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import anyio

from .._api import fetch
from .._core.errors import AssetNotFoundError, FetchError, InvalidRequestError
from .._core.globs import filter_paths
from .._core.progress import ProgressCallback
from .._core.protocol import ModelAssetSource
from .._core.types import DEFAULT_REVISION, RepoRef
from .._store.layout import CacheLayout, find_cached


@dataclass(frozen=True, slots=True)
class Outcome:
    """One requested file: its local path, or why it failed."""

    name: str
    path: Path | None = None
    error: FetchError | None = None


async def get_files(
    args: argparse.Namespace, source: ModelAssetSource, progress: ProgressCallback | None
) -> list[Outcome]:
    """Fetch the named files (or, with none named, the repo's files matching the globs) at once.

    Files are fetched `--max-workers` at a time; one failure does not stop the others.
    Without file names the revision is listed and pinned first, like `snapshot`.
    """
    revision = args.revision or DEFAULT_REVISION
    names: list[str] = list(args.files)
    if not names:
        listing = await source.list_files(RepoRef(args.repo, revision, args.repo_type))
        names = filter_paths([f.path for f in listing.files], args.include, args.exclude)
        if not names:
            raise AssetNotFoundError(
                f"{args.repo}@{revision}: no file matches include={args.include!r} "
                f"exclude={args.exclude!r} among {len(listing.files)} files; check the patterns."
            )
        revision = listing.commit
    elif args.include or args.exclude:
        names = filter_paths(names, args.include, args.exclude)
    outcomes: list[Outcome] = [Outcome(name) for name in names]
    limiter = anyio.CapacityLimiter(args.max_workers)

    async def one(index: int, name: str) -> None:
        async with limiter:
            try:
                path = await fetch(
                    args.repo,
                    name,
                    revision=revision,
                    repo_type=args.repo_type,
                    source=source,
                    progress=progress,
                    local_dir=args.local_dir,
                    force_download=args.force_download,
                )
            except FetchError as exc:
                outcomes[index] = Outcome(name, error=exc)
            else:
                outcomes[index] = Outcome(name, path=path)

    async with anyio.create_task_group() as tasks:
        for index, name in enumerate(names):
            tasks.start_soon(one, index, name)
    return outcomes


def failure_of(outcomes: list[Outcome]) -> FetchError | None:
    """One error naming every failed file (an InvalidRequestError if all were bad input)."""
    failed = [o for o in outcomes if o.error is not None]
    if not failed:
        return None
    if len(failed) == 1 and failed[0].error is not None:
        return failed[0].error
    lines = "; ".join(f"{o.name}: {o.error}" for o in failed)
    message = f"{len(failed)} of {len(outcomes)} files failed: {lines}"
    if all(isinstance(o.error, InvalidRequestError) for o in failed):
        return InvalidRequestError(message)
    return FetchError(message)


@dataclass(frozen=True, slots=True)
class Planned:
    """What `get --dry-run` reports for one file."""

    name: str
    size: int
    cached: bool


async def plan_files(
    args: argparse.Namespace, source: ModelAssetSource, cache: Path
) -> tuple[str, list[Planned]]:
    """`get/snapshot --dry-run`: the commit, each file's size and whether it is cached; nothing fetched."""
    listing = await source.list_files(RepoRef(args.repo, args.revision or DEFAULT_REVISION, args.repo_type))
    sizes = {f.path: f.size for f in listing.files}
    names = list(getattr(args, "files", None) or []) or [f.path for f in listing.files]
    names = filter_paths(names, args.include, args.exclude)
    missing = [name for name in names if name not in sizes]
    if missing:
        raise AssetNotFoundError(
            f"{args.repo}@{listing.commit[:12]}: no file {', '.join(missing)}; check the names."
        )
    layout = CacheLayout(cache)

    def look() -> list[Planned]:
        pinned = RepoRef(args.repo, listing.commit, args.repo_type)
        return [
            Planned(name, sizes[name], find_cached(layout, pinned.asset(name)) is not None) for name in names
        ]

    return listing.commit, await anyio.to_thread.run_sync(look)

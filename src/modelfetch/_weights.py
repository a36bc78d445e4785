"""`fetch_safetensors`: config plus every weight shard of a safetensors model, concurrently."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from ._api import fetch_many, pick_source
from ._core.errors import AssetNotFoundError, IntegrityError, InvalidRequestError, SnapshotError
from ._core.force import forcing
from ._core.progress import ProgressCallback
from ._core.protocol import ModelAssetSource
from ._core.types import DEFAULT_REVISION, RepoRef
from ._core.validate import RepoType, check_flag, check_positive_int, filename_problem
from ._store.anchored import NONBLOCK

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
MAX_INDEX_BYTES = 32 * 1024 * 1024
"""The largest index read. Real ones are a few hundred KB (a 671B mixture of experts: ~9 MB)."""
MAX_SHARDS = 10_000
"""The most shards an index may name (real ones: up to a few hundred)."""


@dataclass(frozen=True, slots=True)
class SafetensorsModel:
    """The local files of a safetensors model, all from one commit.

    Attributes:
        commit: the commit every file comes from.
        folder: the snapshot folder holding them.
        config: `config.json`, or None if the repo has none.
        index: `model.safetensors.index.json`, or None for a single-file model.
        shards: the weight files, in the order the index first names them.
    """

    commit: str
    folder: Path
    config: Path | None
    index: Path | None
    shards: tuple[Path, ...]


DEFAULT_WEIGHT_WORKERS = 8
"""Shards `fetch_safetensors` (and its sync twin) fetches at once unless told otherwise."""


async def fetch_safetensors(
    repo_id: str,
    *,
    revision: str | None = None,
    repo_type: RepoType = "model",
    subfolder: str = "",
    source: ModelAssetSource | None = None,
    max_workers: int = DEFAULT_WEIGHT_WORKERS,
    progress: ProgressCallback | None = None,
    token: str | None = None,
    force_download: bool = False,
) -> SafetensorsModel:
    """Fetch a safetensors model's config, index and every shard, concurrently.

    Reads `model.safetensors.index.json` (or falls back to a single `model.safetensors`),
    pins the revision to one commit, then fetches `config.json` and all shards at once.

    Args:
        repo_id: `namespace/name`.
        revision: branch, tag or commit id; `"main"` when omitted.
        repo_type: `"model"`, `"dataset"` or `"space"`.
        subfolder: where the weights live in the repo (e.g. `"unet"`), if not at the root.
        source: where to fetch from; the current event loop's default source when omitted.
        max_workers: how many files to fetch at once.
        progress: called with each file's `ProgressEvent`s on the event loop thread.
        token: the access token for this call instead of the environment's (default source only).
        force_download: download every file again even if cached (see `fetch`).

    Returns:
        The paths, shards in index order.

    Raises:
        AssetNotFoundError: the repo has neither an index nor `model.safetensors`.
        IntegrityError: the index is not valid JSON with a `weight_map`.
        SnapshotError: the index is over `MAX_INDEX_BYTES` or names more than `MAX_SHARDS`
            shards, a shard that is not a string or a valid name, or one the commit lacks
            (checked against the listing before anything is fetched).
        FetchError: any other failure, as `fetch`.

    Example:
        ```python
        model = await modelfetch.fetch_safetensors("org/model")
        state = [safetensors.torch.load_file(p) for p in model.shards]
        ```
    """
    check_positive_int("max_workers", max_workers)
    if not isinstance(subfolder, str):
        raise InvalidRequestError(f"subfolder must be a string, not {subfolder!r}.")
    src = await pick_source(source, progress, token)
    with forcing(check_flag("force_download", force_download)):
        repo = RepoRef(repo_id, revision or DEFAULT_REVISION, repo_type)
        return await _fetch_weights(src, repo, subfolder, max_workers, progress)


async def _fetch_weights(
    src: ModelAssetSource,
    repo: RepoRef,
    subfolder: str,
    max_workers: int,
    progress: ProgressCallback | None,
) -> SafetensorsModel:
    repo_id, repo_type = repo.repo_id, repo.repo_type
    listing = await src.list_files(repo)
    names = {f.path for f in listing.files}
    prefix = f"{subfolder.strip('/')}/" if subfolder.strip("/") else ""
    pinned = RepoRef(repo_id, listing.commit, repo_type)
    config = next((c for c in (f"{prefix}config.json", "config.json") if c in names), None)
    sizes = {f.path: f.size for f in listing.files}
    if prefix + INDEX in names:
        _check_index_size(pinned, prefix + INDEX, sizes[prefix + INDEX])
        index_path = (await src.resolve(pinned.asset(prefix + INDEX), progress=progress)).path
        listed = await anyio.to_thread.run_sync(_shards_in_index, index_path)
        shard_names = _check_shards(pinned, [prefix + s for s in listed], names)
    elif prefix + SINGLE in names:
        index_path, shard_names = None, [prefix + SINGLE]
    else:
        raise AssetNotFoundError(
            f"Fetching the safetensors weights of {pinned}: neither {prefix + INDEX} nor {prefix + SINGLE} "
            "exists; check repo_id, revision and subfolder."
        )
    wanted = ([config] if config else []) + shard_names
    paths = await fetch_many(src, pinned, wanted, max_workers=max_workers, progress=progress, sizes=sizes)
    shards = tuple(paths[name] for name in shard_names)
    folder = paths[shard_names[0]]
    for _ in shard_names[0].split("/"):
        folder = folder.parent
    return SafetensorsModel(listing.commit, folder, paths[config] if config else None, index_path, shards)


def _check_index_size(pinned: RepoRef, name: str, size: int) -> None:
    if size > MAX_INDEX_BYTES:
        raise SnapshotError(
            f"Fetching the safetensors weights of {pinned}: {name} is {size} bytes, over the "
            f"{MAX_INDEX_BYTES} bytes an index may have; it was not read. Is this the right repo?"
        )


def _check_shards(pinned: RepoRef, shards: list[str], listed: set[str]) -> list[str]:
    """`shards` if each is a valid name that the commit's listing has; `SnapshotError` otherwise."""
    what = f"Fetching the safetensors weights of {pinned}"
    if len(shards) > MAX_SHARDS:
        raise SnapshotError(f"{what}: the index names {len(shards)} shards, over the limit of {MAX_SHARDS}.")
    for name in shards:
        problem = filename_problem(name)
        if problem:
            raise SnapshotError(
                f"{what}: the index names the shard {name[:200]!r}, which is not valid: {problem}."
            )
    missing = [name for name in shards if name not in listed]
    if missing:
        shown = ", ".join(repr(m[:200]) for m in missing[:5])
        raise SnapshotError(
            f"{what}: the index names {len(missing)} shard(s) the commit does not have ({shown}"
            f"{', ...' if len(missing) > 5 else ''}); nothing was fetched. The repo is inconsistent."
        )
    return shards


def _shards_in_index(index: Path) -> list[str]:
    """The shard names of an index, in first-named order (blocking: a worker thread)."""
    fd = os.open(index, os.O_RDONLY | NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IntegrityError(f"{index.name} is not a regular file.")
        os.set_blocking(fd, True)
        raw = f.read(MAX_INDEX_BYTES + 1)
    if len(raw) > MAX_INDEX_BYTES:
        raise SnapshotError(f"{index.name} is over the {MAX_INDEX_BYTES} bytes an index may have; not read.")
    try:
        weight_map = json.loads(raw)["weight_map"]
        values = list(weight_map.values())
    except RecursionError:
        raise SnapshotError(f"{index.name} is nested too deeply to be a safetensors index.") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"{index.name} is not a valid safetensors index ({exc}).") from exc
    if not all(isinstance(v, str) for v in values):
        raise SnapshotError(f"{index.name}: every weight_map value must be a shard file name (a string).")
    ordered = list(dict.fromkeys(values))
    if not ordered:
        raise IntegrityError(f"{index.name} lists no shards.")
    return ordered

"""`fetch_safetensors`: config plus every weight shard of a safetensors model, concurrently."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from ._api import fetch_many, pick_source
from ._core.errors import AssetNotFoundError, IntegrityError, InvalidRequestError
from ._core.force import forcing
from ._core.progress import ProgressCallback
from ._core.protocol import ModelAssetSource
from ._core.types import DEFAULT_REVISION, RepoRef
from ._core.validate import RepoType, check_flag, check_positive_int

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"


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
    if prefix + INDEX in names:
        index_path = (await src.resolve(pinned.asset(prefix + INDEX), progress=progress)).path
        shard_names = [prefix + s for s in await anyio.to_thread.run_sync(_shards_in_index, index_path)]
    elif prefix + SINGLE in names:
        index_path, shard_names = None, [prefix + SINGLE]
    else:
        raise AssetNotFoundError(
            f"Fetching the safetensors weights of {pinned}: neither {prefix + INDEX} nor {prefix + SINGLE} "
            "exists; check repo_id, revision and subfolder."
        )
    wanted = ([config] if config else []) + shard_names
    sizes = {f.path: f.size for f in listing.files}
    paths = await fetch_many(src, pinned, wanted, max_workers=max_workers, progress=progress, sizes=sizes)
    shards = tuple(paths[name] for name in shard_names)
    folder = paths[shard_names[0]]
    for _ in shard_names[0].split("/"):
        folder = folder.parent
    return SafetensorsModel(listing.commit, folder, paths[config] if config else None, index_path, shards)


def _shards_in_index(index: Path) -> list[str]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        ordered = list(dict.fromkeys(str(v) for v in weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"{index.name} is not a valid safetensors index ({exc}).") from exc
    if not ordered:
        raise IntegrityError(f"{index.name} lists no shards.")
    return ordered

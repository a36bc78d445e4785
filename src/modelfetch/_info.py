"""Questions about a repo that download nothing: a file's URL, and what a listing says of some paths."""

from __future__ import annotations

from collections.abc import Sequence

from ._api import pick_source
from ._core.errors import InvalidRequestError
from ._core.protocol import ModelAssetSource
from ._core.settings import Settings
from ._core.types import DEFAULT_REVISION, ListedFile, RepoListing, RepoRef
from ._core.validate import RepoType, check_filename
from ._hubapi.spec import resolve_url


def hf_hub_url(
    repo_id: str,
    filename: str,
    *,
    subfolder: str | None = None,
    repo_type: RepoType = "model",
    revision: str | None = None,
    endpoint: str | None = None,
) -> str:
    """The URL a file is downloaded from, as `huggingface_hub.hf_hub_url` builds it.

    `{endpoint}/{repo_id}/resolve/{revision}/{filename}` (with `datasets/` or `spaces/`
    before the id for those repo types), quoted as huggingface_hub quotes it. Sends nothing.

    Args:
        repo_id: `namespace/name`.
        filename: path of the file inside the repo (or inside `subfolder`).
        subfolder: a folder of the repo the file is in.
        repo_type: `"model"`, `"dataset"` or `"space"`.
        revision: branch, tag or commit id; `"main"` when omitted.
        endpoint: the Hub's base URL; `HF_ENDPOINT` (else huggingface.co) when omitted.

    Raises:
        InvalidRequestError: a malformed repo id, file name, revision or repo type.
    """
    if subfolder:
        filename = f"{subfolder.strip('/')}/{filename}"
    ref = RepoRef(repo_id, revision or DEFAULT_REVISION, repo_type).asset(filename)
    base = (endpoint or Settings.from_env().endpoint).rstrip("/")
    return resolve_url(base, ref)


async def get_paths_info(
    repo_id: str,
    paths: Sequence[str] | str,
    *,
    revision: str | None = None,
    repo_type: RepoType = "model",
    source: ModelAssetSource | None = None,
    token: str | None = None,
) -> RepoListing:
    """Size, etag and LFS status of some paths of a repo at one commit, downloading nothing.

    Like `huggingface_hub.get_paths_info`, from one listing of the repo (answered from
    memory or the cache when the source has it): paths that do not exist are left out,
    and a folder stands for every file under it. The listing's `commit` is the commit
    the revision points to.

    Args:
        repo_id: `namespace/name`.
        paths: file or folder paths inside the repo.
        revision: branch, tag or commit id; `"main"` when omitted.
        repo_type: `"model"`, `"dataset"` or `"space"`.
        source: where to ask; the current event loop's default source when omitted.
        token: the access token for this call instead of the environment's (default source only).

    Returns:
        The commit, and the files found, sorted by path.

    Raises:
        InvalidRequestError: a malformed argument.
        FetchError: listing the repo failed (see `modelfetch.FetchError`).
    """
    wanted = [paths] if isinstance(paths, str) else list(paths)
    if not all(isinstance(path, str) for path in wanted):
        raise InvalidRequestError(f"paths must be a path or a list of paths, not {paths!r}.")
    names = [check_filename(path.strip("/")) for path in wanted]
    repo = RepoRef(repo_id, revision or DEFAULT_REVISION, repo_type)
    listing = await (await pick_source(source, None, token)).list_files(repo)
    found: list[ListedFile] = []
    seen: set[str] = set()
    for name in names:
        for entry in listing.files:
            if (entry.path == name or entry.path.startswith(name + "/")) and entry.path not in seen:
                seen.add(entry.path)
                found.append(entry)
    return RepoListing(listing.repo, listing.commit, tuple(sorted(found, key=lambda entry: entry.path)))

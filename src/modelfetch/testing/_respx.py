"""`mock_repo`: a whole Hub repo registered on a respx router, for loader tests without a server.

The answers are FakeHub's own (the same revision info, tree listing and file headers, built
by `_routes`), so what works against FakeHub works against the mock: `fetch`, `snapshot`,
`fetch_safetensors` and `get_paths_info` through the default stack (`HttpHubSource`: httpx,
which respx patches). `HubSource` runs huggingface_hub's own client, which respx does not see.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .._core.settings import DEFAULT_ENDPOINT
from .._core.types import AssetRef, RepoRef
from .._core.validate import (
    RepoType,
    check_filename,
    check_repo_id,
    check_repo_type,
    check_revision,
    is_commit,
)
from .._hubapi.spec import git_blob_id, resolve_url, revision_url
from ._hubstate import Blob, Entry, Repo, is_lfs_by_default
from ._routes import info_payload, parse_range, tree_items

if TYPE_CHECKING:
    import httpx
    import respx


def mock_repo(
    router: respx.MockRouter,
    repo_id: str,
    files: Mapping[str, bytes],
    *,
    revision: str = "main",
    repo_type: RepoType = "model",
    endpoint: str | None = None,
    commit: str | None = None,
    lfs: Collection[str] | bool | None = None,
) -> str:
    """Register `repo_id` holding `files` on `router`, as the Hub would answer for it; its commit.

    Registers, for `revision` and for the commit: the revision info, the tree listing, and
    `HEAD`/`GET` of every file (ranges honoured, LFS files with their sha256 etag and
    `X-Linked-Size`), and a 404 `EntryNotFound` for any other file of the repo, as the Hub
    sends. Every route may go uncalled: use `respx.mock(assert_all_called=False)`.

    Args:
        router: the respx router (`respx.mock(...)` as a context manager, or its fixture).
        repo_id: `namespace/name`.
        files: path in the repo -> content.
        revision: the branch or tag the files are on.
        repo_type: `"model"`, `"dataset"` or `"space"`.
        endpoint: the Hub's URL; `HF_ENDPOINT`, else the real Hub's, when omitted (what the
            default stack asks).
        commit: the commit id (40 lowercase hex); derived from the content when omitted.
        lfs: which paths are LFS files (a collection, or True/False for all); by default
            the Hub's rule (weights by extension, anything over 10 MiB).

    Returns:
        The commit id the revision points to.

    Example:
        ```python
        with respx.mock(assert_all_called=False) as router:
            commit = mock_repo(router, "org/model", {"config.json": b"{}"})
            path = await modelfetch.fetch("org/model", "config.json")
        ```
    """
    check_repo_id(repo_id)
    check_repo_type(repo_type)
    check_revision(revision)
    base = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    tree = {
        check_filename(path): Entry(_blob(data), _is_lfs(path, data, lfs)) for path, data in files.items()
    }
    commit = commit or _commit_of(tree)
    if not is_commit(commit):
        raise ValueError(f"commit must be 40 lowercase hex digits, not {commit!r}")
    repo = Repo(repo_type, repo_id)
    info, listing = info_payload(repo, commit, tree), tree_items(tree, "", recursive=True)
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    for rev in dict.fromkeys((revision, commit)):
        pinned = RepoRef(repo_id, rev, repo_type)
        router.get(revision_url(base, pinned)).respond(200, json=info)
        router.get(url__startswith=f"{base}/api/{repo_type}s/{repo_id}/tree/{quote(rev, safe='')}").respond(
            200, json=listing
        )
        for path, entry in tree.items():
            url = resolve_url(base, AssetRef(repo_id, path, rev, repo_type))
            headers = _headers(entry, commit)
            router.head(url).respond(200, headers={**headers, "Content-Length": str(entry.blob.size)})
            router.get(url).mock(side_effect=_body(files[path], headers))
        missing = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}
        router.route(
            method__in=["HEAD", "GET"],
            url__startswith=f"{base}/{prefix}{repo_id}/resolve/{quote(rev, safe='')}/",
        ).respond(404, headers=missing, json={"error": "Entry not found"})
    return commit


def _blob(data: bytes) -> Blob:
    return Blob(Path(), len(data), hashlib.sha256(data).hexdigest(), git_blob_id(data))


def _is_lfs(path: str, data: bytes, lfs: Collection[str] | bool | None) -> bool:
    if lfs is None:
        return is_lfs_by_default(path, len(data))
    return lfs if isinstance(lfs, bool) else path in lfs


def _commit_of(tree: Mapping[str, Entry]) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    for path, entry in sorted(tree.items()):
        digest.update(f"{path}\0{entry.etag}\n".encode())
    return digest.hexdigest()


def _headers(entry: Entry, commit: str) -> dict[str, str]:
    headers = {"X-Repo-Commit": commit, "ETag": f'"{entry.etag}"', "Accept-Ranges": "bytes"}
    if entry.lfs:
        headers |= {"X-Linked-Etag": f'"{entry.blob.sha256}"', "X-Linked-Size": str(entry.blob.size)}
    return headers


def _body(data: bytes, headers: dict[str, str]) -> Any:
    import httpx  # noqa: PLC0415 - only with respx, in a test: `modelfetch.testing` stays light

    def answer(request: httpx.Request) -> httpx.Response:
        wanted = request.headers.get("range")
        span = parse_range(wanted, len(data)) if wanted else None
        if span == "unsatisfiable":
            return httpx.Response(416, headers={"Content-Range": f"bytes */{len(data)}"})
        if isinstance(span, tuple):
            first, last = span
            ranged = {**headers, "Content-Range": f"bytes {first}-{last}/{len(data)}"}
            return httpx.Response(206, headers=ranged, content=data[first : last + 1])
        return httpx.Response(200, headers=headers, content=data)

    return answer

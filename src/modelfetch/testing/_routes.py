"""FakeHub's protocol as a pure function: `route(core, request) -> response`. No sockets.

Routes:
    HEAD/GET /[datasets/|spaces/]{repo_id}/resolve/{revision}/{path}
    HEAD/GET /cdn/{sha256}?filename=...          (where LFS files redirect to)
    GET /api/{models|datasets|spaces}/{repo_id}[/revision/{revision}]
    GET /api/{models|datasets|spaces}/{repo_id}/tree/{revision}[/{path}]?recursive=...
    anything else under /api/                     404, harmlessly

The socket side (`_handler.py`) applies faults and writes the answer; this module decides
what the answer is, so the same core could back an in-process transport.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ._hubstate import Blob, Entry, HubState, Repo


class Routing(Protocol):
    """What the router reads: the hub's state and how it answers (no sockets, no locks of the server).

    `_handler.HubCore` is one; a test can route with any object that has these.
    """

    @property
    def state(self) -> HubState: ...
    @property
    def tokens(self) -> frozenset[str]: ...
    @property
    def cdn(self) -> str: ...
    @property
    def page_size(self) -> int: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def cdn_base(self) -> str: ...


_REPO_PREFIXES = {"datasets": "dataset", "spaces": "space"}
_API_KINDS = {"models": "model", "datasets": "dataset", "spaces": "space"}


@dataclass(frozen=True, slots=True)
class HubRequest:
    """One request as the router sees it: method, raw target (path and query), headers."""

    method: str
    target: str
    authorization: str | None = None
    range: str | None = None


@dataclass(slots=True)
class HubResponse:
    """The answer: status and headers, then either `body` bytes or `length` bytes of `blob` from `start`."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    blob: Blob | None = None
    start: int = 0
    length: int = 0


class _Refused(Exception):
    def __init__(self, response: HubResponse) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(status: int, payload: object, headers: Mapping[str, str] | None = None) -> HubResponse:
    """A JSON answer with its length."""
    body = json.dumps(payload).encode()
    extra = {**(headers or {}), "Content-Type": "application/json", "Content-Length": str(len(body))}
    return HubResponse(status, extra, body)


def error_response(
    status: int, message: str, *, code: str | None = None, headers: Mapping[str, str] | None = None
) -> HubResponse:
    """The Hub's error answer: `X-Error-Message`, `X-Error-Code` when there is one, a JSON body."""
    extra = {**(headers or {}), "X-Error-Message": message}
    if code is not None:
        extra["X-Error-Code"] = code
    return json_response(status, {"error": message}, extra)


def route(core: Routing, request: HubRequest, *, cdn_only: bool) -> HubResponse:
    """What FakeHub answers to `request` (before faults)."""
    path = urlsplit(request.target).path
    try:
        if path.startswith("/cdn/"):
            return _cdn(core, path, request)
        if cdn_only:
            return error_response(404, "Not found")
        if path.startswith("/api/"):
            return _api(core, path.rstrip("/"), request)  # mirrors redirect API routes to a slashed path
        if "/resolve/" in path:
            return _resolve(core, path, request)
        return error_response(404, "Not found")
    except _Refused as refused:
        return refused.response


def _visible_repo(core: Routing, request: HubRequest, repo_type: str, repo_id: str) -> Repo:
    """The repo if this request may see it; otherwise raise the Hub's error answer."""
    auth = request.authorization
    token = auth.removeprefix("Bearer ").strip() if auth else None
    if token is not None and token not in core.tokens:
        raise _Refused(error_response(401, "Invalid credentials in Authorization header"))
    repo = core.state.repo(repo_type, repo_id)
    if repo is None or (repo.private and token is None):
        raise _Refused(error_response(404 if token else 401, "Repository not found", code="RepoNotFound"))
    if repo.gated and token is None:
        message = f"Access to {repo_id} is restricted; you must be authenticated"
        raise _Refused(error_response(401, message, code="GatedRepo"))
    return repo


def _pinned_tree(
    core: Routing, request: HubRequest, repo_type: str, repo_id: str, revision: str
) -> tuple[Repo, str, Mapping[str, Entry]]:
    repo = _visible_repo(core, request, repo_type, repo_id)
    with core.state.lock:
        commit = repo.resolve(revision)
        tree = repo.commits.get(commit) if commit else None
    if commit is None or tree is None:
        raise _Refused(error_response(404, f"Invalid rev id: {revision}", code="RevisionNotFound"))
    return repo, commit, tree


def _resolve(core: Routing, path: str, request: HubRequest) -> HubResponse:
    prefix, _, rest = path.partition("/resolve/")
    repo_part = prefix.lstrip("/")
    repo_type = "model"
    head_segment, _, tail = repo_part.partition("/")
    if head_segment in _REPO_PREFIXES and tail:
        repo_type, repo_part = _REPO_PREFIXES[head_segment], tail
    rev_raw, _, file_raw = rest.partition("/")
    _, commit, tree = _pinned_tree(core, request, repo_type, unquote(repo_part), unquote(rev_raw))
    filename = unquote(file_raw)
    entry = tree.get(filename)
    if entry is None:
        return error_response(404, "Entry not found", code="EntryNotFound", headers={"X-Repo-Commit": commit})
    headers = {"X-Repo-Commit": commit, "ETag": f'"{entry.etag}"', "Accept-Ranges": "bytes"}
    if entry.lfs:
        headers["X-Linked-Etag"] = f'"{entry.blob.sha256}"'
        headers["X-Linked-Size"] = str(entry.blob.size)
    if entry.lfs and core.cdn != "none":
        name = quote(PurePosixPath(filename).name)
        location = f"{core.cdn_base}/cdn/{entry.blob.sha256}?filename={name}"
        return HubResponse(302, {**headers, "Location": location, "Content-Length": "0"})
    return blob_response(entry.blob, headers, request.range)


def _cdn(core: Routing, path: str, request: HubRequest) -> HubResponse:
    sha256 = path.removeprefix("/cdn/").split("/")[0]
    blob = core.state.blob(sha256)
    if blob is None:
        return error_response(404, "No such object")
    return blob_response(blob, {"ETag": f'"{sha256}"', "Accept-Ranges": "bytes"}, request.range)


def blob_response(blob: Blob, headers: dict[str, str], wanted: str | None) -> HubResponse:
    """A blob's answer: whole (200), one range (206), or 416 for a range it cannot satisfy."""
    start, end, status = 0, blob.size - 1, 200
    if wanted:
        parsed = parse_range(wanted, blob.size)
        if isinstance(parsed, str):
            refused = {**headers, "Content-Range": f"bytes */{blob.size}"}
            return error_response(416, "Range not satisfiable", headers=refused)
        if parsed is not None:
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    length = max(end - start + 1, 0)
    headers["Content-Length"] = str(length)
    headers["Content-Type"] = "application/octet-stream"
    return HubResponse(status, headers, blob=blob, start=start, length=length)


def _api(core: Routing, path: str, request: HubRequest) -> HubResponse:
    kind, _, rest = path.removeprefix("/api/").partition("/")
    if kind not in _API_KINDS or not rest:
        return error_response(404, "Not found")
    repo_type = _API_KINDS[kind]
    if "/tree/" not in rest:
        repo_part, _, rev_raw = rest.partition("/revision/")
        repo, commit, tree = _pinned_tree(
            core, request, repo_type, unquote(repo_part), unquote(rev_raw) or "main"
        )
        return json_response(200, info_payload(repo, commit, tree))
    repo_part, _, tail = rest.partition("/tree/")
    rev_raw, _, sub_raw = tail.partition("/")
    _, _, tree = _pinned_tree(core, request, repo_type, unquote(repo_part), unquote(rev_raw))
    sub = unquote(sub_raw).strip("/")
    query = parse_qs(urlsplit(request.target).query)
    recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
    items = tree_items(tree, sub, recursive=recursive)
    if sub and not items:
        return error_response(404, f"{sub} does not exist", code="EntryNotFound")
    cursor = int(query.get("cursor", ["0"])[0] or 0)
    page = items[cursor : cursor + core.page_size]
    headers = {}
    if cursor + core.page_size < len(items):
        flag = "true" if recursive else "false"
        following = f"{core.endpoint}{path}?recursive={flag}&cursor={cursor + core.page_size}"
        headers["Link"] = f'<{following}>; rel="next"'
    return json_response(200, page, headers)


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """Parse one `bytes=` range against `size`: (start, end), "unsatisfiable", or None to ignore."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if not first:
            suffix = int(last)
            if suffix <= 0:
                return "unsatisfiable"
            return max(size - suffix, 0), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "unsatisfiable"
    return start, min(end, size - 1)


def info_payload(repo: Repo, commit: str, tree: Mapping[str, Entry]) -> dict[str, object]:
    """The JSON `/api/{type}s/{repo}` answers (the fields huggingface_hub reads)."""
    return {
        "_id": commit[:24],
        "id": repo.repo_id,
        "modelId": repo.repo_id,
        "author": repo.repo_id.split("/")[0] if "/" in repo.repo_id else None,
        "sha": commit,
        "private": repo.private,
        "gated": "auto" if repo.gated else False,
        "disabled": False,
        "lastModified": "2026-01-01T00:00:00.000Z",
        "createdAt": "2026-01-01T00:00:00.000Z",
        "tags": [],
        "siblings": [{"rfilename": path} for path in sorted(tree)],
    }


def tree_items(tree: Mapping[str, Entry], sub: str, *, recursive: bool) -> list[dict[str, object]]:
    """The tree listing's entries under `sub`, directories and files, sorted by path."""
    prefix = f"{sub}/" if sub else ""
    files = {p: e for p, e in tree.items() if p.startswith(prefix)}
    folders: set[str] = set()
    items: list[dict[str, object]] = []
    for path, entry in sorted(files.items()):
        rel_parts = path[len(prefix) :].split("/")
        for depth in range(1, len(rel_parts)):
            folders.add(prefix + "/".join(rel_parts[:depth]))
        if recursive or len(rel_parts) == 1:
            items.append(_file_item(path, entry))
    for folder in folders:
        if recursive or "/" not in folder[len(prefix) :]:
            items.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": folder})
    return sorted(items, key=lambda item: str(item["path"]))


def _file_item(path: str, entry: Entry) -> dict[str, object]:
    item: dict[str, object] = {"type": "file", "oid": entry.oid, "size": entry.blob.size, "path": path}
    if entry.lfs:
        item["lfs"] = {"oid": entry.blob.sha256, "size": entry.blob.size, "pointerSize": len(entry.pointer)}
    return item

"""FakeHub's HTTP side: the Hub's download and listing protocol, as huggingface_hub uses it.

Routes:
    HEAD/GET /[datasets/|spaces/]{repo_id}/resolve/{revision}/{path}
    HEAD/GET /cdn/{sha256}?filename=...          (where LFS files redirect to)
    GET /api/{models|datasets|spaces}/{repo_id}[/revision/{revision}]
    GET /api/{models|datasets|spaces}/{repo_id}/tree/{revision}[/{path}]?recursive=...
    anything else under /api/                     404, harmlessly
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ._faults import Fault, FaultPlan
from ._hubstate import Blob, Entry, HubState, Repo
from ._requestlog import LiveRecord, RequestLog

_CHUNK = 256 * 1024
_REPO_PREFIXES = {"datasets": "dataset", "spaces": "space"}
_API_KINDS = {"models": "model", "datasets": "dataset", "spaces": "space"}


@dataclass(slots=True)
class HubCore:
    """What the server threads share: state, faults, log, tokens and addresses."""

    state: HubState
    tokens: frozenset[str]
    cdn: str
    page_size: int
    faults: FaultPlan = field(default_factory=FaultPlan)
    log: RequestLog = field(default_factory=RequestLog)
    stopping: threading.Event = field(default_factory=threading.Event)
    endpoint: str = ""
    cdn_base: str = ""
    connections: set[socket.socket] = field(default_factory=set)
    connections_lock: threading.Lock = field(default_factory=threading.Lock)


class HubServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server bound to loopback."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, port: int, core: HubCore, *, cdn_only: bool = False) -> None:
        self.core = core
        self.cdn_only = cdn_only
        super().__init__(("127.0.0.1", port), HubHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client goes away (that is what clients do); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Dropped(Exception):
    """The body was cut short on purpose (a drop fault)."""


class HubHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and a small body go out as two writes; no 40 ms stalls
    server: HubServer

    def setup(self) -> None:
        """Register the connection so stopping the hub can close it."""
        super().setup()
        with self.server.core.connections_lock:
            self.server.core.connections.add(self.connection)

    def finish(self) -> None:
        """Forget the connection."""
        with self.server.core.connections_lock:
            self.server.core.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; the request log is the record."""

    def do_GET(self) -> None:
        """Serve a GET."""
        self._handle(head=False)

    def do_HEAD(self) -> None:
        """Serve a HEAD."""
        self._handle(head=True)

    def do_POST(self) -> None:
        """Refuse writes: FakeHub is read-only over HTTP."""
        self.close_connection = True
        self._handle(head=False, allowed=False)

    do_PUT = do_DELETE = do_PATCH = do_POST

    # ---- the request cycle ---------------------------------------------------------------

    def _handle(self, *, head: bool, allowed: bool = True) -> None:
        core = self.server.core
        self._head = head
        self._completed = True
        target = unquote(self.path)
        self._record = core.log.begin(
            LiveRecord(
                method=self.command,
                path=target,
                authorized="Authorization" in self.headers,
                range=self.headers.get("Range"),
                port=self.server.server_address[1],
            )
        )
        try:
            fault = core.faults.take(self.command, target)
            if fault.latency:
                core.stopping.wait(fault.latency)
            if not allowed:
                self._error(405, "Method not allowed")
            elif fault.status is not None:
                retry = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                self._error(fault.status, f"Injected fault: HTTP {fault.status}", headers=retry)
            elif fault.body is not None:
                self._raw(200, fault.body, fault.content_type)
            elif fault.redirect_slash and not urlsplit(self.path).path.endswith("/"):
                parts = urlsplit(self.path)
                location = parts.path + "/" + (f"?{parts.query}" if parts.query else "")
                self._start(307, {"Location": location, "Content-Length": "0"})
            else:
                self._route(fault)
        except (_Dropped, OSError):
            self._completed = False
            self.close_connection = True
            _shutdown(self.connection)
        finally:
            core.log.finish(self._record, completed=self._completed)

    @property
    def _sent(self) -> int:
        return self._record.bytes_sent

    @_sent.setter
    def _sent(self, value: int) -> None:
        self._record.bytes_sent = value

    def _route(self, fault: Fault) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/cdn/"):
            self._serve_cdn(path, fault)
        elif self.server.cdn_only:
            self._error(404, "Not found")
        elif path.startswith("/api/"):
            self._serve_api(path.rstrip("/"))  # mirrors redirect API routes to a slashed path
        elif "/resolve/" in path:
            self._serve_resolve(path, fault)
        else:
            self._error(404, "Not found")

    # ---- responses -----------------------------------------------------------------------

    def _start(self, status: int, headers: Mapping[str, str]) -> None:
        self._record.status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _json(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._start(
            status,
            {
                **(headers or {}),
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
            },
        )
        if not self._head:
            self.wfile.write(body)
            self._sent += len(body)

    def _raw(self, status: int, body: bytes, content_type: str) -> None:
        self._start(status, {"Content-Type": content_type, "Content-Length": str(len(body))})
        if not self._head:
            self.wfile.write(body)
            self._sent += len(body)

    def _error(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        extra = dict(headers or {})
        extra["X-Error-Message"] = message
        if code is not None:
            extra["X-Error-Code"] = code
        self._json(status, {"error": message}, extra)

    def _blob(self, blob: Blob, headers: dict[str, str], fault: Fault) -> None:
        start, end, status = 0, blob.size - 1, 200
        wanted = self.headers.get("Range")
        if wanted:
            parsed = parse_range(wanted, blob.size)
            if isinstance(parsed, str):
                self._error(
                    416,
                    "Range not satisfiable",
                    headers={**headers, "Content-Range": f"bytes */{blob.size}"},
                )
                return
            if parsed is not None:
                start, end = parsed
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
        length = max(end - start + 1, 0)
        headers["Content-Length"] = str(length + fault.length_delta)
        headers["Content-Type"] = "application/octet-stream"
        if fault.length_delta:
            self.close_connection = True
        self._start(status, headers)
        if self._head or length == 0:
            return
        with blob.path.open("rb") as f:
            if _is_plain(fault):
                self._sent += self.connection.sendfile(f, start, length)
                if self._sent < length:
                    raise _Dropped
            else:
                self._send_with_faults(f, start, length, fault)

    def _send_with_faults(self, f: Any, start: int, length: int, fault: Fault) -> None:
        stopping = self.server.core.stopping
        limit = length if fault.drop_after is None else min(length, fault.drop_after)
        chunk = _CHUNK if fault.throttle is None else max(1, min(_CHUNK, fault.throttle // 20))
        stalled = False
        f.seek(start)
        while self._sent < limit:
            pausing = bool(fault.stall) or fault.hold is not None
            if pausing and not stalled and self._sent >= fault.stall_after:
                stalled = True
                stopping.wait(fault.stall)
                _hold(fault.hold, stopping)
            step = min(chunk, limit - self._sent)
            if pausing and not stalled:
                step = min(step, max(fault.stall_after - self._sent, 1))
            data = bytearray(f.read(step))
            if (
                fault.corrupt_at is not None
                and start + self._sent <= fault.corrupt_at < start + self._sent + len(data)
            ):
                data[fault.corrupt_at - start - self._sent] ^= 0xFF
            self.connection.sendall(data)
            self._sent += len(data)
            if fault.throttle is not None and stopping.wait(len(data) / fault.throttle):
                raise _Dropped
        if self._sent < length:
            raise _Dropped

    # ---- routes --------------------------------------------------------------------------

    def _repo(self, repo_type: str, repo_id: str) -> Repo | None:
        """The repo if this request may see it; otherwise send the Hub's error and return None."""
        core = self.server.core
        auth = self.headers.get("Authorization")
        token = auth.removeprefix("Bearer ").strip() if auth else None
        if token is not None and token not in core.tokens:
            self._error(401, "Invalid credentials in Authorization header")
            return None
        repo = core.state.repo(repo_type, repo_id)
        if repo is None or (repo.private and token is None):
            self._error(404 if token else 401, "Repository not found", code="RepoNotFound")
            return None
        if repo.gated and token is None:
            self._error(
                401,
                f"Access to {repo_id} is restricted; you must be authenticated",
                code="GatedRepo",
            )
            return None
        return repo

    def _serve_resolve(self, path: str, fault: Fault) -> None:
        prefix, _, rest = path.partition("/resolve/")
        repo_part = prefix.lstrip("/")
        repo_type = "model"
        head_segment, _, tail = repo_part.partition("/")
        if head_segment in _REPO_PREFIXES and tail:
            repo_type, repo_part = _REPO_PREFIXES[head_segment], tail
        rev_raw, _, file_raw = rest.partition("/")
        repo = self._repo(repo_type, unquote(repo_part))
        if repo is None:
            return
        with self.server.core.state.lock:
            commit = repo.resolve(unquote(rev_raw))
            tree = repo.commits[commit] if commit else None
        if commit is None or tree is None:
            self._error(404, f"Invalid rev id: {unquote(rev_raw)}", code="RevisionNotFound")
            return
        entry = tree.get(unquote(file_raw))
        if entry is None:
            self._error(404, "Entry not found", code="EntryNotFound", headers={"X-Repo-Commit": commit})
            return
        self._serve_entry(commit, unquote(file_raw), entry, fault)

    def _serve_entry(self, commit: str, filename: str, entry: Entry, fault: Fault) -> None:
        core = self.server.core
        headers = {"X-Repo-Commit": commit, "ETag": f'"{entry.etag}"', "Accept-Ranges": "bytes"}
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.blob.sha256}"'
            headers["X-Linked-Size"] = str(entry.blob.size)
        if entry.lfs and core.cdn != "none":
            location = (
                f"{core.cdn_base}/cdn/{entry.blob.sha256}?filename={quote(PurePosixPath(filename).name)}"
            )
            self._start(302, {**headers, "Location": location, "Content-Length": "0"})
            return
        self._blob(entry.blob, headers, fault)

    def _serve_cdn(self, path: str, fault: Fault) -> None:
        sha256 = path.removeprefix("/cdn/").split("/")[0]
        blob = self.server.core.state.blob(sha256)
        if blob is None:
            self._error(404, "No such object")
            return
        self._blob(blob, {"ETag": f'"{sha256}"', "Accept-Ranges": "bytes"}, fault)

    def _serve_api(self, path: str) -> None:
        kind, _, rest = path.removeprefix("/api/").partition("/")
        if kind not in _API_KINDS or not rest:
            self._error(404, "Not found")
            return
        repo_type = _API_KINDS[kind]
        if "/tree/" in rest:
            repo_part, _, tail = rest.partition("/tree/")
            rev_raw, _, sub = tail.partition("/")
            self._serve_tree(repo_type, unquote(repo_part), unquote(rev_raw), unquote(sub).strip("/"), path)
        else:
            repo_part, _, rev_raw = rest.partition("/revision/")
            self._serve_info(repo_type, unquote(repo_part), unquote(rev_raw) or "main")

    def _pinned_tree(
        self, repo_type: str, repo_id: str, revision: str
    ) -> tuple[Repo, str, Mapping[str, Entry]] | None:
        repo = self._repo(repo_type, repo_id)
        if repo is None:
            return None
        with self.server.core.state.lock:
            commit = repo.resolve(revision)
            tree = repo.commits.get(commit) if commit else None
        if commit is None or tree is None:
            self._error(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
            return None
        return repo, commit, tree

    def _serve_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        found = self._pinned_tree(repo_type, repo_id, revision)
        if found is None:
            return
        repo, commit, tree = found
        self._json(200, info_payload(repo, commit, tree))

    def _serve_tree(self, repo_type: str, repo_id: str, revision: str, sub: str, path: str) -> None:
        found = self._pinned_tree(repo_type, repo_id, revision)
        if found is None:
            return
        _, _, tree = found
        query = parse_qs(urlsplit(self.path).query)
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        items = tree_items(tree, sub, recursive=recursive)
        if sub and not items:
            self._error(404, f"{sub} does not exist", code="EntryNotFound")
            return
        cursor = int(query.get("cursor", ["0"])[0] or 0)
        size = self.server.core.page_size
        page = items[cursor : cursor + size]
        headers = {}
        if cursor + size < len(items):
            recursive_arg = "true" if recursive else "false"
            nxt = f"{self.server.core.endpoint}{path}?recursive={recursive_arg}&cursor={cursor + size}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        self._json(200, page, headers)


def _is_plain(fault: Fault) -> bool:
    return (
        fault.drop_after is None
        and not fault.stall
        and fault.hold is None
        and fault.throttle is None
        and fault.corrupt_at is None
    )


def _hold(event: threading.Event | None, stopping: threading.Event) -> None:
    """Wait until `event` is set; drop the connection if the server stops first."""
    while event is not None and not event.wait(0.05):
        if stopping.is_set():
            raise _Dropped


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


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
    item: dict[str, object] = {
        "type": "file",
        "oid": entry.oid,
        "size": entry.blob.size,
        "path": path,
    }
    if entry.lfs:
        item["lfs"] = {
            "oid": entry.blob.sha256,
            "size": entry.blob.size,
            "pointerSize": len(entry.pointer),
        }
    return item

"""A minimal Hub protocol as a script for `Hostile`, which each test then bends one way."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from modelfetch._hubapi.spec import git_blob_id

from ._server import Answer, Request

COMMIT = "0123456789abcdef0123456789abcdef01234567"
Tweak = Callable[[Request, Answer], Answer]


@dataclass
class MiniHub:
    """Files of one repo (`org/model`) at `COMMIT`, answered as the Hub would, then `tweak`ed.

    LFS files (`lfs=True` names) carry `X-Linked-Etag` (sha256) and `X-Linked-Size`.
    """

    files: dict[str, bytes]
    lfs: set[str] = field(default_factory=set)
    commit: str = COMMIT
    tweak: Tweak = lambda request, answer: answer

    def etag(self, path: str) -> str:
        data = self.files[path]
        return hashlib.sha256(data).hexdigest() if path in self.lfs else git_blob_id(data)

    def __call__(self, request: Request) -> Answer:
        return self.tweak(request, self._answer(request))

    def _answer(self, request: Request) -> Answer:
        path = unquote(urlsplit(request.path).path)
        if path.startswith("/api/models/org/model/revision/"):
            return _json({"id": "org/model", "sha": self.commit, "siblings": [], "private": False})
        if path.startswith("/api/models/org/model/tree/"):
            return _json(
                [
                    {"type": "file", "path": p, "size": len(d), "oid": self.etag(p)}
                    | ({"lfs": {"oid": self.etag(p), "size": len(d)}} if p in self.lfs else {})
                    for p, d in sorted(self.files.items())
                ]
            )
        if path.startswith("/org/model/resolve/"):
            name = path.split("/", 5)[5]
            if name not in self.files:
                return Answer(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": self.commit})
            headers = {"X-Repo-Commit": self.commit, "ETag": f'"{self.etag(name)}"'}
            if name in self.lfs:
                headers |= {
                    "X-Linked-Etag": f'"{self.etag(name)}"',
                    "X-Linked-Size": str(len(self.files[name])),
                }
            return Answer(200, headers, self.files[name])
        return Answer(404, {"X-Error-Code": "RepoNotFound"})


def _json(payload: object) -> Answer:
    return Answer(200, {"Content-Type": "application/json"}, json.dumps(payload).encode())


def is_head(request: Request) -> bool:
    """Whether the request is a metadata HEAD."""
    return request.method == "HEAD"

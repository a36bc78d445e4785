"""FakeHub's model of the Hub: repos, commits, branches, tags, and blobs on disk.

Blobs are stored once, named by sha256, and streamed from disk when served, so a
multi-GiB file costs no memory. Every change makes a new commit and moves a branch.
Thread-safe: the server threads read while tests write.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .._hubapi.spec import git_blob_id

LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".gguf",
    ".pt",
    ".pth",
    ".ckpt",
    ".onnx",
    ".h5",
    ".msgpack",
    ".npz",
)
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores files above 10 MiB with LFS
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Blob:
    """Content stored once on disk."""

    path: Path
    size: int
    sha256: str
    git_oid: str  # git's blob sha1 of the content


@dataclass(frozen=True, slots=True)
class Entry:
    """A file in a commit: a blob, stored plainly or with LFS."""

    blob: Blob
    lfs: bool

    @property
    def etag(self) -> str:
        """What the Hub sends as the file's etag: sha256 for LFS, git sha1 otherwise."""
        return self.blob.sha256 if self.lfs else self.blob.git_oid

    @property
    def pointer(self) -> bytes:
        """The git-lfs pointer file git stores in place of the content."""
        return (
            "version https://git-lfs.github.com/spec/v1\n"
            f"oid sha256:{self.blob.sha256}\nsize {self.blob.size}\n"
        ).encode()

    @property
    def oid(self) -> str:
        """The git oid the tree listing shows (of the pointer, for LFS files)."""
        return git_blob_id(self.pointer) if self.lfs else self.blob.git_oid


@dataclass(slots=True)
class Repo:
    """One repository: commits (each a full tree), branches and tags."""

    repo_type: str
    repo_id: str
    private: bool = False
    gated: bool = False
    commits: dict[str, Mapping[str, Entry]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def resolve(self, revision: str) -> str | None:
        """The commit a branch, tag or commit id names, or None."""
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        return revision if revision in self.commits else None


class HubState:
    """Every repo FakeHub serves, and the blob store behind them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs").mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._repos: dict[tuple[str, str], Repo] = {}
        self._blobs: dict[str, Blob] = {}
        self._counter = 0

    def repo(self, repo_type: str, repo_id: str) -> Repo | None:
        """The repo, or None."""
        with self.lock:
            return self._repos.get((repo_type, repo_id))

    def create_repo(self, repo_type: str, repo_id: str, *, private: bool, gated: bool) -> Repo:
        """Create an empty repo (with an empty initial commit on `main`), or update its flags."""
        with self.lock:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                repo = self._repos[(repo_type, repo_id)] = Repo(repo_type, repo_id)
                self._commit(repo, {}, "main")
            repo.private, repo.gated = private, gated
            return repo

    def blob(self, sha256: str) -> Blob | None:
        """A stored blob by its sha256."""
        with self.lock:
            return self._blobs.get(sha256)

    def store(self, data: bytes | os.PathLike[str] | BinaryIO) -> Blob:
        """Store content (bytes, a file path, or a binary file object) streaming, once."""
        tmp = self.root / "blobs" / f"incoming-{uuid.uuid4().hex}"
        sha256 = hashlib.sha256()
        size = 0
        with tmp.open("wb") as out:
            for chunk in _chunks(data):
                sha256.update(chunk)
                out.write(chunk)
                size += len(chunk)
        git = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
        with tmp.open("rb") as f:
            while chunk := f.read(_CHUNK):
                git.update(chunk)
        digest = sha256.hexdigest()
        final = self.root / "blobs" / digest
        with self.lock:
            if digest in self._blobs:
                tmp.unlink()
                return self._blobs[digest]
            os.replace(tmp, final)
            blob = self._blobs[digest] = Blob(final, size, digest, git.hexdigest())
            return blob

    def commit(self, repo: Repo, changes: Mapping[str, Entry | None], branch: str) -> str:
        """Apply `changes` (None deletes) on top of `branch` as a new commit; return its id."""
        with self.lock:
            return self._commit(repo, changes, branch)

    def _commit(self, repo: Repo, changes: Mapping[str, Entry | None], branch: str) -> str:
        parent = repo.branches.get(branch)
        tree = dict(repo.commits[parent]) if parent else {}
        for path, entry in changes.items():
            if entry is None:
                tree.pop(path, None)
            else:
                tree[path] = entry
        self._counter += 1
        seed = f"{repo.repo_type}/{repo.repo_id}\n{parent}\n{self._counter}\n" + "\n".join(
            f"{p} {e.etag}" for p, e in sorted(tree.items())
        )
        commit = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
        repo.commits[commit] = tree
        repo.branches[branch] = commit
        return commit


def _chunks(data: bytes | os.PathLike[str] | BinaryIO) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
    elif isinstance(data, os.PathLike):
        with Path(data).open("rb") as f:
            yield from iter(lambda: f.read(_CHUNK), b"")
    else:
        yield from iter(lambda: data.read(_CHUNK), b"")


def is_lfs_by_default(path: str, size: int) -> bool:
    """Whether the Hub would store this file with LFS (by extension or size)."""
    return path.endswith(LFS_SUFFIXES) or size > LFS_THRESHOLD

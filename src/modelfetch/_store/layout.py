"""The Hugging Face cache layout: pure path logic, plus the blocking reads and writes.

Layout (byte for byte what `huggingface_hub` writes, so each sees the other's files)::

    <cache>/models--org--name/blobs/<etag>                 the content
    <cache>/models--org--name/snapshots/<commit>/<path>    relative symlink to the blob
    <cache>/models--org--name/refs/<revision>              the commit a branch/tag points to
    <cache>/models--org--name/.no_exist/<commit>/<path>    "the Hub said: no such file"
    <cache>/.locks/models--org--name/<etag>.lock           filelock shared with huggingface_hub

The path functions are pure. The functions below the line do blocking I/O: call them
through a worker thread, never on the event loop.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

import filelock

from .._core.errors import StorageError
from .._core.types import AssetRef, RepoFile, RepoListing, RepoRef
from .._core.validate import is_commit


def repo_folder_name(repo_id: str, repo_type: str) -> str:
    """The folder a repo gets in the cache, e.g. `models--org--name`."""
    return "--".join([f"{repo_type}s", *repo_id.split("/")])


@dataclass(frozen=True, slots=True)
class CacheLayout:
    """Paths inside one Hugging Face cache folder. No I/O."""

    root: Path

    def storage(self, repo: RepoRef | AssetRef) -> Path:
        """The repo's folder, e.g. `<root>/models--org--name`."""
        return self.root / repo_folder_name(repo.repo_id, repo.repo_type)

    def blob(self, repo: RepoRef | AssetRef, etag: str) -> Path:
        """Where the blob with this etag lives."""
        return self.storage(repo) / "blobs" / etag

    def snapshot_dir(self, repo: RepoRef | AssetRef, commit: str) -> Path:
        """The folder of one commit's snapshot."""
        return self.storage(repo) / "snapshots" / commit

    def snapshot(self, ref: AssetRef, commit: str) -> Path:
        """The snapshot path of `ref`'s file at `commit`."""
        return self.snapshot_dir(ref, commit).joinpath(*ref.filename.split("/"))

    def ref(self, repo: RepoRef | AssetRef, revision: str) -> Path:
        """The file holding the commit a branch or tag points to."""
        return self.storage(repo) / "refs" / revision

    def no_exist(self, ref: AssetRef, commit: str) -> Path:
        """The marker saying `ref`'s file does not exist at `commit`."""
        return self.storage(ref).joinpath(".no_exist", commit, *ref.filename.split("/"))

    def lock(self, repo: RepoRef | AssetRef, etag: str) -> Path:
        """The lock file huggingface_hub takes while writing this blob."""
        return self.root / ".locks" / repo_folder_name(repo.repo_id, repo.repo_type) / f"{etag}.lock"


@dataclass(frozen=True, slots=True)
class CachedFile:
    """A file found in the cache."""

    path: Path
    commit: str
    etag: str
    size: int


# ---- blocking I/O below: run in a worker thread ------------------------------------------


def read_ref(layout: CacheLayout, repo: RepoRef | AssetRef, revision: str) -> str | None:
    """The commit `revision` pointed to when last fetched, or None if unknown."""
    if is_commit(revision):
        return revision
    try:
        commit = layout.ref(repo, revision).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return commit if is_commit(commit) else None


def find_cached(layout: CacheLayout, ref: AssetRef, commit: str | None = None) -> CachedFile | None:
    """Look `ref` up in the cache (at `commit`, else via its ref). None on a miss.

    A snapshot entry whose blob is missing (a dangling link) counts as a miss.
    """
    commit = commit or read_ref(layout, ref, ref.revision)
    if commit is None:
        return None
    path = layout.snapshot(ref, commit)
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    etag = Path(os.readlink(path)).name if path.is_symlink() else ""
    return CachedFile(path=path, commit=commit, etag=etag, size=st.st_size)


def list_cached(layout: CacheLayout, repo: RepoRef) -> RepoListing | None:
    """The files the cache holds for `repo`'s revision (via its ref), or None if none."""
    commit = read_ref(layout, repo, repo.revision)
    if commit is None:
        return None
    folder = layout.snapshot_dir(repo, commit)
    if not folder.is_dir():
        return None
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            etag = Path(os.readlink(path)).name if path.is_symlink() else ""
            files.append(RepoFile(path.relative_to(folder).as_posix(), path.stat().st_size, etag))
    return RepoListing(repo, commit, tuple(files))


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def write_new(path: Path, data: bytes) -> None:
    """Create `path` holding `data`: never an existing file, never through a symlink.

    `O_EXCL | O_NOFOLLOW`, so a file or link another local user planted at the name is
    refused (`FileExistsError`) instead of written through; the mode is 0o666 less the umask.
    """
    fd = os.open(path, _NEW_FILE, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes) -> None:
    """Atomically make `path` hold `data`, through a fresh unpredictable temporary name."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write_new(tmp, data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_ref(layout: CacheLayout, repo: RepoRef | AssetRef, revision: str, commit: str) -> None:
    """Record that `revision` points to `commit` (atomically; no-op for commit ids)."""
    if revision == commit or is_commit(revision):
        return
    path = layout.ref(repo, revision)
    with contextlib.suppress(FileNotFoundError):
        if path.read_text(encoding="utf-8") == commit:
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, commit.encode())


def mark_missing(layout: CacheLayout, ref: AssetRef, commit: str) -> None:
    """Leave the `.no_exist` marker huggingface_hub uses for a file absent at `commit`."""
    marker = layout.no_exist(ref, commit)
    marker.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        write_new(marker, b"")


def is_marked_missing(layout: CacheLayout, ref: AssetRef, commit: str) -> bool:
    """Whether a `.no_exist` marker says `ref`'s file is absent at `commit`."""
    return layout.no_exist(ref, commit).is_file()


_STALE = re.compile(r"(?:\.[0-9a-f]{8})?\.incomplete")


SWEEP_MIN_SIZE = 8 * 1024 * 1024
"""Blobs at least this big get their orphans swept: a sweep lists the blobs folder, which for
thousands of small files would cost more than the orphans (small ones at that) are worth."""


def remove_stale_partials(blob: Path) -> int:
    """Delete temporary files of `blob` left by killed downloads; call only under the blob's lock.

    Matches huggingface_hub's names (`<etag>.<8 hex>.incomplete`, and the older
    `<etag>.incomplete`), never modelfetch's resumable `<etag>.modelfetch.incomplete`. Under
    the lock nobody is writing them: they are orphans of a process that died. Returns how
    many were removed.
    """
    removed = 0
    for path in blob.parent.glob(f"{glob.escape(blob.name)}.*incomplete"):
        if _STALE.fullmatch(path.name[len(blob.name) :]):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


def sweep_stale_partials(blob: Path, lock_path: Path) -> int:
    """`remove_stale_partials` for a caller that does not hold the lock: only if it is free now.

    For `HubSource`, whose downloads take the lock inside huggingface_hub: afterwards, any
    orphans a killed process left beside the blob are swept, unless someone holds the lock.
    """
    if not any(
        _STALE.fullmatch(p.name[len(blob.name) :])
        for p in blob.parent.glob(f"{glob.escape(blob.name)}.*incomplete")
    ):
        return 0
    lock = filelock.FileLock(str(lock_path), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return 0  # busy: someone is downloading it; the next sweep will do
    try:
        return remove_stale_partials(blob)
    finally:
        lock.release()


def temp_blob_path(blob: Path) -> Path:
    """An unpredictable temporary name beside `blob` for a whole blob written without its lock.

    Readers never look at it, and no sweep of partials matches it (`.<etag>.<hex>.tmp`, not
    `<etag>.<hex>.incomplete`), so a process holding the blob's lock cannot delete it under
    the writer. A killed writer's orphan is removed by `modelfetch cache prune` once old.
    """
    return blob.with_name(f".{blob.name}.{uuid.uuid4().hex}.tmp")


ORPHAN_TEMP = re.compile(r"\.[^/]+\.[0-9a-f]{32}\.tmp")
"""The names `temp_blob_path` gives (an orphan if older than a write could take)."""


def publish_blob(tmp: Path, blob: Path) -> None:
    """Rename the finished temporary file `tmp` to `blob` (atomic: readers see all or nothing).

    Our temporary files are created with mode 0o666, so the kernel already gave them the
    cache's permissions less the umask (what huggingface_hub sets with a probe file and a
    chmod after the fact): nothing to change here.
    """
    os.replace(tmp, blob)


def link_snapshot(blob: Path, pointer: Path) -> None:
    """Point `pointer` at `blob` with a relative symlink (a copy where links fail).

    The link is made under a temporary name and renamed over `pointer`, so a reader sees
    either the old entry or the new one, never a missing or half-made one.
    """
    pointer.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(blob, pointer.parent)
    tmp = pointer.with_name(f".{pointer.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        os.symlink(target, tmp)
    except OSError:
        shutil.copyfile(blob, tmp)
    try:
        os.replace(tmp, pointer)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def ensure_room(folder: Path, needed: int, what: object) -> None:
    """Raise `StorageError` if the disk holding `folder` (or its nearest parent) lacks `needed` bytes."""
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return  # cannot tell: the write itself will report a full disk
    if needed > free:
        raise StorageError(
            f"Fetching {what}: {needed} more bytes are needed but {probe} has only {free} free; "
            "nothing was downloaded. Free space in the cache folder and retry."
        )

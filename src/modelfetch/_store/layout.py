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
import os
import re
import shutil
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._core.errors import StorageError
from .._core.types import AssetRef, ListedFile, RepoListing, RepoRef
from .._core.validate import is_commit
from .anchored import Folder, open_below, open_folder, parent_folder, relative_parts, unsafe, walk_files
from .locks import NoFollowLock


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
# Every access below the root goes through `anchored`: no link planted in the cache is
# followed (see that module); the root itself may be a link.


def blob_of_link(target: str, ups: int) -> str | None:
    """The blob name a snapshot link points at, if it is the relative link we (and huggingface_hub)
    make: `ups` times `../`, then `blobs/<name>`. Anything else (absolute, elsewhere) is None."""
    prefix = "../" * ups + "blobs/"
    target = target.replace(os.sep, "/")
    if not target.startswith(prefix):
        return None
    name = target[len(prefix) :]
    return name if name and "/" not in name and name not in (".", "..") else None


def _ref_parts(repo: RepoRef | AssetRef, revision: str) -> tuple[str, ...]:
    return (repo_folder_name(repo.repo_id, repo.repo_type), "refs", *revision.split("/"))


def _entry_parts(ref: AssetRef, commit: str, top: str = "snapshots") -> tuple[str, ...]:
    return (repo_folder_name(ref.repo_id, ref.repo_type), top, commit, *ref.filename.split("/"))


def read_ref(layout: CacheLayout, repo: RepoRef | AssetRef, revision: str) -> str | None:
    """The commit `revision` pointed to when last fetched, or None if unknown."""
    if is_commit(revision):
        return revision
    parts = _ref_parts(repo, revision)
    try:
        with open_folder(layout.root, parts[:-1], create=False) as folder:
            data = folder.read_small(parts[-1], _REF_LIMIT)
    except (FileNotFoundError, NotADirectoryError, StorageError):
        return None
    commit = data.decode("ascii", "replace").strip() if data else ""
    return commit if is_commit(commit) else None


_REF_LIMIT = 256


def _entry(folder: Folder, name: str, ups: int, blobs: Folder) -> tuple[str, int] | None:
    """A snapshot entry's blob name and size if it is ours, else None.

    Ours: a relative link to `blobs/<name>` whose blob is a regular file, or a regular file
    (huggingface_hub copies where links are not available; its etag is then unknown, "").
    """
    st = folder.lstat(name)
    if st is None:
        return None
    if stat.S_ISREG(st.st_mode):
        return "", st.st_size
    target = folder.readlink(name) if stat.S_ISLNK(st.st_mode) else None
    blob = None if target is None else blob_of_link(target, ups)
    st = None if blob is None else blobs.lstat(blob)
    if blob is None or st is None or not stat.S_ISREG(st.st_mode):
        return None
    return blob, st.st_size


def find_cached(layout: CacheLayout, ref: AssetRef, commit: str | None = None) -> CachedFile | None:
    """Look `ref` up in the cache (at `commit`, else via its ref). None on a miss.

    A snapshot entry whose blob is missing (a dangling link) counts as a miss, and so does
    anything that is not our own link into `blobs/` (a link elsewhere, a FIFO, a folder link
    on the way): we never return a path that resolves outside the cache.
    """
    commit = commit or read_ref(layout, ref, ref.revision)
    if commit is None:
        return None
    found = look_up_entry(layout, ref, commit)
    if found is None:
        return None
    return CachedFile(path=layout.snapshot(ref, commit), commit=commit, etag=found[0], size=found[1])


def look_up_entry(layout: CacheLayout, ref: AssetRef, commit: str) -> tuple[str, int] | None:
    """`ref`'s snapshot entry at `commit`: (blob name, size) if it is ours, else None. Reads only.

    Checked with `lstat` and `readlink` on each folder below the root, the entry and its blob,
    not with a descriptor walk: this runs for every file (a cache hit, a snapshot's listing),
    and each system call a worker thread makes is a chance to lose the GIL to the event loop.
    A read check cannot be made race-free anyway: the path we return is opened later, by
    the caller. What we write is never decided by it (writes walk with descriptors).
    """
    storage = os.path.join(os.fspath(layout.root), repo_folder_name(ref.repo_id, ref.repo_type))
    names = ref.filename.split("/")
    folder = storage
    try:
        if not stat.S_ISDIR(os.lstat(storage).st_mode):
            return None
        for part in ("snapshots", commit, *names[:-1]):
            folder = os.path.join(folder, part)
            if not stat.S_ISDIR(os.lstat(folder).st_mode):
                return None
        entry = os.path.join(folder, names[-1])
        st = os.lstat(entry)
        if stat.S_ISREG(st.st_mode):
            return "", st.st_size
        blob = blob_of_link(os.readlink(entry), len(names) + 1) if stat.S_ISLNK(st.st_mode) else None
        blobs = os.path.join(storage, "blobs")
        if blob is None or not stat.S_ISDIR(os.lstat(blobs).st_mode):
            return None
        st = os.lstat(os.path.join(blobs, blob))
    except OSError:  # missing, or not a folder on the way
        return None
    return (blob, st.st_size) if stat.S_ISREG(st.st_mode) else None


@contextlib.contextmanager
def repo_folder(layout: CacheLayout, repo: RepoRef | AssetRef, *, create: bool) -> Iterator[Folder]:
    """The repo's folder (`models--org--name`), opened without following links."""
    with open_folder(layout.root, (repo_folder_name(repo.repo_id, repo.repo_type),), create=create) as folder:
        yield folder


def list_cached(layout: CacheLayout, repo: RepoRef) -> RepoListing | None:
    """The files the cache holds for `repo`'s revision (via its ref), or None if none."""
    commit = read_ref(layout, repo, repo.revision)
    if commit is None:
        return None
    parts = relative_parts(layout.root, layout.snapshot_dir(repo, commit))
    files = []
    try:
        with (
            open_folder(layout.root, parts, create=False) as top,
            open_folder(layout.root, (parts[0], "blobs"), create=False) as blobs,
        ):
            for rel, folder, name in walk_files(top):
                found = _entry(folder, name, len(parts) - 1 + rel.count("/"), blobs)
                if found is not None:
                    files.append(ListedFile(rel, found[1], found[0]))
    except (FileNotFoundError, NotADirectoryError, StorageError):
        return None
    return RepoListing(repo, commit, tuple(sorted(files, key=lambda f: f.path)))


def write_new(folder: Folder, name: str, data: bytes) -> None:
    """Create `name` in `folder` holding `data`: never an existing file, never through a symlink.

    `O_EXCL | O_NOFOLLOW`, so a file or link another local user planted at the name is
    refused (`FileExistsError`) instead of written through; the mode is 0o666 less the umask.
    """
    fd = folder.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def replace_file(folder: Folder, name: str, data: bytes) -> None:
    """Atomically make `name` in `folder` hold `data`, through a fresh unpredictable temporary name."""
    tmp = f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        write_new(folder, tmp, data)
        folder.replace(tmp, name)
    finally:
        folder.unlink(tmp)


def write_ref(layout: CacheLayout, repo: RepoRef | AssetRef, revision: str, commit: str) -> None:
    """Record that `revision` points to `commit` (atomically; no-op for commit ids)."""
    if revision == commit or is_commit(revision):
        return
    parts = _ref_parts(repo, revision)
    with open_folder(layout.root, parts[:-1], create=True) as folder:
        if folder.read_small(parts[-1], _REF_LIMIT) != commit.encode():
            replace_file(folder, parts[-1], commit.encode())


def mark_missing(layout: CacheLayout, ref: AssetRef, commit: str) -> None:
    """Leave the `.no_exist` marker huggingface_hub uses for a file absent at `commit`."""
    parts = _entry_parts(ref, commit, ".no_exist")
    with open_folder(layout.root, parts[:-1], create=True) as folder, contextlib.suppress(FileExistsError):
        write_new(folder, parts[-1], b"")


def is_marked_missing(layout: CacheLayout, ref: AssetRef, commit: str) -> bool:
    """Whether a `.no_exist` marker says `ref`'s file is absent at `commit`."""
    parts = _entry_parts(ref, commit, ".no_exist")
    try:
        with open_folder(layout.root, parts[:-1], create=False) as folder:
            st = folder.lstat(parts[-1])
    except (FileNotFoundError, NotADirectoryError, StorageError):
        return False
    return st is not None and stat.S_ISREG(st.st_mode)


_STALE = re.compile(r"(?:\.[0-9a-f]{8})?\.incomplete")


SWEEP_MIN_SIZE = 8 * 1024 * 1024
"""Blobs at least this big get their orphans swept: a sweep lists the blobs folder, which for
thousands of small files would cost more than the orphans (small ones at that) are worth."""


def stale_partials(blobs: Folder, blob: str) -> list[str]:
    """Names of huggingface_hub's temporary files of blob `blob` in `blobs` (regular files only).

    Matches `<etag>.<8 hex>.incomplete` and the older `<etag>.incomplete`, never modelfetch's
    resumable `<etag>.modelfetch.incomplete`.
    """
    found = []
    for name in blobs.names():
        if name.startswith(blob + ".") and _STALE.fullmatch(name[len(blob) :]):
            st = blobs.lstat(name)
            if st is not None and stat.S_ISREG(st.st_mode):
                found.append(name)
    return found


def remove_stale_partials(layout: CacheLayout, blob: Path) -> int:
    """Delete temporary files of `blob` left by killed downloads; call only under the blob's lock.

    Under the lock nobody is writing them: they are orphans of a process that died. Returns
    how many were removed. Links and other odd files at those names are left alone.
    """
    try:
        with parent_folder(layout.root, blob, create=False) as (blobs, name):
            return sum(blobs.unlink(stale) for stale in stale_partials(blobs, name))
    except (FileNotFoundError, NotADirectoryError):
        return 0


_OURS = (".modelfetch.incomplete", ".modelfetch.incomplete.progress")


def leftovers(blobs: Folder, blob: str, *, listing: bool) -> list[str]:
    """Partial files of blob `blob` that are dead once the blob is published (regular files only).

    modelfetch's resumable partial and its watermark are looked up by name (cheap); with
    `listing`, the folder is listed for huggingface_hub's `<etag>.<8 hex>.incomplete` too.
    """
    found = []
    for suffix in _OURS:
        st = blobs.lstat(blob + suffix)
        if st is None:
            break  # no partial, so no watermark worth a look: one system call per small blob
        if stat.S_ISREG(st.st_mode):
            found.append(blob + suffix)
    return found + (stale_partials(blobs, blob) if listing else [])


def sweep_leftovers(blobs: Folder, blob: str, lock: NoFollowLock, *, listing: bool) -> int:
    """After blob `blob` was published: remove what killed downloads of it left, if its lock is free.

    For `HubSource`, whose downloads take the lock inside huggingface_hub, and after a small
    blob was stored without the lock. A download still running holds the lock and keeps its
    partial; a killed one's partial is dead weight once the blob exists. Returns how many
    files were removed.
    """
    if not leftovers(blobs, blob, listing=listing):
        return 0
    if not lock.try_acquire():
        return 0  # busy: someone is downloading it; the next sweep will do
    try:
        return sum(blobs.unlink(n) for n in leftovers(blobs, blob, listing=listing))
    finally:
        lock.release()


def temp_blob_name(blob: str) -> str:
    """An unpredictable temporary name beside blob `blob` for a whole blob written without its lock.

    Readers never look at it, and no sweep of partials matches it (`.<etag>.<hex>.tmp`, not
    `<etag>.<hex>.incomplete`), so a process holding the blob's lock cannot delete it under
    the writer. A killed writer's orphan is removed by `modelfetch cache prune` once old.
    """
    return f".{blob}.{uuid.uuid4().hex}.tmp"


ORPHAN_TEMP = re.compile(r"\.[^/]+\.[0-9a-f]{32}\.tmp")
"""The names `temp_blob_name` gives (an orphan if older than a write could take)."""


def link_snapshot(layout: CacheLayout, ref: AssetRef, commit: str, blob: str) -> Path:
    """Point `ref`'s entry at `commit` to blob `blob` (see `link_in`); the entry's path."""
    with repo_folder(layout, ref, create=True) as storage:
        link_in(storage, ref, commit, blob)
    return layout.snapshot(ref, commit)


def link_in(storage: Folder, ref: AssetRef, commit: str, blob: str) -> None:
    """In the open repo folder, point `ref`'s entry at `commit` to blob `blob` with a relative
    symlink (a copy where links fail).

    The link is made under a temporary name and renamed over the entry, so a reader sees
    either the old entry or the new one, never a missing or half-made one; whatever another
    user planted at the entry is replaced, never followed.
    """
    names = ref.filename.split("/")
    target = "../" * (len(names) + 1) + "blobs/" + blob  # the relative link huggingface_hub makes
    with open_below(storage, ("snapshots", commit, *names[:-1]), create=True) as folder:
        tmp = f".{names[-1]}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            folder.symlink(target, tmp)
        except OSError:  # no links here (some Windows setups): a copy, as huggingface_hub does
            with open_below(storage, ("blobs",), create=False) as blobs:
                _copy_blob(blobs, blob, folder, tmp)
        try:
            folder.replace(tmp, names[-1])
        except BaseException:
            folder.unlink(tmp)
            raise


def _copy_blob(blobs: Folder, blob: str, folder: Folder, name: str) -> None:
    source = blobs.open_regular(blob)
    if source is None:
        raise unsafe(Path(blobs.where, blob), "is not a regular file")
    fd = folder.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with open(source, "rb") as src, open(fd, "wb", closefd=False) as dst:
            shutil.copyfileobj(src, dst)
    finally:
        os.close(fd)


def check_folders(layout: CacheLayout, ref: AssetRef, commit: str | None) -> None:
    """Check the folders huggingface_hub will write `ref` into; `StorageError` if one is a link.

    For `HubSource`, whose writes are huggingface_hub's own and follow links: we cannot walk
    them with descriptors, so we make sure beforehand that no folder on their way is a link
    (`commit`, when known, adds the snapshot's folders). A neighbour who swaps one in after
    this check and before huggingface_hub writes still wins that race; docs/security.md says so.
    Missing folders are fine (huggingface_hub creates them); nothing is created here.
    """
    storage = repo_folder_name(ref.repo_id, ref.repo_type)
    folders: list[tuple[str, ...]] = [(storage, "blobs"), (storage, ".no_exist"), (".locks", storage)]
    if commit is not None:
        folders.append((storage, "snapshots", commit, *ref.filename.split("/")[:-1]))
    ref_path = relative_parts(layout.root, layout.ref(ref, ref.revision))
    folders.append(ref_path[:-1])
    for parts in folders:
        with contextlib.suppress(FileNotFoundError), open_folder(layout.root, parts, create=False):
            pass
    with (
        contextlib.suppress(FileNotFoundError),
        open_folder(layout.root, ref_path[:-1], create=False) as folder,
    ):
        st = folder.lstat(ref_path[-1])
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise unsafe(layout.ref(ref, ref.revision), "is not a regular file")


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

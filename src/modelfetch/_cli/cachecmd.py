"""`modelfetch cache rm | prune | verify`: what `hf cache` users reach for, never unsafe.

Removal follows huggingface_hub's own cache scan and deletion plan
(`scan_cache_dir().delete_revisions`), which deletes a blob only when no remaining
revision links to it, but we carry the plan out ourselves: huggingface_hub resolves links
while planning, so a snapshot entry planted as a link to a file of yours would put that
file in the plan. Each path is removed only if it has the plan's shape inside the cache
and is reached without following a link (`modelfetch._store.anchored`); anything else is
skipped and reported. Partial downloads are removed only when their lock can be taken at
once: a download still running in another process keeps its partial. A small blob's
temporary file (written without a lock, for milliseconds) is an orphan once it is an hour
old. `verify` hashes only regular files reached through our own links into `blobs/`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._core.errors import (
    AssetNotFoundError,
    IntegrityError,
    InvalidRequestError,
    RevisionNotFoundError,
    StorageError,
)
from .._core.validate import check_repo_id, check_revision
from .._store.anchored import Folder, open_folder, parent_folder, relative_parts, walk_files
from .._store.layout import ORPHAN_TEMP, blob_of_link
from .._store.locks import NoFollowLock
from .._store.partial import verify_stream

ORPHAN_AGE = 3600.0
"""Seconds after which a small blob's temporary file is an orphan of a killed process."""


@dataclass(frozen=True, slots=True)
class Report:
    """What a cache command did (or, with `dry_run`, would do), and whether all was well."""

    lines: tuple[str, ...]
    ok: bool = True


_TYPES = {
    "model": "model",
    "models": "model",
    "dataset": "dataset",
    "datasets": "dataset",
    "space": "space",
    "spaces": "space",
}


def split_target(target: str, repo_type: str | None) -> tuple[str, str]:
    """(repo type, repo id) of a command's target: `org/name`, or hf cache's `TYPE/org/name`."""
    head, _, rest = target.partition("/")
    if head in _TYPES and rest.count("/") == 1:
        kind = _TYPES[head]
        if repo_type is not None and repo_type != kind:
            raise InvalidRequestError(f"{target!r} names a {kind} but --repo-type says {repo_type}.")
        return kind, rest
    return repo_type or "model", target


def _scan(root: Path) -> Any:
    from huggingface_hub import scan_cache_dir  # noqa: PLC0415 - huggingface_hub reads HF_* at import

    return scan_cache_dir(root)


def _repo(report: Any, root: Path, repo_id: str, repo_type: str) -> Any:
    check_repo_id(repo_id)
    for repo in report.repos:
        if repo.repo_id == repo_id and repo.repo_type == repo_type:
            return repo
    raise AssetNotFoundError(
        f"{repo_type} {repo_id} is not in the cache at {root}; `modelfetch cache ls` lists what is."
    )


def _commit(repo: Any, revision: str) -> str:
    """The cached commit `revision` names (a commit id, or a ref such as `main`)."""
    check_revision(revision)
    for rev in repo.revisions:
        if rev.commit_hash == revision or revision in rev.refs:
            return str(rev.commit_hash)
    raise RevisionNotFoundError(
        f"{repo.repo_type} {repo.repo_id}: no cached revision {revision!r}; `modelfetch cache ls` lists them."
    )


# The shape each kind of path in huggingface_hub's plan must have below the root.
_SHAPES = {"repos": (1, None), "snapshots": (3, "snapshots"), "refs": (None, "refs"), "blobs": (3, "blobs")}


def _in_shape(parts: tuple[str, ...], kind: str) -> bool:
    depth, folder = _SHAPES[kind]
    if "--" not in parts[0] or (depth is not None and len(parts) != depth):
        return False
    return folder is None or (len(parts) >= 3 and parts[1] == folder)


def _execute(root: Path, plan: Any) -> list[str]:
    """Carry out huggingface_hub's deletion plan without following links; what was skipped."""
    skipped = []
    for kind in ("repos", "snapshots", "refs", "blobs"):  # huggingface_hub's order
        for path in sorted(getattr(plan, kind)):
            try:
                parts = relative_parts(root, Path(path))
                if not _in_shape(parts, kind):
                    raise StorageError(f"{path} is not where the cache keeps {kind}")
                with parent_folder(root, Path(path), create=False) as (folder, name):
                    if kind in ("repos", "snapshots"):
                        folder.rmtree(name)
                    elif _is_regular_or_link(folder, name, blob=kind == "blobs"):
                        folder.unlink(name)
                    else:
                        raise StorageError(f"{path} is not a regular file")
            except FileNotFoundError:
                continue
            except StorageError:
                skipped.append(f"skipped  {path!s}: outside the cache, or reached through a link")
    return skipped


def _is_regular_or_link(folder: Folder, name: str, *, blob: bool) -> bool:
    st = folder.lstat(name)
    if st is None:
        return False
    return stat.S_ISREG(st.st_mode) or (not blob and stat.S_ISLNK(st.st_mode))


def remove(root: Path, repo_id: str, repo_type: str, revision: str | None, *, dry_run: bool) -> Report:
    """Remove a repo, or one revision of it; blobs other revisions use stay."""
    root = root.resolve()  # once: huggingface_hub's plan names paths below the resolved root
    report = _scan(root)
    repo = _repo(report, root, repo_id, repo_type)
    commits = [_commit(repo, revision)] if revision else [str(rev.commit_hash) for rev in repo.revisions]
    plan = report.delete_revisions(*commits)
    skipped = [] if dry_run else _execute(root, plan)
    what = f"{repo_type} {repo_id}" + (f"@{revision}" if revision else "")
    verb = "would free" if dry_run else "freed"
    line = f"{what}: {len(commits)} revision(s) removed, {verb} {plan.expected_freed_size_str}"
    return Report((line, *skipped), ok=not skipped)


def prune(root: Path, *, dry_run: bool) -> Report:
    """Remove detached revisions (no ref points at them) and abandoned partial downloads."""
    root = root.resolve()
    report = _scan(root)
    detached = [str(rev.commit_hash) for repo in report.repos for rev in repo.revisions if not rev.refs]
    lines = []
    skipped: list[str] = []
    if detached:
        plan = report.delete_revisions(*detached)
        if not dry_run:
            skipped = _execute(root, plan)
        verb = "would free" if dry_run else "freed"
        lines.append(f"{len(detached)} detached revision(s): {verb} {plan.expected_freed_size_str}")
    partials, busy = _abandoned_partials(root, dry_run=dry_run)
    if partials:
        lines.append(f"{partials} abandoned partial download(s) {'to remove' if dry_run else 'removed'}")
    if busy:
        lines.append(f"{busy} partial download(s) kept: another process is downloading them")
    return Report((*(lines or ["nothing to prune"]), *skipped), ok=not skipped)


@contextlib.contextmanager
def _blob_folders(root: Path) -> Iterator[list[tuple[str, Folder]]]:
    """Every repo's `blobs` folder that is a real folder (a linked one is skipped), opened."""
    with contextlib.ExitStack() as stack:
        with open_folder(root, (), create=False) as top:
            repos = [name for name in top.names() if "--" in name]
        found = []
        for repo in repos:
            try:
                found.append((repo, stack.enter_context(open_folder(root, (repo, "blobs"), create=False))))
            except (FileNotFoundError, NotADirectoryError, StorageError):
                continue
        yield found


def _abandoned_partials(root: Path, *, dry_run: bool) -> tuple[int, int]:
    removed = busy = 0
    with _blob_folders(root) as folders:
        for repo, blobs in folders:
            for name in blobs.names():
                if not name.endswith(".incomplete") or not _is_regular_or_link(blobs, name, blob=True):
                    continue
                lock = NoFollowLock(root, root / ".locks" / repo / f"{name.split('.', 1)[0]}.lock")
                try:
                    taken = lock.try_acquire()
                except StorageError:
                    taken = False
                if not taken:
                    busy += 1
                    continue
                try:
                    if not dry_run:
                        blobs.unlink(name)
                        blobs.unlink(name + ".progress")
                    removed += 1
                finally:
                    lock.release()
            removed += _orphan_temps(blobs, dry_run=dry_run)
    return removed, busy


def _orphan_temps(blobs: Folder, *, dry_run: bool) -> int:
    """Remove the temporary files of small blobs that a killed process left (an hour old or more)."""
    removed = 0
    now = time.time()
    for name in blobs.names():
        if not ORPHAN_TEMP.fullmatch(name):
            continue
        st = blobs.lstat(name)
        if st is None or not stat.S_ISREG(st.st_mode) or now - st.st_mtime < ORPHAN_AGE:
            continue  # renamed into place meanwhile, not ours, or a write may still be under way
        if not dry_run:
            blobs.unlink(name)
        removed += 1
    return removed


def verify(root: Path, repo_id: str, repo_type: str, revision: str) -> Report:
    """Hash every file of a cached revision against the name of its blob."""
    root = root.resolve()
    report = _scan(root)
    repo = _repo(report, root, repo_id, repo_type)
    commit = _commit(repo, revision)
    storage = relative_parts(root, Path(repo.repo_path))[0]
    lines, bad, checked = [], 0, 0
    with (
        open_folder(root, (storage, "snapshots", commit), create=False) as top,
        open_folder(root, (storage, "blobs"), create=False) as blobs,
    ):
        for name, folder, entry in walk_files(top):
            problem = _check_entry(folder, entry, 2 + name.count("/"), blobs)
            checked += problem != "missing"
            if problem:
                what = "missing " if problem == "missing" else "corrupt "
                lines.append(f"{what} {name}: {_PROBLEMS.get(problem, problem)}")
                bad += 1
    lines.append(f"{repo_type} {repo_id}@{commit[:12]}: {checked} file(s) checked, {bad} problem(s)")
    if bad:
        lines.append(
            f"to repair: modelfetch snapshot {repo_id} --revision {commit} --force-download"
            + ("" if repo_type == "model" else f" --repo-type {repo_type}")
        )
    return Report(tuple(lines), ok=bad == 0)


_PROBLEMS = {
    "missing": "its blob is gone",
    "odd": "not a link into the cache's blobs/ nor a regular file (left alone, not read)",
}


def _check_entry(folder: Folder, name: str, ups: int, blobs: Folder) -> str:
    """Why a snapshot entry is not a good file ("missing", "odd", or the hash mismatch), or ""."""
    st = folder.lstat(name)
    if st is not None and stat.S_ISREG(st.st_mode):
        return ""  # a copy (where links are not available): no blob name to check against
    target = folder.readlink(name) if st is not None and stat.S_ISLNK(st.st_mode) else None
    blob = None if target is None else blob_of_link(target, ups)
    if blob is None:
        return "odd"
    fd = blobs.open_regular(blob)
    if fd is None:
        return "missing" if blobs.lstat(blob) is None else "odd"
    try:
        with open(fd, "rb") as f:
            verify_stream(f, os.fstat(f.fileno()).st_size, blob)  # a name that is no hash is not checked
    except IntegrityError as exc:
        return str(exc)
    return ""

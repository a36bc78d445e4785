"""`modelfetch cache rm | prune | verify`: what `hf cache` users reach for, never unsafe.

Removal goes through huggingface_hub's own cache scan and deletion plan
(`scan_cache_dir().delete_revisions`), which deletes a blob only when no remaining
revision links to it. Partial downloads are removed only when their lock can be taken at
once: a download still running in another process keeps its partial. A small blob's
temporary file (written without a lock, for milliseconds) is an orphan once it is an hour old.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock

from .._core.errors import AssetNotFoundError, IntegrityError, RevisionNotFoundError
from .._core.validate import check_repo_id, check_revision
from .._store.layout import ORPHAN_TEMP
from .._store.partial import verify_file

ORPHAN_AGE = 3600.0
"""Seconds after which a small blob's temporary file is an orphan of a killed process."""


@dataclass(frozen=True, slots=True)
class Report:
    """What a cache command did (or, with `dry_run`, would do), and whether all was well."""

    lines: tuple[str, ...]
    ok: bool = True


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


def remove(root: Path, repo_id: str, repo_type: str, revision: str | None, *, dry_run: bool) -> Report:
    """Remove a repo, or one revision of it; blobs other revisions use stay."""
    report = _scan(root)
    repo = _repo(report, root, repo_id, repo_type)
    commits = [_commit(repo, revision)] if revision else [str(rev.commit_hash) for rev in repo.revisions]
    plan = report.delete_revisions(*commits)
    if not dry_run:
        plan.execute()
    what = f"{repo_type} {repo_id}" + (f"@{revision}" if revision else "")
    verb = "would free" if dry_run else "freed"
    return Report((f"{what}: {len(commits)} revision(s) removed, {verb} {plan.expected_freed_size_str}",))


def prune(root: Path, *, dry_run: bool) -> Report:
    """Remove detached revisions (no ref points at them) and abandoned partial downloads."""
    report = _scan(root)
    detached = [str(rev.commit_hash) for repo in report.repos for rev in repo.revisions if not rev.refs]
    lines = []
    if detached:
        plan = report.delete_revisions(*detached)
        if not dry_run:
            plan.execute()
        verb = "would free" if dry_run else "freed"
        lines.append(f"{len(detached)} detached revision(s): {verb} {plan.expected_freed_size_str}")
    partials, busy = _abandoned_partials(root, dry_run=dry_run)
    if partials:
        lines.append(f"{partials} abandoned partial download(s) {'to remove' if dry_run else 'removed'}")
    if busy:
        lines.append(f"{busy} partial download(s) kept: another process is downloading them")
    return Report(tuple(lines) or ("nothing to prune",))


def _abandoned_partials(root: Path, *, dry_run: bool) -> tuple[int, int]:
    removed = busy = 0
    for blobs in sorted(root.glob("*--*/blobs")):
        for partial in sorted(blobs.glob("*.incomplete")):
            etag = partial.name.split(".", 1)[0]
            lock = filelock.FileLock(str(root / ".locks" / blobs.parent.name / f"{etag}.lock"), timeout=0)
            try:
                with lock:
                    if not dry_run:
                        for path in (partial, partial.with_name(partial.name + ".progress")):
                            path.unlink(missing_ok=True)
                    removed += 1
            except filelock.Timeout:
                busy += 1
        removed += _orphan_temps(blobs, dry_run=dry_run)
    return removed, busy


def _orphan_temps(blobs: Path, *, dry_run: bool) -> int:
    """Remove the temporary files of small blobs that a killed process left (an hour old or more)."""
    removed = 0
    now = time.time()
    for temp in sorted(blobs.glob(".*.tmp")):
        if not ORPHAN_TEMP.fullmatch(temp.name):
            continue
        try:
            if now - temp.lstat().st_mtime < ORPHAN_AGE:
                continue  # a write may still be under way
            if not dry_run:
                temp.unlink()
        except FileNotFoundError:
            continue  # renamed into place meanwhile
        removed += 1
    return removed


def verify(root: Path, repo_id: str, repo_type: str, revision: str) -> Report:
    """Hash every file of a cached revision against the name of its blob."""
    report = _scan(root)
    repo = _repo(report, root, repo_id, repo_type)
    commit = _commit(repo, revision)
    folder = Path(repo.repo_path) / "snapshots" / commit
    lines, bad, checked = [], 0, 0
    for entry in sorted(p for p in folder.rglob("*") if p.is_symlink() or p.is_file()):
        name = entry.relative_to(folder).as_posix()
        if not entry.exists():
            lines.append(f"missing  {name}: its blob is gone")
            bad += 1
            continue
        blob = entry.resolve()
        problem = _check_blob(blob)
        checked += 1
        if problem:
            lines.append(f"corrupt  {name}: {problem}")
            bad += 1
    lines.append(f"{repo_type} {repo_id}@{commit[:12]}: {checked} file(s) checked, {bad} problem(s)")
    return Report(tuple(lines), ok=bad == 0)


def _check_blob(blob: Path) -> str:
    """Why the blob's content does not match its name (sha256, or git's blob sha1), or ""."""
    try:
        verify_file(blob, blob.name)  # a name that is not a content hash is not checked
    except IntegrityError as exc:
        return str(exc)
    return ""

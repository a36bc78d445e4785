"""`modelfetch cache ls`: the cached repos (or revisions) as a table or one JSON document."""

from __future__ import annotations

import argparse
import fnmatch
import json
from pathlib import Path
from typing import Any

from .._core.text import printable


def listing(root: Path, args: argparse.Namespace) -> str:
    """The repos in the cache at `root` (huggingface_hub's own scan), as `args` ask."""
    if not root.is_dir():
        return (
            json.dumps({"cache": str(root), "repos": []}) if args.format == "json" else f"no cache at {root}"
        )
    from huggingface_hub import scan_cache_dir  # noqa: PLC0415 - huggingface_hub reads HF_* at import

    report = scan_cache_dir(root)
    repos = [r for r in report.repos if args.filter is None or fnmatch.fnmatchcase(r.repo_id, args.filter)]
    order = {
        "name": lambda r: (r.repo_type, r.repo_id),
        "size": lambda r: (-r.size_on_disk, r.repo_id),
        "modified": lambda r: (-r.last_modified, r.repo_id),
    }[args.sort]
    repos.sort(key=order)
    if args.format == "json":
        return json.dumps({"cache": str(root), "repos": [_repo_json(r) for r in repos]}, indent=2)
    rows = _revision_rows(repos) if args.revisions else _repo_rows(repos)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(printable(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.append(f"{len(repos)} repos, {report.size_on_disk_str} in {printable(str(root))}")
    lines += [f"warning: {printable(' '.join(str(w).split()))}" for w in report.warnings]
    return "\n".join(lines)


def _repo_rows(repos: list[Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("TYPE", "REPO", "REVISIONS", "FILES", "SIZE")]
    for repo in repos:
        refs = sorted({ref for rev in repo.revisions for ref in rev.refs}) or [
            rev.commit_hash[:8] for rev in repo.revisions
        ]
        rows.append((repo.repo_type, repo.repo_id, ",".join(refs), str(repo.nb_files), repo.size_on_disk_str))
    return rows


def _revision_rows(repos: list[Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("TYPE", "REPO", "COMMIT", "REFS", "FILES", "SIZE")]
    for repo in repos:
        for rev in sorted(repo.revisions, key=lambda r: r.commit_hash):
            refs = ",".join(sorted(rev.refs)) or "(detached)"
            rows.append(
                (repo.repo_type, repo.repo_id, rev.commit_hash, refs, str(rev.nb_files), rev.size_on_disk_str)
            )
    return rows


def _repo_json(repo: Any) -> dict[str, object]:
    return {
        "type": repo.repo_type,
        "repo": repo.repo_id,
        "size": repo.size_on_disk,
        "files": repo.nb_files,
        "last_modified": repo.last_modified,
        "revisions": [
            {
                "commit": rev.commit_hash,
                "refs": sorted(rev.refs),
                "files": rev.nb_files,
                "size": rev.size_on_disk,
            }
            for rev in sorted(repo.revisions, key=lambda r: r.commit_hash)
        ],
    }

"""Include/exclude glob filtering with `snapshot_download`'s exact semantics (pure).

Patterns are `fnmatch` globs matched case-sensitively against the whole repo path, where
`*` also matches `/`; a pattern ending in `/` means everything under that folder; `\\`
in a pattern or path is a separator. A path is kept if it matches any include pattern
(or there are none) and no exclude pattern.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase


def _normalise(patterns: Sequence[str] | str | None) -> list[str] | None:
    if patterns is None:
        return None
    if isinstance(patterns, str):
        patterns = [patterns]
    out = []
    for raw in patterns:
        pattern = raw.replace("\\", "/")
        out.append(pattern + "*" if pattern.endswith("/") else pattern)
    return out


def filter_paths(
    paths: Iterable[str],
    include: Sequence[str] | str | None = None,
    exclude: Sequence[str] | str | None = None,
) -> list[str]:
    """The paths kept by `include` and `exclude`, in their original order."""
    allow, deny = _normalise(include), _normalise(exclude)
    kept = []
    for path in paths:
        probe = path.replace("\\", "/")
        if allow is not None and not any(fnmatchcase(probe, p) for p in allow):
            continue
        if deny is not None and any(fnmatchcase(probe, p) for p in deny):
            continue
        kept.append(path)
    return kept

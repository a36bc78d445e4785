"""The in-memory memo of `CachedSource`: a bounded LRU plus pure freshness rules. No I/O.

Freshness:
    - a commit-pinned ref never goes stale (a commit's content cannot change);
    - a branch or tag ref is fresh for `ttl` seconds after it was resolved (0: never);
    - independently, an entry's file is re-checked on disk (off the loop) when it was last
      seen more than `recheck` seconds ago, so a file deleted behind our back is noticed
      while a hot ref costs no I/O at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .._core.lru import Lru
from .._core.types import AssetRef, Origin, ResolvedAsset
from .._core.validate import check_positive_int, check_seconds

DEFAULT_TTL = 300.0
DEFAULT_RECHECK = 1.0
DEFAULT_MAX_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long memo entries may be trusted.

    Attributes:
        ttl: seconds a branch/tag resolution stays fresh (0: always revalidate).
        recheck: seconds after which a memoised file's existence is checked again.
        max_entries: how many refs to remember (least recently used go first).
        negative_ttl: seconds a "no such file" answer for a branch/tag is remembered.
    """

    ttl: float = DEFAULT_TTL
    recheck: float = DEFAULT_RECHECK
    max_entries: int = DEFAULT_MAX_ENTRIES
    negative_ttl: float = DEFAULT_TTL

    def __post_init__(self) -> None:
        for name in ("ttl", "recheck", "negative_ttl"):
            check_seconds(name, getattr(self, name))
        check_positive_int("max_entries", self.max_entries)


@dataclass(slots=True)
class MemoEntry:
    """A remembered resolution: the asset as a memory hit, when stored, when last seen on disk."""

    asset: ResolvedAsset
    stored_at: float
    checked_at: float


def is_fresh(pinned: bool, stored_at: float, now: float, ttl: float) -> bool:
    """Whether a resolution made at `stored_at` may still be used at `now` (pinned: always)."""
    return pinned or now - stored_at < ttl


def needs_recheck(checked_at: float, now: float, recheck: float) -> bool:
    """Whether the file should be looked for on disk again before trusting the entry."""
    return now - checked_at >= recheck


class Memo:
    """A bounded LRU from `AssetRef` to `MemoEntry`, plus remembered misses."""

    def __init__(self, policy: CachePolicy) -> None:
        self.policy = policy
        self._entries: Lru[AssetRef, MemoEntry] = Lru(policy.max_entries)
        self._missing: Lru[AssetRef, float] = Lru(policy.max_entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, ref: AssetRef, now: float) -> MemoEntry | None:
        """The fresh entry for `ref` (touching it), or None; stale entries are dropped."""
        entry = self._entries.get(ref)
        if entry is None:
            return None
        if not is_fresh(ref.is_pinned, entry.stored_at, now, self.policy.ttl):
            self._entries.pop(ref)
            return None
        return entry

    def put(self, asset: ResolvedAsset, now: float) -> None:
        """Remember `asset` (as a memory hit from now on), evicting the least recently used."""
        self._missing.pop(asset.ref)
        self._entries.put(asset.ref, MemoEntry(replace(asset, origin=Origin.MEMORY), now, now))

    def forget(self, ref: AssetRef) -> None:
        """Drop whatever is remembered about `ref`."""
        self._entries.pop(ref)
        self._missing.pop(ref)

    def put_missing(self, ref: AssetRef, now: float) -> None:
        """Remember that `ref`'s file does not exist."""
        self._missing.put(ref, now)

    def is_missing(self, ref: AssetRef, now: float) -> bool:
        """Whether a remembered miss for `ref` still holds."""
        since = self._missing.get(ref)
        if since is None:
            return False
        if ref.is_pinned or now - since < self.policy.negative_ttl:
            return True
        self._missing.pop(ref)
        return False

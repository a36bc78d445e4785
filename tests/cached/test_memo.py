"""The memo's pure rules: freshness, recheck, LRU bound and remembered misses."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfetch import AssetRef, Origin, ResolvedAsset
from modelfetch._cached.memo import CachePolicy, Memo, is_fresh, needs_recheck

COMMIT = "c" * 40


def _asset(name: str, revision: str = "main") -> ResolvedAsset:
    ref = AssetRef("org/model", name, revision)
    return ResolvedAsset(ref, Path("/x") / name, COMMIT, 1, "e", Origin.NETWORK)


def test_pinned_refs_never_go_stale() -> None:
    """A commit never changes; a branch is fresh only within the TTL."""
    assert is_fresh(True, stored_at=0, now=1e9, ttl=0)
    assert is_fresh(False, stored_at=0, now=299, ttl=300)
    assert not is_fresh(False, stored_at=0, now=300, ttl=300)
    assert not is_fresh(False, stored_at=0, now=0, ttl=0)


def test_recheck_interval() -> None:
    """The file is looked for again once `recheck` seconds passed since it was last seen."""
    assert not needs_recheck(checked_at=10, now=10.5, recheck=1)
    assert needs_recheck(checked_at=10, now=11, recheck=1)


def test_entries_are_memory_hits_and_lru_bounded() -> None:
    """Stored assets come back with origin MEMORY; the least recently used is evicted first."""
    memo = Memo(CachePolicy(max_entries=2))
    a, b, c = _asset("a"), _asset("b"), _asset("c")
    memo.put(a, 0)
    memo.put(b, 0)
    hit = memo.get(a.ref, 1)
    assert hit is not None
    assert hit.asset.origin is Origin.MEMORY
    memo.put(c, 2)
    assert memo.get(b.ref, 2) is None
    assert memo.get(a.ref, 2) is not None
    assert len(memo) == 2


def test_stale_branch_entries_are_dropped() -> None:
    """Past the TTL a branch entry is gone; a pinned one stays."""
    memo = Memo(CachePolicy(ttl=10))
    branch, pinned = _asset("a"), _asset("a", COMMIT)
    memo.put(branch, 0)
    memo.put(pinned, 0)
    assert memo.get(branch.ref, 11) is None
    assert memo.get(pinned.ref, 11) is not None


def test_remembered_misses_expire_for_branches_only() -> None:
    """A miss at a commit is permanent; at a branch it lasts negative_ttl; a success clears it."""
    memo = Memo(CachePolicy(negative_ttl=5))
    branch, pinned = AssetRef("org/model", "x"), AssetRef("org/model", "x", COMMIT)
    memo.put_missing(branch, 0)
    memo.put_missing(pinned, 0)
    assert memo.is_missing(branch, 4)
    assert not memo.is_missing(branch, 5)
    assert memo.is_missing(pinned, 1e9)
    memo.put(ResolvedAsset(pinned, Path("/x"), COMMIT, 1, "e", Origin.DISK), 1)
    assert not memo.is_missing(pinned, 2)


def test_policy_rejects_nonsense() -> None:
    """Negative durations and an empty memo are refused."""
    with pytest.raises(ValueError, match="ttl"):
        CachePolicy(ttl=-1)
    with pytest.raises(ValueError, match="max_entries"):
        CachePolicy(max_entries=0)

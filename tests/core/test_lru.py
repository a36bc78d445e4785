"""Lru: the one bounded memo (CachedSource's memo and listings, the sources' listing memos)."""

from __future__ import annotations

import pytest

from modelfetch import InvalidRequestError
from modelfetch._core.lru import Lru


def test_the_least_recently_used_goes_first() -> None:
    """get() and put() refresh a key; past capacity the stalest key is forgotten."""
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recent
    lru.put("c", 3)
    assert lru.get("b") is None
    assert (lru.get("a"), lru.get("c"), len(lru)) == (1, 3, 2)
    assert lru.pop("a") == 1
    assert lru.pop("a") is None


def test_capacity_must_be_positive() -> None:
    """A zero capacity is an InvalidRequestError."""
    with pytest.raises(InvalidRequestError, match="capacity"):
        Lru(0)

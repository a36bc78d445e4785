"""Units and policies the tests share (one definition each)."""

from __future__ import annotations

from modelfetch import RetryPolicy

MiB = 1024 * 1024

FAST_RETRY = RetryPolicy(base=0.01, cap=0.05, total=30)
"""Retries as often as the default policy, without the waiting: for faults that clear."""

SHORT_RETRY = RetryPolicy(attempts=2, base=0.01, cap=0.01, total=10)
"""One retry, quickly: for answers that stay wrong, so a test fails fast."""

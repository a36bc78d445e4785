"""The transfer's pure pieces: the watermark over out-of-order ranges, body-length checks."""

from __future__ import annotations

import pytest

from modelfetch import AssetRef, IntegrityError
from modelfetch._core.retry import Transient as Retry
from modelfetch._http.transfer import check_complete
from modelfetch._store.pull import advance_watermark

REF = AssetRef("org/model", "w.bin")


def test_the_watermark_moves_over_the_contiguous_prefix_only() -> None:
    """Ranges 10 and 30 done (20 not yet): from 10 the watermark stops at 20, then runs to the end."""
    done = {10, 30}
    assert advance_watermark(done, 10, 10, 35) == 20
    assert done == {30}  # what is left waits for range 20
    done.add(20)
    assert advance_watermark(done, 20, 10, 35) == 35  # the last range is short: capped at the size
    assert done == set()


def test_nothing_moves_until_the_range_at_the_watermark_arrives() -> None:
    """A later range alone does not move the watermark."""
    done = {20}
    assert advance_watermark(done, 10, 10, 35) == 10
    assert done == {20}


def test_body_length_checks() -> None:
    """A short body is retried (Retry), a long one refused (IntegrityError), an exact one passes."""
    check_complete(REF, 10, 10)
    check_complete(REF, 7, None)
    with pytest.raises(Retry):
        check_complete(REF, 9, 10)
    with pytest.raises(IntegrityError, match="longer"):
        check_complete(REF, 11, 10)

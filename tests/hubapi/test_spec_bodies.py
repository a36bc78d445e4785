"""`judge_body`: the one check of a file body's answer every engine and the guard make."""

from __future__ import annotations

import pytest

from modelfetch._hubapi.spec import judge_body


@pytest.mark.parametrize(
    ("status", "content_range", "encoding", "first", "last", "verdict"),
    [
        (200, None, None, 0, None, "whole"),
        (200, None, "identity", 100, 199, "whole"),  # a server that ignores Range
        (200, None, "gzip", 0, None, "encoded"),
        (206, "bytes 0-99/1000", " GZIP ", 0, 99, "encoded"),
        (206, "bytes 100-199/1000", None, 100, 199, "part"),
        (206, "bytes 100-150/1000", None, 100, 199, "part"),  # shorter: the caller asks for the rest
        (206, "bytes 100-999/1000", None, 100, None, "part"),
        (206, "bytes 101-199/1000", None, 100, 199, "wrong-range"),
        (206, "bytes 100-200/1000", None, 100, 199, "wrong-range"),  # past what was asked
        (206, None, None, 100, 199, "wrong-range"),
        (206, "bytes /etc/passwd", None, 0, None, "wrong-range"),
        (304, None, None, 0, None, "not-a-body"),
    ],
)
def test_every_answer_is_judged_once_and_alike(
    status: int, content_range: str | None, encoding: str | None, first: int, last: int | None, verdict: str
) -> None:
    """Encoding first, then the status, then the span against what was asked."""
    assert judge_body(status, content_range, encoding, first, last) == verdict

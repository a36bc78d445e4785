"""FakeHub's record of every request it answered, for assertions in tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One answered request. Tokens are never recorded, only whether one was sent.

    Attributes:
        method: `GET`, `HEAD`, ...
        path: the request target, percent-decoded (path and query).
        status: the status code sent.
        bytes_sent: body bytes written to the socket.
        authorized: whether an `Authorization` header was present.
        range: the `Range` header, if any.
        completed: False when the connection ended before the whole body was sent.
        port: the server port that answered (the hub's, or its separate CDN's).
    """

    method: str
    path: str
    status: int
    bytes_sent: int
    authorized: bool
    range: str | None
    completed: bool
    port: int


class RequestLog:
    """A thread-safe list of `RequestRecord`s that tests can wait on."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._changed = threading.Condition()

    def append(self, record: RequestRecord) -> None:
        """Add a record and wake waiters."""
        with self._changed:
            self._records.append(record)
            self._changed.notify_all()

    def snapshot(self) -> list[RequestRecord]:
        """A copy of every record so far, oldest first."""
        with self._changed:
            return list(self._records)

    def clear(self) -> None:
        """Forget every record."""
        with self._changed:
            self._records.clear()

    def wait_for(self, predicate: Callable[[list[RequestRecord]], bool], timeout: float) -> bool:
        """Block until `predicate(records)` holds (True) or `timeout` seconds pass (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self._records), timeout)


def count(records: list[RequestRecord], method: str | None, substring: str) -> int:
    """How many records have `method` (any if None) and a path containing `substring`."""
    wanted = method.upper() if method else None
    return sum(1 for r in records if (wanted is None or r.method == wanted) and substring in r.path)

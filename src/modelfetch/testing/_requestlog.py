"""FakeHub's record of every request it answered, for assertions in tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request. Tokens are never recorded, only whether one was sent.

    A record exists from the moment the request arrives (so a client that has its answer
    can always count it); `finished` turns True when the answer has been fully sent or
    cut short, and only then are `bytes_sent` and `completed` final.

    Attributes:
        method: `GET`, `HEAD`, ...
        path: the request target, percent-decoded (path and query).
        status: the status code sent (0 until the headers are sent).
        bytes_sent: body bytes written to the socket.
        authorized: whether an `Authorization` header was present.
        range: the `Range` header, if any.
        completed: True once the whole answer was sent; False while sending or if cut short.
        port: the server port that answered (the hub's, or its separate CDN's).
        finished: whether the server is done with this request.
    """

    method: str
    path: str
    status: int
    bytes_sent: int
    authorized: bool
    range: str | None
    completed: bool
    port: int
    finished: bool = True


@dataclass(slots=True)
class LiveRecord:
    """The mutable record a server thread fills in while it answers."""

    method: str
    path: str
    authorized: bool
    range: str | None
    port: int
    status: int = 0
    bytes_sent: int = 0
    completed: bool = False
    finished: bool = False

    def freeze(self) -> RequestRecord:
        """An immutable copy."""
        return RequestRecord(
            self.method,
            self.path,
            self.status,
            self.bytes_sent,
            self.authorized,
            self.range,
            self.completed,
            self.port,
            self.finished,
        )


class RequestLog:
    """A thread-safe list of `RequestRecord`s that tests can wait on."""

    def __init__(self) -> None:
        self._records: list[LiveRecord] = []
        self._changed = threading.Condition()

    def begin(self, record: LiveRecord) -> LiveRecord:
        """Log a request as it arrives."""
        with self._changed:
            self._records.append(record)
        return record

    def finish(self, record: LiveRecord, *, completed: bool) -> None:
        """Mark a request answered (or cut short) and wake waiters."""
        with self._changed:
            record.completed = completed
            record.finished = True
            self._changed.notify_all()

    def snapshot(self) -> list[RequestRecord]:
        """A copy of every record so far, oldest first."""
        with self._changed:
            return [r.freeze() for r in self._records]

    def clear(self) -> None:
        """Forget every record."""
        with self._changed:
            self._records.clear()

    def wait_for(self, predicate: Callable[[list[RequestRecord]], bool], timeout: float) -> bool:
        """Block until `predicate(records)` holds (True) or `timeout` seconds pass (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate([r.freeze() for r in self._records]), timeout)


def count(records: list[RequestRecord], method: str | None, substring: str) -> int:
    """How many records have `method` (any if None) and a path containing `substring`."""
    wanted = method.upper() if method else None
    return sum(1 for r in records if (wanted is None or r.method == wanted) and substring in r.path)

"""Pulling a body into the cache: chunks from any blocking stream into a `PartialBlob`. Blocking.

One routine for every byte path that runs in worker threads — the Hub engine (obstore's
HTTP store) and the mirror (obstore's bucket store) alike: `pull` writes chunks at their
offsets, moves the watermark over what is contiguous, never writes past the announced
length, and stops writing the moment its `Gate` closes. `HashFollower` hashes the same
chunks from memory in a second thread, so receiving and hashing overlap (on two cores this
is what lets one stream reach curl's rate: measured in docs/benchmarks.md).

Why a gate: a worker thread cannot be interrupted. When the task that waits for it is
cancelled, it is abandoned (`anyio.to_thread.run_sync(..., abandon_on_cancel=True)`), and
the task closes the gate before it returns; the thread's next write sees the gate closed
and stops, so nothing is written after the call that started it has returned.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from .._core.errors import IntegrityError
from .._hubapi.spec import plan_ranges
from .partial import PartialBlob

_FOLLOW_DEPTH = 16  # chunks a hasher may fall behind before the receiver waits (each one is live memory)
_END: Any = object()


class Abandoned(Exception):  # ends an abandoned worker thread; nobody waits for it any more
    """The task that started this transfer has gone; nothing more may be written."""


class Gate:
    """Lets worker threads write only while the task that started them still waits for them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = True

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the gate open for one write; raise `Abandoned` if it is closed."""
        with self._lock:
            if not self._open:
                raise Abandoned
            yield

    def close(self) -> None:
        """Let no further write start; returns once a write in progress has finished."""
        with self._lock:
            self._open = False

    @property
    def is_open(self) -> bool:
        """Whether writes are still allowed."""
        return self._open


class Tally:
    """Bytes received so far, counted by worker threads and read by the event loop."""

    def __init__(self, start: int = 0) -> None:
        self._lock = threading.Lock()
        self.value = start
        self.answered = False  # the status line and headers have arrived

    def add(self, n: int) -> None:
        """Count `n` more bytes."""
        with self._lock:
            self.value += n

    def set(self, value: int) -> None:
        """Start counting again from `value` (a retry resumes at the watermark)."""
        with self._lock:
            self.value = value


class HashFollower:
    """Hashes `partial`'s chunks from memory in its own thread, in order, behind the writer.

    `feed` is called by the writer after each contiguous write; `run` is the follower
    thread's body. A chunk that is not next in line (which a single stream never makes)
    stops the following: `PartialBlob.verify` reads the rest back from disk.
    """

    def __init__(self, partial: PartialBlob, gate: Gate) -> None:
        self._partial, self._gate = partial, gate
        self._queue: queue.Queue[Any] = queue.Queue(_FOLLOW_DEPTH)
        self._following = True
        partial.inline_hash = False

    def feed(self, offset: int, chunk: memoryview) -> None:
        """Queue a chunk written at `offset` (waits while the follower is `_FOLLOW_DEPTH` behind)."""
        if self._following:
            self._queue.put((offset, chunk))

    def finish(self) -> None:
        """No more chunks: let `run` return once it has hashed what is queued (writer's thread)."""
        self._queue.put(_END)

    def stop(self) -> None:
        """Stop following without waiting (the event loop's side, after abandoning the writer)."""
        self._following = False
        with contextlib.suppress(queue.Full):  # full: the follower is busy and will see the writer's end
            self._queue.put_nowait(_END)

    def run(self) -> None:
        """Hash queued chunks until `finish` (or until the gate closes)."""
        while (item := self._queue.get()) is not _END:
            if self._following and self._gate.is_open:
                self._following = self._partial.hash_chunk(*item)


def pull(
    partial: PartialBlob,
    chunks: Iterable[Any],
    offset: int,
    *,
    limit: int | None,
    gate: Gate,
    tally: Tally,
    contiguous: bool = True,
    follower: HashFollower | None = None,
    check: Callable[[int], None] | None = None,
) -> int:
    """Write `chunks` (buffers) into `partial` from `offset`; the offset after the last byte written.

    Args:
        limit: the most bytes the body may have (None: unknown). A longer body has exactly
            `limit` bytes written, then raises `IntegrityError`.
        contiguous: the watermark follows each write (a stream from the watermark); False
            for one of several parallel ranges, whose caller moves the watermark.
        follower: hashes contiguous chunks in another thread (`HashFollower`).
        check: called with each chunk's size before it is written; may raise (too slow).

    Whatever the stream raises propagates after every byte that arrived before it was
    written: a retry resumes exactly there. Raises `Abandoned` once `gate` is closed.
    """
    position = offset
    written = 0
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        over = limit is not None and written + len(view) > limit
        if over:
            assert limit is not None
            view = view[: limit - written]
        if check is not None:
            check(len(view))
        with gate.writing():
            partial.write_at(position, view, position + len(view) if contiguous else None)
        if follower is not None:
            follower.feed(position, view)
        position += len(view)
        written += len(view)
        tally.add(len(view))
        if over:
            raise IntegrityError(f"the body is longer than the {limit} bytes announced")
    return position


RangeFetch = Callable[[int, int], Awaitable[None]]
"""Fetches bytes `first..last` (inclusive) of a file into its partial blob, or raises."""

Thread = Callable[..., Awaitable[Any]]
"""Runs a blocking call in a worker thread."""


def advance_watermark(done: set[int], watermark: int, chunk: int, size: int) -> int:
    """The new watermark once the ranges starting at `done` have arrived. Pure, but consumes `done`.

    Ranges are `chunk` bytes from their start (the last one shorter); the watermark moves
    over the contiguous run of finished ranges that starts at it, and no further.
    """
    while watermark in done:
        done.discard(watermark)
        watermark = min(watermark + chunk, size)
    return watermark


async def parallel_ranges(
    partial: PartialBlob,
    start: int,
    size: int,
    chunk: int,
    connections: int,
    fetch_range: RangeFetch,
    thread: Thread,
) -> None:
    """Fetch bytes `start..size` of a file as ranges, `connections` at once, on any engine.

    Ranges land out of order; the watermark moves over the contiguous prefix only
    (`advance_watermark`) and the hash follows it from the page cache as it moves, so a
    failure resumes from the watermark and little is left to hash at the end.
    """
    pending = plan_ranges(start, size, chunk)
    count = -(-(size - start) // chunk)
    partial.inline_hash = False  # writes now land out of order; hash_through follows the watermark
    done: set[int] = set()
    watermark = start
    marking = anyio.Lock()
    failures: list[BaseException] = []

    async def advance(first: int) -> None:
        nonlocal watermark
        done.add(first)
        async with marking:  # one watermark write at a time, in order
            moved = advance_watermark(done, watermark, chunk, size)
            if moved != watermark:
                watermark = moved
                await thread(partial.set_watermark, moved)
                tg.start_soon(hash_through, moved)  # overlap hashing with the transfer

    async def hash_through(upto: int) -> None:
        try:
            await thread(partial.hash_through, upto)
        except Exception as exc:
            failures.append(exc)
            tg.cancel_scope.cancel()

    async def worker() -> None:
        while not failures and (span := next(pending, None)) is not None:
            try:
                await fetch_range(*span)
                await advance(span[0])
            except Exception as exc:  # the first failure stops every worker
                failures.append(exc)
                tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        for _ in range(min(connections, count)):
            tg.start_soon(worker)
    if failures:
        raise failures[0]

"""A large blob in the bucket as parts: published while it arrives, read while it is published.

A blob larger than `MirrorOptions.part_size` is not only uploaded whole after its fetch: the
node fetching it from upstream publishes it part by part, `parts/<etag>/<start>-<end>` (one
conditional-create PUT each, so a part is either absent or complete), as its bytes land in
that node's cache. Nodes waiting for the blob read the parts that exist into their own
partial file while the rest is still coming, and a node that takes over a lapsed claim
resumes upstream after the last part it could read. The parts are the blob's copy in the
bucket: no whole `blobs/<etag>` is written for it as well (that would write it twice).

Everything here blocks (run it in worker threads). Parts read from the bucket are untrusted:
each is checked against the size its key names, and the whole blob against its etag before
anything is published (`PartialBlob.verify`).
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import threading
from collections.abc import Callable

from .._core.background import lower_this_thread
from .._core.types import AssetRef, ListedFile
from .._store.anchored import open_regular
from .._store.layout import CacheLayout
from .._store.partial import PartialBlob, partial_paths, peek_watermark
from .._store.pull import Abandoned, Gate, Tally, pull
from .bucket import Bucket, BucketUnavailableError
from .keys import blob_key, decode_part_key, part_key, parts_prefix, wanted_key

log = logging.getLogger("modelfetch.mirror")

_MAX_PARTS = 1000  # one listing page: a huge blob gets larger parts instead of more
_FOLLOW_EVERY = 0.1  # seconds between looks at the watermark of the file being fetched
_WANTED_EVERY = 0.2  # seconds between looks for a node waiting for the blob
_SENDERS = 4  # parts of one blob sent at once: radosgw takes 172 MiB/s with 1, 288 with 4


def plan(size: int, part_size: int) -> list[tuple[int, int]]:
    """The byte ranges a blob of `size` bytes is published in: `part_size` each (larger for a
    blob that would otherwise have more than 1,000 parts), the last one shorter."""
    step = max(part_size, -(-size // _MAX_PARTS))
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def listed_parts(bucket: Bucket, entry: ListedFile) -> list[tuple[int, int, str]]:
    """The bucket's parts of `entry`'s blob as (start, end, key), sorted: only keys that name a
    range inside the blob and objects exactly as long as that range."""
    found: dict[int, tuple[int, int, str]] = {}
    for key, size in bucket.list(parts_prefix(entry.etag)):
        span = decode_part_key(key, entry.etag, entry.size)
        if span is not None and span[1] - span[0] == size:
            found.setdefault(span[0], (span[0], span[1], key))
    return sorted(found.values())


def complete_in(bucket: Bucket, entry: ListedFile) -> bool:
    """Whether the bucket holds all of `entry`'s blob: `blobs/<etag>`, or parts covering it."""
    if bucket.exists(blob_key(entry.etag)):
        return True
    reached = 0
    for first, end, _ in listed_parts(bucket, entry):
        if first <= reached < end:
            reached = end
    return reached == entry.size


def pull_parts(
    bucket: Bucket,
    partial: PartialBlob,
    entry: ListedFile,
    start: int,
    check: Callable[[int], None],
    parts: list[tuple[int, int, str]],
) -> int:
    """Write the `parts` (as `listed_parts` gave them) that continue `partial` from `start` into
    it; the new watermark.

    Stops at the first byte no part covers, or at a part that is gone or shorter than listed.
    """
    starts = [p[0] for p in parts]
    position = start
    while position < entry.size:
        index = bisect.bisect_right(starts, position) - 1
        if index < 0 or parts[index][1] <= position:
            break
        first, end, key = parts[index]
        chunks = bucket.stream(key, position - first)
        if chunks is None:
            break
        reached = pull(
            partial, chunks, position, limit=end - position, gate=Gate(), tally=Tally(position), check=check
        )
        if reached != end:
            break
        position = end
    return position


class PartPublisher:
    """Publishes one blob's parts while this node fetches it from upstream, then the rest.

    `start` follows the fetch from a thread of its own. Once another node has said it waits
    for the blob (`wanted/<etag>`), every part below the watermark the writer of the local
    partial file records is read back and stored; until then nothing is sent, so a node
    fetching alone does not slow its own fetch with uploads. `finish` (after the blob is
    published locally) stores the remaining parts from the blob itself. Parts a node that
    fetched earlier (and died) already stored are not sent again. Parts go up `_SENDERS` at
    a time, and one is in memory only while it holds one of the shared `slots`.
    """

    def __init__(
        self,
        bucket: Bucket,
        layout: CacheLayout,
        ref: AssetRef,
        entry: ListedFile,
        part_size: int,
        *,
        slots: threading.Semaphore,
        sent: Callable[[int], None],
    ) -> None:
        self._bucket = bucket
        self._root = layout.root
        self._blob = layout.blob(ref, entry.etag)
        self._etag = entry.etag
        self._todo = plan(entry.size, part_size)
        self._slots = slots
        self._sent = sent
        self._keys: list[str] = []  # parts this publisher stored
        self._lock = threading.Lock()  # `_todo` and `_keys`: the following thread, then `finish`
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin following the fetch (returns at once)."""
        self._thread = threading.Thread(target=self._follow, name="modelfetch-parts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following (the fetch failed or was cancelled); parts stored so far stay."""
        self._stop.set()

    def finish(self, abandoned: threading.Event) -> bool:
        """Store every part not stored yet, read from the published blob; whether any was sent.

        Raises `Abandoned` once `abandoned` is set, `BucketUnavailableError` if the bucket
        fails, `OSError` if the blob cannot be read.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        fd = open_regular(self._root, self._blob)
        if fd is None:
            raise FileNotFoundError(f"{self._blob} is missing or not a regular file")
        try:
            with self._lock:
                todo, self._todo = self._todo, []
            if len(self._send_many(fd, todo, abandoned)) < len(todo):
                raise OSError(f"{self._blob} is shorter than its listed size")
        finally:
            os.close(fd)
        with contextlib.suppress(BucketUnavailableError):
            self._bucket.delete(wanted_key(self._etag))
        return bool(self._keys)

    def withdraw(self) -> None:
        """Delete the parts this publisher stored (the fetch they came from failed verification)."""
        for key in self._keys:
            try:
                self._bucket.delete(key)
            except BucketUnavailableError as exc:
                log.warning("mirror %s: could not delete a part of a bad blob: %s", self._bucket.url, exc)
                return

    def _follow(self) -> None:
        lower_this_thread()
        try:
            while not self._bucket.exists(wanted_key(self._etag)):
                if self._stop.wait(_WANTED_EVERY):
                    return
            present = {key for key, _ in self._bucket.list(parts_prefix(self._etag))}
            with self._lock:
                self._todo = [(a, b) for a, b in self._todo if part_key(self._etag, a, b) not in present]
            path = partial_paths(self._blob)[0]
            while not self._stop.wait(_FOLLOW_EVERY):
                mark = peek_watermark(self._root, self._blob)
                with self._lock:
                    ready = [(a, b) for a, b in self._todo if b <= mark]
                    fd = open_regular(self._root, path) if ready else None
                    if fd is None:
                        continue
                    try:
                        for part in self._send_many(fd, ready, self._stop):
                            self._todo.remove(part)
                    finally:
                        os.close(fd)
        except (BucketUnavailableError, OSError) as exc:  # `finish` sends what is left
            log.info("mirror %s: publishing parts while fetching stopped: %s", self._bucket.url, exc)

    def _send_many(
        self, fd: int, parts: list[tuple[int, int]], stop: threading.Event
    ) -> list[tuple[int, int]]:
        """Store `parts` of `fd`, `_SENDERS` at a time, until `stop` is set; those stored, in order.

        A part past the end of the file is not stored (nor any after it). Raises what a
        sender raised, after every sender of its batch has ended.
        """
        stored: list[tuple[int, int]] = []
        for batch in (parts[i : i + _SENDERS] for i in range(0, len(parts), _SENDERS)):
            if stop.is_set():
                if stop is not self._stop:
                    raise Abandoned
                break
            outcome: dict[tuple[int, int], bool | BaseException] = {}
            threads: list[threading.Thread] = []
            for part in batch[1:]:
                thread = threading.Thread(target=self._send_into, args=(outcome, fd, part), daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # the interpreter is exiting (3.12+ refuses new threads): inline
                    self._send_into(outcome, fd, part)
                else:
                    threads.append(thread)
            self._send_into(outcome, fd, batch[0])  # this thread sends one part itself
            for thread in threads:
                thread.join()
            for part in batch:
                result = outcome[part]
                if isinstance(result, BaseException):
                    raise result
                if not result:
                    return stored
                stored.append(part)
        return stored

    def _send_into(
        self, outcome: dict[tuple[int, int], bool | BaseException], fd: int, part: tuple[int, int]
    ) -> None:
        try:
            outcome[part] = self._send(fd, *part)
        except BaseException as exc:  # handed to `_send_many`'s caller
            outcome[part] = exc

    def _send(self, fd: int, first: int, end: int) -> bool:
        """Store bytes `first..end-1` of `fd` as their part; False if the file is not that long."""
        with self._slots:
            data = _read_exactly(fd, first, end - first)
            if data is None:
                return False
            key = part_key(self._etag, first, end)
            if self._bucket.create(key, data) is not None:
                self._keys.append(key)  # from several sender threads: list.append is atomic
                self._sent(len(data))
        return True


def _read_exactly(fd: int, offset: int, size: int) -> bytearray | None:
    data = bytearray(size)
    view = memoryview(data)
    done = 0
    while done < size:
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            return None
        done += got
    return data

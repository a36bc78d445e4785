"""Hash a file's body as huggingface_hub reads it, beside its download thread.

`HubSource` verifies what huggingface_hub downloaded (which it does not do itself). Reading
the finished blob back costs a second pass over the file after the download; instead the
guard's body wrapper hands each body's bytes to a hashing thread as they stream by
(`hashlib` releases the GIL on large buffers, so the hash runs beside the download).
Afterwards `BodyHash.digest_of` gives the content hash of exactly what was written, or
None when it cannot vouch for that (a resumed body that does not start where the hashed
bytes end, a body that was not watched, a file of another size): the caller then reads
the blob back as before.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from .._hubapi.spec import content_hasher, hash_kind, judge_body

_BATCH = 1024 * 1024  # bytes handed to the hashing thread at once
_QUEUED = 2  # batches waiting, at most (2 MiB)


class BodyHash:
    """The running content hash of one download's bodies (one or several, if resumed)."""

    def __init__(self, etag: str, size: int | None) -> None:
        self.etag, self.size = etag, size
        known = size is not None or hash_kind(etag) == "sha256"  # a git blob id hashes the size first
        self._hasher: Any = content_hasher(etag, size or 0) if known else None
        self.position = 0
        self.valid = self._hasher is not None

    def body(self, status: int, content_range: str | None) -> BodyStream | None:
        """A stream to feed one body's bytes to; None if this body cannot be followed."""
        if not self.valid:
            return None
        verdict = judge_body(status, content_range, None, self.position, None)
        if verdict == "whole":  # the whole file (again): huggingface_hub starts its file over too
            if self.position:
                self._hasher = content_hasher(self.etag, self.size or 0)
                self.position = 0
        elif verdict != "part":
            self.valid = False
            return None
        return BodyStream(self)

    def digest_of(self, size: int) -> str | None:
        """The hash of the `size` bytes written, if every one of them was hashed (else None)."""
        if not self.valid or self.position != size:
            return None
        digest: str = self._hasher.hexdigest()
        return digest

    def update(self, chunks: list[bytes]) -> None:
        """Hash `chunks`, the next bytes in order (called by one `BodyStream` at a time)."""
        for chunk in chunks:
            self._hasher.update(chunk)


class BodyStream:
    """Feeds one body to a hashing thread in batches; `close` waits for the last one."""

    def __init__(self, owner: BodyHash) -> None:
        self._owner = owner
        self._batch: list[bytes] = []
        self._batched = 0
        self._work: queue.Queue[list[bytes] | None] = queue.Queue(_QUEUED)
        self._thread: threading.Thread | None = None
        self._closed = False

    def feed(self, chunk: bytes) -> None:
        """Count `chunk` as written next and queue it for hashing."""
        self._owner.position += len(chunk)
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= _BATCH:
            self._flush()

    def close(self) -> None:
        """Hash what is left and wait for the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is None:  # a body smaller than one batch: no thread for it
            self._owner.update(self._batch)
            self._batch = []
            return
        if self._batch:
            self._flush()
        self._work.put(None)
        self._thread.join()

    def _flush(self) -> None:
        batch, self._batch, self._batched = self._batch, [], 0
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="modelfetch-body-hash", daemon=True)
            self._thread.start()
        self._work.put(batch)

    def _run(self) -> None:
        while (batch := self._work.get()) is not None:
            self._owner.update(batch)

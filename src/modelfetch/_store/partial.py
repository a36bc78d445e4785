"""A blob being downloaded: a resumable temporary file under `blobs/`. Blocking: use threads.

The data lives in `blobs/<etag>.modelfetch.incomplete`, never under the blob's own name, so
no reader can see it half-written. Beside it, `<...>.incomplete.progress` holds the
*watermark*: how many leading bytes are known good. Writes may land out of order (parallel
ranges); the watermark only moves over a contiguous prefix, so after a crash or a
cancellation the next attempt, in this process or another, resumes from it safely. Only
one writer at a time: callers hold the blob's lock file (as huggingface_hub does).

Files are opened with `O_NOFOLLOW`, so a symlink planted at the temporary path is refused
rather than written through, and created with mode 0o666 less the umask.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import anyio.from_thread
import filelock

from .._core.errors import IntegrityError, StorageError
from .._hubapi.spec import content_hasher, hash_kind
from .layout import (
    publish_blob,
)

_READ_BLOCK = 1024 * 1024
_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class PartialBlob:
    """The temporary file of one blob and its watermark."""

    def __init__(self, blob: Path, etag: str, size: int | None) -> None:
        self.blob = blob
        self.etag = etag
        self.size = size
        self.path = blob.with_name(f"{blob.name}.modelfetch.incomplete")
        self.mark_path = self.path.with_name(self.path.name + ".progress")
        self.watermark = 0
        self._fd = -1
        self._mark_fd = -1
        self._kind = hash_kind(etag)
        self._hasher: Any = None
        self._hashed = 0
        self._hash_lock = threading.Lock()  # inline hashing (writers) and hash_through (followers)
        self.inline_hash = True  # off once writes go out of order (parallel ranges use hash_through)

    @property
    def hashed(self) -> int:
        """How many leading bytes the content hash has taken in."""
        return self._hashed

    def open(self) -> int:
        """Open (or create) the file and return the watermark to resume from."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = _open_regular(self.path)
        on_disk = os.fstat(self._fd).st_size
        self.watermark = min(self._read_mark(default=on_disk), on_disk)
        if self.size is not None and self.watermark > self.size:
            self.watermark = 0
        os.ftruncate(self._fd, self.watermark)
        self._start_hash()
        return self.watermark

    def _read_mark(self, default: int) -> int:
        try:
            return int(self.mark_path.read_text(encoding="ascii").strip() or 0)
        except (FileNotFoundError, ValueError):
            return default

    def _start_hash(self) -> None:
        self._hashed = 0
        # A git blob id hashes a header with the size, so it needs the size up front.
        known = self.size is not None or self._kind == "sha256"
        self._hasher = content_hasher(self.etag, self.size or 0) if known else None

    def restart(self) -> None:
        """Throw away what was written (the server ignored our Range)."""
        os.ftruncate(self._fd, 0)
        self.set_watermark(0)
        self._start_hash()

    def write_at(
        self, offset: int, data: bytes | bytearray | memoryview, watermark: int | None = None
    ) -> None:
        """Write `data` at `offset`; then, if given, record the new watermark."""
        view = memoryview(data)
        position = offset
        while view:
            written = os.pwrite(self._fd, view, position)
            view = view[written:]
            position += written
        if self.inline_hash:
            with self._hash_lock:
                if self._hasher is not None and offset == self._hashed:
                    self._hasher.update(data)
                    self._hashed += len(data)
        if watermark is not None:
            self.set_watermark(watermark)

    def hash_chunk(self, offset: int, data: bytes | bytearray | memoryview) -> bool:
        """Hash `data` (written at `offset`) from memory if it is next in line; whether it was.

        Saves reading it back from disk; a chunk that is not next is left to `hash_through`.
        """
        with self._hash_lock:
            if self._hasher is None or offset != self._hashed:
                return False
            self._hasher.update(data)
            self._hashed += len(data)
            return True

    def hash_through(self, upto: int) -> None:
        """Hash the file up to `upto` (bytes already written), reading back what is not hashed yet.

        Parallel ranges arrive out of order; calling this as the watermark advances keeps
        the hash moving during the transfer instead of re-reading everything at the end.
        """
        with self._hash_lock:
            if self._hasher is not None:
                self._hashed = self._hash_range(self._hashed, upto)

    def _hash_range(self, position: int, upto: int) -> int:
        """Feed bytes `position..upto` of the file to the hasher through one reused buffer."""
        buffer = bytearray(min(_READ_BLOCK, max(upto - position, 0)))
        view = memoryview(buffer)
        while position < upto:
            got = os.preadv(self._fd, [view[: min(len(buffer), upto - position)]], position)
            if got <= 0:
                break
            self._hasher.update(view[:got])
            position += got
        return position

    def set_watermark(self, value: int) -> None:
        """Record that the first `value` bytes are good.

        One `pwrite` of a fixed-width number into a file kept open (it runs once per MiB):
        a number this short is never seen half-written, and a reader parses it either way.
        """
        self.watermark = value
        if self._mark_fd < 0:
            self._mark_fd = _open_regular(self.mark_path)
            os.ftruncate(self._mark_fd, 0)
        os.pwrite(self._mark_fd, f"{value:020d}\n".encode("ascii"), 0)

    def verify(self) -> None:
        """Check size and content hash against the etag; raise `IntegrityError` on a mismatch."""
        actual = os.fstat(self._fd).st_size
        if self.size is not None and actual != self.size:
            raise IntegrityError(f"expected {self.size} bytes but received {actual}")
        if self._kind is None:
            return
        if self._hasher is None or self._hashed > actual:
            self.size = actual
            self._start_hash()
        self._hashed = self._hash_range(self._hashed, actual)  # resumed or out-of-order: hash the rest
        digest = self._hasher.hexdigest()
        if digest != self.etag:
            raise IntegrityError(f"content hash {digest[:16]}... does not match the etag {self.etag[:16]}...")

    def publish(self) -> None:
        """Move the verified file to its blob name (atomically) and drop the watermark."""
        self.close()
        publish_blob(self.path, self.blob)
        with contextlib.suppress(FileNotFoundError):
            self.mark_path.unlink()

    def close(self) -> None:
        """Close the file, keeping it (and its watermark) for a later resume."""
        for fd in (self._fd, self._mark_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._mark_fd = -1

    def discard(self) -> None:
        """Close and delete the file and its watermark."""
        self.close()
        for path in (self.path, self.mark_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _open_regular(path: Path) -> int:
    """Open (or create) `path` for reading and writing, never through a symlink; a regular file only."""
    try:
        fd = os.open(path, _FLAGS, 0o666)
    except OSError as exc:
        raise StorageError(f"cannot open the temporary file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StorageError(f"{path} is not a regular file; remove it.")
    return fd


def acquire_lock(lock: filelock.BaseFileLock, timeout: float) -> None:
    """Take `lock` within `timeout` seconds, noticing cancellation of the host task.

    Runs in a worker thread. Raises `StorageError` when another process holds the lock
    for longer than `timeout`.
    """
    deadline = time.monotonic() + timeout
    Path(lock.lock_file).parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            lock.acquire(timeout=0.1)
            return
        except filelock.Timeout:
            anyio.from_thread.check_cancelled()
            if time.monotonic() >= deadline:
                raise StorageError(
                    f"another process has held {lock.lock_file} for over {timeout:.0f} s; "
                    "if no download is running, delete that file."
                ) from None


def verify_bytes(data: bytes, etag: str) -> None:
    """Check in-memory content against its etag (sha256 or git sha1); raise `IntegrityError`."""
    hasher = content_hasher(etag, len(data))
    if hasher is None:
        return
    hasher.update(data)
    digest = hasher.hexdigest()
    if digest != etag:
        raise IntegrityError(f"content hash {digest[:16]}... does not match the etag {etag[:16]}...")


def verify_file(path: Path, etag: str) -> None:
    """Check a file on disk against its etag (sha256 or git sha1); raise `IntegrityError`."""
    digest = content_hasher(etag, path.stat().st_size)
    if digest is None:
        return
    with path.open("rb") as f:
        while block := f.read(_READ_BLOCK):
            digest.update(block)
    if digest.hexdigest() != etag:
        raise IntegrityError(
            f"content hash {digest.hexdigest()[:16]}... does not match the etag {etag[:16]}..."
        )

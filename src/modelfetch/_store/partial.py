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
from typing import Any, BinaryIO

from .._core.errors import IntegrityError, StorageError
from .._hubapi.spec import content_hasher, hash_kind
from .anchored import NONBLOCK, Folder, open_regular, parent_folder, unsafe

_READ_BLOCK = 1024 * 1024
# The watermark file is rewritten once this many bytes or seconds have passed since the last
# time (and on close): rewriting a page the kernel is writing back waits for the disk ("stable
# pages"), which once per 1 MiB chunk measurably slowed the writer. A process killed outright
# resumes at most that much earlier.
_MARK_EVERY = 16 * 1024 * 1024
_MARK_SECONDS = 0.5


class PartialBlob:
    """The temporary file of one blob and its watermark, below cache folder `root`."""

    def __init__(self, root: Path, blob: Path, etag: str, size: int | None) -> None:
        self.root = root
        self.blob = blob
        self.etag = etag
        self.size = size
        self.path, self.mark_path = partial_paths(blob)
        self.watermark = 0
        self._marked = 0  # the watermark last written to the file, and when
        self._marked_at = time.monotonic()
        self._fd = -1
        self._mark_fd = -1
        self._kind = hash_kind(etag)
        self._hasher: Any = None
        self._hashed = 0
        self._hash_lock = threading.Lock()  # inline hashing (writers) and hash_through (followers)
        self.inline_hash = True  # off once writes go out of order (parallel ranges use hash_through)

    @property
    def resumable(self) -> bool:
        """Whether bytes of an earlier attempt may be continued: only when the etag lets the whole
        be verified, so that a server which switched content between attempts is caught."""
        return self._kind is not None

    def attempt_start(self) -> int:
        """Where the next attempt starts: the watermark, or 0 for a blob that cannot be verified.

        Without a verifiable etag nothing could tell version A's first bytes from version B's
        rest, so what an earlier attempt wrote is thrown away rather than stitched.
        """
        if not self.resumable and (self.watermark or os.fstat(self._fd).st_size):
            self.restart()
        return self.watermark

    @property
    def hashed(self) -> int:
        """How many leading bytes the content hash has taken in."""
        return self._hashed

    def open(self) -> int:
        """Open (or create) the file and return the watermark to resume from."""
        self._fd = self._open_regular(self.path)
        on_disk = os.fstat(self._fd).st_size
        # No watermark file: nothing is known good. The file's size is no substitute: parallel
        # ranges land out of order, leaving holes below it.
        mark = self._read_mark(default=0)
        self.watermark = min(mark, on_disk)
        if self.size is not None and self.watermark > self.size:
            self.watermark = 0
        if on_disk != self.watermark:
            # Only when there is something to cut: on ext4 (auto_da_alloc) a file truncated and
            # then rewritten is flushed to disk on close, which made every fresh download's
            # close take 0.3 s per 128 MiB.
            os.ftruncate(self._fd, self.watermark)
        self._marked = mark
        if mark != self.watermark:  # never leave a mark past what the file now holds
            self._write_mark(self.watermark)
        self._start_hash()
        return self.watermark

    def _read_mark(self, default: int) -> int:
        with parent_folder(self.root, self.mark_path, create=False) as (folder, name):
            return _parse_mark(folder.read_small(name, 64), default)

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
        """Record that the first `value` bytes are good (on disk at least every `_MARK_EVERY` bytes).

        One `pwrite` of a fixed-width number into a file kept open: a number this short is
        never seen half-written, and a reader parses it either way.
        """
        self.watermark = value
        if (
            value == 0
            or value < self._marked
            or value - self._marked >= _MARK_EVERY
            or time.monotonic() - self._marked_at >= _MARK_SECONDS
        ):
            self._write_mark(value)

    def _write_mark(self, value: int) -> None:
        self._marked, self._marked_at = value, time.monotonic()
        if self._mark_fd < 0:
            self._mark_fd = self._open_regular(self.mark_path)
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
        self._close_files()
        with parent_folder(self.root, self.path, create=False) as (folder, name):
            folder.replace(name, self.blob.name)
            folder.unlink(self.mark_path.name)

    def close(self) -> None:
        """Close the file, keeping it (and its watermark, written now) for a later resume."""
        if self._fd >= 0 and self.watermark != self._marked:
            with contextlib.suppress(OSError):  # a full disk: the next attempt resumes earlier
                self._write_mark(self.watermark)
        self._close_files()

    def _close_files(self) -> None:
        for fd in (self._fd, self._mark_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._mark_fd = -1

    def discard(self) -> None:
        """Close and delete the file and its watermark."""
        self._close_files()
        with (
            contextlib.suppress(FileNotFoundError),
            parent_folder(self.root, self.path, create=False) as found,
        ):
            folder, name = found
            folder.unlink(name)
            folder.unlink(self.mark_path.name)

    def _open_regular(self, path: Path) -> int:
        """Open (or create) `path` for reading and writing; never through a link, a regular file only."""
        with parent_folder(self.root, path, create=True) as (folder, name):
            return _open_in(folder, name, path)


def _open_in(folder: Folder, name: str, path: Path) -> int:
    try:
        fd = folder.open(name, os.O_RDWR | os.O_CREAT | NONBLOCK)
    except OSError as exc:
        raise StorageError(f"cannot open the temporary file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise unsafe(path, "is not a regular file")
    os.set_blocking(fd, True)
    return fd


def partial_paths(blob: Path) -> tuple[Path, Path]:
    """The temporary file of `blob` and its watermark file (where `PartialBlob` keeps them)."""
    path = blob.with_name(f"{blob.name}.modelfetch.incomplete")
    return path, path.with_name(path.name + ".progress")


def peek_watermark(root: Path, blob: Path) -> int:
    """The watermark another writer of `blob` last recorded (0 if none); for readers that follow it.

    A blocking read of the small mark file, never through a link.
    """
    mark = partial_paths(blob)[1]
    try:
        with parent_folder(root, mark, create=False) as (folder, name):
            return _parse_mark(folder.read_small(name, 64), 0)
    except (OSError, StorageError):
        return 0


def _parse_mark(data: bytes | None, default: int) -> int:
    """The watermark a mark file holds (`default` if absent or not a number)."""
    try:
        return default if data is None else int(data.decode("ascii").strip() or 0)
    except (UnicodeDecodeError, ValueError):
        return default


def verify_bytes(data: bytes, etag: str) -> None:
    """Check in-memory content against its etag (sha256 or git sha1); raise `IntegrityError`."""
    hasher = content_hasher(etag, len(data))
    if hasher is None:
        return
    hasher.update(data)
    digest = hasher.hexdigest()
    if digest != etag:
        raise IntegrityError(f"content hash {digest[:16]}... does not match the etag {etag[:16]}...")


def verify_file(root: Path, path: Path, etag: str) -> None:
    """Check a file of the cache against its etag (sha256 or git sha1); raise `IntegrityError`.

    The file is reached without following links below `root` and must be a regular file
    (a FIFO or device planted there is refused, not read): `StorageError` otherwise.
    """
    fd = open_regular(root, path)
    if fd is None:
        raise unsafe(path, "is missing, or is not a regular file reached without links")
    with open(fd, "rb") as f:
        verify_stream(f, os.fstat(fd).st_size, etag)


def verify_stream(f: BinaryIO, size: int, etag: str) -> None:
    """Hash `size` bytes read from `f` against `etag` (a name that is no content hash is not checked)."""
    digest = content_hasher(etag, size)
    if digest is None:
        return
    left = size
    while left > 0 and (block := f.read(min(_READ_BLOCK, left))):
        digest.update(block)
        left -= len(block)
    if left or digest.hexdigest() != etag:
        raise IntegrityError(
            f"content hash {digest.hexdigest()[:16]}... does not match the etag {etag[:16]}..."
        )

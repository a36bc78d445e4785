"""huggingface_hub's per-blob lock files, taken without following links planted in `.locks`.

huggingface_hub locks `<cache>/.locks/<repo folder>/<etag>.lock` with `filelock`, which is
`flock` on that file. We take the same `flock` on the same file, so the two libraries still
exclude each other, but we open it through `anchored` (no link followed below the cache
root): filelock takes a whole path, and a `.locks` folder replaced by a link to a folder of
yours would have it create files there. Where `flock` is missing (Windows), filelock is used
on the path as before.

Blocking: call from worker threads.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path

import anyio.from_thread
import filelock

from .._core.errors import StorageError
from .anchored import NONBLOCK, parent_folder, unsafe

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_POLL = 0.1
_LOCK_MODE = 0o664  # huggingface_hub's: users sharing a cache can wait on each other's locks


class NoFollowLock:
    """A `flock` lock file reached without following links below `root` (huggingface_hub-compatible).

    Not re-entrant; one holder per instance.

    Args:
        root: the cache folder the lock file lives below.
        path: the lock file, `<root>/.locks/<repo folder>/<etag>.lock`.
    """

    def __init__(self, root: Path, path: Path) -> None:
        self.root = root
        self.lock_file = path
        self._fd = -1
        self._fallback: filelock.BaseFileLock | None = None

    def __repr__(self) -> str:
        return f"NoFollowLock({str(self.lock_file)!r})"

    @property
    def is_locked(self) -> bool:
        """Whether this instance holds the lock."""
        return self._fd >= 0 or (self._fallback is not None and self._fallback.is_locked)

    def try_acquire(self) -> bool:
        """Take the lock if it is free right now; whether it was taken."""
        if fcntl is None:  # pragma: no cover - Windows
            self._fallback = self._fallback or filelock.FileLock(str(self.lock_file), thread_local=False)
            try:
                self._fallback.acquire(timeout=0)
            except filelock.Timeout:
                return False
            return True
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def acquire(self, timeout: float) -> None:
        """Take the lock within `timeout` seconds, noticing cancellation of the host task.

        Runs in a worker thread started by anyio. Raises `StorageError` when another process
        holds the lock for longer than `timeout`.
        """
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            anyio.from_thread.check_cancelled()
            if time.monotonic() >= deadline:
                raise StorageError(
                    f"another process has held {self.lock_file} for over {timeout:.0f} s; "
                    "if no download is running, delete that file."
                )
            time.sleep(_POLL)  # a worker thread, never the event loop

    def release(self) -> None:
        """Release the lock (a no-op if not held). The file stays, as huggingface_hub leaves it."""
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.release()
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _open(self) -> int:
        with parent_folder(self.root, self.lock_file, create=True) as (folder, name):
            try:
                fd = folder.open(name, os.O_RDWR | os.O_CREAT | NONBLOCK, _LOCK_MODE)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError | PermissionError):
                    raise StorageError(f"cannot open the lock file {self.lock_file}: {exc.strerror}") from exc
                raise unsafe(self.lock_file, "is a symbolic link or special file") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise unsafe(self.lock_file, "is not a regular file")
        return fd

"""Folders below a cache root, opened without following links planted there. Blocking: use threads.

A cache folder may be shared with other local users, any of whom can replace one of its
folders with a link to a folder of yours. So every write, replace, delete or read-for-upload
below the root goes through a `Folder`: the root is opened once (it may itself be a link,
e.g. to a bigger disk: the caller named it), then each component below it is opened with
`O_DIRECTORY | O_NOFOLLOW` relative to its parent's descriptor, and the final operation takes
that descriptor as `dir_fd` and does not follow a link at the last name either. A link swapped
in after a check cannot redirect us: we never look a path up again once its folder is open.

No library does this walk (filelock, shutil and pathlib all take whole paths); CPython's
`shutil.rmtree` uses the same technique for removal, and we use it with `dir_fd` for that.

Where the platform has no `dir_fd` (Windows), each component is checked with `lstat` before
use instead; that check can race with a neighbour, as `docs/security.md` says.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from .._core.errors import StorageError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_OPEN_DIR = os.O_RDONLY | _DIRECTORY | CLOEXEC
HAS_DIR_FD = bool(NOFOLLOW and _DIRECTORY) and {os.open, os.mkdir, os.unlink, os.rename} <= os.supports_dir_fd
"""Whether the race-free walk is available here (Linux, macOS, the BSDs: yes; Windows: no)."""

_LINKED = (errno.ELOOP, errno.ENOTDIR, getattr(errno, "EMLINK", errno.ELOOP))


def unsafe(path: PurePath, why: str = "is a symbolic link or not a folder") -> StorageError:
    """The error for a cache path that walks through something modelfetch did not create."""
    return StorageError(
        f"{path} {why}; modelfetch does not write, delete or upload through links or special files "
        "inside the cache, since another user of a shared cache could have planted them. If you "
        "moved this folder and linked it back, point HF_HUB_CACHE at its new place instead; "
        "otherwise remove it and retry."
    )


@dataclass(frozen=True, slots=True)
class Folder:
    """One open folder of the cache: operations on names inside it, never following links.

    `fd` is the folder's descriptor (None where the platform has no `dir_fd`: then names are
    joined to `path`). `where` is its path as a string, for messages and the fallback (a
    `Path` is built only when asked for: on the small-file path pathlib cost more than the
    system calls).
    """

    fd: int | None
    root: str
    parts: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        """The folder's path, as a string."""
        return os.path.join(self.root, *self.parts)

    @property
    def path(self) -> Path:
        """The folder's path."""
        return Path(self.where)

    def _at(self, name: str) -> str:
        return name if self.fd is not None else os.path.join(self.where, name)

    def open(self, name: str, flags: int, mode: int = 0o666) -> int:
        """`os.open` of `name` in this folder with `O_NOFOLLOW` added."""
        return os.open(self._at(name), flags | NOFOLLOW | CLOEXEC, mode, dir_fd=self.fd)

    def open_regular(self, name: str) -> int | None:
        """Open `name` for reading if it is a regular file (never a link, FIFO or device); else None.

        `O_NONBLOCK` so a FIFO planted at the name cannot hang the open; the type is checked
        with `fstat` on what was opened, so it cannot be swapped after the check.
        """
        try:
            fd = self.open(name, os.O_RDONLY | NONBLOCK)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno in _LINKED or exc.errno in (errno.ENXIO, errno.EACCES, errno.EPERM):
                return None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        if NONBLOCK:
            os.set_blocking(fd, True)
        return fd

    def read_small(self, name: str, limit: int) -> bytes | None:
        """The first `limit` bytes of regular file `name`, or None if it is absent or not one."""
        fd = self.open_regular(name)
        if fd is None:
            return None
        try:
            return os.read(fd, limit)
        finally:
            os.close(fd)

    def lstat(self, name: str) -> os.stat_result | None:
        """`name`'s own status (a link is not followed), or None if absent."""
        try:
            return os.stat(self._at(name), dir_fd=self.fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def readlink(self, name: str) -> str | None:
        """The target of link `name`, or None if it is not a link."""
        try:
            return os.readlink(self._at(name), dir_fd=self.fd)
        except (FileNotFoundError, NotADirectoryError, OSError):
            return None

    def hardlink(self, source: str, name: str) -> None:
        """Create `name` as a hard link to the file at path `source` (never replacing anything)."""
        os.link(source, self._at(name), dst_dir_fd=self.fd, follow_symlinks=False)

    def symlink(self, target: str, name: str) -> None:
        """Create link `name` pointing at `target` (never replacing anything)."""
        os.symlink(target, self._at(name), dir_fd=self.fd)

    def replace(self, src: str, dst: str) -> None:
        """Rename `src` over `dst` in this folder (atomic; a link at `dst` is replaced, not followed)."""
        os.replace(self._at(src), self._at(dst), src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> bool:
        """Remove `name` (a link itself, never its target); whether it was there."""
        try:
            os.unlink(self._at(name), dir_fd=self.fd)
        except FileNotFoundError:
            return False
        return True

    def rmtree(self, name: str) -> None:
        """Remove folder `name` and everything in it without following any link inside."""
        st = self.lstat(name)
        if st is None:
            return
        if not stat.S_ISDIR(st.st_mode):
            self.unlink(name)
            return
        if self.fd is not None:
            shutil.rmtree(name, dir_fd=self.fd)
        else:
            shutil.rmtree(self._at(name))

    def names(self) -> list[str]:
        """The names in this folder, sorted."""
        with os.scandir(self.fd if self.fd is not None else self.where) as it:
            return sorted(entry.name for entry in it)


def relative_parts(root: Path, path: PurePath) -> tuple[str, ...]:
    """`path`'s components below `root`; `StorageError` if it is not lexically below it.

    String work, not pathlib's: it runs several times per file on the small-file path.
    """
    top, full = os.fspath(root).rstrip(os.sep), os.fspath(path)
    if not full.startswith(top + os.sep):
        raise unsafe(PurePath(path), f"is not inside the cache folder {root}")
    parts = tuple(full[len(top) + 1 :].split(os.sep))
    if any(part in ("", ".", "..") for part in parts):
        raise unsafe(PurePath(path), "is not a path inside the cache")
    return parts


@contextlib.contextmanager
def open_folder(root: Path, parts: Sequence[str], *, create: bool) -> Iterator[Folder]:
    """Open the folder `root/parts...` without following links below `root`.

    With `create`, missing folders are made (mode 0o777 less the umask, as `mkdir -p`).
    Raises `FileNotFoundError` when a folder is missing and not `create`, and `StorageError`
    when a component is a link or not a folder.
    """
    top = os.fspath(root)
    if not HAS_DIR_FD:
        yield _checked_folder(top, parts, create=create)
        return
    fd = _open_root(top, create=create)
    try:
        with open_below(Folder(fd, top), parts, create=create) as folder:
            yield folder
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_below(base: Folder, parts: Sequence[str], *, create: bool) -> Iterator[Folder]:
    """Open the folder `base/parts...` without following links; `base` stays open (and is
    yielded itself when `parts` is empty). Errors as `open_folder`'s.

    Walking once to a repo's folder and then to each of its subfolders from there saves
    system calls, and each one a worker thread makes is a chance to lose the GIL to the
    event loop's thread: on the small-file path that cost more than the calls themselves.
    """
    if not parts:
        yield base
        return
    if base.fd is None:
        yield _checked_folder(base.where, parts, create=create)
        return
    fd = _step(base.fd, parts[0], base, parts[:1], create=create)
    try:
        for depth in range(1, len(parts)):
            parent, fd = fd, -1
            try:
                fd = _step(parent, parts[depth], base, parts[: depth + 1], create=create)
            finally:
                os.close(parent)
        yield Folder(fd, base.root, (*base.parts, *parts))
    finally:
        if fd >= 0:
            os.close(fd)


def _open_root(root: str, *, create: bool) -> int:
    """The root's descriptor; the root may be a link (whoever set HF_HUB_CACHE chose it)."""
    try:
        return os.open(root, _OPEN_DIR)
    except FileNotFoundError:
        if not create:
            raise
    os.makedirs(root, exist_ok=True)
    return os.open(root, _OPEN_DIR)


def _step(parent: int, name: str, base: Folder, parts: Sequence[str], *, create: bool) -> int:
    """Open folder `name` below descriptor `parent`, creating it if asked (`parent` stays open)."""
    for attempt in (0, 1):
        try:
            return os.open(name, _OPEN_DIR | NOFOLLOW, dir_fd=parent)
        except FileNotFoundError:
            if not create or attempt:
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=parent)
        except OSError as exc:
            if exc.errno in _LINKED:
                raise unsafe(Path(base.where, *parts)) from None
            raise
    raise AssertionError("unreachable")


def _checked_folder(root: str, parts: Sequence[str], *, create: bool) -> Folder:
    """The fallback without `dir_fd`: `lstat` each component (racy; see the module docstring)."""
    path = Path(root)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    for part in parts:
        path = path / part
        try:
            st = path.lstat()
        except FileNotFoundError:
            if not create:
                raise
            path.mkdir(exist_ok=True)
            st = path.lstat()
        if not stat.S_ISDIR(st.st_mode):
            raise unsafe(path)
    return Folder(None, str(path))


@contextlib.contextmanager
def parent_folder(root: Path, path: PurePath, *, create: bool) -> Iterator[tuple[Folder, str]]:
    """Open the folder holding `path` (below `root`, links not followed); yield it and the name."""
    parts = relative_parts(root, path)
    with open_folder(root, parts[:-1], create=create) as folder:
        yield folder, parts[-1]


def open_regular(root: Path, path: PurePath) -> int | None:
    """A read descriptor of regular file `path` below `root`, reached without following links.

    None if it is absent, or if it or a folder on the way is a link, FIFO, device or folder.
    """
    try:
        with parent_folder(root, path, create=False) as (folder, name):
            return folder.open_regular(name)
    except (FileNotFoundError, NotADirectoryError, StorageError):
        return None


def walk_files(top: Folder) -> Iterator[tuple[str, Folder, str]]:
    """Every non-folder below `top`, as (path relative to `top`, its folder, its name).

    Folders are entered through descriptors and links to folders are not entered
    (`os.fwalk`, which compares what it opened with what it listed).
    """
    if top.fd is None:
        for dirpath, _dirs, files in os.walk(top.where):  # followlinks=False
            rel = Path(dirpath).relative_to(top.where)
            for name in sorted(files):
                yield (rel / name).as_posix(), Folder(None, dirpath), name
        return
    for dirpath, _dirs, files, dirfd in os.fwalk(".", dir_fd=top.fd):
        folder = Folder(dirfd, os.path.normpath(os.path.join(top.where, dirpath)))
        for name in sorted(files):
            yield PurePath(dirpath, name).as_posix(), folder, name

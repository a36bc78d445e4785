"""`local_dir=`: files copied out of the cache into a folder, as huggingface_hub's `local_dir` lays them.

Each file lands at `local_dir/<path in the repo>` (written to a temporary name, then
renamed: a reader never sees half a file) — a hard link to the cache's blob for files of
1 MiB or more where the filesystem allows (one copy of the weights on disk), a copy
otherwise — and huggingface_hub's bookkeeping (`.cache/huggingface/download/<path>.metadata`:
commit, etag, time, under its `.lock`) is written after it, so
`hf_hub_download(..., local_dir=...)` recognises the file and we recognise its. A file
already there with matching metadata is not copied again.

Nothing is written through a link inside `local_dir` that we did not create (the folder
itself may be a link: the caller named it): folders are walked with `anchored`, and the
metadata is written by us, because huggingface_hub's writer opens whatever a planted
link at its name points to. Blocking: call from a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
import uuid
from pathlib import Path

from ._core.errors import StorageError
from ._hubapi.spec import safe_blob_name
from ._store.anchored import NONBLOCK, Folder, open_folder, open_regular, parent_folder
from ._store.layout import replace_file, write_new
from ._store.locks import NoFollowLock

_META = (".cache", "huggingface")
_CACHEDIR_TAG = (  # huggingface_hub's, so backup tools skip the folder
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by huggingface_hub.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n"
)
_LOCK_WAIT = 60.0


def place(local_dir: Path, filename: str, cached: Path, commit: str, etag: str | None) -> Path:
    """Copy `cached` (a file of the cache) to `local_dir/filename`; its path there."""
    target = local_dir.joinpath(*filename.split("/"))
    meta = local_dir.joinpath(*_META, "download", *f"{filename}.metadata".split("/"))
    try:
        _bookkeeping_folder(local_dir)
        lock = NoFollowLock(local_dir, meta.with_suffix(".lock"))
        lock.acquire(_LOCK_WAIT)
        try:
            if not _up_to_date(local_dir, target, meta, commit, etag, cached):
                _copy_in(local_dir, _source_of(cached, filename, commit, etag), target)
                _write_metadata(local_dir, meta, f"{commit}\n{etag or ''}\n{time.time()}\n")
        finally:
            lock.release()
    except OSError as exc:
        raise StorageError(
            f"Copying {filename} into {local_dir}: {exc.strerror or exc}; check that the folder is "
            "writable and has room, and that nothing in it is a link you did not make."
        ) from exc
    return target


def _bookkeeping_folder(local_dir: Path) -> None:
    """`.cache/huggingface` with huggingface_hub's `.gitignore` and `CACHEDIR.TAG` (made once)."""
    with open_folder(local_dir, _META, create=True) as folder:
        for name, text in ((".gitignore", "*"), ("CACHEDIR.TAG", _CACHEDIR_TAG)):
            with contextlib.suppress(FileExistsError):
                write_new(folder, name, text.encode())


def _up_to_date(
    local_dir: Path, target: Path, meta: Path, commit: str, etag: str | None, cached: Path
) -> bool:
    """Whether `target` is already this file: metadata says so and the file is unchanged since."""
    try:
        with parent_folder(local_dir, meta, create=False) as (folder, name):
            data = folder.read_small(name, 4096)
        with parent_folder(local_dir, target, create=False) as (folder, name):
            st = folder.lstat(name)
    except (FileNotFoundError, NotADirectoryError, StorageError):
        return False
    lines = (data or b"").decode("utf-8", "replace").splitlines()
    if len(lines) < 3 or st is None or not stat.S_ISREG(st.st_mode):
        return False
    try:
        stamp = float(lines[2])
    except ValueError:
        return False
    return (
        lines[0] == commit
        and (etag is None or lines[1] == etag)
        and st.st_size == os.stat(cached).st_size
        and st.st_mtime - 1 <= stamp  # huggingface_hub's own test: not modified since
    )


def _source_of(cached: Path, filename: str, commit: str, etag: str | None) -> tuple[Path, int]:
    """The file to put in `local_dir`, opened for reading: (its path, a descriptor).

    A file of a Hugging Face cache (`<root>/<repo>/snapshots/<commit>/<filename>` with a blob
    name) is read from its blob, reached from the root without following any link (as
    `anchored` walks): the snapshot entry is not followed, so another user of a shared cache
    who swaps it after the fetch cannot choose what lands in the folder. Anything else (a
    `LocalDirSource` folder, an entry copied where links are not available) is opened as it is.
    """
    depth, up = len(filename.split("/")), cached.parents
    in_cache = (
        etag is not None
        and safe_blob_name(etag) is not None
        and len(up) > depth + 2
        and up[depth - 1].name == commit
        and up[depth].name == "snapshots"
    )
    if in_cache:
        storage = up[depth + 1]
        blob = storage / "blobs" / str(etag)
        fd = open_regular(storage.parent, blob)
        if fd is None:
            raise StorageError(f"{blob} is missing, or is not a regular file reached without links.")
        return blob, fd
    fd = os.open(cached, os.O_RDONLY | NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StorageError(f"{cached} is not a regular file; it was not copied.")
    os.set_blocking(fd, True)
    return cached, fd


def _copy_in(local_dir: Path, opened: tuple[Path, int], target: Path) -> None:
    """Put the opened file's bytes at `target` (a hard link, else a copy) via a temporary name."""
    cached, source = opened
    try:
        st = os.fstat(source)
        with parent_folder(local_dir, target, create=True) as (folder, name):
            tmp = f".{name}.{uuid.uuid4().hex}.modelfetch.incomplete"
            try:
                if not (st.st_size >= LINK_MIN_SIZE and _linked(folder, tmp, cached, st)):
                    fd = folder.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
                    with open(fd, "wb") as dst, open(source, "rb", closefd=False) as src:
                        shutil.copyfileobj(src, dst, 1024 * 1024)
                folder.replace(tmp, name)
            finally:
                folder.unlink(tmp)
    finally:
        os.close(source)


LINK_MIN_SIZE = 1024 * 1024
"""Files this big get a hard link to the cache's blob in `local_dir` instead of a second copy.

One copy on disk, as `hf download --local-dir` keeps (it skips the cache instead). Smaller
files — configs, tokenizers: the ones people edit — are copied, since an edit made in place
through a hard link would change the cache's blob too (`modelfetch cache verify` finds that).
"""


def _linked(folder: Folder, name: str, cached: Path, opened: os.stat_result) -> bool:
    """Hard-link `cached` as `name` if it is still the file we opened; whether that worked.

    Across filesystems, where links are refused (another user's file, a FAT disk) or when the
    entry changed since we opened it, there is no link and the caller copies.
    """
    try:
        folder.hardlink(os.fspath(cached), name)  # a link at `cached` itself is linked, not followed
    except OSError:
        return False
    st = folder.lstat(name)
    if st is None or (st.st_dev, st.st_ino) != (opened.st_dev, opened.st_ino):
        folder.unlink(name)
        return False
    return True


def _write_metadata(local_dir: Path, meta: Path, text: str) -> None:
    with parent_folder(local_dir, meta, create=True) as (folder, name):
        replace_file(folder, name, text.encode())

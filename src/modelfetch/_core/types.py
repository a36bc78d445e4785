"""The values that flow between sources: what is asked for, and what was found."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from .validate import RepoType, check_filename, check_repo_id, check_repo_type, check_revision
from .validate import is_commit as _is_commit

DEFAULT_REVISION = "main"


@dataclass(frozen=True, slots=True)
class RepoRef:
    """One revision of one repository on the Hub.

    Attributes:
        repo_id: `namespace/name` (or a bare legacy `name`).
        revision: a branch, a tag or a 40-hex commit id.
        repo_type: `"model"`, `"dataset"` or `"space"`.

    Raises:
        InvalidRequestError: at construction, if any field is malformed.
    """

    repo_id: str
    revision: str = DEFAULT_REVISION
    repo_type: RepoType = "model"

    def __post_init__(self) -> None:
        check_repo_id(self.repo_id)
        check_revision(self.revision)
        check_repo_type(self.repo_type)

    @property
    def is_pinned(self) -> bool:
        """Whether the revision is a commit id, so the content can never change."""
        return _is_commit(self.revision)

    def asset(self, filename: str) -> AssetRef:
        """The ref of `filename` at this same revision."""
        return AssetRef(self.repo_id, filename, self.revision, self.repo_type)

    def __str__(self) -> str:
        return f"{self.repo_type} {self.repo_id}@{self.revision}"


@dataclass(frozen=True, slots=True)
class AssetRef:
    """One file of one revision of one repository: the key everything is fetched by.

    Attributes:
        repo_id: `namespace/name` (or a bare legacy `name`).
        filename: a relative POSIX path inside the repo, like `"onnx/model.onnx"`.
        revision: a branch, a tag or a 40-hex commit id.
        repo_type: `"model"`, `"dataset"` or `"space"`.

    Raises:
        InvalidRequestError: at construction, if any field is malformed (before any I/O).
    """

    repo_id: str
    filename: str
    revision: str = DEFAULT_REVISION
    repo_type: RepoType = "model"

    def __post_init__(self) -> None:
        check_repo_id(self.repo_id)
        check_filename(self.filename)
        check_revision(self.revision)
        check_repo_type(self.repo_type)

    @property
    def repo(self) -> RepoRef:
        """The repository revision this file belongs to."""
        return RepoRef(self.repo_id, self.revision, self.repo_type)

    @property
    def is_pinned(self) -> bool:
        """Whether the revision is a commit id, so the content can never change."""
        return _is_commit(self.revision)

    def __str__(self) -> str:
        return f"{self.filename!r} of {self.repo_type} {self.repo_id}@{self.revision}"


class Origin(enum.Enum):
    """Where a resolved file came from, for metrics and tests."""

    MEMORY = "memory"
    """Remembered in this process; no I/O at all."""
    DISK = "disk"
    """Found in the local cache; no transfer."""
    NETWORK = "network"
    """Transferred from the source."""


@dataclass(frozen=True, slots=True)
class ResolvedAsset:
    """A file that is now on local disk.

    Attributes:
        ref: what was asked for.
        path: the snapshot path in the Hugging Face cache (`.../snapshots/<commit>/<file>`).
        commit: the commit id the file belongs to.
        size: its size in bytes.
        etag: the blob's id: its git sha1, or its sha256 for LFS files.
        origin: memory, disk or network.
    """

    ref: AssetRef
    path: Path
    commit: str
    size: int
    etag: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class ListedFile:
    """One file in a repository listing.

    Attributes:
        path: relative POSIX path in the repo.
        size: size in bytes (of the real content, for LFS files).
        etag: the name its blob has in the cache: git sha1, or sha256 for LFS files.
        lfs: whether it is stored with LFS (and so has a sha256 to check against).
    """

    path: str
    size: int
    etag: str
    lfs: bool = False


@dataclass(frozen=True, slots=True)
class RepoListing(Sequence[ListedFile]):
    """The files of one repository at one commit; also a sequence of them, like the list
    huggingface_hub's `get_paths_info` and `list_repo_tree` return (`for f in listing`,
    `listing[0]`, `len(listing)`).

    Attributes:
        repo: what was asked for (the revision may be a branch).
        commit: the commit that revision pointed to when listed.
        files: every file, sorted by path.
    """

    repo: RepoRef
    commit: str
    files: tuple[ListedFile, ...]

    @overload
    def __getitem__(self, index: int) -> ListedFile: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[ListedFile, ...]: ...

    def __getitem__(self, index: int | slice) -> ListedFile | tuple[ListedFile, ...]:
        """The file at `index` (or the files of a slice), in path order."""
        return self.files[index]

    def __len__(self) -> int:
        """How many files were listed."""
        return len(self.files)

    def __iter__(self) -> Iterator[ListedFile]:
        """The files, in path order."""
        return iter(self.files)

"""The one protocol every source implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

from .progress import ProgressCallback
from .types import AssetRef, RepoListing, RepoRef, ResolvedAsset


@runtime_checkable
class ModelAssetSource(Protocol):
    """Something that turns an `AssetRef` into a file on local disk.

    Sources compose by wrapping: `CachedSource(HubSource())`. Each is an async context
    manager (`async with HubSource() as source:`) whose `aclose()` frees its resources.

    Implementations must be safe to call from many tasks of one event loop at once, must
    never block the event loop, and must raise only `modelfetch.FetchError` subclasses
    (plus the event loop's cancellation exception).
    """

    async def resolve(self, ref: AssetRef, *, progress: ProgressCallback | None = None) -> ResolvedAsset:
        """Make `ref` available on local disk and describe it.

        Args:
            ref: the file to fetch.
            progress: called with `ProgressEvent`s on the event loop thread, if given.

        Returns:
            The file's snapshot path in the Hugging Face cache, commit, size and etag.

        Raises:
            FetchError: a subclass naming the repo, file and revision.
        """
        ...

    async def list_files(self, repo: RepoRef) -> RepoListing:
        """List every file of `repo` at one commit (the one its revision points to now).

        Raises:
            FetchError: a subclass naming the repo and revision.
        """
        ...

    async def aclose(self) -> None:
        """Release the source's resources. Idempotent."""
        ...

    if TYPE_CHECKING:  # for type checkers only: `isinstance` checks the three methods above

        async def __aenter__(self) -> Self:
            """`async with source:` enters it."""
            ...

        async def __aexit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            traceback: TracebackType | None,
        ) -> bool | None:
            """Leaving the block closes it (`aclose()`)."""
            ...

"""`ChainSource`: ask sources in order; fall through on a miss, stop on a hard error."""

from __future__ import annotations

from collections.abc import Sequence

from anyio.abc import AsyncResource

from .._core.errors import (
    AssetNotFoundError,
    FetchError,
    InvalidRequestError,
    OfflineError,
    RepoNotFoundError,
    RevisionNotFoundError,
    SourceUnavailableError,
)
from .._core.progress import ProgressCallback
from .._core.protocol import ModelAssetSource
from .._core.types import AssetRef, RepoListing, RepoRef, ResolvedAsset
from .._core.validate import check_source

MISSES: tuple[type[FetchError], ...] = (
    RepoNotFoundError,
    RevisionNotFoundError,
    AssetNotFoundError,
    OfflineError,
    SourceUnavailableError,
)
"""Errors that mean "not here, ask the next source". Anything else (an `IntegrityError`,
an `AuthenticationError`, a `StorageError`) stops the chain."""


class ChainSource(AsyncResource):
    """Try each source in turn, e.g. `ChainSource([LocalDirSource("/mnt/models"), HubSource()])`.

    A source that misses (not found, offline, unreachable) hands over to the next; the last
    miss is raised if every source misses. A hard error (integrity, authentication,
    storage) is raised at once: it would be wrong to paper over it with another copy.
    """

    def __init__(self, sources: Sequence[ModelAssetSource]) -> None:
        if isinstance(sources, str | bytes) or not isinstance(sources, Sequence) or not sources:
            raise InvalidRequestError(f"ChainSource needs a non-empty list of sources, not {sources!r}.")
        for index, source in enumerate(sources):
            check_source(f"sources[{index}]", source)
        self.sources = tuple(sources)

    def __repr__(self) -> str:
        return f"ChainSource([{', '.join(map(repr, self.sources))}])"

    async def resolve(self, ref: AssetRef, *, progress: ProgressCallback | None = None) -> ResolvedAsset:
        """The first source's answer that is not a miss."""
        miss: FetchError | None = None
        for source in self.sources:
            try:
                return await source.resolve(ref, progress=progress)
            except MISSES as exc:
                miss = exc
        assert miss is not None
        raise miss

    async def list_files(self, repo: RepoRef) -> RepoListing:
        """The first source's listing that is not a miss."""
        miss: FetchError | None = None
        for source in self.sources:
            try:
                return await source.list_files(repo)
            except MISSES as exc:
                miss = exc
        assert miss is not None
        raise miss

    async def aclose(self) -> None:
        """Close every source (all of them, even if one fails)."""
        errors: list[BaseException] = []
        for source in self.sources:
            try:
                await source.aclose()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

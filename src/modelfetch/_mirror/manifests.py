"""Where a mirror learns what a commit holds: its own memory, then the bucket's manifests.

A manifest is written to the bucket next to the blobs (`_mirror.keys`): one listing per
commit, one entry per file. Nodes that find them skip the upstream listing entirely.
Listings learnt from anywhere are remembered in one bounded LRU.
"""

from __future__ import annotations

from .._core.lru import Lru
from .._core.types import AssetRef, ListedFile, RepoListing, RepoRef
from .access import BucketAccess
from .bucket import BucketUnavailableError
from .keys import decode_entry, decode_listing, entry_key, listing_key

_LISTINGS = 64


class Manifests:
    """Listings remembered in memory, and manifest lookups in the bucket."""

    def __init__(self, access: BucketAccess, *, size: int = _LISTINGS) -> None:
        self._access = access
        self._listings: Lru[tuple[str, str, str], dict[str, ListedFile]] = Lru(size)

    def remember(self, listing: RepoListing) -> None:
        """Keep `listing` for later lookups of its files."""
        key = (listing.repo.repo_type, listing.repo.repo_id, listing.commit)
        self._listings.put(key, {f.path: f for f in listing.files})

    def known(self, ref: AssetRef, commit: str) -> ListedFile | None:
        """The entry of `ref` at `commit`, if a remembered listing has it."""
        return (self._listings.get((ref.repo_type, ref.repo_id, commit)) or {}).get(ref.filename)

    async def listing(self, repo: RepoRef) -> RepoListing | None:
        """The bucket's listing of the pinned `repo`; None if absent, unreadable or unusable."""
        if not self._access.usable():
            return None
        try:
            found = await self._access.run(self._access.bucket.read, listing_key(repo, repo.revision))
        except BucketUnavailableError as exc:
            self._access.failed(exc)
            return None
        listing = decode_listing(found[0], repo) if found else None
        if listing is not None:
            self.remember(listing)
        return listing

    async def entry(self, ref: AssetRef) -> ListedFile | None:
        """The bucket's entry of the pinned `ref`; None if absent, unreadable or unusable."""
        if not self._access.usable():
            return None
        try:
            key = entry_key(ref, ref.revision, ref.filename)
            found = await self._access.run(self._access.bucket.read, key)
        except BucketUnavailableError as exc:
            self._access.failed(exc)
            return None
        return decode_entry(found[0], ref.filename) if found else None

"""`CachedSource`: the async cache layer in front of any source.

What it adds to the source it wraps:

- **single flight**: N concurrent awaits of one file cause one resolution by the inner
  source (one HEAD, one transfer);
- **memo**: resolved files are remembered (bounded LRU); a repeat await costs no thread
  hop and no I/O. Commit-pinned refs never expire; branch/tag refs are revalidated after
  `ttl` seconds. A memoised file deleted from disk is noticed (checked off the loop at most
  every `recheck` seconds) and fetched again;
- **disk fast path**: a commit-pinned ref already in the cache resolves with no network
  request, even in a fresh process;
- **offline**: with `HF_HUB_OFFLINE=1` (or `offline=True`) it serves from disk (branch refs
  through `refs/<branch>`) and raises `OfflineError` on a miss, without any network attempt;
- **negative cache**: "no such file" answers are remembered (for a commit, for good, also
  through huggingface_hub's `.no_exist` markers; for a branch, for `negative_ttl`);
- **safe cancellation**: see `modelfetch._cached.singleflight`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import anyio
import anyio.to_thread
from anyio.abc import AsyncResource

from .._core.defaults import default_hub_source
from .._core.errors import AssetNotFoundError, InvalidRequestError, OfflineError, offline_miss
from .._core.force import force_requested
from .._core.lru import Lru
from .._core.progress import ProgressCallback
from .._core.protocol import ModelAssetSource
from .._core.service import TaskHost
from .._core.settings import Settings
from .._core.types import AssetRef, Origin, RepoListing, RepoRef, ResolvedAsset
from .._core.validate import check_instance, check_source
from .._store.layout import CachedFile, CacheLayout, find_cached, is_marked_missing, list_cached
from .memo import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_RECHECK,
    DEFAULT_TTL,
    CachePolicy,
    Memo,
    is_fresh,
    needs_recheck,
)
from .singleflight import SingleFlight

_MAX_LISTINGS = 256


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters for metrics, since the source was built.

    Attributes:
        hits: awaits answered from memory.
        disk_hits: resolutions answered from the on-disk cache without asking the inner source.
        misses: resolutions handed to the inner source.
        joined: awaits that shared a resolution already in flight.
        negative_hits: awaits answered "no such file" from memory.
        stale: memo entries dropped because their file had vanished from disk.
        in_flight: resolutions running now.
        entries: refs remembered now.
    """

    hits: int
    disk_hits: int
    misses: int
    joined: int
    negative_hits: int
    stale: int
    in_flight: int
    entries: int


class CachedSource(AsyncResource):
    """Put the async cache layer in front of `inner` (see the module docstring).

    Args:
        inner: the source to ask on a miss; the default Hub source when omitted.
        settings: where the Hugging Face cache is and whether to stay offline; taken from
            `inner.settings` when it has them, else from the environment.
        ttl: seconds a branch/tag resolution is trusted before it is revalidated (0: never).
        recheck: seconds after which a memoised file is looked for on disk again.
        max_entries: how many refs to remember.
        negative_ttl: seconds a "no such file" answer for a branch/tag is remembered
            (default: `ttl`).
        offline: serve only from disk; default `settings.offline` (`HF_HUB_OFFLINE`).
        clock: a monotonic clock, replaceable in tests.

    Example:
        ```python
        async with CachedSource(HubSource()) as source:
            paths = [await modelfetch.fetch("org/model", "config.json", source=source) for _ in range(3)]
        ```
    """

    def __init__(
        self,
        inner: ModelAssetSource | None = None,
        *,
        settings: Settings | None = None,
        ttl: float = DEFAULT_TTL,
        recheck: float = DEFAULT_RECHECK,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        negative_ttl: float | None = None,
        offline: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if inner is not None:
            check_source("inner", inner)
        check_instance("settings", settings, Settings)
        if not callable(clock):
            raise InvalidRequestError(f"clock must be a callable returning seconds, not {clock!r}.")
        inner_settings = getattr(inner, "settings", None)
        if settings is None:
            settings = inner_settings if isinstance(inner_settings, Settings) else Settings.from_env()
        self.settings = settings
        if inner is None:
            inner = default_hub_source(settings)
        self.inner: ModelAssetSource = inner
        self.offline = settings.offline if offline is None else offline
        self._policy = CachePolicy(ttl, recheck, max_entries, ttl if negative_ttl is None else negative_ttl)
        if offline is not None and not isinstance(offline, bool):
            raise InvalidRequestError(f"offline must be True, False or None, not {offline!r}.")
        self._layout = CacheLayout(settings.hub_cache)
        self._memo = Memo(self._policy)
        self._clock = clock
        self._host = TaskHost()
        self._closed = False
        self._flights: SingleFlight[ResolvedAsset] = SingleFlight(self._host)
        self._listing_flights: SingleFlight[RepoListing] = SingleFlight(self._host)
        self._listings: Lru[RepoRef, tuple[RepoListing, float]] = Lru(_MAX_LISTINGS)
        self._disk = anyio.CapacityLimiter(16)
        self._hits = self._disk_hits = self._misses = self._negative_hits = self._stale = 0

    def __repr__(self) -> str:
        return f"CachedSource({self.inner!r}, entries={len(self._memo)}, offline={self.offline})"

    def stats(self) -> CacheStats:
        """The counters so far (see `CacheStats`)."""
        return CacheStats(
            hits=self._hits,
            disk_hits=self._disk_hits,
            misses=self._misses,
            joined=self._flights.joined,
            negative_hits=self._negative_hits,
            stale=self._stale,
            in_flight=len(self._flights),
            entries=len(self._memo),
        )

    async def resolve(self, ref: AssetRef, *, progress: ProgressCallback | None = None) -> ResolvedAsset:
        """Resolve `ref` from memory, disk, a flight in progress, or the inner source.

        With `force_download`, memory and disk are skipped and the inner source is asked
        (in a flight of its own: a forced call never joins one that may answer from disk).
        """
        if force_requested():
            if self.offline:
                raise OfflineError(
                    f"Fetching {ref}: force_download needs the network, and offline mode is on; "
                    "unset HF_HUB_OFFLINE or drop force_download."
                )
            return await self._flights.run(("force", ref), partial(self._resolve_forced, ref), progress)
        now = self._clock()
        entry = self._memo.get(ref, now)
        if entry is not None:
            if not needs_recheck(entry.checked_at, now, self._policy.recheck):
                self._hits += 1
                return entry.asset
            if await anyio.to_thread.run_sync(entry.asset.path.exists, limiter=self._disk):
                entry.checked_at = self._clock()
                self._hits += 1
                return entry.asset
            self._memo.forget(ref)
            self._stale += 1
        if self._memo.is_missing(ref, now):
            self._negative_hits += 1
            raise AssetNotFoundError(
                f"Fetching {ref}: the file does not exist at that revision (remembered from the source's "
                "earlier answer); check the filename."
            )
        return await self._flights.run(ref, partial(self._resolve_uncached, ref), progress)

    async def _resolve_forced(self, ref: AssetRef, progress: ProgressCallback) -> ResolvedAsset:
        self._misses += 1
        asset = await self.inner.resolve(ref, progress=progress)
        self._memo.put(asset, self._clock())
        return asset

    async def _resolve_uncached(self, ref: AssetRef, progress: ProgressCallback) -> ResolvedAsset:
        if ref.is_pinned or self.offline:
            cached, missing = await anyio.to_thread.run_sync(
                _look_on_disk, self._layout, ref, limiter=self._disk
            )
            if cached is not None:
                self._disk_hits += 1
                asset = ResolvedAsset(ref, cached.path, cached.commit, cached.size, cached.etag, Origin.DISK)
                self._memo.put(asset, self._clock())
                return asset
            if missing:
                self._memo.put_missing(ref, self._clock())
                raise AssetNotFoundError(f"Fetching {ref}: the file does not exist at that commit.")
            if self.offline:
                raise offline_miss(ref, self.settings.hub_cache)
        self._misses += 1
        try:
            asset = await self.inner.resolve(ref, progress=progress)
        except AssetNotFoundError:
            self._memo.put_missing(ref, self._clock())
            raise
        self._memo.put(asset, self._clock())
        return asset

    async def list_files(self, repo: RepoRef) -> RepoListing:
        """List `repo` via the inner source, remembering pinned listings (and branch ones for `ttl`).

        Offline, the listing is what the cache holds for the revision's commit.
        """
        if self.offline:
            listing = await anyio.to_thread.run_sync(list_cached, self._layout, repo, limiter=self._disk)
            if listing is None:
                raise OfflineError(
                    f"Listing {repo}: offline mode is on and no snapshot of it is in the local cache; "
                    "unset HF_HUB_OFFLINE or fetch it once while online."
                )
            return listing
        remembered = self._listings.get(repo)
        if remembered is not None and is_fresh(
            repo.is_pinned, remembered[1], self._clock(), self._policy.ttl
        ):
            return remembered[0]
        listing = await self._listing_flights.run(repo, lambda _progress: self.inner.list_files(repo))
        self._listings.put(repo, (listing, self._clock()))
        return listing

    @property
    def closed(self) -> bool:
        """Whether `aclose()` was called."""
        return self._closed

    async def aclose(self) -> None:
        """Stop the transfers still in flight (their waiters get a `FetchError`); close the inner source."""
        self._closed = True
        await self._host.aclose()
        await self.inner.aclose()


def _look_on_disk(layout: CacheLayout, ref: AssetRef) -> tuple[CachedFile | None, bool]:
    """The cached file for `ref`, else whether a `.no_exist` marker rules it out (one thread hop)."""
    cached = find_cached(layout, ref)
    if cached is not None or not ref.is_pinned:
        return cached, False
    return None, is_marked_missing(layout, ref, ref.revision)

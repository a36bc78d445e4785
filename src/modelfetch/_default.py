"""The process-wide default source, built lazily, one per running event loop.

Sources hold loop-bound primitives (limiters, events), so "process-wide" means: every
`fetch` on one event loop shares one source, and `fetch_sync` (which runs on the shared
portal loop) shares another. Both use the same on-disk cache.
"""

from __future__ import annotations

from anyio.lowlevel import RunVar

from ._cache import CachedSource
from ._hub import HubSource
from ._protocol import ModelAssetSource
from ._settings import Settings

_DEFAULT: RunVar[ModelAssetSource | None] = RunVar("modelfetch_default_source", default=None)


def build_default_source(settings: Settings | None = None) -> ModelAssetSource:
    """A fresh default stack, configured by `settings` (from the environment when omitted).

    `CachedSource(HubSource())`, or `CachedSource(MirrorSource(upstream=HubSource()))` when
    `MODELFETCH_MIRROR_URL` names a fleet bucket.
    """
    settings = settings if settings is not None else Settings.from_env()
    if settings.mirror_url:
        from ._mirror import MirrorSource  # noqa: PLC0415 - needs the optional obstore

        return CachedSource(MirrorSource(settings=settings, upstream=HubSource(settings)), settings=settings)
    return CachedSource(HubSource(settings), settings=settings)


def default_source() -> ModelAssetSource:
    """The current event loop's default source (built on first use)."""
    source = _DEFAULT.get()
    if source is None:
        source = build_default_source()
        _DEFAULT.set(source)
    return source


async def aclose_default_source() -> None:
    """Close the current event loop's default source; the next fetch builds a new one.

    Call it on shutdown (say, in a FastAPI lifespan) or after changing `HF_*` variables.
    """
    source = _DEFAULT.get()
    if source is not None:
        _DEFAULT.set(None)
        await source.aclose()

"""The process-wide default source, built lazily, one per running event loop.

Sources hold loop-bound primitives (limiters, events), so "process-wide" means: every
`fetch` on one event loop shares one source, and `fetch_sync` (which runs on the shared
portal loop) shares another. Both use the same on-disk cache.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

import anyio.to_thread
from anyio.lowlevel import RunVar

from ._cached.source import CachedSource
from ._core.errors import InvalidRequestError
from ._core.protocol import ModelAssetSource
from ._core.settings import Settings

_DEFAULT: RunVar[ModelAssetSource | None] = RunVar("modelfetch_default_source", default=None)


BACKENDS = ("threads", "httpx")
"""The Hub sources the default stack can use: `HubSource` ("threads") or `HttpHubSource`."""

DEFAULT_BACKEND = "httpx"
"""The Hub source of the default stack, wherever a default is needed (`fetch`, the CLI,
`CachedSource()`, `MirrorSource()` without an upstream): decided here and nowhere else."""


def build_default_source(
    settings: Settings | None = None, *, backend: str = DEFAULT_BACKEND
) -> ModelAssetSource:
    """A fresh default stack, configured by `settings` (from the environment when omitted).

    `CachedSource(HttpHubSource())`, or `CachedSource(MirrorSource(upstream=HttpHubSource()))`
    when `MODELFETCH_MIRROR_URL` names a fleet bucket; `backend="threads"` puts `HubSource`
    (huggingface_hub itself, Xet included) where `HttpHubSource` stands. The one place the
    stack is put together (the CLI uses it too).
    """
    settings = settings if settings is not None else Settings.from_env()
    hub = hub_source(backend, settings)
    if settings.mirror_url:
        from ._mirror.source import MirrorSource  # noqa: PLC0415 - needs the optional obstore

        return CachedSource(MirrorSource(settings=settings, upstream=hub), settings=settings)
    return CachedSource(hub, settings=settings)


def hub_source(backend: str = DEFAULT_BACKEND, settings: Settings | None = None) -> ModelAssetSource:
    """The Hub source named by `backend` ("threads" or "httpx").

    Imported here, after `settings` were read: huggingface_hub reads `HF_*` at import.
    Lower layers that need a default upstream (`CachedSource()`, `MirrorSource()`) ask
    for it here, so no layer imports a source it does not own.
    """
    settings = settings if settings is not None else Settings.from_env()
    if backend == "threads":
        from ._hub.source import HubSource  # noqa: PLC0415

        return HubSource(settings)
    if backend == "httpx":
        from ._http.source import HttpHubSource  # noqa: PLC0415

        return HttpHubSource(settings)
    raise InvalidRequestError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}.")


_STACK_MODULES = ("modelfetch._hub.source", "modelfetch._http.source")
_OPTIONAL_MODULES = ("modelfetch._http.curl",)  # pycurl: the native engine, when installed


async def preload_default_stack() -> None:
    """Import what the default stack needs (huggingface_hub, httpx) in a worker thread, once.

    `import modelfetch` stays light, so the first fetch would otherwise import them on the
    event loop: half a second or more with every task on the loop frozen.
    """
    if any(name not in sys.modules for name in _STACK_MODULES):
        await anyio.to_thread.run_sync(_import_all)


def _import_all() -> None:
    for name in _STACK_MODULES:
        importlib.import_module(name)
    for name in _OPTIONAL_MODULES:
        with contextlib.suppress(ImportError):  # HttpHubSource says why, when it needs it
            importlib.import_module(name)


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

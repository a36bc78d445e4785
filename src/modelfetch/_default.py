"""The process-wide default source, built lazily, one per running event loop.

Sources hold loop-bound primitives (limiters, events), so "process-wide" means: every
`fetch` on one event loop shares one source, and `fetch_sync` (which runs on the shared
portal loop) shares another. Both use the same on-disk cache.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from ._cached.source import CachedSource
from ._core.defaults import provide_default_hub_source
from ._core.errors import InvalidRequestError
from ._core.protocol import ModelAssetSource
from ._core.settings import Settings, default_backend
from ._core.validate import check_source

_DEFAULT: RunVar[dict[str | None, _Entry] | None] = RunVar("modelfetch_default_source", default=None)
_generation = 0  # bumped by `reset_default_sources`: a default built before is stale


BACKENDS = ("threads", "httpx")
"""The Hub sources the default stack can use: `HubSource` ("threads") or `HttpHubSource`."""

DEFAULT_BACKEND = "httpx"
"""The Hub source of the default stack, wherever a default is needed (`fetch`, the CLI,
`CachedSource()`, `MirrorSource()` without an upstream): decided here and nowhere else."""


def build_default_source(settings: Settings | None = None, *, backend: str | None = None) -> ModelAssetSource:
    """A fresh default stack, configured by `settings` (from the environment when omitted).

    `CachedSource(HttpHubSource())`, or `CachedSource(MirrorSource(upstream=HttpHubSource()))`
    when `MODELFETCH_MIRROR_URL` names a fleet bucket; `backend="threads"` puts `HubSource`
    (huggingface_hub itself, Xet included) where `HttpHubSource` stands; without `backend`,
    the config file's `backend`, else `DEFAULT_BACKEND`. The one place the stack is put
    together (the CLI uses it too).
    """
    settings = settings if settings is not None else Settings.from_env()
    hub = hub_source(backend, settings)
    if settings.mirror_url:
        from ._mirror.source import MirrorSource  # noqa: PLC0415 - needs the optional obstore

        return CachedSource(MirrorSource(settings=settings, upstream=hub), settings=settings)
    return CachedSource(hub, settings=settings)


def hub_source(backend: str | None = None, settings: Settings | None = None) -> ModelAssetSource:
    """The Hub source named by `backend` ("threads" or "httpx"; the config file's, else
    `DEFAULT_BACKEND`, when None).

    Imported here, after `settings` were read: huggingface_hub reads `HF_*` at import.
    Lower layers that need a default upstream (`CachedSource()`, `MirrorSource()`) get it
    through `_core.defaults`, where this module registers it: none imports this layer.
    """
    settings = settings if settings is not None else Settings.from_env()
    backend = resolve_backend(backend)
    if backend == "threads":
        from ._hub.source import HubSource  # noqa: PLC0415

        return HubSource(settings)
    if backend == "httpx":
        from ._http.source import HttpHubSource  # noqa: PLC0415

        return HttpHubSource(settings)
    raise InvalidRequestError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}.")


provide_default_hub_source(lambda settings: hub_source(settings=settings))


def resolve_backend(backend: str | None) -> str:
    """`backend` if given, else the config file's `backend`, else `DEFAULT_BACKEND`."""
    return backend or default_backend()[0] or DEFAULT_BACKEND


_STACK_MODULES = ("modelfetch._hub.source", "modelfetch._http.source", "obstore")


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


@dataclass(frozen=True, slots=True)
class _Entry:
    """A loop's default source, the generation it was built in, and what closes it."""

    generation: int
    source: ModelAssetSource
    closer: AsyncGenerator[None, None]


async def _closer(source: ModelAssetSource) -> AsyncGenerator[None, None]:
    """Suspended until closed: by us, or by the event loop as it shuts down.

    asyncio (`asyncio.run`, `asyncio.Runner`) and trio finalize the async generators still
    suspended when a run ends, inside the run: so a default source nobody closed (the
    last test on a shared loop, a script that never calls `aclose()`) closes
    its connections there instead of leaking them.
    """
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await source.aclose()


async def current_default_source(token: str | None = None) -> ModelAssetSource:
    """The current event loop's default source, built on first use.

    With `token`, the default source that uses that token instead of the environment's
    (one per token and loop, built on first use and closed with the others). A source
    made stale by `reset_default_sources` is replaced and closed here.
    """
    entries = _DEFAULT.get()
    if entries is None:
        entries = {}
        _DEFAULT.set(entries)
    entry = entries.get(token)
    if entry is not None and entry.generation == _generation:
        return entry.source
    # The environment, the token file and the config file are read in a worker thread: file
    # I/O never runs on the loop. Building the stack itself reads nothing more.
    settings = await anyio.to_thread.run_sync(lambda: Settings.from_env(token=token))
    backend = await anyio.to_thread.run_sync(resolve_backend, None)
    entry = entries.get(token)  # another task may have built it while we read
    if entry is not None and entry.generation == _generation:
        return entry.source
    source = build_default_source(settings, backend=backend)
    closer = _closer(source)
    await closer.asend(None)  # runs to its `yield` without suspending: nothing can interleave
    entries[token] = _Entry(_generation, source, closer)
    if entry is not None:
        await entry.closer.aclose()
    return source


def reset_default_sources() -> None:
    """Make every event loop's default source stale; each loop builds a new one at its next fetch.

    The next fetch on a loop reads the environment again and closes the old source. This
    is how test fixtures isolate tests that share one event loop (pytest-asyncio's
    session-scoped loop, say): a test never gets a file another test's Hub served.
    """
    global _generation  # noqa: PLW0603 - one counter for the process, read on every loop
    _generation += 1


async def aclose(source: ModelAssetSource | None = None) -> None:
    """Close `source`, or with no argument the current event loop's default source(s).

    The one way to close from async code. With no argument, call it on shutdown (say, in a
    FastAPI lifespan) or after changing `HF_*` variables: the next fetch builds a new default
    source (one nobody closed is closed when its event loop shuts down). A source you made is
    closed like `await source.aclose()`. From sync code, `modelfetch.close_sync`.
    """
    if source is not None:
        check_source("source", source)
        await source.aclose()
        return
    await close_defaults()


async def close_defaults() -> None:
    """Close the current event loop's default source(s) (`aclose()` without an argument)."""
    entries = _DEFAULT.get()
    if entries:
        _DEFAULT.set(None)
        for entry in entries.values():
            await entry.closer.aclose()

"""`fetch_sync` and `snapshot_sync`: the async API, called from synchronous code.

A thin facade, never a twin: each call is handed to one shared event loop running in a
daemon "portal" thread (started on first use) and the calling thread waits for the
result. Many threads may call at once; they share the portal loop and its default
source. Called from a thread that is itself running an event loop, the call would freeze
that loop, so it raises `BlockingCallError` instead — with one exception: synchronous code
in a notebook cell. A Jupyter kernel runs every cell on its event loop, so `fetch_sync` in
a cell (or in sync library code a cell calls) blocks that cell until done, as
`hf_hub_download` does; the kernel has no other requests to serve meanwhile. Told apart by
the call stack: an IPython kernel's main thread, and no coroutine between the cell and the
call. From inside a coroutine (`async def` in a cell, a server started in the kernel) it is
refused as anywhere else: `await` the async twin there.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import os
import sys
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._api import DEFAULT_SNAPSHOT_WORKERS, fetch, snapshot
from ._core.errors import BlockingCallError
from ._core.progress import ProgressCallback
from ._core.protocol import ModelAssetSource
from ._core.service import running_backend
from ._core.validate import RepoType, check_source
from ._default import close_defaults
from ._weights import DEFAULT_WEIGHT_WORKERS, SafetensorsModel, fetch_safetensors

_lock = threading.Lock()
_portal: BlockingPortal | None = None
_portal_cm: AbstractContextManager[BlockingPortal] | None = None


def _refuse_inside_event_loop(name: str) -> None:
    running = running_backend()
    if running is None or _called_from_a_notebook_cell():
        return
    raise BlockingCallError(
        f"modelfetch.{name}() was called from a thread running a {running} event loop, "
        f"where it would block the loop; use `await modelfetch.{name.removesuffix('_sync')}(...)` "
        "there, or call it from a worker thread."
    )


_COROUTINE_FLAGS = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE


def _called_from_a_notebook_cell() -> bool:
    """Whether this call comes from synchronous code of a notebook cell (see the module docstring)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if getattr(shell, "kernel", None) is None or threading.current_thread() is not threading.main_thread():
        return False
    frame = sys._getframe(1)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith(("IPython.", "ipykernel.")):
            return True  # reached the kernel's cell runner without passing a coroutine
        if frame.f_code.co_flags & _COROUTINE_FLAGS and not module.startswith("modelfetch."):
            return False
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _get_portal() -> BlockingPortal:
    global _portal, _portal_cm  # noqa: PLW0603 - the one process-wide portal
    with _lock:
        if _portal is None:
            _portal_cm = start_blocking_portal(backend="asyncio", name="modelfetch-portal")
            _portal = _portal_cm.__enter__()
        return _portal


def shutdown_facade() -> None:
    """Close the sync facade's default source and stop its portal thread (also at exit)."""
    global _portal, _portal_cm  # noqa: PLW0603 - the one process-wide portal
    with _lock:
        portal, cm = _portal, _portal_cm
        _portal = _portal_cm = None
    if portal is not None and cm is not None:
        try:
            portal.call(close_defaults)
        finally:
            cm.__exit__(None, None, None)


atexit.register(shutdown_facade)


def close_sync(source: ModelAssetSource | None = None) -> None:
    """Close `source`, or with no argument the sync facade's default source, from sync code.

    The one way to close from sync code (`await modelfetch.aclose(...)` is the async one).
    A source you passed to `fetch_sync`/`snapshot_sync` lives on the sync facade's event loop
    (its portal thread), so `anyio.run(source.aclose)` cannot close it; this runs
    `source.aclose()` there and waits. With no argument it closes the facade's default source
    and stops its thread (optional: that also happens at exit; the next `*_sync` call starts
    a new one). Idempotent, like `aclose()`.

    ```python
    source = CachedSource(HttpHubSource())
    try:
        path = modelfetch.fetch_sync("org/model", "config.json", source=source)
    finally:
        modelfetch.close_sync(source)
    ```
    """
    running = running_backend()
    if running is not None and not _called_from_a_notebook_cell():
        what = "source.aclose()" if source is not None else "modelfetch.aclose()"
        raise BlockingCallError(
            f"modelfetch.close_sync() was called from a thread running a {running} event loop, "
            f"where it would block the loop; use `await {what}` there."
        )
    if source is None:
        shutdown_facade()
        return
    check_source("source", source)
    _get_portal().call(source.aclose)


def fetch_sync(
    repo_id: str,
    filename: str,
    *,
    revision: str | None = None,
    repo_type: RepoType = "model",
    source: ModelAssetSource | None = None,
    progress: ProgressCallback | None = None,
    local_dir: str | os.PathLike[str] | None = None,
    token: str | None = None,
    force_download: bool = False,
) -> Path:
    """`modelfetch.fetch`, for synchronous code (a constructor, a worker thread, a script).

    Same arguments, result and errors as `fetch`. Safe from any number of threads at
    once. A `source` passed here is used on the shared portal loop; `progress` is called
    on that loop's thread.

    Raises:
        BlockingCallError: called from a thread that is running an event loop.
        FetchError: as `fetch`.
    """
    _refuse_inside_event_loop("fetch_sync")
    call = functools.partial(
        fetch,
        repo_id,
        filename,
        revision=revision,
        repo_type=repo_type,
        source=source,
        progress=progress,
        local_dir=local_dir,
        token=token,
        force_download=force_download,
    )
    return _get_portal().call(call)


def snapshot_sync(
    repo_id: str,
    *,
    revision: str | None = None,
    repo_type: RepoType = "model",
    include: Sequence[str] | str | None = None,
    exclude: Sequence[str] | str | None = None,
    source: ModelAssetSource | None = None,
    max_workers: int = DEFAULT_SNAPSHOT_WORKERS,
    progress: ProgressCallback | None = None,
    local_dir: str | os.PathLike[str] | None = None,
    token: str | None = None,
    force_download: bool = False,
) -> Path:
    """`modelfetch.snapshot`, for synchronous code. Same arguments, result and errors.

    Raises:
        BlockingCallError: called from a thread that is running an event loop.
        FetchError: as `snapshot`.
    """
    _refuse_inside_event_loop("snapshot_sync")
    call = functools.partial(
        snapshot,
        repo_id,
        revision=revision,
        repo_type=repo_type,
        include=include,
        exclude=exclude,
        source=source,
        max_workers=max_workers,
        progress=progress,
        local_dir=local_dir,
        token=token,
        force_download=force_download,
    )
    return _get_portal().call(call)


def fetch_safetensors_sync(
    repo_id: str,
    *,
    revision: str | None = None,
    repo_type: RepoType = "model",
    subfolder: str = "",
    source: ModelAssetSource | None = None,
    max_workers: int = DEFAULT_WEIGHT_WORKERS,
    progress: ProgressCallback | None = None,
    token: str | None = None,
    force_download: bool = False,
) -> SafetensorsModel:
    """`modelfetch.fetch_safetensors`, for synchronous code. Same arguments, result and errors.

    Raises:
        BlockingCallError: called from a thread that is running an event loop.
        FetchError: as `fetch_safetensors`.
    """
    _refuse_inside_event_loop("fetch_safetensors_sync")
    call = functools.partial(
        fetch_safetensors,
        repo_id,
        revision=revision,
        repo_type=repo_type,
        subfolder=subfolder,
        source=source,
        max_workers=max_workers,
        progress=progress,
        token=token,
        force_download=force_download,
    )
    return _get_portal().call(call)

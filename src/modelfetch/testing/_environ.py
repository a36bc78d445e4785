"""Point a block of code at a FakeHub: the `HF_*` environment and huggingface_hub's constants.

huggingface_hub reads `HF_ENDPOINT`, `HF_HOME` and friends once, when it is imported; code
that imported it before the variables were set would still go to huggingface.co. So its
constants are imported first (with the environment as it was) and patched, and everything
is restored on exit. modelfetch's default sources (per event loop, and the sync facade's) are made
stale on entry and exit, so the next fetch reads the environment again.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._default import reset_default_sources
from .._sync import shutdown_facade

_CLEARED = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HUB_OFFLINE",
    "HF_TOKEN_PATH",
    "MODELFETCH_MIRROR_URL",  # the developer's fleet bucket is not the test's
    "MODELFETCH_DEADLINE",
    "MODELFETCH_LOW_SPEED_LIMIT",
    "MODELFETCH_LOW_SPEED_TIME",
)


@contextlib.contextmanager
def hub_environment(endpoint: str, home: Path) -> Iterator[Path]:
    """Aim `HF_*` (and huggingface_hub's constants) at `endpoint` and `home`; yield the hub cache.

    The developer's own modelfetch settings stay out: `MODELFETCH_*` variables are cleared and
    `MODELFETCH_CONFIG` names an empty config file in `home`.
    """
    cache = home / "hub"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "modelfetch.toml"
    config.touch()
    wanted: dict[str, str | None] = {
        "MODELFETCH_CONFIG": str(config),
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        **dict.fromkeys(_CLEARED),
    }
    saved_env = {name: os.environ.get(name) for name in wanted}
    constants: Any = _hub_constants()
    patched = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
    }
    saved_constants = {name: getattr(constants, name) for name in patched} if constants else {}
    _set_env(wanted)
    for name, value in patched.items() if constants else ():
        setattr(constants, name, value)
    _forget_default_sources()
    try:
        yield cache
    finally:
        _set_env(saved_env)
        for name, value in saved_constants.items():
            setattr(constants, name, value)
        _forget_default_sources()


def _hub_constants() -> Any:
    """huggingface_hub's constants, imported now (before the environment changes) so that
    restoring them on exit leaves them as they were; None when it is not installed."""
    try:
        return importlib.import_module("huggingface_hub.constants")
    except ImportError:
        return None


def _set_env(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _forget_default_sources() -> None:
    shutdown_facade()  # the sync facade's source closes now; each loop's at its next fetch
    reset_default_sources()

"""Where a lower layer gets the default Hub source without importing the layer that builds it.

`CachedSource()` and `MirrorSource()` without an inner/upstream source need "the default Hub
source", which the top layer (`modelfetch._default`) decides. Importing it from below would be
an upward import (and a cycle); instead `_default` registers its factory here when it is
imported, which `import modelfetch` always does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .protocol import ModelAssetSource
    from .settings import Settings

_factory: Callable[[Settings], ModelAssetSource] | None = None


def provide_default_hub_source(factory: Callable[[Settings], ModelAssetSource]) -> None:
    """Register what builds the default Hub source (called once, by `modelfetch._default`)."""
    global _factory  # noqa: PLW0603 - one factory per process, set by the top layer
    _factory = factory


def default_hub_source(settings: Settings) -> ModelAssetSource:
    """The default Hub source for `settings`, as the top layer decides it."""
    # Importing any modelfetch module imports the package first, and with it `_default`.
    assert _factory is not None, "modelfetch._default registers the default Hub source on import"
    return _factory(settings)

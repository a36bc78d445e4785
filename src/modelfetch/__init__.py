"""modelfetch: fetch Hugging Face Hub model files from async code without blocking the loop.

```python
import modelfetch

path = await modelfetch.fetch("org/model", "config.json")            # -> pathlib.Path
folder = await modelfetch.snapshot("org/model", include=["*.json"])  # -> snapshot folder
path = modelfetch.fetch_sync("org/model", "config.json")            # from sync code
```
"""

import importlib as _importlib
import warnings as _warnings
from typing import TYPE_CHECKING as _TYPE_CHECKING

from ._api import fetch as fetch
from ._api import snapshot as snapshot
from ._cached.source import CachedSource as CachedSource
from ._cached.source import CacheStats as CacheStats
from ._core.errors import AssetNotFoundError as AssetNotFoundError
from ._core.errors import AuthenticationError as AuthenticationError
from ._core.errors import BlockingCallError as BlockingCallError
from ._core.errors import EntryNotFoundError as EntryNotFoundError
from ._core.errors import FetchError as FetchError
from ._core.errors import GatedRepoError as GatedRepoError
from ._core.errors import IntegrityError as IntegrityError
from ._core.errors import InvalidRequestError as InvalidRequestError
from ._core.errors import LocalEntryNotFoundError as LocalEntryNotFoundError
from ._core.errors import OfflineError as OfflineError
from ._core.errors import OfflineModeIsEnabled as OfflineModeIsEnabled
from ._core.errors import RemoteEntryNotFoundError as RemoteEntryNotFoundError
from ._core.errors import RepoNotFoundError as RepoNotFoundError
from ._core.errors import RepositoryNotFoundError as RepositoryNotFoundError
from ._core.errors import RevisionNotFoundError as RevisionNotFoundError
from ._core.errors import SnapshotError as SnapshotError
from ._core.errors import SourceUnavailableError as SourceUnavailableError
from ._core.errors import StorageError as StorageError
from ._core.progress import ProgressCallback as ProgressCallback
from ._core.progress import ProgressEvent as ProgressEvent
from ._core.progress import ProgressKind as ProgressKind
from ._core.protocol import ModelAssetSource as ModelAssetSource
from ._core.retry import RetryPolicy as RetryPolicy
from ._core.settings import Settings as Settings
from ._core.types import AssetRef as AssetRef
from ._core.types import ListedFile as ListedFile
from ._core.types import Origin as Origin
from ._core.types import RepoListing as RepoListing
from ._core.types import RepoRef as RepoRef
from ._core.types import ResolvedAsset as ResolvedAsset
from ._default import aclose as aclose
from ._info import get_paths_info as get_paths_info
from ._info import hf_hub_url as hf_hub_url
from ._local.chain import ChainSource as ChainSource
from ._local.localdir import LocalDirSource as LocalDirSource
from ._mirror.options import MirrorOptions as MirrorOptions
from ._mirror.options import MirrorStats as MirrorStats
from ._sync import close_sync as close_sync
from ._sync import fetch_safetensors_sync as fetch_safetensors_sync
from ._sync import fetch_sync as fetch_sync
from ._sync import shutdown_facade as _shutdown_facade
from ._sync import snapshot_sync as snapshot_sync
from ._version import __version__ as __version__
from ._weights import SafetensorsModel as SafetensorsModel
from ._weights import fetch_safetensors as fetch_safetensors

if _TYPE_CHECKING:  # imported on first use (below), so `import modelfetch` stays light
    from ._http.source import HttpHubSource as HttpHubSource
    from ._http.transfer import TransferOptions as TransferOptions
    from ._hub.source import HubSource as HubSource
    from ._mirror.source import MirrorSource as MirrorSource

_LAZY = {
    "HttpHubSource": "._http.source",
    "HubSource": "._hub.source",
    "MirrorSource": "._mirror.source",
    "TransferOptions": "._http.transfer",
}
"""Names whose modules import huggingface_hub, httpx2 or httpx: loaded when first used.

`import modelfetch` must not import huggingface_hub: it reads `HF_*` variables at import
time (a script that sets `HF_ENDPOINT` after importing us would otherwise be ignored, and a
malformed `HF_HUB_ETAG_TIMEOUT` would be an import-time traceback instead of our error).
"""


_DEPRECATED: dict[str, tuple[str, object]] = {
    "RepoFile": ("ListedFile", ListedFile),
    "aclose_default_source": ("aclose", aclose),  # one way to close per world: aclose / close_sync
    "shutdown_sync": ("close_sync", _shutdown_facade),  # as before: no check for a running loop
}
"""Old names kept for one release, with a `DeprecationWarning` when used."""


def __getattr__(name: str) -> object:
    """Import a source that needs huggingface_hub or httpx the first time it is named."""
    if name in _DEPRECATED:
        new, value = _DEPRECATED[name]
        _warnings.warn(
            f"modelfetch.{name} is now modelfetch.{new}; the old name goes in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelfetch' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Every public name, the lazily imported ones included."""
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AssetNotFoundError",
    "AssetRef",
    "AuthenticationError",
    "BlockingCallError",
    "CacheStats",
    "CachedSource",
    "ChainSource",
    "EntryNotFoundError",
    "FetchError",
    "GatedRepoError",
    "HttpHubSource",
    "HubSource",
    "IntegrityError",
    "InvalidRequestError",
    "ListedFile",
    "LocalDirSource",
    "LocalEntryNotFoundError",
    "MirrorOptions",
    "MirrorSource",
    "MirrorStats",
    "ModelAssetSource",
    "OfflineError",
    "OfflineModeIsEnabled",
    "Origin",
    "ProgressCallback",
    "ProgressEvent",
    "ProgressKind",
    "RemoteEntryNotFoundError",
    "RepoListing",
    "RepoNotFoundError",
    "RepoRef",
    "RepositoryNotFoundError",
    "ResolvedAsset",
    "RetryPolicy",
    "RevisionNotFoundError",
    "SafetensorsModel",
    "Settings",
    "SnapshotError",
    "SourceUnavailableError",
    "StorageError",
    "TransferOptions",
    "__version__",
    "aclose",
    "close_sync",
    "fetch",
    "fetch_safetensors",
    "fetch_safetensors_sync",
    "fetch_sync",
    "get_paths_info",
    "hf_hub_url",
    "snapshot",
    "snapshot_sync",
]

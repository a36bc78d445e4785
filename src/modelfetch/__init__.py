"""modelfetch: fetch Hugging Face Hub model files from async code without blocking the loop.

```python
import modelfetch

path = await modelfetch.fetch("org/model", "config.json")            # -> pathlib.Path
folder = await modelfetch.snapshot("org/model", include=["*.json"])  # -> snapshot folder
path = modelfetch.fetch_sync("org/model", "config.json")            # from sync code
```
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

from ._api import fetch as fetch
from ._api import snapshot as snapshot
from ._cache import CachedSource as CachedSource
from ._cache import CacheStats as CacheStats
from ._chain import ChainSource as ChainSource
from ._default import aclose_default_source as aclose_default_source
from ._errors import AssetNotFoundError as AssetNotFoundError
from ._errors import AuthenticationError as AuthenticationError
from ._errors import BlockingCallError as BlockingCallError
from ._errors import FetchError as FetchError
from ._errors import IntegrityError as IntegrityError
from ._errors import InvalidRequestError as InvalidRequestError
from ._errors import OfflineError as OfflineError
from ._errors import RepoNotFoundError as RepoNotFoundError
from ._errors import RevisionNotFoundError as RevisionNotFoundError
from ._errors import SnapshotError as SnapshotError
from ._errors import SourceUnavailableError as SourceUnavailableError
from ._errors import StorageError as StorageError
from ._localdir import LocalDirSource as LocalDirSource
from ._mirroropts import MirrorOptions as MirrorOptions
from ._mirroropts import MirrorStats as MirrorStats
from ._progress import ProgressCallback as ProgressCallback
from ._progress import ProgressEvent as ProgressEvent
from ._progress import ProgressKind as ProgressKind
from ._protocol import ModelAssetSource as ModelAssetSource
from ._retry import RetryPolicy as RetryPolicy
from ._settings import Settings as Settings
from ._sync import fetch_sync as fetch_sync
from ._sync import shutdown_sync as shutdown_sync
from ._sync import snapshot_sync as snapshot_sync
from ._types import AssetRef as AssetRef
from ._types import Origin as Origin
from ._types import RepoFile as RepoFile
from ._types import RepoListing as RepoListing
from ._types import RepoRef as RepoRef
from ._types import ResolvedAsset as ResolvedAsset
from ._version import __version__ as __version__
from ._weights import SafetensorsModel as SafetensorsModel
from ._weights import fetch_safetensors as fetch_safetensors

if _TYPE_CHECKING:  # imported on first use (below), so `import modelfetch` stays light
    from ._httpsource import HttpHubSource as HttpHubSource
    from ._hub import HubSource as HubSource
    from ._mirror import MirrorSource as MirrorSource
    from ._transfer import TransferOptions as TransferOptions

_LAZY = {
    "HttpHubSource": "._httpsource",
    "HubSource": "._hub",
    "MirrorSource": "._mirror",
    "TransferOptions": "._transfer",
}
"""Names whose modules import huggingface_hub, httpx2 or httpx: loaded when first used.

`import modelfetch` must not import huggingface_hub: it reads `HF_*` variables at import
time (a script that sets `HF_ENDPOINT` after importing us would otherwise be ignored, and a
malformed `HF_HUB_ETAG_TIMEOUT` would be an import-time traceback instead of our error).
"""


def __getattr__(name: str) -> object:
    """Import a source that needs huggingface_hub or httpx the first time it is named."""
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
    "FetchError",
    "HttpHubSource",
    "HubSource",
    "IntegrityError",
    "InvalidRequestError",
    "LocalDirSource",
    "MirrorOptions",
    "MirrorSource",
    "MirrorStats",
    "ModelAssetSource",
    "OfflineError",
    "Origin",
    "ProgressCallback",
    "ProgressEvent",
    "ProgressKind",
    "RepoFile",
    "RepoListing",
    "RepoNotFoundError",
    "RepoRef",
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
    "aclose_default_source",
    "fetch",
    "fetch_safetensors",
    "fetch_sync",
    "shutdown_sync",
    "snapshot",
    "snapshot_sync",
]

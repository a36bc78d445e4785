"""The exceptions modelfetch raises.

Every error derives from `FetchError`, so `except modelfetch.FetchError` catches all of
them. Where a builtin base helps callers, it is inherited too::

    FetchError
    ├── InvalidRequestError (ValueError)        bad repo id, filename, revision, repo type
    ├── RepoNotFoundError                       no such repo (or private, and no access)
    ├── RevisionNotFoundError                   no such branch, tag or commit
    ├── AssetNotFoundError (FileNotFoundError)  no such file at that revision
    ├── AuthenticationError                     gated or private: bad or missing token
    │   └── GatedRepoError                      gated: accept its terms, use a token with access
    ├── OfflineError                            offline, and not in the local cache
    ├── IntegrityError                          size or hash mismatch; nothing was published
    ├── SourceUnavailableError                  network, timeouts, 5xx after retries
    ├── StorageError (OSError)                  the local cache: disk full, permissions, locks
    ├── SnapshotError                           one or more files of a snapshot failed
    └── BlockingCallError (RuntimeError)        a *_sync call from a thread running an event loop

Messages say what was asked, what happened and what to do. They never contain a token.

For code written against huggingface_hub, the names it catches exist here too (the same
classes under huggingface_hub's names, see `HF_NAMES` and docs/index.md's table):
`except modelfetch.EntryNotFoundError` catches what `except huggingface_hub.errors.EntryNotFoundError`
caught. Importing huggingface_hub's own classes here would make `import modelfetch` import
huggingface_hub (which reads `HF_*` at import time), so ours are not instances of theirs.
"""

from __future__ import annotations

__all__ = [
    "AssetNotFoundError",
    "AuthenticationError",
    "BlockingCallError",
    "FetchError",
    "GatedRepoError",
    "IntegrityError",
    "InvalidRequestError",
    "OfflineError",
    "RepoNotFoundError",
    "RevisionNotFoundError",
    "SnapshotError",
    "SourceUnavailableError",
    "StorageError",
]


class FetchError(Exception):
    """Base class of every error modelfetch raises."""


class InvalidRequestError(FetchError, ValueError):
    """The request itself is malformed; it was rejected before any I/O."""


class RepoNotFoundError(FetchError):
    """The repository does not exist, or is private and the token gives no access."""


class RevisionNotFoundError(FetchError):
    """The repository exists but the branch, tag or commit does not."""


class AssetNotFoundError(FetchError, FileNotFoundError):
    """The repository and revision exist but the file does not."""


class AuthenticationError(FetchError):
    """The repository is gated or private and the token is missing, invalid or lacks access."""


class GatedRepoError(AuthenticationError):
    """The repository is gated: accept its terms on the Hub and use a token with access."""


class OfflineError(FetchError):
    """Offline mode is on (or the network is unreachable) and the file is not cached."""


class IntegrityError(FetchError):
    """Downloaded bytes failed a size or hash check. Nothing was published to the cache."""


class SourceUnavailableError(FetchError):
    """The source could not be reached or kept failing (network, timeouts, 5xx, 429)."""


class StorageError(FetchError, OSError):
    """The local cache could not be written or read (disk full, permissions, lock timeout)."""


class SnapshotError(FetchError):
    """Some files of a snapshot failed; `errors` maps each failed path to its error."""

    def __init__(self, message: str, errors: dict[str, FetchError] | None = None) -> None:
        super().__init__(message)
        self.errors = dict(errors or {})


class BlockingCallError(FetchError, RuntimeError):
    """A blocking `*_sync` call was made from a thread that is running an event loop.

    It would freeze that loop (or deadlock), so it is refused: `await` the async twin.
    """


def offline_miss(what: object, cache: object | None = None) -> OfflineError:
    """The one `OfflineError` for a file that offline mode cannot serve (say where we looked)."""
    where = f" ({cache})" if cache is not None else ""
    return OfflineError(
        f"Fetching {what}: offline mode is on and the file is not in the local cache{where}; "
        "unset HF_HUB_OFFLINE or fetch it once while online."
    )


HF_NAMES: dict[str, type[FetchError]] = {
    "EntryNotFoundError": AssetNotFoundError,
    "RemoteEntryNotFoundError": AssetNotFoundError,
    "RepositoryNotFoundError": RepoNotFoundError,
    "LocalEntryNotFoundError": OfflineError,
    "OfflineModeIsEnabled": OfflineError,
}
"""huggingface_hub's error names, and the modelfetch class each is here (`GatedRepoError`
and `RevisionNotFoundError` have the same name in both)."""

EntryNotFoundError = AssetNotFoundError
RemoteEntryNotFoundError = AssetNotFoundError
RepositoryNotFoundError = RepoNotFoundError
LocalEntryNotFoundError = OfflineError
OfflineModeIsEnabled = OfflineError

"""Foreign exceptions become modelfetch errors at one boundary, and none goes unmapped."""

from __future__ import annotations

import errno
import inspect
import os
import types

import filelock
import httpx
import httpx2
import pytest
from huggingface_hub import errors as hf

import modelfetch
from modelfetch import AssetRef
from modelfetch._hubapi.errmap import ErrorContext, mapping_entry_for, to_fetch_error

REF = AssetRef("org/model", "config.json", "main")
CTX = ErrorContext(REF)


def _exception_classes(module: types.ModuleType) -> list[type[BaseException]]:
    return [
        cls
        for cls in vars(module).values()
        if inspect.isclass(cls) and issubclass(cls, Exception) and cls.__module__.startswith(module.__name__)
    ]


@pytest.mark.parametrize(
    "cls",
    _exception_classes(hf) + _exception_classes(httpx) + _exception_classes(httpx2),
    ids=lambda c: f"{c.__module__}.{c.__name__}",
)
def test_every_foreign_exception_has_an_explicit_entry(cls: type[BaseException]) -> None:
    """Each exception class of huggingface_hub, httpx and httpx2 hits an entry before the catch-all."""
    assert mapping_entry_for(cls) is not Exception


def _response(status: int, headers: dict[str, str] | None = None) -> httpx2.Response:
    request = httpx2.Request("HEAD", "http://127.0.0.1/org/model/resolve/main/config.json")
    return httpx2.Response(status, headers=headers, request=request)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (hf.GatedRepoError("gated", response=_response(401)), modelfetch.GatedRepoError),
        (hf.RepositoryNotFoundError("missing", response=_response(401)), modelfetch.RepoNotFoundError),
        (hf.RevisionNotFoundError("rev", response=_response(404)), modelfetch.RevisionNotFoundError),
        (hf.RemoteEntryNotFoundError("entry", response=_response(404)), modelfetch.AssetNotFoundError),
        (hf.LocalEntryNotFoundError("local"), modelfetch.SourceUnavailableError),
        (hf.OfflineModeIsEnabled("offline"), modelfetch.OfflineError),
        (hf.HfHubHTTPError("boom", response=_response(503)), modelfetch.SourceUnavailableError),
        (hf.HfHubHTTPError("no", response=_response(403)), modelfetch.AuthenticationError),
        (hf.FileMetadataError("no etag"), modelfetch.SourceUnavailableError),
        (httpx2.ConnectError("refused"), modelfetch.SourceUnavailableError),
        (httpx.ReadTimeout("slow"), modelfetch.SourceUnavailableError),
        (OSError("Consistency check failed: file should be of size 3"), modelfetch.IntegrityError),
        (OSError(errno.ENOSPC, "No space left on device"), modelfetch.StorageError),
        (filelock.Timeout("/cache/.locks/x.lock"), modelfetch.StorageError),
        (hf.HFValidationError("bad id"), modelfetch.InvalidRequestError),
        (RuntimeError("surprise"), modelfetch.FetchError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.__name__,
)
def test_mapping_picks_the_specific_error(exc: BaseException, expected: type[Exception]) -> None:
    """Each foreign error maps to the most specific modelfetch error, naming repo, file and revision."""
    mapped = to_fetch_error(exc, CTX)
    assert type(mapped) is expected
    assert "org/model" in str(mapped)
    assert "config.json" in str(mapped)
    assert "main" in str(mapped)


def test_local_miss_is_offline_error_when_offline() -> None:
    """A cache miss in offline mode is an OfflineError, not a network error."""
    mapped = to_fetch_error(hf.LocalEntryNotFoundError("x"), ErrorContext(REF, offline=True))
    assert isinstance(mapped, modelfetch.OfflineError)


def test_rejected_token_is_authentication_error() -> None:
    """A 401 on a repo while a token was sent means the token is bad, not that the repo is missing."""
    exc = hf.RepositoryNotFoundError("x", response=_response(401))
    assert isinstance(to_fetch_error(exc, ErrorContext(REF, has_token=True)), modelfetch.AuthenticationError)


def test_our_own_errors_pass_through() -> None:
    """A FetchError is returned unchanged."""
    err = modelfetch.IntegrityError("bad")
    assert to_fetch_error(err, CTX) is err


def test_asset_not_found_is_a_file_not_found_error() -> None:
    """Callers can catch a missing file as the builtin FileNotFoundError."""
    assert issubclass(modelfetch.AssetNotFoundError, FileNotFoundError)
    assert issubclass(modelfetch.StorageError, OSError)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EPERM])
def test_a_cache_that_cannot_be_written_says_what_to_do(code: int) -> None:
    """A read-only or foreign-owned cache: StorageError naming the path and the three ways out."""
    exc = OSError(code, os.strerror(code), "/data/hf/models--org--model/blobs/x.incomplete")
    error = to_fetch_error(exc, ErrorContext(AssetRef("org/model", "config.json")))
    assert isinstance(error, modelfetch.StorageError)
    assert "/data/hf/models--org--model/blobs/x.incomplete" in str(error)
    assert "HF_HUB_CACHE" in str(error)
    assert "HF_HUB_OFFLINE=1" in str(error)

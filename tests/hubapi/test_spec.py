"""The download protocol's pure parts: URLs, origins, etags, metadata, errors, ranges."""

from __future__ import annotations

import email.utils

import pytest

import modelfetch
from modelfetch import AssetRef, RepoRef
from modelfetch._hubapi.spec import (
    classify,
    error_for_status,
    hash_kind,
    metadata_from_headers,
    normalize_etag,
    parse_content_range,
    parse_retry_after,
    plan_ranges,
    resolve_url,
    revision_url,
    safe_blob_name,
    same_origin,
    tree_url,
)

E = "http://127.0.0.1:8000"
COMMIT = "c" * 40
SHA = "a" * 64


def test_urls_are_quoted_like_huggingface_hub() -> None:
    """Revisions are quoted whole (slashes too); paths keep their slashes; types get prefixes."""
    ref = AssetRef("org/model", "sub dir/a+b.json", "refs/pr/1", "dataset")
    assert resolve_url(E, ref) == f"{E}/datasets/org/model/resolve/refs%2Fpr%2F1/sub%20dir/a%2Bb.json"
    assert revision_url(E, RepoRef("org/m", "v1.0")) == f"{E}/api/models/org/m/revision/v1.0"
    assert tree_url(E, RepoRef("org/m", "main", "space"), COMMIT).startswith(
        f"{E}/api/spaces/org/m/tree/{COMMIT}?"
    )


def test_same_origin() -> None:
    """Scheme, host and port must all match; default ports count."""
    assert same_origin("https://hf.co/a", "https://HF.co:443/b")
    assert not same_origin("http://127.0.0.1:1/a", "http://localhost:1/a")
    assert not same_origin("http://h:1/a", "http://h:2/a")
    assert not same_origin("http://h/a", "https://h/a")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [('"abc"', "abc"), ('W/"abc"', "abc"), ("abc", "abc"), ("", None), (None, None), ('""', None)],
)
def test_normalize_etag(raw: str | None, expected: str | None) -> None:
    """Quoted, weak and bare etags all normalise to the bare value."""
    assert normalize_etag(raw) == expected


def test_etag_kinds_and_safety() -> None:
    """64 hex is sha256, 40 hex is a git sha1; only those (which we verify) may name blob files."""
    assert hash_kind(SHA) == "sha256"
    assert hash_kind("b" * 40) == "git-sha1"
    assert hash_kind("xyz") is None
    assert safe_blob_name("../../etc") is None
    assert safe_blob_name("abc123") is None  # hex, but nothing we can verify it against
    assert safe_blob_name("b" * 40) == "b" * 40
    assert safe_blob_name(SHA) == SHA


def test_metadata_prefers_linked_headers() -> None:
    """X-Linked-Etag/Size win; a redirect's Content-Length is not the file's size."""
    ref = AssetRef("org/model", "w.bin")
    headers = {
        "x-repo-commit": COMMIT,
        "x-linked-etag": f'"{SHA}"',
        "x-linked-size": "10",
        "etag": '"other"',
        "content-length": "0",
        "location": "http://localhost:9/cdn/x",
    }
    meta = metadata_from_headers(
        headers, url=f"{E}/org/model/resolve/main/w.bin", endpoint=E, ref=ref, redirected=True
    )
    assert meta is not None
    assert (meta.commit, meta.etag, meta.size, meta.url) == (COMMIT, SHA, 10, "http://localhost:9/cdn/x")
    assert not same_origin(meta.url, E)  # so the download carries no token


def test_metadata_from_a_plain_server() -> None:
    """Without X-Linked-*, ETag and Content-Length are used; a pinned ref needs no commit header."""
    ref = AssetRef("org/model", "a.json", COMMIT)
    meta = metadata_from_headers(
        {"etag": 'W/"e1"', "content-length": "5"}, url=E, endpoint=E, ref=ref, redirected=False
    )
    assert meta is not None
    assert (meta.commit, meta.etag, meta.size, meta.url) == (COMMIT, "e1", 5, E)
    assert metadata_from_headers({}, url=E, endpoint=E, ref=AssetRef("o/m", "a"), redirected=False) is None


@pytest.mark.parametrize(
    ("status", "code", "token", "error"),
    [
        (401, "RepoNotFound", False, modelfetch.RepoNotFoundError),
        (401, "RepoNotFound", True, modelfetch.AuthenticationError),
        (404, "RepoNotFound", True, modelfetch.RepoNotFoundError),
        (401, "GatedRepo", False, modelfetch.GatedRepoError),
        (404, "RevisionNotFound", False, modelfetch.RevisionNotFoundError),
        (404, "EntryNotFound", False, modelfetch.AssetNotFoundError),
        (401, None, False, modelfetch.AuthenticationError),
        (403, None, True, modelfetch.AuthenticationError),
        (404, None, False, modelfetch.AssetNotFoundError),
        (400, None, False, modelfetch.InvalidRequestError),
        (503, None, False, modelfetch.SourceUnavailableError),
        (418, None, False, modelfetch.SourceUnavailableError),
    ],
)
def test_error_for_status(status: int, code: str | None, token: bool, error: type[Exception]) -> None:
    """Each status and X-Error-Code maps to its error, naming the request."""
    headers = {"x-error-code": code} if code else {}
    got = error_for_status(status, headers, AssetRef("org/model", "a.json"), has_token=token)
    assert type(got) is error
    assert "org/model" in str(got)


def test_retry_after_in_seconds_and_as_a_date() -> None:
    """Retry-After may be seconds or an HTTP date (relative to now); junk is ignored."""
    assert parse_retry_after("7", now=0) == 7
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == pytest.approx(30)
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after(None, now=0) is None


def test_content_range_and_planning() -> None:
    """Content-Range parses; ranges cover the rest of the file exactly, in order."""
    assert parse_content_range("bytes 5-9/10") == (5, 9, 10)
    assert parse_content_range("bytes 5-9/*") == (5, 9, None)
    assert parse_content_range("nonsense") is None
    assert list(plan_ranges(10, 35, 10)) == [(10, 19), (20, 29), (30, 34)]
    assert list(plan_ranges(35, 35, 10)) == []
    huge = plan_ranges(0, 2**50, 16 * 2**20)  # lazily: nothing built up front
    assert next(huge) == (0, 16 * 2**20 - 1)


@pytest.mark.parametrize(
    ("status", "headers", "kind", "error"),
    [
        (200, {}, "ok", None),
        (206, {}, "ok", None),
        (302, {"location": "/x"}, "redirect", None),
        (302, {}, "fail", modelfetch.SourceUnavailableError),
        (429, {"retry-after": "7"}, "retry", modelfetch.SourceUnavailableError),
        (503, {}, "retry", modelfetch.SourceUnavailableError),
        (404, {"x-error-code": "EntryNotFound"}, "fail", modelfetch.AssetNotFoundError),
        (401, {"x-error-code": "GatedRepo"}, "fail", modelfetch.GatedRepoError),
        (403, {}, "fail", modelfetch.AuthenticationError),
        (100, {}, "fail", modelfetch.SourceUnavailableError),
    ],
)
def test_classify_reads_every_status_one_way(
    status: int, headers: dict[str, str], kind: str, error: type[Exception] | None
) -> None:
    """classify: ok / redirect / retry (with Retry-After) / fail, with the error each means."""
    outcome = classify(status, headers, AssetRef("org/model", "a.json"), has_token=False, now=0.0)
    assert outcome.kind == kind
    assert (type(outcome.error) if outcome.error else None) is error
    if status == 429:
        assert outcome.retry_after == 7.0
    if kind == "redirect":
        assert outcome.location == "/x"

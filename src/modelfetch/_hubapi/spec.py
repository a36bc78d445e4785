"""The Hub's download protocol as pure functions: URLs, headers, errors, ranges. No I/O.

`HttpHubSource` drives these; they are tested on plain values.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urljoin, urlsplit

from .._core.errors import (
    AssetNotFoundError,
    AuthenticationError,
    FetchError,
    GatedRepoError,
    InvalidRequestError,
    RepoNotFoundError,
    RevisionNotFoundError,
    SourceUnavailableError,
)
from .._core.types import AssetRef, ListedFile, RepoRef
from .._core.validate import filename_problem, is_commit

_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_REDIRECTS = 5
"""Redirects followed for one request, by every engine."""
MAX_PAGES = 10_000
"""Pages of one listing, whichever source reads it."""
MAX_API_BODY = 32 * 1024 * 1024
"""No Hub metadata or listing page is this large."""
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_HEX = re.compile(r"[0-9a-f]+")
COMMIT_RE = re.compile(r"[0-9a-f]{40}")


def resolve_url(endpoint: str, ref: AssetRef) -> str:
    """`{endpoint}/{prefix}{repo_id}/resolve/{revision}/{path}`, quoted as huggingface_hub does."""
    revision = quote(ref.revision, safe="")
    return f"{endpoint}/{_PREFIX[ref.repo_type]}{ref.repo_id}/resolve/{revision}/{quote(ref.filename)}"


def revision_url(endpoint: str, repo: RepoRef) -> str:
    """The repo-info URL that pins a revision to a commit."""
    return f"{endpoint}/api/{repo.repo_type}s/{repo.repo_id}/revision/{quote(repo.revision, safe='')}"


def tree_url(endpoint: str, repo: RepoRef, commit: str) -> str:
    """The first page of the recursive tree listing at `commit`."""
    return f"{endpoint}/api/{repo.repo_type}s/{repo.repo_id}/tree/{commit}?recursive=true&expand=false"


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of `url`, with the scheme's default port filled in."""
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs share scheme, host and port (the only place a token may go)."""
    return origin(a) == origin(b)


def redirect_target(url: str, location: str) -> str:
    """The absolute URL a `Location` header points to."""
    return urljoin(url, location)


def normalize_etag(value: str | None) -> str | None:
    """Strip `W/` and quotes from an ETag; None for a missing or empty one."""
    if not value:
        return None
    value = value.strip()
    value = value.removeprefix("W/")
    return value.strip('"') or None


def safe_blob_name(etag: str | None) -> str | None:
    """`etag` if it may name a blob: a git sha1 (40 hex) or a sha256 (64 hex), which we verify.

    Anything else (absent, another length, not hex) names nothing: the content is then
    hashed and named by its sha256, as for a server that sends no etag.
    """
    if etag and hash_kind(etag) is not None:
        return etag
    return None


def checked_commit(value: str, *, endpoint: str, what: object, pinned: str | None) -> str:
    """`value` if it is a commit id (40 lowercase hex) equal to `pinned` when there is one.

    Raises:
        SourceUnavailableError: anything else; a commit names a folder under `snapshots/`.
    """
    if not COMMIT_RE.fullmatch(value):
        raise SourceUnavailableError(
            f"Fetching {what}: {endpoint} answered with commit {value[:80]!r}, which is not a commit id; "
            "nothing was written. Check that HF_ENDPOINT is a Hub-compatible server you trust."
        )
    if pinned is not None and value != pinned:
        raise SourceUnavailableError(
            f"Fetching {what}: {endpoint} answered with commit {value} for pinned revision {pinned}; "
            "nothing was written. Check that HF_ENDPOINT is a Hub-compatible server you trust."
        )
    return value


def hash_kind(etag: str) -> str | None:
    """How to verify content against `etag`: "sha256" (LFS), "git-sha1" (git blob), or None."""
    if len(etag) == 64 and _HEX.fullmatch(etag):
        return "sha256"
    if len(etag) == 40 and _HEX.fullmatch(etag):
        return "git-sha1"
    return None


def content_hasher(etag: str, size: int) -> Any:
    """A fresh hashlib object whose hexdigest equals `etag` for the right `size` bytes, or None.

    sha256 for LFS etags; for git blob ids, sha1 over git's `blob <size>\\0` header and the content.
    """
    kind = hash_kind(etag)
    if kind == "sha256":
        return hashlib.sha256()
    if kind == "git-sha1":
        return hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
    return None


def git_blob_id(data: bytes) -> str:
    """The git blob id (sha1) of `data`: the etag the Hub gives a non-LFS file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class FileMetadata:
    """What the metadata request told us about a file.

    Attributes:
        commit: the commit the revision resolved to.
        etag: the content's id (sha256 for LFS, git sha1 otherwise); None if not sent.
        size: the content's size, if sent.
        url: where to download it from (the CDN location after a cross-origin redirect);
            the token goes there only if it is on the endpoint's origin (`same_origin`).
    """

    commit: str
    etag: str | None
    size: int | None
    url: str


def metadata_from_headers(
    headers: Mapping[str, str], *, url: str, endpoint: str, ref: AssetRef, redirected: bool
) -> FileMetadata | None:
    """Metadata from a HEAD answer (a 2xx, or the 3xx that leaves the Hub); None if it is not a Hub's.

    A Hub answer names its commit (`X-Repo-Commit`); for a pinned ref an etag alone will do.
    """
    etag = normalize_etag(headers.get("x-linked-etag") or headers.get("etag"))
    commit = headers.get("x-repo-commit") or (ref.revision if ref.is_pinned and etag else None)
    if commit is None:
        return None
    pinned = ref.revision if ref.is_pinned else None
    commit = checked_commit(commit, endpoint=endpoint, what=ref, pinned=pinned)
    raw_size = headers.get("x-linked-size") or (None if redirected else headers.get("content-length"))
    size = int(raw_size) if raw_size and raw_size.isdigit() else None
    target = redirect_target(url, headers["location"]) if redirected and "location" in headers else url
    return FileMetadata(commit, etag, size, target)


def error_for_status(
    status: int, headers: Mapping[str, str], what: AssetRef | RepoRef, *, has_token: bool
) -> FetchError:
    """The error a final (non-retryable, or retried-out) HTTP status means."""
    code = headers.get("x-error-code")
    repo = f"{what.repo_type} {what.repo_id}"
    token_hint = "set HF_TOKEN to a token with access"
    if code == "GatedRepo":
        return GatedRepoError(
            f"Fetching {what}: {what.repo_id} is gated; accept its terms on the Hub and {token_hint}."
        )
    if code == "RepoNotFound":
        if has_token and status == 401:
            return AuthenticationError(
                f"Fetching {what}: the server rejected the token for {repo}; check HF_TOKEN."
            )
        hint = "" if has_token else f"; if it is private, {token_hint}"
        return RepoNotFoundError(
            f"Fetching {what}: {repo} was not found; check the repo id and repo_type{hint}."
        )
    if code == "RevisionNotFound":
        return RevisionNotFoundError(
            f"Fetching {what}: revision {what.revision!r} does not exist; check the branch, tag or commit id."
        )
    if code == "EntryNotFound":
        return AssetNotFoundError(
            f"Fetching {what}: the file does not exist at that revision; check the filename."
        )
    if status in (401, 403):
        return AuthenticationError(
            f"Fetching {what}: the server refused access (HTTP {status}); {token_hint}, "
            "or check that the repo and file exist (some servers answer 401 for missing files)."
        )
    if status in (404, 410):  # the Hub always says which: a bare 404 may be a server that is no Hub
        return AssetNotFoundError(
            f"Fetching {what}: the server answered {status} Not Found without the Hub's X-Error-Code; "
            "check the repo id, revision and filename, and that HF_ENDPOINT is a Hub."
        )
    if status == 400:
        return InvalidRequestError(f"Fetching {what}: the server rejected the request as invalid (HTTP 400).")
    if status in RETRYABLE_STATUS:
        return SourceUnavailableError(
            f"Fetching {what}: the server kept answering HTTP {status}; retry later."
        )
    return SourceUnavailableError(f"Fetching {what}: unexpected HTTP {status} from the server.")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one HTTP answer means for the request that got it (see `classify`).

    Attributes:
        kind: "ok" (2xx), "redirect" (3xx with a Location), "retry" (408, 429, 5xx) or
            "fail" (anything else).
        error: for "retry", the error to raise once retries run out; for "fail", the error.
        retry_after: for "retry", the server's `Retry-After` in seconds, if it sent one.
        location: for "redirect", the `Location` header as sent.
    """

    kind: str
    error: FetchError | None = None
    retry_after: float | None = None
    location: str | None = None


def classify(
    status: int, headers: Mapping[str, str], what: AssetRef | RepoRef, *, has_token: bool, now: float
) -> Outcome:
    """The one reading of an HTTP status for every request we make. Pure."""
    if 200 <= status < 300:
        return Outcome("ok")
    if status in RETRYABLE_STATUS:
        after = parse_retry_after(headers.get("retry-after"), now)
        return Outcome("retry", error_for_status(status, headers, what, has_token=has_token), after)
    if 300 <= status < 400:
        location = headers.get("location")
        if location:
            return Outcome("redirect", location=location)
        return Outcome(
            "fail",
            SourceUnavailableError(f"Fetching {what}: the server answered HTTP {status} without a Location."),
        )
    if status >= 400:
        return Outcome("fail", error_for_status(status, headers, what, has_token=has_token))
    return Outcome("fail", SourceUnavailableError(f"Fetching {what}: the server answered HTTP {status}."))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now, 0.0)


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """(first, last, total) from `Content-Range: bytes a-b/n`; total None for `*`."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if match is None:
        return None
    total = None if match[3] == "*" else int(match[3])
    return int(match[1]), int(match[2]), total


BodyVerdict = Literal["whole", "part", "encoded", "wrong-range", "not-a-body"]


def judge_body(
    status: int, content_range: str | None, content_encoding: str | None, first: int, last: int | None
) -> BodyVerdict:
    """What a file body's answer is, for a GET of bytes `first..last` (`last` None: to the end).

    The one check every engine and the huggingface_hub guard make before taking a byte:

    - "encoded": any `Content-Encoding` but identity (identity was asked for; a body is
      never inflated);
    - "whole": a 200, the whole file (from byte 0, whatever was asked: a server that
      ignores `Range`);
    - "part": a 206 of bytes starting at `first` and ending no later than `last`;
    - "wrong-range": a 206 of other bytes, or without a usable `Content-Range`;
    - "not-a-body": any other status.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in ("", "identity"):
        return "encoded"
    if status == 200:
        return "whole"
    if status != 206:
        return "not-a-body"
    span = parse_content_range(content_range)
    if span is None or span[0] != first or (last is not None and span[1] > last):
        return "wrong-range"
    return "part"


def plan_ranges(start: int, size: int, chunk: int) -> Iterator[tuple[int, int]]:
    """Bytes `start..size-1` as inclusive `(first, last)` ranges of `chunk` bytes, made lazily.

    Lazily: an announced size of 2**50 must not build millions of ranges up front.
    """
    return ((first, min(first + chunk, size) - 1) for first in range(start, size, chunk))


# ---- API answers: untrusted JSON, checked before use --------------------------------------


def not_hub_json(endpoint: str, what: object, url: str, problem: str) -> SourceUnavailableError:
    """The error for an API answer that is not what the Hub sends."""
    return SourceUnavailableError(
        f"Listing {what}: {endpoint} answered {url} with {problem}, not the JSON a Hub sends; "
        "check that HF_ENDPOINT points to a Hub-compatible server."
    )


def decode_json(body: bytes, content_type: str, *, endpoint: str, what: object, url: str) -> Any:
    """Parse an API answer's body; `SourceUnavailableError` saying what came back if it is not JSON."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        snippet = body[:60].decode("utf-8", "replace")
        kind = content_type[:80] or "no Content-Type"
        raise not_hub_json(endpoint, what, url, f"{len(body)} bytes of {kind} starting {snippet!r}") from None


def commit_from_revision_info(payload: Any, *, endpoint: str, what: object, url: str) -> str:
    """The commit id of a `/revision/` answer (40 lowercase hex), or `SourceUnavailableError`."""
    sha = payload.get("sha") if isinstance(payload, dict) else None
    if not isinstance(sha, str) or not is_commit(sha):
        raise not_hub_json(endpoint, what, url, f"no usable commit id (sha={str(sha)[:80]!r})")
    return sha


def files_from_tree_page(payload: Any, *, endpoint: str, what: object, url: str) -> list[ListedFile]:
    """The files of one page of a recursive tree listing, every field checked."""
    if not isinstance(payload, list):
        raise not_hub_json(endpoint, what, url, f"a JSON {type(payload).__name__} where a list belongs")
    files = []
    for entry in payload:
        if not isinstance(entry, dict):
            raise not_hub_json(endpoint, what, url, "a listing entry that is not an object")
        if entry.get("type") != "file":
            continue
        found = _tree_file(entry)
        if found is None:
            raise not_hub_json(endpoint, what, url, f"a malformed file entry {str(entry)[:120]!r}")
        files.append(found)
    return files


def _tree_file(entry: dict[str, Any]) -> ListedFile | None:
    path, lfs = entry.get("path"), entry.get("lfs")
    if not isinstance(path, str) or filename_problem(path):
        return None
    about = lfs if isinstance(lfs, dict) else entry
    size, oid = about.get("size"), about.get("oid")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0 or not isinstance(oid, str):
        return None
    return ListedFile(path, size, oid, lfs=isinstance(lfs, dict))


def check_listing(files: list[ListedFile], *, endpoint: str, what: object, url: str) -> None:
    """Refuse a listing whose paths are unsafe, repeated, or both a file and a folder."""
    for f in files:
        if filename_problem(f.path):
            raise not_hub_json(endpoint, what, url, f"an unsafe path {f.path[:120]!r}")
    clash = listing_clash([f.path for f in files])
    if clash is not None:
        raise not_hub_json(endpoint, what, url, f"{clash[:120]!r} listed twice, or as a file and a folder")


def listing_clash(paths: list[str]) -> str | None:
    """A path listed twice, or also a folder of another path (`a` and `a/b`), if any."""
    names: set[str] = set()
    for path in paths:
        if path in names:
            return path
        names.add(path)
    for path in paths:
        parts = path.split("/")
        for end in range(1, len(parts)):
            if "/".join(parts[:end]) in names:
                return "/".join(parts[:end])
    return None

"""What a mirror bucket holds, as pure functions: object keys and their small JSON bodies.

Layout (under the bucket URL's prefix)::

    blobs/<etag>                                            the content, named like the
                                                            HF cache names it (sha256 for
                                                            LFS files, git sha1 otherwise)
    repos/<type>s/<repo_id>/<commit>/files/<path>           {"etag", "size", "lfs"}
    repos/<type>s/<repo_id>/<commit>/listing.json           every file of that commit
    parts/<etag>/<start>-<end>                              bytes start..end-1 of a large
                                                            blob, published as they arrive
                                                            from upstream (offsets 0-padded
                                                            to 20 digits: listed in order)
    claims/<etag>                                           {"owner", "expires"}: a node
                                                            is fetching this blob upstream
    wanted/<etag>                                           empty: another node waits for
                                                            this blob, so its claimant
                                                            uploads it now (a large one
                                                            part by part as it arrives)

Blobs are content-addressed, so two writers of one key always write the same bytes. Entries
and listings describe a commit, which never changes, so they are written once
(conditional create) and never updated. Bodies read back from a bucket are untrusted:
anything malformed decodes to None (a miss), never to a path outside the cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .._core.errors import InvalidRequestError
from .._core.types import AssetRef, ListedFile, RepoListing, RepoRef
from .._core.validate import check_filename, is_commit
from .._hubapi.spec import listing_clash, safe_blob_name


def blob_key(etag: str) -> str:
    """The key of the blob with this etag."""
    return f"blobs/{etag}"


def parts_prefix(etag: str) -> str:
    """The prefix under which the parts of the blob with this etag are stored."""
    return f"parts/{etag}/"


def part_key(etag: str, start: int, end: int) -> str:
    """The key of bytes `start..end-1` of the blob with this etag."""
    return f"{parts_prefix(etag)}{start:020d}-{end:020d}"


def decode_part_key(key: str, etag: str, size: int) -> tuple[int, int] | None:
    """The byte range a listed part key names, or None if it is not a sane part of this blob.

    Keys come from a bucket listing: untrusted. A part must lie within the blob and be non-empty.
    """
    name = key.removeprefix(parts_prefix(etag))
    if name == key or len(name) != 41 or name[20] != "-":
        return None
    first, last = name[:20], name[21:]
    if not (first.isdigit() and last.isdigit() and first.isascii() and last.isascii()):
        return None
    start, end = int(first), int(last)
    return (start, end) if 0 <= start < end <= size else None


WANTED_PREFIX = "wanted/"


def wanted_key(etag: str) -> str:
    """The key a node waiting for a blob creates, so that its claimant uploads it at once."""
    return f"{WANTED_PREFIX}{etag}"


def claim_key(etag: str) -> str:
    """The key of the claim on fetching this blob from upstream."""
    return f"claims/{etag}"


def _commit_prefix(repo: RepoRef | AssetRef, commit: str) -> str:
    return f"repos/{repo.repo_type}s/{repo.repo_id}/{commit}"


def entry_key(repo: RepoRef | AssetRef, commit: str, path: str) -> str:
    """The key of one file's manifest entry at `commit`."""
    return f"{_commit_prefix(repo, commit)}/files/{path}"


def listing_key(repo: RepoRef | AssetRef, commit: str) -> str:
    """The key of the listing of every file at `commit`."""
    return f"{_commit_prefix(repo, commit)}/listing.json"


def _file_dict(file: ListedFile) -> dict[str, object]:
    return {"path": file.path, "etag": file.etag, "size": file.size, "lfs": file.lfs}


def _file_from(raw: object) -> ListedFile | None:
    if not isinstance(raw, dict):
        return None
    path, etag, size, lfs = raw.get("path"), raw.get("etag"), raw.get("size"), raw.get("lfs", False)
    if not (isinstance(path, str) and isinstance(etag, str) and isinstance(lfs, bool)):
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or safe_blob_name(etag) != etag:
        return None
    try:
        check_filename(path)
    except InvalidRequestError:
        return None
    return ListedFile(path, size, etag, lfs)


def _load(data: bytes) -> object:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return None


def encode_entry(file: ListedFile) -> bytes:
    """The body of a manifest entry."""
    return json.dumps(_file_dict(file), sort_keys=True).encode()


def decode_entry(data: bytes, path: str) -> ListedFile | None:
    """A manifest entry read back, or None if it is malformed or names another path."""
    file = _file_from(_load(data))
    return file if file is not None and file.path == path else None


def encode_listing(listing: RepoListing) -> bytes:
    """The body of a commit's listing."""
    body = {"commit": listing.commit, "files": [_file_dict(f) for f in listing.files]}
    return json.dumps(body, sort_keys=True).encode()


def decode_listing(data: bytes, repo: RepoRef) -> RepoListing | None:
    """A listing read back for `repo` (pinned), or None if malformed or of another commit."""
    raw = _load(data)
    if not isinstance(raw, dict) or raw.get("commit") != repo.revision or not is_commit(repo.revision):
        return None
    entries = raw.get("files")
    if not isinstance(entries, list):
        return None
    files = [_file_from(entry) for entry in entries]
    if any(f is None for f in files) or listing_clash([f.path for f in files if f]):
        return None
    return RepoListing(repo, repo.revision, tuple(sorted((f for f in files if f), key=lambda f: f.path)))


@dataclass(frozen=True, slots=True)
class Claim:
    """A node's claim on fetching one blob upstream, valid until `expires` (Unix time).

    Holders renew it well before it expires; a claim past `expires` belongs to a node that
    died or hung, and another node may take it over.
    """

    owner: str
    expires: float

    def expired(self, now: float) -> bool:
        """Whether the claim has lapsed at wall-clock time `now`."""
        return now >= self.expires


def encode_claim(claim: Claim) -> bytes:
    """The body of a claim object."""
    return json.dumps({"owner": claim.owner, "expires": claim.expires}).encode()


def decode_claim(data: bytes) -> Claim | None:
    """A claim read back, or None if malformed (callers treat that as lapsed)."""
    raw = _load(data)
    if not isinstance(raw, dict):
        return None
    owner, expires = raw.get("owner"), raw.get("expires")
    if not isinstance(owner, str) or not isinstance(expires, int | float) or isinstance(expires, bool):
        return None
    return Claim(owner, float(expires))

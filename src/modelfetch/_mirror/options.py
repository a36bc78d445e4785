"""What a `MirrorSource` is told (`MirrorOptions`) and what it reports (`MirrorStats`)."""

from __future__ import annotations

from dataclasses import dataclass

from .._core.errors import InvalidRequestError
from .._core.validate import check_positive_int, check_seconds

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's smallest multipart part; no node splits a blob into smaller parts


@dataclass(frozen=True, slots=True)
class MirrorOptions:
    """How a `MirrorSource` shares work with the rest of the fleet.

    Attributes:
        lease: seconds a claim lasts without renewal; a node that dies while fetching
            holds up the others for at most this long.
        max_wait: seconds to wait for another node's fetch before fetching upstream anyway.
        poll_interval: the longest pause between looks at the bucket while waiting.
        retry_after: seconds to skip the bucket after it failed, before trying it again.
        part_size: the size of a blob's parts: a blob larger than this is published to the
            bucket part by part while it arrives from upstream (so other nodes read it as it
            lands), and a whole blob pushed larger than this goes up as a multipart upload.
        write_back: upload what was fetched upstream (off: a read-only mirror).
        timeout: seconds before a bucket request counts as failed.
        uploads: how many write-backs run at once in the background (each holds at most
            one part in memory).
        close_timeout: seconds `aclose()` waits for background write-backs to finish before
            abandoning them (their claims are released, or lapse, and another node uploads).
    """

    lease: float = 30.0
    max_wait: float = 1800.0
    poll_interval: float = 1.0
    retry_after: float = 30.0
    part_size: int = 16 * MiB
    write_back: bool = True
    timeout: float = 10.0
    uploads: int = 2
    close_timeout: float = 300.0

    def __post_init__(self) -> None:
        for name in ("lease", "max_wait", "poll_interval", "retry_after", "timeout"):
            check_seconds(f"MirrorOptions.{name}", getattr(self, name), allow_zero=False)
        check_seconds("MirrorOptions.close_timeout", self.close_timeout, allow_zero=True)
        check_positive_int("MirrorOptions.part_size", self.part_size)
        check_positive_int("MirrorOptions.uploads", self.uploads)
        if self.part_size < MIN_PART_SIZE:
            raise InvalidRequestError("MirrorOptions.part_size must be at least 5 MiB (the S3 minimum).")


@dataclass(frozen=True, slots=True)
class MirrorStats:
    """Counters of one `MirrorSource`, as `MirrorSource.stats()` saw them (a frozen value).

    Attributes:
        mirror_hits: files read from the bucket.
        mirror_bytes: bytes read from the bucket.
        upstream_fetches: files fetched from upstream (the Hub).
        uploads: blobs written back to the bucket (a blob sent in parts counts once).
        upload_bytes: bytes written back.
        upload_failures: write-backs that failed (logged; the fetch itself succeeded).
        uploads_pending: write-backs queued or running in the background right now.
        uploads_abandoned: write-backs `aclose()` gave up on after `close_timeout`.
        waits: fetches that waited for another node's claim.
        bucket_errors: times the bucket was unusable and upstream was used instead.
        corrupt: blobs in the bucket that failed verification (fetched upstream instead).
    """

    mirror_hits: int = 0
    mirror_bytes: int = 0
    upstream_fetches: int = 0
    uploads: int = 0
    upload_bytes: int = 0
    upload_failures: int = 0
    uploads_pending: int = 0
    uploads_abandoned: int = 0
    waits: int = 0
    bucket_errors: int = 0
    corrupt: int = 0

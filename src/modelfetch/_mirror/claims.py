"""Claims: which node of a fleet fetches a blob from upstream while the others wait for it.

A claim is a small object `claims/<etag>` created with a conditional create, so exactly one
node wins it. The winner renews it (a conditional replace on its own e_tag, from the
`Keeper`'s thread) while it fetches and uploads, and deletes it when done. The others
poll for the blob to appear.
A claim that stops being renewed (its node died or hung) lapses at its `expires` time and
the next node to look takes it over, with a conditional replace, so again only one wins.

Expiry uses wall-clock time, so the nodes' clocks must agree to well within the lease
(NTP is enough: the default lease is 30 s). The functions here block (run them in a
worker thread); the `Keeper` runs its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .bucket import Bucket, BucketUnavailableError
from .keys import Claim, claim_key, decode_claim, encode_claim

log = logging.getLogger("modelfetch.mirror")


@dataclass(frozen=True, slots=True)
class HeldClaim:
    """A claim this node holds, with the e_tag needed to renew it."""

    etag: str
    claim: Claim
    version: str


def try_claim(bucket: Bucket, etag: str, owner: str, lease: float, now: float) -> HeldClaim | Claim:
    """Win the claim on `etag` (a `HeldClaim`), or learn who holds it (their `Claim`)."""
    key = claim_key(etag)
    mine = Claim(owner, now + lease)
    for _ in range(3):
        version = bucket.create(key, encode_claim(mine))
        if version is not None:
            return HeldClaim(etag, mine, version)
        current = bucket.read(key)
        if current is None:  # released between our create and read: try again
            continue
        data, their_version = current
        theirs = decode_claim(data)
        # A live claim never reaches further than one lease ahead (renewals write now + lease);
        # one that claims more (a huge `expires`) would make every node wait `max_wait`.
        if theirs is not None and not theirs.expired(now) and theirs.expires <= now + 2 * lease:
            return theirs
        version = bucket.replace(key, encode_claim(mine), their_version)  # take over a lapsed claim
        if version is not None:
            return HeldClaim(etag, mine, version)
    return Claim("(contended)", now)  # others keep racing for it: wait one poll and look again


def renew(bucket: Bucket, held: HeldClaim, lease: float, now: float) -> HeldClaim | None:
    """Extend `held` to `now + lease`; None if another node took it over meanwhile."""
    claim = Claim(held.claim.owner, now + lease)
    version = bucket.replace(claim_key(held.etag), encode_claim(claim), held.version)
    return None if version is None else HeldClaim(held.etag, claim, version)


def release(bucket: Bucket, held: HeldClaim) -> None:
    """Delete `held` if it is still ours (a lapsed claim may have been taken over)."""
    key = claim_key(held.etag)
    current = bucket.read(key)
    if current is None:
        return
    theirs = decode_claim(current[0])
    if theirs is None or theirs.owner == held.claim.owner:
        bucket.delete(key)


class Keeper:
    """Renews the claims this node holds, every `lease / 3` s, from a thread of its own.

    A claim is held from the moment it is won until its blob is in the bucket, which may be
    after the fetch that won it has returned (the upload runs in the background), so the
    renewing cannot belong to any one task. `let_go` stops renewing a claim; the caller then
    releases it (or, if the bucket is unreachable, lets it lapse).
    """

    def __init__(self, bucket: Bucket, lease: float, clock: Callable[[], float]) -> None:
        self._bucket = bucket
        self._lease = lease
        self._clock = clock
        self._held: dict[str, HeldClaim] = {}
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None  # set: the renewing thread ends

    def hold(self, held: HeldClaim) -> None:
        """Keep `held` renewed until `let_go`."""
        with self._lock:
            self._held[held.etag] = held
            if self._stop is None:
                self._stop = threading.Event()
                thread = threading.Thread(target=self._run, args=(self._stop,), name="modelfetch-claims")
                thread.daemon = True  # a process that exits lets its claims lapse
                thread.start()

    def let_go(self, held: HeldClaim) -> None:
        """Stop renewing `held`."""
        with self._lock:
            self._held.pop(held.etag, None)

    @property
    def held(self) -> int:
        """How many claims are being renewed now."""
        with self._lock:
            return len(self._held)

    def close(self) -> None:
        """Stop renewing everything; claims not released lapse after the lease."""
        with self._lock:
            self._held.clear()
            stop, self._stop = self._stop, None
        if stop is not None:
            stop.set()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self._lease / 3):
            with self._lock:
                current = list(self._held.values())
            for held in current:
                try:
                    renewed = renew(self._bucket, held, self._lease, self._clock())
                except BucketUnavailableError as exc:
                    log.warning("mirror %s: could not renew a claim: %s", self._bucket.url, exc)
                    continue
                with self._lock:
                    if self._held.get(held.etag) is not held:
                        continue  # let go meanwhile
                    if renewed is None:
                        log.warning("mirror %s: another node took over a claim of ours", self._bucket.url)
                        del self._held[held.etag]
                    else:
                        self._held[held.etag] = renewed


def release_quietly(bucket: Bucket, held: HeldClaim) -> None:
    """`release`, logging (not raising) a bucket failure: the claim then lapses. Blocking."""
    try:
        release(bucket, held)
    except BucketUnavailableError as exc:
        log.warning("mirror %s: could not release a claim: %s", bucket.url, exc)

"""Claims: which node of a fleet fetches a blob from upstream while the others wait for it.

A claim is a small object `claims/<etag>` created with a conditional create, so exactly one
node wins it. The winner renews it (a conditional replace on its own e_tag) while it
fetches and uploads, and deletes it when done. The others poll for the blob to appear.
A claim that stops being renewed (its node died or hung) lapses at its `expires` time and
the next node to look takes it over, with a conditional replace, so again only one wins.

Expiry uses wall-clock time, so the nodes' clocks must agree to well within the lease
(NTP is enough: the default lease is 30 s). All functions here block: run them in a
worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from .bucket import Bucket
from .keys import Claim, claim_key, decode_claim, encode_claim


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

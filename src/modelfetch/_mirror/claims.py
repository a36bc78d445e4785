"""Claims: which node of a fleet fetches a blob from upstream while the others wait for it.

A claim is a small object `claims/<etag>` created with a conditional create, so exactly one
node wins it. The winner renews it (a conditional replace on its own e_tag) while it
fetches and uploads, and deletes it when done. The others poll for the blob to appear.
A claim that stops being renewed (its node died or hung) lapses at its `expires` time and
the next node to look takes it over, with a conditional replace, so again only one wins.

Expiry uses wall-clock time, so the nodes' clocks must agree to well within the lease
(NTP is enough: the default lease is 30 s). The functions here block (run them in a
worker thread), except `holding`, the async context manager a claimant runs under.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from .access import BucketAccess
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


@asynccontextmanager
async def holding(
    access: BucketAccess, held: HeldClaim, lease: float, clock: Callable[[], float], what: object
) -> AsyncIterator[None]:
    """Keep `held` renewed (every `lease / 3` s) while the block runs; release it however it ends.

    The release is shielded, so a cancelled claimant still frees the claim for the others
    at once instead of making them wait for the lease to lapse. What the block raises comes
    out as it was (a `FetchError`), not wrapped in the renewing task group's exception group.
    """
    failure: Exception | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_keep_renewing, access, held, lease, clock)
            try:
                yield
            except Exception as exc:
                failure = exc
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await access.run(release, access.bucket, held)
            except BucketUnavailableError as exc:
                log.warning("mirror %s: could not release the claim on %s: %s", access.url, what, exc)
    if failure is not None:
        raise failure


async def _keep_renewing(
    access: BucketAccess, held: HeldClaim | None, lease: float, clock: Callable[[], float]
) -> None:
    while held is not None:
        await anyio.sleep(lease / 3)
        try:
            held = await access.run(renew, access.bucket, held, lease, clock())
        except BucketUnavailableError as exc:
            log.warning("mirror %s: could not renew a claim: %s", access.url, exc)
            return

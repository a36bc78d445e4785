"""Claims in a bucket: one winner, renewal, take-over of a lapsed claim, release."""

from __future__ import annotations

from modelfetch._mirror.bucket import Bucket
from modelfetch._mirror.claims import HeldClaim, release, renew, try_claim
from modelfetch._mirror.keys import Claim, claim_key, encode_claim

SHA = "e" * 64


def _bucket() -> Bucket:
    return Bucket.open("memory:///", timeout=5)


def test_first_claimant_wins_and_the_second_learns_who_holds_it() -> None:
    """Two nodes claim one blob: the first holds it, the second sees the first's claim."""
    bucket = _bucket()
    first = try_claim(bucket, SHA, "node-a", lease=30, now=100)
    second = try_claim(bucket, SHA, "node-b", lease=30, now=101)
    assert isinstance(first, HeldClaim)
    assert second == Claim("node-a", 130)


def test_a_lapsed_claim_is_taken_over_by_exactly_one_node() -> None:
    """After expiry the next node takes the claim over; a third then sees the new holder."""
    bucket = _bucket()
    assert isinstance(try_claim(bucket, SHA, "dead", lease=30, now=100), HeldClaim)
    taken = try_claim(bucket, SHA, "node-b", lease=30, now=131)
    assert isinstance(taken, HeldClaim)
    assert taken.claim == Claim("node-b", 161)
    assert try_claim(bucket, SHA, "node-c", lease=30, now=132) == Claim("node-b", 161)


def test_a_malformed_claim_counts_as_lapsed() -> None:
    """Garbage under the claim key does not block the fleet forever."""
    bucket = _bucket()
    assert bucket.create(claim_key(SHA), b"garbage") is not None
    assert isinstance(try_claim(bucket, SHA, "node-a", lease=30, now=100), HeldClaim)


def test_renewal_extends_and_fails_once_taken_over() -> None:
    """Renewing pushes the expiry out; after another node took over, renewal reports the loss."""
    bucket = _bucket()
    held = try_claim(bucket, SHA, "node-a", lease=30, now=100)
    assert isinstance(held, HeldClaim)
    renewed = renew(bucket, held, lease=30, now=120)
    assert renewed is not None
    assert try_claim(bucket, SHA, "node-b", lease=30, now=140) == Claim("node-a", 150)
    assert isinstance(try_claim(bucket, SHA, "node-b", lease=30, now=151), HeldClaim)
    assert renew(bucket, renewed, lease=30, now=152) is None


def test_release_deletes_only_our_own_claim() -> None:
    """Releasing frees the key; releasing a claim someone took over leaves theirs alone."""
    bucket = _bucket()
    held = try_claim(bucket, SHA, "node-a", lease=30, now=100)
    assert isinstance(held, HeldClaim)
    release(bucket, held)
    assert bucket.read(claim_key(SHA)) is None
    stale = HeldClaim(SHA, Claim("node-a", 130), "old")
    bucket.create(claim_key(SHA), encode_claim(Claim("node-b", 200)))
    release(bucket, stale)
    assert bucket.read(claim_key(SHA)) is not None


def test_a_claim_reaching_far_into_the_future_counts_as_lapsed() -> None:
    """A claim whose `expires` is years ahead (no live node writes that) is taken over at once."""
    bucket = _bucket()
    assert bucket.create(claim_key(SHA), encode_claim(Claim("hostile", 1e12))) is not None
    taken = try_claim(bucket, SHA, "node-a", lease=30, now=100)
    assert isinstance(taken, HeldClaim)
    assert taken.claim == Claim("node-a", 130)

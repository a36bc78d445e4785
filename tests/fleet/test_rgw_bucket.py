"""The bucket layer against a real Ceph RADOS Gateway: the semantics the mirror relies on."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from modelfetch._mirror.bucket import Bucket
from modelfetch._mirror.claims import HeldClaim, try_claim
from modelfetch._mirror.keys import Claim

from .._units import MiB
from .conftest import Gateway


def _bucket(gateway: Gateway, name: str) -> Bucket:
    env = gateway.env(name)
    return Bucket.open(env["MODELFETCH_MIRROR_URL"], timeout=10, env=env)


def test_conditional_create_has_one_winner(gateway: Gateway, bucket_name: str) -> None:
    """A second create of one key is refused and leaves the first body in place."""
    bucket = _bucket(gateway, bucket_name)
    assert bucket.create("k", b"first") is not None
    assert bucket.create("k", b"second") is None
    found = bucket.read("k")
    assert found is not None
    assert found[0] == b"first"


def test_conditional_replace_needs_the_current_etag(gateway: Gateway, bucket_name: str) -> None:
    """Replace succeeds with the current e_tag (Ceph wants it unquoted) and fails with a stale one."""
    bucket = _bucket(gateway, bucket_name)
    first = bucket.create("k", b"one")
    assert first is not None
    second = bucket.replace("k", b"two", first)
    assert second is not None
    assert bucket.replace("k", b"three", first) is None
    found = bucket.read("k")
    assert found is not None
    assert found[0] == b"two"


def test_a_lapsed_claim_is_taken_over_on_ceph(gateway: Gateway, bucket_name: str) -> None:
    """The claim take-over path (conditional replace) works on radosgw, and only once."""
    bucket = _bucket(gateway, bucket_name)
    assert isinstance(try_claim(bucket, "e" * 64, "dead", lease=1, now=100), HeldClaim)
    taken = try_claim(bucket, "e" * 64, "node-b", lease=30, now=200)
    assert isinstance(taken, HeldClaim)
    assert try_claim(bucket, "e" * 64, "node-c", lease=30, now=201) == Claim("node-b", 230)


def test_multipart_upload_and_ranged_download_round_trip(
    gateway: Gateway, bucket_name: str, tmp_path: Path
) -> None:
    """A 12 MiB file goes up in 5 MiB parts and comes back byte-exact, also from an offset."""
    bucket = _bucket(gateway, bucket_name)
    data = os.urandom(12 * MiB + 17)
    (tmp_path / "blob").write_bytes(data)
    sent: list[int] = []
    with (tmp_path / "blob").open("rb") as f:
        etag = hashlib.sha256(data).hexdigest()
        bucket.upload("blobs/x", f, size=len(data), etag=etag, part_size=5 * MiB, on_chunk=sent.append)
    assert sent == [5 * MiB, 5 * MiB, 2 * MiB + 17]
    got = bytearray(len(data))

    def sink(offset: int, chunk: memoryview) -> None:
        got[offset : offset + len(chunk)] = chunk

    assert bucket.download("blobs/x", 0, sink) == len(data)
    assert bytes(got) == data
    tail = bytearray(len(data))

    def tail_sink(offset: int, chunk: memoryview) -> None:
        tail[offset : offset + len(chunk)] = chunk

    bucket.download("blobs/x", 7 * MiB, tail_sink)
    assert bytes(tail[7 * MiB :]) == data[7 * MiB :]
    assert bucket.download("blobs/missing", 0, sink) is None

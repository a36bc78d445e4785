"""A large blob as parts in the bucket, and write-back in the background (in-memory buckets)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import anyio.to_thread
import obstore
import pytest

from modelfetch import (
    AssetRef,
    HttpHubSource,
    InvalidRequestError,
    ListedFile,
    MirrorOptions,
    MirrorSource,
    Settings,
)
from modelfetch._mirror.bucket import Bucket
from modelfetch._mirror.keys import blob_key, claim_key, decode_part_key, part_key, parts_prefix
from modelfetch._mirror.parts import complete_in, listed_parts, plan, pull_parts
from modelfetch._store.partial import PartialBlob
from modelfetch.testing import FakeHub

from .._units import MiB

SHA = "c" * 64
PARTS = MirrorOptions(poll_interval=0.05, part_size=5 * MiB)


def _bucket() -> Bucket:
    return Bucket.open("memory:///", timeout=5)


def _keys(bucket: Bucket) -> list[str]:
    return sorted(str(m["path"]) for batch in obstore.list(bucket.store) for m in batch)


def test_a_part_key_names_its_range_and_only_sane_ranges_decode() -> None:
    """Keys are zero-padded (listed in offset order); anything but a range inside the blob is refused."""
    key = part_key(SHA, 5 * MiB, 7 * MiB)
    assert key == f"parts/{SHA}/{5 * MiB:020d}-{7 * MiB:020d}"
    assert decode_part_key(key, SHA, 7 * MiB) == (5 * MiB, 7 * MiB)
    hostile = [
        part_key(SHA, 0, 8 * MiB),  # past the end of the blob
        part_key(SHA, 5, 5),  # empty
        part_key("d" * 64, 0, 10),  # another blob's part
        f"parts/{SHA}/{'0' * 19}1-{'0' * 18}10/x",  # deeper
        f"parts/{SHA}/../{'0' * 20}-{'0' * 19}1",
        f"parts/{SHA}/{chr(0x660) * 20}-{chr(0x660) * 19}{chr(0x661)}",  # Arabic-Indic digits: not ASCII
        f"parts/{SHA}/{'0' * 20}+{'0' * 19}1",
        f"parts/{SHA}/-{'0' * 19}1-{'0' * 19}2",
    ]
    assert [decode_part_key(k, SHA, 7 * MiB) for k in hostile] == [None] * len(hostile)


def test_the_plan_covers_the_blob_in_at_most_a_thousand_parts() -> None:
    """part_size parts, the last shorter; a huge blob gets larger parts rather than more of them."""
    assert plan(7 * MiB, 5 * MiB) == [(0, 5 * MiB), (5 * MiB, 7 * MiB)]
    huge = plan(10 * 1024 * 1024 * MiB, 5 * MiB)
    assert len(huge) <= 1000
    assert [b for _, b in huge[:-1]] == [a for a, _ in huge[1:]]
    assert (huge[0][0], huge[-1][1]) == (0, 10 * 1024 * 1024 * MiB)


def test_listed_parts_keep_only_objects_as_long_as_their_key_says() -> None:
    """A part whose object is shorter or longer than its range is not trusted (not even listed)."""
    bucket = _bucket()
    entry = ListedFile("model.bin", 15, SHA, True)
    bucket.create(part_key(SHA, 0, 5), b"01234")
    bucket.create(part_key(SHA, 5, 10), b"56789")
    bucket.create(part_key(SHA, 10, 15), b"too long!")
    bucket.create(f"{parts_prefix(SHA)}junk", b"x")
    assert [(a, b) for a, b, _ in listed_parts(bucket, entry)] == [(0, 5), (5, 10)]
    assert not complete_in(bucket, entry)
    bucket.create(blob_key(SHA), b"x" * 15)
    assert complete_in(bucket, entry)


def test_parts_are_pulled_up_to_the_first_gap(tmp_path: Path) -> None:
    """Parts 0-5 and 10-15 of 15 bytes: the partial file gets bytes 0-5 and its watermark stops there."""
    bucket = _bucket()
    data = b"abcdefghijklmno"
    entry = ListedFile("model.bin", len(data), hashlib.sha256(data).hexdigest(), True)
    bucket.create(part_key(entry.etag, 0, 5), data[:5])
    bucket.create(part_key(entry.etag, 10, 15), data[10:])
    partial = PartialBlob(tmp_path, tmp_path / "blob", entry.etag, entry.size)
    partial.open()
    try:
        assert pull_parts(bucket, partial, entry, 0, lambda n: None, listed_parts(bucket, entry)) == 5
        bucket.create(part_key(entry.etag, 5, 10), data[5:10])
        assert pull_parts(bucket, partial, entry, 5, lambda n: None, listed_parts(bucket, entry)) == 15
        partial.verify()
    finally:
        partial.close()


def _node(hub: FakeHub, tmp: Path, name: str) -> Settings:
    return Settings.from_env({}, endpoint=hub.endpoint, hub_cache=tmp / name / "cache")


async def test_a_planted_bad_part_is_refused_and_the_bucket_gets_the_good_blob(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    """Parts that cover the file but hold one flipped byte: nothing bad is published, the Hub is asked,
    and the parts are replaced by the verified blob."""
    data = os.urandom(7 * MiB)
    commit = fake_hub.add_files("org/model", {"model.bin": data})
    etag = hashlib.sha256(data).hexdigest()
    bucket = _bucket()
    bad = bytearray(data[5 * MiB :])
    bad[100] ^= 0xFF
    bucket.create(part_key(etag, 0, 5 * MiB), data[: 5 * MiB])
    bucket.create(part_key(etag, 5 * MiB, 7 * MiB), bytes(bad))
    settings = _node(fake_hub, tmp_path, "a")
    async with MirrorSource(
        bucket=bucket, upstream=HttpHubSource(settings), settings=settings, options=PARTS
    ) as m:
        got = await m.resolve(AssetRef("org/model", "model.bin", commit))
    stats = m.stats()
    assert got.path.read_bytes() == data
    assert (stats.corrupt, stats.upstream_fetches) == (1, 1)
    assert bytes(obstore.get(bucket.store, blob_key(etag)).bytes()) == data
    assert not [k for k in _keys(bucket) if k.startswith(("parts/", "claims/"))]


class _HeldUploads(Bucket):
    """A bucket whose uploads wait for `go`; `renewed` is set when a claim is renewed."""

    def __init__(self) -> None:
        inner = Bucket.open("memory:///", timeout=5)
        super().__init__(inner.store, "memory:///")
        self.go = threading.Event()
        self.renewed = threading.Event()
        self.waiting = threading.Event()

    def upload(self, key: str, file: BinaryIO, **options: Any) -> None:
        self.waiting.set()
        self.go.wait()
        super().upload(key, file, **options)

    def replace(self, key: str, data: bytes, e_tag: str | None) -> str | None:
        found = super().replace(key, data, e_tag)
        if key.startswith("claims/") and found is not None:
            self.renewed.set()
        return found


async def test_aclose_abandons_an_upload_still_running_after_close_timeout(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    """close_timeout 0: aclose returns at once, counts the upload abandoned; it then stores nothing and
    its claim is released (another node uploads instead)."""
    data = os.urandom(MiB)
    commit = fake_hub.add_files("org/model", {"model.bin": data})
    bucket = _HeldUploads()
    settings = _node(fake_hub, tmp_path, "a")
    options = MirrorOptions(close_timeout=0)
    m = MirrorSource(bucket=bucket, upstream=HttpHubSource(settings), settings=settings, options=options)
    got = await m.resolve(AssetRef("org/model", "model.bin", commit))
    assert got.path.read_bytes() == data
    assert m.stats().uploads_pending == 1
    assert await anyio.to_thread.run_sync(bucket.waiting.wait, 10)
    await m.aclose()
    assert m.stats().uploads_abandoned == 1
    bucket.go.set()
    assert await anyio.to_thread.run_sync(m._uploads.drain, 10) == 0  # the thread has ended
    stats = m.stats()
    assert (stats.uploads, stats.uploads_pending) == (0, 0)
    assert [k for k in _keys(bucket) if not k.endswith("/listing.json")] == []  # no blob, entry, claim


async def test_a_claim_is_renewed_while_its_upload_runs_in_the_background(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    """The fetch has returned, the upload is held: the claim is still renewed, then released when done."""
    data = os.urandom(MiB)
    commit = fake_hub.add_files("org/model", {"model.bin": data})
    etag = hashlib.sha256(data).hexdigest()
    bucket = _HeldUploads()
    settings = _node(fake_hub, tmp_path, "a")
    options = MirrorOptions(lease=0.3)  # renewed every 0.1 s
    async with MirrorSource(
        bucket=bucket, upstream=HttpHubSource(settings), settings=settings, options=options
    ) as m:
        await m.resolve(AssetRef("org/model", "model.bin", commit))
        assert await anyio.to_thread.run_sync(bucket.renewed.wait, 10)
        assert bucket.exists(claim_key(etag))
        assert not bucket.exists(blob_key(etag))
        bucket.go.set()
    assert bytes(obstore.get(bucket.store, blob_key(etag)).bytes()) == data
    assert not bucket.exists(claim_key(etag))
    assert m.stats().uploads == 1


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "soon"])
def test_close_timeout_must_be_seconds(bad: object) -> None:
    """A typed error names the option."""
    with pytest.raises(InvalidRequestError, match="close_timeout"):
        MirrorOptions(close_timeout=bad)  # type: ignore[arg-type]


async def test_a_node_with_larger_parts_still_reads_a_blob_another_node_split(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    """Parts of 5 MiB written by one node are read by a node whose own part_size is 64 MiB."""
    data = os.urandom(7 * MiB)
    commit = fake_hub.add_files("org/model", {"model.bin": data})
    bucket = _bucket()
    first, second = _node(fake_hub, tmp_path, "a"), _node(fake_hub, tmp_path, "b")
    async with MirrorSource(bucket=bucket, upstream=HttpHubSource(first), settings=first, options=PARTS) as m:
        await m.resolve(AssetRef("org/model", "model.bin", commit))
    assert [k for k in _keys(bucket) if k.startswith("parts/")]
    large = MirrorOptions(part_size=64 * MiB)
    async with MirrorSource(
        bucket=bucket, upstream=HttpHubSource(second), settings=second, options=large
    ) as m:
        got = await m.resolve(AssetRef("org/model", "model.bin", commit))
    assert got.path.read_bytes() == data
    assert (m.stats().mirror_hits, m.stats().upstream_fetches) == (1, 0)
    assert fake_hub.file_bytes_served() == len(data)

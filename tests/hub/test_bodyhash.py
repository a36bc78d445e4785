"""HubSource verifies the body it watched stream by, reading the blob back only when it must."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import modelfetch
from modelfetch import AssetRef, HubSource, Settings
from modelfetch._hub import source as hub_source
from modelfetch._hub.bodyhash import BodyHash
from modelfetch._hubapi.spec import git_blob_id
from modelfetch.testing import FakeHub, Fault


@pytest.fixture
def reads_back(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The blobs HubSource verified by reading them back from disk."""
    seen: list[Path] = []
    real = hub_source.verify_file

    def recording(path: Path, etag: str) -> None:
        seen.append(path)
        real(path, etag)

    monkeypatch.setattr(hub_source, "verify_file", recording)
    return seen


@pytest.mark.parametrize("name", ["w.safetensors", "config.json"])  # an LFS (sha256) and a git-sha1 file
async def test_a_clean_download_is_verified_without_reading_it_back(
    fake_hub: FakeHub, settings: Settings, reads_back: list[Path], name: str
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    fake_hub.add_file("org/model", name, data)
    async with HubSource(settings) as hub:
        resolved = await hub.resolve(AssetRef("org/model", name))
    assert resolved.path.read_bytes() == data
    assert reads_back == []


async def test_a_corrupt_body_is_caught_by_the_streamed_hash(
    fake_hub: FakeHub, settings: Settings, reads_back: list[Path]
) -> None:
    fake_hub.add_file("org/model", "w.safetensors", os.urandom(200_000))
    fake_hub.inject(Fault(corrupt_at=150_000), method="GET")
    async with HubSource(settings) as hub:
        with pytest.raises(modelfetch.IntegrityError, match="removed from the cache"):
            await hub.resolve(AssetRef("org/model", "w.safetensors"))
    assert not list(settings.hub_cache.rglob("w.safetensors"))
    assert reads_back == []


async def test_a_body_huggingface_hub_resumed_still_verifies(fake_hub: FakeHub, settings: Settings) -> None:
    """A cut body huggingface_hub resumes with a Range is hashed on, or read back: never trusted blindly."""
    data = os.urandom(2 * 1024 * 1024)
    fake_hub.add_file("org/model", "w.safetensors", data)
    fake_hub.inject(Fault(drop_after=700_001), method="GET", times=1)
    async with HubSource(settings) as hub:
        resolved = await hub.resolve(AssetRef("org/model", "w.safetensors"))
    assert resolved.path.read_bytes() == data


def test_a_resumed_body_continues_the_hash_where_it_ended() -> None:
    data = os.urandom(10_000)
    body = BodyHash(hashlib.sha256(data).hexdigest(), len(data))
    first = body.body(200, None)
    assert first is not None
    first.feed(data[:4000])
    first.close()
    second = body.body(206, "bytes 4000-9999/10000")
    assert second is not None
    second.feed(data[4000:])
    second.close()
    assert body.digest_of(len(data)) == hashlib.sha256(data).hexdigest()
    assert body.digest_of(len(data) - 1) is None  # another size: not what was hashed


def test_a_body_that_does_not_start_where_the_hash_ended_gives_up() -> None:
    data = os.urandom(10_000)
    body = BodyHash(git_blob_id(data), len(data))
    first = body.body(200, None)
    assert first is not None
    first.feed(data[:4000])
    first.close()
    assert body.body(206, "bytes 3000-9999/10000") is None  # bytes were lost before the write
    assert body.digest_of(len(data)) is None


def test_a_whole_body_again_starts_the_hash_over() -> None:
    data = os.urandom(10_000)
    body = BodyHash(git_blob_id(data), len(data))
    first = body.body(200, None)
    assert first is not None
    first.feed(b"garbage")
    first.close()
    again = body.body(200, None)  # the server ignored the Range: huggingface_hub truncates and restarts
    assert again is not None
    again.feed(data)
    again.close()
    assert body.digest_of(len(data)) == git_blob_id(data)


def test_a_git_blob_id_without_a_size_cannot_be_hashed_on_the_way() -> None:
    body = BodyHash(git_blob_id(b"x"), None)
    assert body.body(200, None) is None
    assert body.digest_of(1) is None

"""MirrorSource: a local disk error while writing a blob read from the bucket is not a bucket outage."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

import modelfetch
from modelfetch import AssetRef, HttpHubSource, MirrorOptions, MirrorSource, Settings
from modelfetch._mirror.bucket import Bucket
from modelfetch._store import partial as partial_module
from modelfetch.testing import FakeHub

from .._units import MiB


def _node(hub: FakeHub, tmp: Path, name: str) -> Settings:
    return Settings.from_env({}, endpoint=hub.endpoint, hub_cache=tmp / name / "cache")


def _enospc(*args: object) -> int:
    raise OSError(errno.ENOSPC, "No space left on device")


async def test_enospc_reading_from_the_bucket_is_a_storage_error(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """ENOSPC while writing a bucket blob: StorageError, no bucket error counted, no outage, nothing kept."""
    fake_hub.add_file("org/model", "w.bin", os.urandom(2 * MiB), lfs=True)
    bucket = Bucket.open("memory:///", timeout=5)
    ref = AssetRef("org/model", "w.bin")
    seeder = _node(fake_hub, tmp_path, "a")
    async with MirrorSource(bucket=bucket, upstream=HttpHubSource(seeder), settings=seeder) as first:
        await first.resolve(ref)
    assert first.stats().uploads == 1

    monkeypatch.setattr(partial_module.os, "pwrite", _enospc)  # the partial blob's writes only
    reader = _node(fake_hub, tmp_path, "b")
    caplog.set_level(logging.WARNING, logger="modelfetch")
    async with MirrorSource(
        bucket=bucket, upstream=HttpHubSource(reader), settings=reader, options=MirrorOptions()
    ) as second:
        with pytest.raises(modelfetch.StorageError, match="disk is full"):
            await second.resolve(ref)
        stats = second.stats()
    assert stats.bucket_errors == 0
    assert "unavailable" not in caplog.text
    storage = reader.hub_cache / "models--org--model"
    assert [p.name for p in (storage / "blobs").iterdir()] == []
    assert list(storage.glob("snapshots/*/w.bin")) == []

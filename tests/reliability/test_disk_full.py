"""Disk full: writes failing with ENOSPC give a clear error, publish nothing and leave no temporary data."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import modelfetch
from modelfetch import AssetRef, HttpHubSource, Settings, TransferOptions
from modelfetch._store import partial as partial_module
from modelfetch.testing import FakeHub

from .conftest import Ledger


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    """The write layer is the same on every loop."""
    return ("asyncio", {})


def _failing_after(limit: int, real: object) -> object:
    written = {"n": 0}

    def write(fd: int, data: object, *args: object) -> int:
        written["n"] += len(data)  # type: ignore[arg-type]
        if written["n"] > limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, *args)  # type: ignore[operator, no-any-return]

    return write


@pytest.mark.parametrize("small", [False, True], ids=["streamed", "small-file"])
async def test_enospc(
    fake_hub: FakeHub, settings: Settings, monkeypatch: pytest.MonkeyPatch, ledger: Ledger, small: bool
) -> None:
    """A full disk mid-write: StorageError naming the disk, nothing in blobs/ or snapshots/."""
    fake_hub.add_file("org/model", "w.bin", os.urandom(3 * 1024 * 1024), lfs=True)
    monkeypatch.setattr(partial_module.os, "pwrite", _failing_after(1024 * 1024, os.pwrite))
    monkeypatch.setattr(partial_module.os, "write", _failing_after(1024 * 1024, os.write))
    options = TransferOptions(small_file_limit=4 * 1024 * 1024 if small else 0)
    async with HttpHubSource(settings, options=options) as source:
        with pytest.raises(modelfetch.StorageError, match="disk is full") as info:
            await source.resolve(AssetRef("org/model", "w.bin"))
    storage = settings.hub_cache / "models--org--model"
    left = [p.name for p in (storage / "blobs").iterdir()] if (storage / "blobs").exists() else []
    linked = list(storage.glob("snapshots/*/w.bin"))
    ledger.record("disk full (ENOSPC) while writing", trials=1, failures=len(left) + len(linked))
    assert isinstance(info.value, OSError)
    assert left == []
    assert linked == []
    assert isinstance(storage, Path)

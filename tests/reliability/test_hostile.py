"""Hostile input and filesystem attacks: nothing escapes the cache; planted symlinks are not followed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import anyio
import httpx
from hypothesis import HealthCheck, given, settings

import modelfetch
from modelfetch import AssetRef, HttpHubSource, Settings
from modelfetch.testing import FakeHub

from .._hostile import hostile_names
from .conftest import Ledger

_hostile = hostile_names


def _not_found(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    assert "/../" not in path
    assert not path.endswith("/..")
    return httpx.Response(404, headers={"x-error-code": "EntryNotFound", "x-repo-commit": "c" * 40})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(repo_id=_hostile, filename=_hostile, revision=_hostile)
def test_hostile_names_fail_typed_or_stay_inside(
    tmp_path: Path, ledger: Ledger, repo_id: str, filename: str, revision: str
) -> None:
    """Any repo id, filename and revision: InvalidRequestError before I/O, or a request inside the cache."""
    root = tmp_path / "h"
    cache = root / "cache"
    outcome: list[BaseException | None] = []

    async def run() -> None:
        source = HttpHubSource(
            Settings.from_env({}, hub_cache=cache), transport=httpx.MockTransport(_not_found)
        )
        async with source:
            try:
                await modelfetch.fetch(repo_id or "x", filename, revision=revision or None, source=source)
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

    anyio.run(run)
    error = outcome[0]
    ok = isinstance(error, modelfetch.InvalidRequestError | modelfetch.AssetNotFoundError)
    escaped = [p for p in root.rglob("*") if not p.is_relative_to(cache)] if root.exists() else []
    scenario = "hostile repo ids, filenames, revisions (hypothesis)"
    ledger.record(scenario, trials=1, failures=0 if ok and not escaped else 1)  # each example counts itself
    assert ok, repr(error)
    assert escaped == []


async def test_symlink_planted_at_the_blob_path_is_replaced_not_followed(
    fake_hub: FakeHub, settings: Settings, ledger: Ledger, tmp_path: Path
) -> None:
    """A symlink at blobs/<etag> pointing outside is replaced by the real blob; its target is untouched."""
    data = os.urandom(200_000)
    fake_hub.add_file("org/model", "w.safetensors", data)
    blob = settings.hub_cache / "models--org--model" / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True)
    outside = tmp_path / "outside-target"
    blob.symlink_to(outside)
    async with HttpHubSource(settings) as source:
        resolved = await source.resolve(modelfetch.AssetRef("org/model", "w.safetensors"))
    ok = not outside.exists() and not blob.is_symlink() and resolved.path.read_bytes() == data
    ledger.record("symlink planted at a blob path", trials=1, failures=0 if ok else 1)
    assert ok


async def test_symlink_planted_at_the_temporary_path_is_refused(
    fake_hub: FakeHub, settings: Settings, ledger: Ledger, tmp_path: Path
) -> None:
    """A symlink at the resumable temporary path makes the fetch fail typed; its target is untouched."""
    data = os.urandom(200_000)
    fake_hub.add_file("org/model", "w.safetensors", data)
    blobs = settings.hub_cache / "models--org--model" / "blobs"
    blobs.mkdir(parents=True)
    target = tmp_path / "precious"
    target.write_bytes(b"precious")
    (blobs / f"{hashlib.sha256(data).hexdigest()}.modelfetch.incomplete").symlink_to(target)
    options = modelfetch.TransferOptions(small_file_limit=0)
    async with HttpHubSource(settings, options=options) as source:
        try:
            await source.resolve(AssetRef("org/model", "w.safetensors"))
            typed = False
        except modelfetch.StorageError:
            typed = True
    ok = typed and target.read_bytes() == b"precious"
    ledger.record("symlink planted at a temporary path", trials=1, failures=0 if ok else 1)
    assert ok

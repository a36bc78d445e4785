"""No server answer makes a source write, link or return anything outside the cache ([security] 1, 2, 9)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import modelfetch
from modelfetch import AssetRef, ModelAssetSource, ResolvedAsset, Settings

from ._hub import COMMIT, MiniHub, Tweak, is_head
from ._server import Answer, Hostile, Request
from .conftest import settings_for, tree

BODY = b'{"model_type": "tiny"}'


def _outside(tmp_path: Path) -> list[str]:
    """Paths that are neither in the cache nor in the source's state folder."""
    return sorted(p for p in tree(tmp_path) if not p.startswith(("cache", "state")))


def _hostile_commits(tmp_path: Path) -> dict[str, str]:
    return {
        "traversal": "../../../../outside/x",
        "absolute": str(tmp_path / "abs"),
        "branch-name": "main",
        "uppercase": COMMIT.upper(),
        "short": COMMIT[:12],
    }


@pytest.mark.parametrize("kind", ["traversal", "absolute", "branch-name", "uppercase", "short"])
@pytest.mark.parametrize("revision", ["main", COMMIT])
async def test_a_hostile_commit_header_is_refused(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource], kind: str, revision: str
) -> None:
    """X-Repo-Commit that is not 40 lowercase hex: SourceUnavailableError, nothing outside the cache."""
    bad = _hostile_commits(tmp_path)[kind]

    def tweak(request: Request, answer: Answer) -> Answer:
        if "X-Repo-Commit" in answer.headers:
            answer.headers["X-Repo-Commit"] = bad
        return answer

    with Hostile(MiniHub({"config.json": BODY}, tweak=tweak)) as server:
        async with make_source(settings_for(server.url, tmp_path)) as source:
            with pytest.raises(modelfetch.SourceUnavailableError, match="commit"):
                await source.resolve(AssetRef("org/model", "config.json", revision))
    assert _outside(tmp_path) == []
    assert not any("snapshots/" in p and "/snapshots/" + COMMIT not in "/" + p for p in tree(tmp_path))


async def test_a_pinned_ref_answered_with_another_commit_is_refused(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """A pinned request answered with a different (well-formed) commit: refused, nothing linked."""
    other = "f" * 40
    with Hostile(MiniHub({"config.json": BODY}, commit=other)) as server:
        async with make_source(settings_for(server.url, tmp_path)) as source:
            with pytest.raises(modelfetch.SourceUnavailableError, match="pinned"):
                await source.resolve(AssetRef("org/model", "config.json", COMMIT))
    assert not [p for p in tree(tmp_path) if "snapshots/" in p]


async def test_a_hostile_commit_on_entry_not_found_leaves_no_marker_outside(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """A 404 EntryNotFound carrying a traversal commit: no `.no_exist` marker anywhere outside."""

    def tweak(request: Request, answer: Answer) -> Answer:
        if answer.status == 404:
            answer.headers["X-Repo-Commit"] = "../../../../marker"
        return answer

    with Hostile(MiniHub({"config.json": BODY}, tweak=tweak)) as server:
        async with make_source(settings_for(server.url, tmp_path)) as source:
            with pytest.raises(modelfetch.FetchError):
                await source.resolve(AssetRef("org/model", "missing.json"))
    assert _outside(tmp_path) == []
    assert not [p for p in tree(tmp_path) if ".no_exist" in p]


async def _resolve_or_refuse(
    make_source: Callable[[Settings], ModelAssetSource], tmp_path: Path, tweak: Tweak
) -> ResolvedAsset | None:
    """Resolve config.json from a bent MiniHub; None if the source refused the answer."""
    with Hostile(MiniHub({"config.json": BODY}, tweak=tweak)) as server:
        async with make_source(settings_for(server.url, tmp_path)) as source:
            try:
                return await source.resolve(AssetRef("org/model", "config.json"))
            except modelfetch.SourceUnavailableError:
                return None


@pytest.mark.parametrize("target_exists", [False, True], ids=["absent", "present"])
@pytest.mark.parametrize("kind", ["absolute", "traversal"])
async def test_an_etag_that_is_a_path_never_names_a_file(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource], kind: str, target_exists: bool
) -> None:
    """ETag "/abs/path" or "../..": the target is neither written nor returned (a key file stays secret)."""
    secret = tmp_path / "id_rsa"
    if target_exists:
        secret.write_bytes(b"-----BEGIN PRIVATE KEY-----")
    etag = str(secret) if kind == "absolute" else "../../../id_rsa"

    def tweak(request: Request, answer: Answer) -> Answer:
        if is_head(request) and answer.status == 200:
            answer.headers["ETag"] = f'"{etag}"'
        return answer

    got = await _resolve_or_refuse(make_source, tmp_path, tweak)
    if got is not None:  # a source may name the blob by the sha256 it computed instead
        assert got.path.resolve().is_relative_to((tmp_path / "cache").resolve())
        assert got.path.read_bytes() == BODY
    assert _outside(tmp_path) == (["id_rsa"] if target_exists else [])
    if target_exists:
        assert secret.read_bytes() == b"-----BEGIN PRIVATE KEY-----"


@pytest.mark.parametrize("etag", ["deadbeef", "a" * 63, "g" * 40, "A" * 64])
async def test_an_unverifiable_etag_does_not_name_a_blob(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource], etag: str
) -> None:
    """Only 40- or 64-hex etags name blobs; others are hashed and named by sha256, or refused."""

    def tweak(request: Request, answer: Answer) -> Answer:
        if "ETag" in answer.headers:
            answer.headers["ETag"] = f'"{etag}"'
        return answer

    got = await _resolve_or_refuse(make_source, tmp_path, tweak)
    blobs = tmp_path / "cache" / "models--org--model" / "blobs"
    names = sorted(p.name for p in blobs.iterdir()) if blobs.exists() else []
    assert etag not in names
    if got is not None:
        assert got.path.read_bytes() == BODY
        assert got.etag not in (etag, "")

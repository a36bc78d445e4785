"""Bodies that lie about their size or encoding cost neither memory nor disk ([security] 6)."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

import modelfetch
from modelfetch import AssetRef, ModelAssetSource, RepoRef, Settings

from .._units import MiB
from ._hub import MiniHub, is_head
from ._server import Answer, Hostile, Request
from .conftest import settings_for


class Firehose:
    """An endless body of zeros, counting what it managed to send."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        block = b"\0" * MiB
        while self.sent < self.total:
            self.sent += len(block)
            yield block


def _published(tmp_path: Path) -> list[Path]:
    storage = tmp_path / "cache" / "models--org--model"
    return list(storage.glob("snapshots/*/*")) + [
        p for p in storage.glob("blobs/*") if "incomplete" not in p.name
    ]


@pytest.mark.parametrize("small", [True, False], ids=["in-memory", "streamed"])
async def test_a_body_far_longer_than_announced_is_cut_at_the_announced_size(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource], small: bool
) -> None:
    """HEAD says 10 bytes (LFS, 6 MiB for streamed), GET streams 512 MiB: refused long before the end."""
    announced = b"0123456789" if small else b"x" * (6 * MiB)
    hose = Firehose(512 * MiB)

    def tweak(request: Request, answer: Answer) -> Answer:
        if request.method == "GET" and "/resolve/" in request.path:
            answer.headers.pop("Content-Length", None)
            answer.chunks = iter(hose)
        return answer

    with Hostile(MiniHub({"w.bin": announced}, lfs={"w.bin"}, tweak=tweak)) as server:
        async with make_source(settings_for(server.url, tmp_path)) as source:
            with pytest.raises((modelfetch.IntegrityError, modelfetch.SourceUnavailableError)):
                await source.resolve(AssetRef("org/model", "w.bin"))
    assert hose.sent < 128 * MiB  # the client hung up; kernel buffers hold a few MiB at most
    assert _published(tmp_path) == []


async def test_a_gzip_body_nobody_asked_for_is_refused(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """Content-Encoding: gzip on a file (identity was asked): refused, never inflated."""
    data = b"\0" * (4 * MiB)
    bomb = gzip.compress(data)

    def tweak(request: Request, answer: Answer) -> Answer:
        if request.method == "GET" and "/resolve/" in request.path:
            return Answer(200, {**answer.headers, "Content-Encoding": "gzip"}, bomb)
        return answer

    with Hostile(MiniHub({"w.bin": data}, lfs={"w.bin"}, tweak=tweak)) as server:
        async with make_source(settings_for(server.url, tmp_path)) as source:
            with pytest.raises(modelfetch.SourceUnavailableError, match="Content-Encoding"):
                await source.resolve(AssetRef("org/model", "w.bin"))
    assert _published(tmp_path) == []


async def test_an_absurd_announced_size_fails_early_with_storage_error(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """An announced size of 2**50 bytes: StorageError before any body is requested."""
    fake_sha = hashlib.sha256(b"x").hexdigest()

    def tweak(request: Request, answer: Answer) -> Answer:
        if is_head(request):
            answer.headers.update({"X-Linked-Size": str(2**50), "X-Linked-Etag": f'"{fake_sha}"'})
        return answer

    with Hostile(MiniHub({"w.bin": b"x"}, tweak=tweak)) as server:
        async with make_source(settings_for(server.url, tmp_path)) as source:
            with anyio.fail_after(20), pytest.raises(modelfetch.StorageError, match="free"):
                await source.resolve(AssetRef("org/model", "w.bin"))
        assert not [r for r in server.requests if r.method == "GET"]


async def test_an_endless_api_answer_is_refused(
    tmp_path: Path, make_source: Callable[[Settings], ModelAssetSource]
) -> None:
    """A tree listing that streams forever: refused after 32 MiB, not read into memory to the end."""
    hose = Firehose(1024 * MiB)

    def tweak(request: Request, answer: Answer) -> Answer:
        if "/tree/" in request.path:
            return Answer(200, {"Content-Type": "application/json"}, chunks=iter(hose))
        return answer

    with Hostile(MiniHub({"config.json": b"{}"}, tweak=tweak)) as server:
        async with make_source(settings_for(server.url, tmp_path)) as source:
            with pytest.raises(modelfetch.SourceUnavailableError, match="more than"):
                await source.list_files(RepoRef("org/model"))
    assert hose.sent < 128 * MiB

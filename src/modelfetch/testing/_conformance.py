"""A conformance check any `ModelAssetSource` can be run through (as trio ships checks for streams)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import anyio

from .._core.errors import AssetNotFoundError, FetchError, RepoNotFoundError
from .._core.protocol import ModelAssetSource
from .._core.types import AssetRef, RepoRef, ResolvedAsset

_COMMIT = re.compile(r"[0-9a-f]{40}")


async def check_source(source: ModelAssetSource, repo_id: str, files: Mapping[str, bytes]) -> None:
    """Check that `source` behaves as the protocol promises, for a repo it serves.

    `source` must already serve `files` (path -> bytes, at least one) as the `main`
    branch of the model repo `repo_id`, and no repo named `<repo_id>-missing`. Checks:
    the listing names exactly those files at one commit; each resolves to a real file with
    those bytes and a truthful `ResolvedAsset`; pinning to the listed commit gives the same;
    concurrent resolves of one file agree; a missing file raises `AssetNotFoundError` and a
    missing repo a `FetchError` (`RepoNotFoundError` or `AssetNotFoundError`).

    Raises:
        AssertionError: saying which promise was broken.
    """
    assert isinstance(source, ModelAssetSource), f"{source!r} does not implement ModelAssetSource"
    listing = await source.list_files(RepoRef(repo_id))
    assert _COMMIT.fullmatch(listing.commit), f"listing commit {listing.commit!r} is not a 40-hex id"
    listed = {f.path: f for f in listing.files}
    assert set(listed) == set(files), f"listing has {sorted(listed)}, expected {sorted(files)}"
    for name, data in files.items():
        assert listed[name].size == len(data), (
            f"listing says {name} has {listed[name].size} bytes, not {len(data)}"
        )
        for revision in ("main", listing.commit):
            ref = AssetRef(repo_id, name, revision)
            got = await source.resolve(ref)
            await anyio.to_thread.run_sync(_check_resolved, ref, got, data, listing.commit)
    name, data = next(iter(files.items()))
    results: list[ResolvedAsset] = []

    async def one() -> None:
        results.append(await source.resolve(AssetRef(repo_id, name)))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(one)
    assert len({r.path for r in results}) == 1, "concurrent resolves of one file disagree on its path"
    try:
        await source.resolve(AssetRef(repo_id, "conformance-no-such-file.bin"))
    except AssetNotFoundError:
        pass
    else:
        raise AssertionError("a missing file did not raise AssetNotFoundError")
    try:
        await source.resolve(AssetRef(f"{repo_id}-missing", name))
    except (RepoNotFoundError, AssetNotFoundError):
        pass
    except FetchError as exc:
        raise AssertionError(f"a missing repo raised {type(exc).__name__}, not RepoNotFoundError") from exc
    else:
        raise AssertionError("a missing repo did not raise")


def _check_resolved(ref: AssetRef, got: ResolvedAsset, data: bytes, commit: str) -> None:
    assert got.ref == ref, f"resolved {got.ref}, asked for {ref}"
    assert got.path.is_file(), f"{got.path} is not a file"
    assert got.path.read_bytes() == data, f"{got.path} does not hold the bytes of {ref}"
    assert got.size == len(data), f"size {got.size} != {len(data)} for {ref}"
    assert got.commit == commit, f"commit {got.commit} != listed {commit} for {ref}"

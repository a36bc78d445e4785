"""A neighbour in a shared cache cannot make us write, delete, hash or upload outside it ([security] 1-4).

The neighbour plants links, FIFOs and files in a group-writable cache (as another user
where the tests run as root, see `_neighbour`); every test checks the victim's own folder
afterwards, byte for byte.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import obstore
import pytest

import modelfetch
from modelfetch import AssetRef, HttpHubSource, HubSource, ModelAssetSource, Settings, TransferOptions
from modelfetch._cli.main import main
from modelfetch.testing import FakeHub

from .._units import MiB
from ._neighbour import Neighbour, Shared, share, shared_folder
from .conftest import FAST

CONFIG = b'{"model_type": "bert"}'
WEIGHTS = os.urandom(3 * MiB)


def _mirror(settings: Settings) -> ModelAssetSource:
    from modelfetch import MirrorSource
    from modelfetch._mirror.bucket import Bucket

    bucket = Bucket.open("memory:///", timeout=5)
    return MirrorSource(bucket=bucket, upstream=HttpHubSource(settings, retry=FAST), settings=settings)


WRITERS: dict[str, Callable[[Settings], ModelAssetSource]] = {
    "small": lambda s: HttpHubSource(s, retry=FAST),
    "streamed": lambda s: HttpHubSource(s, retry=FAST, options=TransferOptions(small_file_limit=0)),
    "hub": lambda s: HubSource(s, retry=FAST),
    "mirror": _mirror,
}


@pytest.fixture
def shared() -> Iterator[Shared]:
    """A shared cache folder and a victim's folder beside it."""
    yield from shared_folder()


@pytest.fixture
def neighbour() -> Neighbour:
    """Another user where we are root, else ourselves."""
    return Neighbour.here()


def _settings(hub: FakeHub, shared: Shared) -> Settings:
    return Settings.from_env({}, endpoint=hub.endpoint, hub_cache=shared.cache)


def _repo(shared: Shared) -> Path:
    return shared.cache / "models--org--model"


def _cli(shared: Shared, hub: FakeHub, *argv: str) -> subprocess.CompletedProcess[str]:
    """The command line in its own process: a hang is a failed test (the timeout), not a hung suite."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HF_HUB_CACHE": str(shared.cache),
        "HF_HOME": str(shared.root / "home"),
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "modelfetch._cli.main", *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _two_revisions(hub: FakeHub, shared: Shared) -> tuple[str, str]:
    """org/model cached at two commits; main points at the second, so the first is detached."""
    first = hub.add_files("org/model", {"config.json": CONFIG, "w.bin": b"one" * 1000})
    settings = _settings(hub, shared)
    _snapshot(settings, first)
    second = hub.add_files("org/model", {"config.json": b'{"v": 2}', "w.bin": b"two" * 1000})
    _snapshot(settings, "main")
    return first, second


def _snapshot(settings: Settings, revision: str) -> None:
    async def run() -> None:
        async with HttpHubSource(settings, retry=FAST) as source:
            await modelfetch.snapshot("org/model", revision=revision, source=source)

    anyio.run(run)


# ---- 1. cache rm / prune -------------------------------------------------------------


@pytest.mark.parametrize("command", ["prune", "rm"])
def test_cache_rm_and_prune_never_delete_what_a_planted_link_points_to(
    fake_hub: FakeHub, shared: Shared, neighbour: Neighbour, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A detached revision's entry planted as a link to ~/authorized_keys: prune and rm leave the target."""
    first, _ = _two_revisions(fake_hub, shared)
    share(shared.cache)
    entry = _repo(shared) / "snapshots" / first / "config.json"
    neighbour.replace_with_link(entry, shared.victim / "authorized_keys")
    before = shared.victim_state()
    argv = ["cache", "prune"] if command == "prune" else ["cache", "rm", "org/model", "--revision", first]
    monkeypatch.setenv("HF_HUB_CACHE", str(shared.cache))
    status = main(argv)
    assert shared.victim_state() == before
    assert status == 1  # the planted path is reported as skipped
    assert not (_repo(shared) / "snapshots" / first).exists()  # the revision itself is gone


def test_prune_does_not_sweep_a_blobs_folder_linked_elsewhere(
    fake_hub: FakeHub, shared: Shared, neighbour: Neighbour, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`blobs` replaced by a link to the victim's folder: its *.incomplete and old *.tmp files stay."""
    _two_revisions(fake_hub, shared)
    share(shared.cache)
    neighbour.replace_with_link(_repo(shared) / "blobs", shared.victim)
    before = shared.victim_state()
    monkeypatch.setenv("HF_HUB_CACHE", str(shared.cache))
    main(["cache", "prune"])
    assert shared.victim_state() == before


# ---- 3. folders replaced by links ------------------------------------------------------

PLANTS = ["blobs", "snapshots", "refs", "locks"]


def _planted(shared: Shared, where: str, commit: str) -> Path:
    return {
        "blobs": _repo(shared) / "blobs",
        "snapshots": _repo(shared) / "snapshots" / commit,
        "refs": _repo(shared) / "refs",
        "locks": shared.cache / ".locks" / "models--org--model",
    }[where]


@pytest.mark.parametrize("where", PLANTS)
@pytest.mark.parametrize("writer", list(WRITERS))
async def test_folders_replaced_by_links_are_never_written_through(
    fake_hub: FakeHub, shared: Shared, neighbour: Neighbour, where: str, writer: str
) -> None:
    """blobs, snapshots/<commit>, refs or .locks/<repo> linked to the victim's folder: nothing lands there."""
    settings = _settings(fake_hub, shared)
    fake_hub.add_files("org/model", {"config.json": CONFIG})
    async with WRITERS[writer](settings) as source:
        await source.resolve(AssetRef("org/model", "config.json"))
    commit = fake_hub.add_files("org/model", {"config.json": b'{"v": 2, "pad": "' + b"x" * 4096 + b'"}'})
    share(shared.cache)
    (shared.cache / ".locks" / "models--org--model").mkdir(parents=True, exist_ok=True, mode=0o777)
    os.chmod(shared.cache / ".locks", 0o777)
    os.chmod(shared.cache / ".locks" / "models--org--model", 0o777)
    neighbour.replace_with_link(_planted(shared, where, commit), shared.victim)
    before = shared.victim_state()
    async with WRITERS[writer](settings) as source:
        try:
            got = await source.resolve(AssetRef("org/model", "config.json"))
        except modelfetch.StorageError as exc:
            refused, got = str(exc), None
        else:
            refused = "no error: a link"
    assert shared.victim_state() == before
    assert "link" in refused  # an error says why: a link where the cache has a folder
    if got is not None:
        assert got.path.resolve().is_relative_to(shared.cache.resolve())
        assert got.path.read_bytes().startswith(b'{"v": 2')


@pytest.mark.parametrize("writer", list(WRITERS))
async def test_a_planted_snapshot_folder_never_returns_the_victims_file(
    fake_hub: FakeHub, shared: Shared, neighbour: Neighbour, writer: str
) -> None:
    """snapshots/<commit> linked to a folder holding the victim's config.json: never returned."""
    settings = _settings(fake_hub, shared)
    commit = fake_hub.add_files("org/model", {"config.json": CONFIG})
    async with HttpHubSource(settings, retry=FAST) as source:
        await source.resolve(AssetRef("org/model", "config.json", commit))
    share(shared.cache)
    neighbour.replace_with_link(_repo(shared) / "snapshots" / commit, shared.victim)
    async with WRITERS[writer](settings) as source:
        try:
            got = await source.resolve(AssetRef("org/model", "config.json", commit))
        except modelfetch.StorageError:
            got = None
    if got is not None:
        assert got.path.resolve().is_relative_to(shared.cache.resolve())
        assert got.path.read_bytes() == CONFIG


# ---- 4. FIFOs and devices --------------------------------------------------------------


@pytest.mark.parametrize("backend", ["native", "threads"])
def test_a_fifo_planted_as_a_ref_does_not_hang_get(
    fake_hub: FakeHub, shared: Shared, neighbour: Neighbour, backend: str
) -> None:
    """refs/main planted as a FIFO: `get` ends (the default stack replaces it; threads refuses it)."""
    fake_hub.add_files("org/model", {"config.json": CONFIG})
    _snapshot(_settings(fake_hub, shared), "main")
    share(shared.cache)
    ref = _repo(shared) / "refs" / "main"
    neighbour.plant(("rm", str(ref)), ("mkfifo", str(ref)))
    extra = ["--backend", backend] if backend == "threads" else []
    done = _cli(shared, fake_hub, "get", "org/model", "config.json", *extra)
    if backend == "threads":
        assert done.returncode == 1
        assert "not a regular file" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert Path(done.stdout.strip()).read_bytes() == CONFIG


@pytest.mark.parametrize("plant", ["fifo-blob", "link-to-fifo-outside"])
def test_cache_verify_never_opens_special_files_or_files_outside(
    fake_hub: FakeHub, shared: Shared, neighbour: Neighbour, plant: str
) -> None:
    """A FIFO as a blob, or an entry linking to a FIFO outside the cache: verify reports it and ends."""
    fake_hub.add_files("org/model", {"config.json": CONFIG, "w.bin": WEIGHTS}, lfs=True)
    _snapshot(_settings(fake_hub, shared), "main")
    share(shared.cache)
    entry = next((_repo(shared) / "snapshots").glob("*/w.bin"))
    if plant == "fifo-blob":
        blob = entry.resolve()
        neighbour.plant(("rm", str(blob)), ("mkfifo", str(blob)))
    else:
        os.mkfifo(shared.victim / "fifo")
        neighbour.replace_with_link(entry, shared.victim / "fifo")
    done = _cli(shared, fake_hub, "cache", "verify", "org/model")
    assert done.returncode == 1
    assert "w.bin" in done.stdout


# ---- 2. mirror push ---------------------------------------------------------------------


@pytest.mark.parametrize("target", ["secret", "/dev/zero"])
async def test_push_never_uploads_what_a_planted_blob_link_points_to(
    fake_hub: FakeHub, shared: Shared, neighbour: Neighbour, target: str
) -> None:
    """blobs/<etag> planted as a link to ~/.ssh/id_ed25519 or /dev/zero: push uploads the real bytes."""
    from modelfetch import MirrorSource, RepoRef
    from modelfetch._mirror.bucket import Bucket
    from modelfetch._mirror.keys import blob_key

    settings = _settings(fake_hub, shared)
    commit = fake_hub.add_files("org/model", {"config.json": CONFIG, "w.bin": WEIGHTS}, lfs=True)
    async with HttpHubSource(settings, retry=FAST) as source:
        got = await source.resolve(AssetRef("org/model", "w.bin", commit))
    share(shared.cache)
    neighbour.replace_with_link(
        _repo(shared) / "blobs" / got.etag,
        shared.victim / "id_ed25519" if target == "secret" else Path(target),
    )
    bucket = Bucket.open("memory:///", timeout=5)
    async with MirrorSource(
        bucket=bucket, upstream=HttpHubSource(settings, retry=FAST), settings=settings
    ) as m:
        await m.push(RepoRef("org/model", commit))
    assert bytes(obstore.get(bucket.store, blob_key(got.etag)).bytes()) == WEIGHTS


async def test_push_refuses_a_blob_whose_bytes_do_not_match_its_name(
    fake_hub: FakeHub, shared: Shared, neighbour: Neighbour
) -> None:
    """Other bytes planted as a regular file at blobs/<etag> (as a hard link would be): nothing uploaded."""
    from modelfetch import MirrorSource, RepoRef
    from modelfetch._mirror.bucket import Bucket
    from modelfetch._mirror.keys import blob_key

    settings = _settings(fake_hub, shared)
    commit = fake_hub.add_files("org/model", {"w.bin": WEIGHTS}, lfs=True)
    async with HttpHubSource(settings, retry=FAST) as source:
        got = await source.resolve(AssetRef("org/model", "w.bin", commit))
    share(shared.cache)
    blob = _repo(shared) / "blobs" / got.etag
    neighbour.plant(("rm", str(blob)), ("write", str(blob), "not the weights, somebody's secret"))
    bucket = Bucket.open("memory:///", timeout=5)
    async with MirrorSource(
        bucket=bucket, upstream=HttpHubSource(settings, retry=FAST), settings=settings
    ) as m:
        with pytest.raises(modelfetch.IntegrityError, match="nothing was uploaded"):
            await m.push(RepoRef("org/model", commit))
    with pytest.raises(FileNotFoundError):
        obstore.get(bucket.store, blob_key(got.etag))


async def test_a_repo_folder_you_linked_yourself_fails_with_the_reason_and_the_fix(
    fake_hub: FakeHub, shared: Shared
) -> None:
    """models--org--model moved to another disk and linked back: a StorageError saying why and what to do."""
    settings = _settings(fake_hub, shared)
    commit = fake_hub.add_files("org/model", {"config.json": CONFIG})
    async with HttpHubSource(settings, retry=FAST) as source:
        await source.resolve(AssetRef("org/model", "config.json", commit))
    moved = shared.root / "bigger-disk" / "models--org--model"
    moved.parent.mkdir()
    _repo(shared).rename(moved)
    _repo(shared).symlink_to(moved)
    async with HttpHubSource(settings, retry=FAST) as source:
        with pytest.raises(modelfetch.StorageError, match="point HF_HUB_CACHE at its new place"):
            await source.resolve(AssetRef("org/model", "config.json"))

"""CachedSource over HubSource against FakeHub: request counts, fresh processes, cancellation, processes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest

import modelfetch
from modelfetch import AssetRef, CachedSource, HubSource, Origin, ProgressEvent, ProgressKind, Settings
from modelfetch.testing import FakeHub, Fault

from .._units import MiB


async def test_hundred_awaits_make_one_head_and_one_get(fake_hub: FakeHub, settings: Settings) -> None:
    """100 concurrent awaits of one uncached file: one HEAD and one GET at the Hub."""
    fake_hub.add_file("org/model", "tokenizer.json", os.urandom(200_000))
    release = threading.Event()  # the body stops after 1000 bytes until every await has joined
    fake_hub.inject(Fault(hold=release, stall_after=1000), method="GET", times=1)
    started = anyio.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.kind is ProgressKind.STARTED:
            started.set()

    async with CachedSource(HubSource(settings)) as source:
        paths: list[Path] = []

        async def one() -> None:
            paths.append(
                await modelfetch.fetch("org/model", "tokenizer.json", source=source, progress=on_progress)
            )

        try:
            async with anyio.create_task_group() as tg:
                for _ in range(100):
                    tg.start_soon(one)
                await started.wait()  # the transfer is under way and cannot finish yet
                await anyio.wait_all_tasks_blocked()  # every await has reached the flight
                release.set()
        finally:
            release.set()
        assert source.stats().joined == 99
    assert len(set(paths)) == 1
    assert (fake_hub.count("HEAD", "tokenizer.json"), fake_hub.count("GET", "tokenizer.json")) == (1, 1)


def _fetch_in_subprocess(hub: FakeHub, cache: Path, revision: str) -> str:
    script = (
        "import modelfetch, sys\n"
        f"print(modelfetch.fetch_sync('org/model', 'config.json', revision={revision!r}))\n"
    )
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_pinned_ref_on_disk_needs_no_request_in_a_fresh_process(fake_hub: FakeHub, tmp_path: Path) -> None:
    """A commit-pinned ref whose file is cached resolves in a new process with zero requests."""
    commit = fake_hub.add_file("org/model", "config.json", b"{}")
    first = _fetch_in_subprocess(fake_hub, tmp_path, commit)
    fake_hub.clear_requests()
    second = _fetch_in_subprocess(fake_hub, tmp_path, commit)
    assert first == second
    assert fake_hub.requests == []


async def test_offline_from_the_environment(hub_env: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1: a cached branch ref resolves from disk, a miss is OfflineError, no request sent."""
    hub_env.add_files("org/model", {"config.json": b"{}", "other.json": b"[]"})
    try:
        await modelfetch.fetch("org/model", "config.json")
    finally:
        await modelfetch.aclose()
    hub_env.clear_requests()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        path = await modelfetch.fetch("org/model", "config.json")
        with pytest.raises(modelfetch.OfflineError, match=r"other\.json"):
            await modelfetch.fetch("org/model", "other.json")
        folder = await modelfetch.snapshot("org/model")
    finally:
        await modelfetch.aclose()
    assert path.read_bytes() == b"{}"
    assert [p.name for p in folder.iterdir()] == ["config.json"]
    assert hub_env.requests == []


async def test_missing_file_at_a_commit_is_remembered_on_disk(fake_hub: FakeHub, settings: Settings) -> None:
    """huggingface_hub's .no_exist marker answers a later process's miss without a request."""
    commit = fake_hub.add_file("org/model", "config.json", b"{}")
    ref = AssetRef("org/model", "missing.json", commit)
    async with CachedSource(HubSource(settings)) as source:
        with pytest.raises(modelfetch.AssetNotFoundError):
            await source.resolve(ref)
    fake_hub.clear_requests()
    async with CachedSource(HubSource(settings)) as fresh:
        with pytest.raises(modelfetch.AssetNotFoundError):
            await fresh.resolve(ref)
    assert fake_hub.requests == []


async def test_cancelling_all_waiters_stops_the_download(
    fake_hub: FakeHub, settings: Settings, tmp_path: Path
) -> None:
    """Every waiter cancelled mid-transfer: the connection ends early, nothing is published, a retry works."""
    size = 64 * MiB
    (tmp_path / "big.bin").write_bytes(b"\0" * size)
    fake_hub.add_file("org/model", "model.safetensors", tmp_path / "big.bin")
    rule = fake_hub.inject(Fault(throttle=16 * MiB), method="GET", path="model.safetensors")
    started = anyio.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.kind is ProgressKind.STARTED:
            started.set()

    ref = AssetRef("org/model", "model.safetensors")
    async with CachedSource(HubSource(settings)) as source:
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(lambda: source.resolve(ref, progress=on_progress))
            await started.wait()
            tg.cancel_scope.cancel()
        assert source.stats().in_flight == 0
    # Closing the source waits for the abandoned transfer to wind down.
    record = (await anyio.to_thread.run_sync(fake_hub.wait_for_requests, "GET", "model.safetensors"))[0]
    assert not record.completed
    storage = settings.hub_cache / "models--org--model"
    assert list((storage / "blobs").iterdir()) == []
    assert not list((storage / "snapshots").rglob("model.safetensors"))
    fake_hub.remove_fault(rule)
    async with CachedSource(HubSource(settings)) as source:
        resolved = await source.resolve(ref)
    assert resolved.origin is Origin.NETWORK
    assert resolved.size == size


_WORKER = """
import sys
import threading
from huggingface_hub import hf_hub_download
import modelfetch
endpoint, cache, mode = sys.argv[1:4]
if mode == "modelfetch":
    settings = modelfetch.Settings.from_env({}, endpoint=endpoint, hub_cache=cache)
    print(modelfetch.fetch_sync("org/model", "model.safetensors", source=modelfetch.CachedSource(
        modelfetch.HubSource(settings))))
else:
    print(hf_hub_download("org/model", "model.safetensors", endpoint=endpoint, cache_dir=cache))
"""


@pytest.mark.slow
def test_four_processes_share_one_blob(fake_hub: FakeHub, tmp_path: Path) -> None:
    """Two modelfetch and two huggingface_hub processes fetching one large file end with one valid blob."""
    data = os.urandom(16 * MiB)
    fake_hub.add_file("org/model", "model.safetensors", data)
    fake_hub.inject(Fault(throttle=32 * MiB), method="GET", path="model.safetensors")
    cache = tmp_path / "cache"
    env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, fake_hub.endpoint, str(cache), mode],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("modelfetch", "hf", "modelfetch", "hf")
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in outputs]
    paths = {Path(out.strip()) for out, _ in outputs}
    assert len(paths) == 1
    storage = cache / "models--org--model"
    blobs = list((storage / "blobs").iterdir())
    assert [b.name for b in blobs] == [hashlib.sha256(data).hexdigest()]
    assert hashlib.sha256(paths.pop().read_bytes()).digest() == hashlib.sha256(data).digest()
    assert not list(cache.rglob("*.incomplete"))

"""`modelfetch demo`: the main job, end to end, with nothing but loopback.

It starts a FakeHub on 127.0.0.1 holding a generated sharded model, fetches it through
the default stack while a heartbeat task measures event-loop lag, fetches it again, and
shows that huggingface_hub finds every file in its cache with the network off.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import anyio
import anyio.to_thread
from huggingface_hub import scan_cache_dir, snapshot_download, try_to_load_from_cache

from .._api import snapshot
from .._cached.source import CachedSource
from .._core.progress import ProgressCallback
from .._core.settings import Settings
from .._http.source import HttpHubSource
from .._hub.source import HubSource
from ..testing import FakeHub, write_model_repo

DEMO_REPO = "demo/tiny-llm"
_MIB = 1024 * 1024


@dataclass(slots=True)
class Heartbeat:
    """Sleeps `interval` seconds in a loop and records how late each wake-up was."""

    interval: float = 0.001
    lags: list[float] = field(default_factory=list)

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            start = time.perf_counter()
            await anyio.sleep(self.interval)
            self.lags.append(max(time.perf_counter() - start - self.interval, 0.0))

    def summary(self) -> str:
        """p50/p99/max lag in milliseconds."""
        if not self.lags:
            return "no ticks"
        lags = sorted(self.lags)
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        return (
            f"p50 {statistics.median(lags) * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, "
            f"max {lags[-1] * 1e3:.2f} ms over {len(lags)} ticks"
        )


async def run_demo(
    *,
    size_mib: int = 256,
    shards: int = 4,
    backend: str = "threads",
    progress: ProgressCallback | None = None,
    out: TextIO | None = None,
) -> None:
    """Run the demo and print its report to `out` (stdout by default)."""
    out = out if out is not None else sys.stdout
    with tempfile.TemporaryDirectory(prefix="modelfetch-demo-") as tmp:
        work = Path(tmp)
        model = await anyio.to_thread.run_sync(
            lambda: write_model_repo(
                work / "repo", shards=shards, shard_size=max(size_mib, 1) * _MIB // shards
            )
        )
        async with FakeHub() as hub:
            commit = await anyio.to_thread.run_sync(hub.add_folder, DEMO_REPO, model.folder)
            cache = work / "hf-home" / "hub"
            settings = Settings.from_env({}, endpoint=hub.endpoint, hub_cache=cache)
            print(
                f"FakeHub on {hub.endpoint}: {DEMO_REPO}@{commit[:12]}, {len(model.files)} files, "
                f"{model.total_bytes / _MIB:.1f} MiB",
                file=out,
            )
            inner = HttpHubSource(settings) if backend == "httpx" else HubSource(settings)
            async with CachedSource(inner, settings=settings) as source:
                beat = Heartbeat()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(beat.run)
                    started = time.perf_counter()
                    folder = await snapshot(DEMO_REPO, source=source, progress=progress)
                    elapsed = time.perf_counter() - started
                    tg.cancel_scope.cancel()
                heads, gets = hub.count("HEAD"), hub.count("GET")
                hub.clear_requests()
                again = time.perf_counter()
                await snapshot(DEMO_REPO, source=source)
                second = time.perf_counter() - again
                second_requests = len(hub.requests)
        found = await anyio.to_thread.run_sync(_interop_check, cache, commit, model.files)
    rate = model.total_bytes / _MIB / elapsed if elapsed else float("inf")
    print(
        f"fetched      {len(model.files)} files, {model.total_bytes / _MIB:.1f} MiB in {elapsed:.2f} s "
        f"({rate:.0f} MiB/s) into {folder}",
        file=out,
    )
    print(f"source       CachedSource({type(inner).__name__})", file=out)
    print(f"event loop   {beat.summary()} (1 ms heartbeat during the fetch)", file=out)
    print(f"requests     {heads} HEAD, {gets} GET", file=out)
    print(
        f"second pass  the same snapshot again: {second * 1e3:.1f} ms, {second_requests} requests", file=out
    )
    print(
        f"interop      huggingface_hub, offline, found {found}/{len(model.files)} files in its cache; "
        "scan_cache_dir reports no problems",
        file=out,
    )


def _interop_check(cache: Path, commit: str, files: tuple[str, ...]) -> int:
    folder = snapshot_download(DEMO_REPO, revision=commit, cache_dir=cache, local_files_only=True)
    report = scan_cache_dir(cache)
    if report.warnings:
        raise RuntimeError(f"scan_cache_dir found problems: {report.warnings}")
    found = 0
    for name in files:
        hit = try_to_load_from_cache(DEMO_REPO, name, cache_dir=cache, revision="main")
        if isinstance(hit, str) and Path(hit) == Path(folder) / name:
            found += 1
    return found

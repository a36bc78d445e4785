"""Cache-hit cost: µs per await of a memoised ref, a disk hit in a fresh source, and hf_hub_download.

Baselines in the same run: `hf_hub_download` with the commit on disk (its own shortcut) and
with a branch revision (a HEAD each time). Run: `python -m benchmarks.cache_hits`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import anyio
from huggingface_hub import hf_hub_download

import modelfetch
from modelfetch import AssetRef, CachedSource, HubSource, Settings
from modelfetch.testing import FakeHub


async def _memo_us(source: CachedSource, ref: AssetRef, n: int) -> float:
    await source.resolve(ref)
    start = time.perf_counter()
    for _ in range(n):
        await source.resolve(ref)
    return (time.perf_counter() - start) / n * 1e6


async def _fetch_us(source: CachedSource, ref: AssetRef, n: int) -> float:
    """`modelfetch.fetch` on a memo hit: the entry point's argument checks included."""
    await modelfetch.fetch(ref.repo_id, ref.filename, revision=ref.revision, source=source)
    start = time.perf_counter()
    for _ in range(n):
        await modelfetch.fetch(ref.repo_id, ref.filename, revision=ref.revision, source=source)
    return (time.perf_counter() - start) / n * 1e6


async def _disk_us(settings: Settings, ref: AssetRef, n: int) -> float:
    total = 0.0
    for _ in range(n):
        async with CachedSource(HubSource(settings)) as fresh:
            start = time.perf_counter()
            await fresh.resolve(ref)
            total += time.perf_counter() - start
    return total / n * 1e6


def _hf_us(hub: FakeHub, cache: Path, revision: str, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        hf_hub_download(
            "bench/model", "config.json", revision=revision, endpoint=hub.endpoint, cache_dir=cache
        )
    return (time.perf_counter() - start) / n * 1e6


def measure(n: int) -> dict[str, float]:
    """All figures, in µs per call, plus request counts."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeHub() as hub:
        commit = hub.add_file("bench/model", "config.json", b"{}")
        settings = Settings.from_env({}, endpoint=hub.endpoint, hub_cache=Path(tmp) / "hub")
        pinned, branch = (
            AssetRef("bench/model", "config.json", commit),
            AssetRef("bench/model", "config.json"),
        )

        for backend in ("asyncio", "trio"):

            async def run() -> None:
                async with CachedSource(HubSource(settings)) as source:
                    results[f"memo_{backend}_us"] = await _memo_us(source, pinned, n)  # noqa: B023
                    results[f"memo_branch_{backend}_us"] = await _memo_us(source, branch, n)  # noqa: B023
                    results[f"fetch_{backend}_us"] = await _fetch_us(source, pinned, n)  # noqa: B023

            anyio.run(run, backend=backend)
        hub.clear_requests()
        results["disk_fresh_us"] = anyio.run(_disk_us, settings, pinned, 200)
        results["disk_fresh_requests"] = len(hub.requests)
        results["hf_commit_us"] = _hf_us(hub, settings.hub_cache, commit, 200)
        hub.clear_requests()
        results["hf_branch_us"] = _hf_us(hub, settings.hub_cache, "main", 50)
        results["hf_branch_requests_per_call"] = len(hub.requests) / 50
    modelfetch.shutdown_sync()
    return results


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=100_000)
    for name, value in measure(parser.parse_args().n).items():
        print(f"{name:30s} {value:10.2f}")


if __name__ == "__main__":
    main()

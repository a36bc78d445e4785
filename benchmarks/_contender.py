"""One benchmark measurement, run in a fresh process: `python -m benchmarks._contender JSON`.

Prints a JSON object: wall seconds, CPU seconds, peak RSS growth, heartbeat lags (ms),
and request-free extras. Each contender fetches into its own empty cache.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ._common import RssSampler

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (curl runs as one)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


async def _heartbeat(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append((time.perf_counter() - start - 0.001) * 1e3)


async def _with_heartbeat(work: Callable[[], Awaitable[Any]]) -> tuple[Any, list[float]]:
    lags: list[float] = []
    stop = asyncio.Event()
    beat = asyncio.ensure_future(_heartbeat(lags, stop))
    await asyncio.sleep(0.01)
    lags.clear()
    try:
        return await work(), lags
    finally:
        stop.set()
        await beat


def _settings(endpoint: str, cache: str) -> Any:
    import modelfetch

    return modelfetch.Settings.from_env({}, endpoint=endpoint, hub_cache=cache)


def _source(kind: str, endpoint: str, cache: str) -> Any:
    import modelfetch

    settings = _settings(endpoint, cache)
    if kind == "hub":
        return modelfetch.CachedSource(modelfetch.HubSource(settings))
    if kind == "hub-noverify":
        return modelfetch.CachedSource(modelfetch.HubSource(settings, verify=False))
    engine = "httpx" if kind.startswith("httpx") else "auto"  # "native": auto, obstore
    ranges = {"connections": 4} if kind.endswith("-ranges") else {}  # the default is one stream
    options = modelfetch.TransferOptions(engine=engine, **ranges)
    return modelfetch.CachedSource(modelfetch.HttpHubSource(settings, options=options))


async def _curl_processes(endpoint: str, repo: str, files: list[str], cache: str) -> None:
    """One `curl` process per file, all at once: the floor, with no Python in the byte path."""
    procs = []
    for f in files:
        out = Path(cache) / f.replace("/", "_")
        out.parent.mkdir(parents=True, exist_ok=True)
        url = f"{endpoint}/{repo}/resolve/main/{f}"
        procs.append(await asyncio.create_subprocess_exec("curl", "-sSL", "-o", str(out), url))
    for proc in procs:
        if await proc.wait() != 0:
            raise SystemExit("curl failed")


def _obstore_file(endpoint: str, repo: str, name: str, out: Path) -> str:
    """One file through obstore's HTTP store (Rust: reqwest on tokio), hashed and written here.

    The alternative engine in the comparison: bytes are received by Rust code without
    the GIL and handed over in 1 MiB chunks; this worker thread hashes and writes them.
    """
    import hashlib

    import obstore
    from obstore.store import HTTPStore

    store = HTTPStore.from_url(f"{endpoint}/{repo}/resolve/main", client_options={"allow_http": True})
    digest = hashlib.sha256()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        offset = 0
        for chunk in obstore.get(store, name).stream(min_chunk_size=1024 * 1024):
            view = memoryview(chunk)
            digest.update(view)
            os.pwrite(fd, view, offset)
            offset += len(view)
    finally:
        os.close(fd)
    return digest.hexdigest()


def _curl_serial(endpoint: str, repo: str, files: list[str], cache: str) -> None:
    """`curl -o file`, one file after the other: the transport's ceiling for one stream."""
    import subprocess

    for f in files:
        url = f"{endpoint}/{repo}/resolve/main/{f}"
        out = Path(cache) / f.replace("/", "_")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["curl", "-sSL", "-o", str(out), url], check=True)


async def _obstore_files(endpoint: str, repo: str, files: list[str], cache: str) -> None:
    """Every file at once, one worker thread each."""
    out = Path(cache)
    await asyncio.gather(
        *(asyncio.to_thread(_obstore_file, endpoint, repo, f, out / f.replace("/", "_")) for f in files)
    )


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement described by `spec`; see benchmarks.run for the names."""
    from huggingface_hub import hf_hub_download, snapshot_download

    import modelfetch

    name, endpoint, cache = spec["contender"], spec["endpoint"], spec["cache"]
    repo, files = spec["repo"], spec["files"]
    result: dict[str, Any] = {}

    def hf_one(f: str) -> str:
        return hf_hub_download(repo, f, endpoint=endpoint, cache_dir=cache)

    async def ours() -> None:
        async with _source(name.split(":")[1], endpoint, cache) as source:
            if spec.get("snapshot"):
                await modelfetch.snapshot(repo, source=source, max_workers=8)
            else:
                await asyncio.gather(*(modelfetch.fetch(repo, f, source=source) for f in files))

    async def hf_in_coroutine() -> None:
        for f in files:
            hf_one(f)  # the bug modelfetch fixes: blocking the loop

    async def hf_to_thread() -> None:
        await asyncio.gather(*(asyncio.to_thread(hf_one, f) for f in files))

    cpu0, wall0 = _cpu(), time.perf_counter()
    with RssSampler() as rss:
        if name == "curl":
            _curl_serial(endpoint, repo, files, cache)
        elif name == "curl:parallel":
            floor = _curl_processes(endpoint, repo, files, cache)
            result["lags"] = asyncio.run(_with_heartbeat(lambda: floor))[1]
        elif name == "alt:obstore":
            result["lags"] = asyncio.run(
                _with_heartbeat(lambda: _obstore_files(endpoint, repo, files, cache))
            )[1]
        elif name == "hf:snapshot":
            snapshot_download(repo, endpoint=endpoint, cache_dir=cache, max_workers=8)
        elif name == "hf:direct":
            result["lags"] = asyncio.run(_with_heartbeat(hf_in_coroutine))[1]
        elif name == "hf:to_thread":
            result["lags"] = asyncio.run(_with_heartbeat(hf_to_thread))[1]
        elif name == "hf:threads":
            threads = [threading.Thread(target=hf_one, args=(f,)) for f in files]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        elif name.startswith("ours:"):
            import obstore  # noqa: F401

            import modelfetch._http.source
            import modelfetch._hub.source

            if spec.get("uvloop"):
                import uvloop

                uvloop.install()
            result["lags"] = asyncio.run(_with_heartbeat(ours))[1]
        else:
            raise SystemExit(f"unknown contender {name}")
    result.update(wall=time.perf_counter() - wall0, cpu=_cpu() - cpu0, rss_delta=rss.peak_delta)
    return result


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))

"""`modelfetch demo`: the main job, end to end, with nothing but loopback.

It starts a FakeHub on 127.0.0.1, in a process of its own, holding a generated sharded
model; fetches it with one `curl` process per file (the floor) and with `hf_hub_download`
in worker threads, then through the default stack, each while a heartbeat task measures
event-loop lag; fetches it again, and shows that huggingface_hub finds every file in its
cache with the network off.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TextIO

import anyio
import anyio.abc
import anyio.to_thread
from anyio.streams.buffered import BufferedByteReceiveStream
from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download, try_to_load_from_cache

from .._api import snapshot
from .._cached.source import CachedSource
from .._core.progress import ProgressCallback
from .._core.settings import Settings
from .._http.source import HttpHubSource
from .._hub.source import HubSource
from ..testing import write_model_repo

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


class _HubProcess:
    """The demo's FakeHub in a child process (`demohub`), so its threads never share our GIL."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._process: anyio.abc.Process | None = None
        self._lines: BufferedByteReceiveStream | None = None
        self.endpoint = self.commit = ""

    async def __aenter__(self) -> _HubProcess:
        command = [sys.executable, "-m", "modelfetch._cli.demohub", DEMO_REPO, str(self._folder)]
        self._process = await anyio.open_process(command, stderr=None)
        assert self._process.stdout is not None
        self._lines = BufferedByteReceiveStream(self._process.stdout)
        hello = await self._read()
        self.endpoint, self.commit = str(hello["endpoint"]), str(hello["commit"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._process is not None:
            with anyio.CancelScope(shield=True):
                if self._process.stdin is not None:
                    await self._process.stdin.aclose()  # the server stops when its stdin closes
                with anyio.move_on_after(10):
                    await self._process.wait()
                if self._process.returncode is None:
                    self._process.kill()
                await self._process.aclose()

    async def ask(self, command: str) -> dict[str, object]:
        """Send `count` or `clear`; the server's answer."""
        assert self._process is not None
        assert self._process.stdin is not None
        await self._process.stdin.send(command.encode("ascii") + b"\n")
        return await self._read()

    async def _read(self) -> dict[str, object]:
        assert self._lines is not None
        try:
            line = await self._lines.receive_until(b"\n", 64 * 1024)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            raise RuntimeError("the demo's FakeHub process ended early; see its output above") from None
        answer: dict[str, object] = json.loads(line)
        return answer


async def _timed(work: Callable[[], Awaitable[object]]) -> tuple[float, Heartbeat]:
    """Run `work` beside a 1 ms heartbeat; its wall time and the heartbeat."""
    beat = Heartbeat()
    async with anyio.create_task_group() as tg:
        tg.start_soon(beat.run)
        started = time.perf_counter()
        await work()
        elapsed = time.perf_counter() - started
        tg.cancel_scope.cancel()
    return elapsed, beat


async def _curl_floor(endpoint: str, commit: str, files: tuple[str, ...], into: Path) -> None:
    """One `curl` process per file, all at once: no Python in the byte path."""
    async with anyio.create_task_group() as tg:
        for index, name in enumerate(files):
            url = f"{endpoint}/{DEMO_REPO}/resolve/{commit}/{name}"
            command = ["curl", "-sSfL", "-o", str(into / f"{index}"), url]
            tg.start_soon(partial(anyio.run_process, command, check=True))


async def _hf_threads(endpoint: str, commit: str, files: tuple[str, ...], cache: Path) -> None:
    """`hf_hub_download` per file in worker threads, all at once (what modelfetch replaces)."""
    async with anyio.create_task_group() as tg:
        for name in files:
            call = partial(
                hf_hub_download, DEMO_REPO, name, revision=commit, endpoint=endpoint, cache_dir=cache
            )
            tg.start_soon(partial(anyio.to_thread.run_sync, call))


def _rate(total: int, elapsed: float) -> str:
    return f"{total / _MIB / elapsed:.0f} MiB/s" if elapsed else "instant"


async def run_demo(
    *,
    size_mib: int = 256,
    shards: int = 4,
    backend: str = "threads",
    progress: ProgressCallback | None = None,
    out: TextIO | None = None,
    compare: bool = True,
) -> None:
    """Run the demo and print its report to `out` (stdout by default).

    With `compare`, the same files are also fetched by one `curl` process each (the floor:
    no Python in the byte path) and by `hf_hub_download` in worker threads, each beside the
    same heartbeat, before the default stack fetches them.
    """
    out = out if out is not None else sys.stdout
    with tempfile.TemporaryDirectory(prefix="modelfetch-demo-") as tmp:
        work = Path(tmp)
        model = await anyio.to_thread.run_sync(
            lambda: write_model_repo(
                work / "repo", shards=shards, shard_size=max(size_mib, 1) * _MIB // shards
            )
        )
        async with _HubProcess(model.folder) as hub:
            commit, total = hub.commit, model.total_bytes
            cache = work / "hf-home" / "hub"
            settings = Settings.from_env({}, endpoint=hub.endpoint, hub_cache=cache)
            print(
                f"FakeHub on {hub.endpoint} (its own process): {DEMO_REPO}@{commit[:12]}, "
                f"{len(model.files)} files, {total / _MIB:.1f} MiB",
                file=out,
            )
            baselines: list[str] = []
            if compare:
                if shutil.which("curl"):
                    (work / "curl").mkdir()
                    took, beat = await _timed(
                        lambda: _curl_floor(hub.endpoint, commit, model.files, work / "curl")
                    )
                    baselines.append(
                        f"floor        {len(model.files)} curl processes at once: {_rate(total, took)}; "
                        f"event loop {beat.summary()}"
                    )
                else:
                    baselines.append("floor        curl is not installed: no floor measured")
                took, beat = await _timed(lambda: _hf_threads(hub.endpoint, commit, model.files, work / "hf"))
                baselines.append(
                    f"hf threads   hf_hub_download per file in worker threads: {_rate(total, took)}; "
                    f"event loop {beat.summary()}"
                )
                await hub.ask("clear")
            inner = HttpHubSource(settings) if backend == "httpx" else HubSource(settings)
            name = type(inner).__name__
            if isinstance(inner, HttpHubSource):
                name += f", engine {inner.engine}"
            async with CachedSource(inner, settings=settings) as source:
                folder: list[Path] = []

                async def fetch() -> None:
                    folder.append(await snapshot(DEMO_REPO, source=source, progress=progress))

                elapsed, beat = await _timed(fetch)
                counts = await hub.ask("count")
                await hub.ask("clear")
                again = time.perf_counter()
                await snapshot(DEMO_REPO, source=source)
                second = time.perf_counter() - again
                second_requests = (await hub.ask("count"))["all"]
        found = await anyio.to_thread.run_sync(_interop_check, cache, commit, model.files)
    print(
        f"fetched      {len(model.files)} files, {total / _MIB:.1f} MiB in {elapsed:.2f} s "
        f"({_rate(total, elapsed)}) into {folder[0]} (a temporary cache, removed as the demo ends)",
        file=out,
    )
    print(f"source       CachedSource({name})", file=out)
    print(f"event loop   {beat.summary()} (1 ms heartbeat during the fetch)", file=out)
    for line in baselines:
        print(line, file=out)
    print(f"requests     {counts['HEAD']} HEAD, {counts['GET']} GET", file=out)
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

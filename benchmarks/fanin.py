"""Fan-in: 100 concurrent awaits of one uncached file, counted at the hub (HEAD and GET).

Baseline: 100 threads calling hf_hub_download at once. Counts, not timings.
Run: `python -m benchmarks.fanin`.
"""

from __future__ import annotations

import os
import tempfile
import threading
from functools import partial
from pathlib import Path

import anyio
from huggingface_hub import hf_hub_download

import modelfetch
from modelfetch import CachedSource, HttpHubSource, HubSource, Settings
from modelfetch.testing import FakeHub

N = 100


def measure() -> dict[str, float]:
    """HEAD and GET counts per contender."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    out: dict[str, float] = {}
    data = os.urandom(8 * 1024 * 1024)
    for name in ("hub", "httpx", "hf_threads"):
        with tempfile.TemporaryDirectory() as tmp, FakeHub() as hub:
            hub.add_file("bench/model", "model.safetensors", data)
            cache = Path(tmp)
            if name == "hf_threads":
                threads = [
                    threading.Thread(
                        target=hf_hub_download,
                        args=("bench/model", "model.safetensors"),
                        kwargs={"endpoint": hub.endpoint, "cache_dir": cache},
                    )
                    for _ in range(N)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            else:
                settings = Settings.from_env({}, endpoint=hub.endpoint, hub_cache=cache)
                inner = HubSource(settings) if name == "hub" else HttpHubSource(settings)

                async def run() -> None:
                    async with CachedSource(inner) as source, anyio.create_task_group() as tg:  # noqa: B023
                        for _ in range(N):
                            tg.start_soon(
                                partial(modelfetch.fetch, "bench/model", "model.safetensors", source=source)
                            )

                anyio.run(run)
            out[f"{name}_head"] = hub.count("HEAD")
            out[f"{name}_get"] = hub.count("GET")
    return out


if __name__ == "__main__":
    for key, value in measure().items():
        print(f"{key:20s} {value:6.0f}")

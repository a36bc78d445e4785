"""Processes: many processes and tasks on one cache, and a process killed mid-download."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from modelfetch.testing import FakeHub, Fault

from .._units import MiB
from ._audit import bad_links, leftovers
from .conftest import Ledger

_WORKER = r"""
import sys, anyio, modelfetch
from huggingface_hub import hf_hub_download
endpoint, cache, mode, *names = sys.argv[1:]
settings = modelfetch.Settings.from_env({}, endpoint=endpoint, hub_cache=cache)
if mode == "hf":
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as pool:
        fetch = lambda n: hf_hub_download("org/model", n, endpoint=endpoint, cache_dir=cache)
        paths = list(pool.map(fetch, names * 2))
else:
    inner = modelfetch.HubSource(settings) if mode == "hub" else modelfetch.HttpHubSource(settings)
    async def main():
        async with modelfetch.CachedSource(inner) as source:
            out = []
            async with anyio.create_task_group() as tg:
                for n in names * 2:
                    async def one(n=n):
                        out.append(await modelfetch.fetch("org/model", n, source=source))
                    tg.start_soon(one)
            return out
    paths = anyio.run(main)
print("\n".join(map(str, paths)))
"""

_KILLABLE = r"""
import sys, anyio, modelfetch
endpoint, cache = sys.argv[1:]
settings = modelfetch.Settings.from_env({}, endpoint=endpoint, hub_cache=cache)
def report(event):
    if event.kind is modelfetch.ProgressKind.ADVANCED and event.done >= 2 * 1024 * 1024:
        print("HALFWAY", flush=True)
options = modelfetch.TransferOptions(small_file_limit=0)
async def main():
    async with modelfetch.HttpHubSource(settings, options=options) as source:
        await source.resolve(modelfetch.AssetRef("org/model", "big.safetensors"), progress=report)
anyio.run(main)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


@pytest.mark.slow
def test_four_processes_of_eight_tasks(fake_hub: FakeHub, tmp_path: Path, ledger: Ledger) -> None:
    """4 processes (threads source, httpx source, two plain huggingface_hub) x 8 tasks: one blob per file."""
    files = {f"w{i}.safetensors": os.urandom(2 * MiB) for i in range(4)}
    fake_hub.add_files("org/model", files)
    fake_hub.inject(Fault(throttle=64 * MiB), method="GET")
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, fake_hub.endpoint, str(cache), mode, *files],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("hub", "httpx", "hf", "hf")
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    errors = [err for p, (_, err) in zip(procs, outputs, strict=True) if p.returncode != 0]
    blobs = sorted(p.name for p in (cache / "models--org--model" / "blobs").iterdir())
    expected = sorted(hashlib.sha256(d).hexdigest() for d in files.values())
    wrong = sum(
        1 for out, _ in outputs for line in out.split() if Path(line).read_bytes() != files[Path(line).name]
    )
    lost = bad_links(cache)
    ledger.record(
        "4 processes x 8 tasks on one cache", trials=4 * 8, failures=len(errors) + wrong, lost=len(lost)
    )
    assert errors == []
    assert wrong == 0
    assert blobs == expected
    assert lost == []
    assert leftovers(cache) == []


@pytest.mark.slow
def test_killed_process_is_resumed_and_leaves_no_stale_lock(
    fake_hub: FakeHub, tmp_path: Path, ledger: Ledger
) -> None:
    """SIGKILL mid-download: the next process resumes from the good prefix and is not blocked by the lock."""
    data = os.urandom(6 * MiB)
    fake_hub.add_file("org/model", "big.safetensors", data)
    rule = fake_hub.inject(Fault(throttle=4 * MiB), method="GET")
    cache = tmp_path / "cache"
    victim = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE, fake_hub.endpoint, str(cache)],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert victim.stdout is not None
    assert victim.stdout.readline().strip() == "HALFWAY"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    victim.stdout.close()
    fake_hub.remove_fault(rule)
    fake_hub.clear_requests()
    survivor = subprocess.run(
        [sys.executable, "-c", _KILLABLE, fake_hub.endpoint, str(cache)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    resumed_from = [int(r.range.removeprefix("bytes=").split("-")[0]) for r in fake_hub.requests if r.range]
    blob = cache / "models--org--model" / "blobs" / hashlib.sha256(data).hexdigest()
    ok = survivor.returncode == 0 and blob.is_file() and blob.read_bytes() == data
    ledger.record("process killed mid-download (SIGKILL), then resumed", trials=1, failures=0 if ok else 1)
    assert survivor.returncode == 0, survivor.stderr
    assert ok
    assert resumed_from
    assert resumed_from[0] >= 2 * MiB
    assert bad_links(cache) == []

"""docs/server.md's app (tests/guide/server_app.py) under a real ASGI server: uvicorn in a
subprocess, probed over HTTP while a FakeHub holds the weights back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from modelfetch.testing import FakeHub, Fault, write_model_repo

from .._units import MiB

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _server(hub: FakeHub, home: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """uvicorn serving the example app, returned once its lifespan has started."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env |= {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(home), "MODEL_REPO": "org/model"}
    command = [sys.executable, "-m", "uvicorn", "tests.guide.server_app:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "info"]
    with subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        try:
            for line in proc.stderr:  # uvicorn says when the lifespan has started and it listens
                if "Uvicorn running on" in line:
                    break
            else:
                pytest.fail(f"uvicorn ended before serving (exit {proc.wait()})")
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            yield proc, f"http://127.0.0.1:{port}"
        finally:
            if proc.poll() is None:
                proc.kill()


def _wait_ready(url: str, deadline: float) -> httpx.Response:
    """Poll /ready (an outside process: nothing to wait on but its answers)."""
    while True:
        answer = httpx.get(f"{url}/ready", timeout=5)
        if answer.status_code != 503 or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


@pytest.fixture
def held_hub(tmp_path: Path) -> Iterator[tuple[FakeHub, threading.Event]]:
    """A FakeHub serving a 2-shard model whose shards stop after 1 MiB until released."""
    model = write_model_repo(tmp_path / "repo", shards=2, shard_size=4 * MiB)
    release = threading.Event()
    with FakeHub() as hub:
        hub.add_folder("org/model", model.folder)
        hub.inject(Fault(hold=release, stall_after=MiB), method="GET", path="model-0000")
        guard = threading.Timer(120, release.set)  # a server that never answers fails, not hangs
        guard.start()
        try:
            yield hub, release
        finally:
            guard.cancel()
            release.set()


@pytest.mark.slow
def test_health_answers_while_the_model_downloads_then_ready(
    held_hub: tuple[FakeHub, threading.Event], tmp_path: Path
) -> None:
    """/health is 200 during the download, /ready 503 until the weights are in, then 200."""
    hub, release = held_hub
    with _server(hub, tmp_path / "home") as (_proc, url):
        assert httpx.get(f"{url}/health", timeout=5).json() == {"status": "alive"}
        waiting = httpx.get(f"{url}/ready", timeout=5)
        assert (waiting.status_code, waiting.json()) == (503, {"status": "loading"})
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200  # still alive, still loading
        release.set()
        done = _wait_ready(url, time.monotonic() + 60)
        assert done.status_code == 200, done.text
        assert done.json()["shards"] == 2


@pytest.mark.slow
def test_shutdown_cancels_the_download_and_publishes_nothing(
    held_hub: tuple[FakeHub, threading.Event], tmp_path: Path
) -> None:
    """SIGINT while the shards are held: the server stops at once, no shard is in the snapshot."""
    hub, _release = held_hub
    home = tmp_path / "home"
    with _server(hub, home) as (proc, url):
        assert httpx.get(f"{url}/ready", timeout=5).status_code == 503
        hub.wait_for_requests("GET", "config.json")  # the download has begun
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0  # the shards are still held: only cancellation ends it
    assert not list((home / "hub").rglob("snapshots/*/model-*.safetensors"))

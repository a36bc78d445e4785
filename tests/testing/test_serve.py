"""`python -m modelfetch.testing serve`: a FakeHub as its own process, stopped by a signal."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import modelfetch
from modelfetch import HttpHubSource, RetryPolicy, Settings

HANG_GUARD = 60  # seconds; the server prints its endpoint within a second or two


@contextmanager
def _serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start the server with `args`; yield it and the endpoint it printed; stop it with SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelfetch.testing", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
            assert sel.select(HANG_GUARD), "no endpoint printed"
        endpoint = proc.stdout.readline().strip()  # type: ignore[union-attr]
        yield proc, endpoint
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(HANG_GUARD)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_it_serves_a_folder_and_a_generated_model_and_stops_cleanly_on_a_signal(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """A folder repo and a generated one are fetched through it; the signal ends it with status 0."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"mine": true}')
    with _serving("--repo", f"org/mine={folder}", "--generate", "demo/tiny") as (proc, endpoint):
        assert endpoint.startswith("http://127.0.0.1:")
        settings = Settings.from_env({}, endpoint=endpoint, hub_cache=tmp_path / "cache")
        async with HttpHubSource(settings) as source:
            mine = await modelfetch.fetch("org/mine", "config.json", source=source)
            model = await modelfetch.fetch_safetensors("demo/tiny", source=source)
        assert json.loads(mine.read_text()) == {"mine": True}
        assert model.shards
        assert all(p.stat().st_size > 0 for p in model.shards)
        proc.send_signal(stop)
        assert proc.wait(HANG_GUARD) == 0


def test_faults_from_flags_apply_to_the_matching_requests(tmp_path: Path) -> None:
    """--fail-status 503 --fail-times 1 on config.json: the first answer is 503, the next the file."""
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    flags = ["--repo", f"org/m={folder}", "--fail-status", "503", "--retry-after", "0"]
    with _serving(*flags, "--fail-path", "config.json", "--fail-times", "1") as (_, endpoint):
        url = f"{endpoint}/org/m/resolve/main/config.json"
        first, second = httpx.get(url), httpx.get(url)
    assert first.status_code == 503
    assert first.headers["retry-after"] == "0"
    assert (second.status_code, second.text) == (200, "{}")


async def test_the_default_stack_rides_over_an_injected_fault(tmp_path: Path) -> None:
    """One 503 on the file: HttpHubSource retries and gets it."""
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    flags = ["--repo", f"org/m={folder}", "--fail-status", "503", "--fail-path", "config.json"]
    with _serving(*flags, "--fail-times", "1") as (_, endpoint):
        settings = Settings.from_env({}, endpoint=endpoint, hub_cache=tmp_path / "cache")
        fast = RetryPolicy(attempts=3, base=0.01, cap=0.01, total=30)
        async with HttpHubSource(settings, retry=fast) as source:
            got = await modelfetch.fetch("org/m", "config.json", source=source)
    assert got.read_text() == "{}"


@pytest.mark.parametrize(
    "args",
    [["--port", "70000"], ["--repo", "org/m"], ["--repo", "org/m=/no/such/folder"], ["--repo", "../x=."]],
)
def test_bad_arguments_are_exit_status_2_with_one_message(args: list[str]) -> None:
    """A bad port, repo spec, missing folder or invalid repo id: status 2, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "modelfetch.testing", "serve", *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stdout == ""

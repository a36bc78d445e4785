"""The pytest plugin (registered through the `pytest11` entry point).

Fixtures:
    fake_hub: a running `FakeHub`, stopped after the test.
    hub_env: the same hub, with `HF_ENDPOINT`, `HF_HOME` and `HF_HUB_CACHE` pointing at it
        and at the test's `tmp_path`, `HF_HUB_DISABLE_TELEMETRY=1`, no token and online.
        `huggingface_hub`'s import-time constants are patched to match, so plain
        `hf_hub_download(...)` calls in the test hit the fake hub too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants

from .._sync import shutdown_sync
from ._fakehub import FakeHub


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    """A running FakeHub on 127.0.0.1 (ephemeral port), stopped after the test."""
    with FakeHub() as hub:
        yield hub


@pytest.fixture
def hub_env(fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """`fake_hub`, with the `HF_*` environment (and huggingface_hub's constants) aimed at it."""
    home = tmp_path / "hf-home"
    cache = home / "hub"
    env = {
        "HF_ENDPOINT": fake_hub.endpoint,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", fake_hub.endpoint)
    monkeypatch.setattr(
        constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        fake_hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
    )
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    shutdown_sync()  # the sync facade's default source must see this environment
    yield fake_hub
    shutdown_sync()

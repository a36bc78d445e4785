"""The pytest plugin's fixtures point everything at a FakeHub and a temporary cache."""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import hf_hub_download

from modelfetch.testing import FakeHub


def test_fake_hub_fixture_is_running(fake_hub: FakeHub) -> None:
    """fake_hub is a started server on 127.0.0.1."""
    assert fake_hub.endpoint.startswith("http://127.0.0.1:")


def test_hub_env_aims_huggingface_hub_at_the_fake(hub_env: FakeHub, tmp_path: Path) -> None:
    """With hub_env, a plain hf_hub_download (no arguments) hits the fake hub and the test's cache."""
    hub_env.add_file("org/model", "config.json", b"{}")
    assert os.environ["HF_ENDPOINT"] == hub_env.endpoint
    assert os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"
    assert "HF_TOKEN" not in os.environ
    path = Path(hf_hub_download("org/model", "config.json"))
    assert path.is_relative_to(tmp_path)
    assert hub_env.count("GET", "config.json") == 1

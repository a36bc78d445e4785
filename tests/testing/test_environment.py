"""Pointing code at a FakeHub outside pytest, closing sync-facade sources, mock headers."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from huggingface_hub import constants, hf_hub_download

import modelfetch
from modelfetch import Settings
from modelfetch.testing import FakeHub, MemorySource, hub_headers
from modelfetch.testing._headers import EXAMPLE_COMMIT


def test_environment_aims_everything_at_the_hub_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside: HF_* and huggingface_hub's constants name the hub; after: exactly as before."""
    monkeypatch.setenv("HF_TOKEN", "hf_secretOutsideTheBlock0000000000")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    before_env = dict(os.environ)
    before = (constants.ENDPOINT, constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE)
    with FakeHub() as hub, hub.environment() as cache:
        hub.add_file("org/model", "config.json", b"{}")
        assert os.environ["HF_ENDPOINT"] == hub.endpoint
        assert "HF_TOKEN" not in os.environ
        assert hub.endpoint == constants.ENDPOINT
        assert str(cache) == constants.HF_HUB_CACHE
        ours = modelfetch.fetch_sync("org/model", "config.json")
        theirs = hf_hub_download("org/model", "config.json")
        assert str(ours) == theirs
        assert ours.is_relative_to(cache)
        assert hub.count("GET", "config.json") == 1  # huggingface_hub found our file: no second GET
    assert dict(os.environ) == before_env
    assert before == (constants.ENDPOINT, constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE)
    assert not cache.exists()  # the temporary home went with the block


def test_close_sync_closes_a_source_on_the_facade_loop() -> None:
    """A MemorySource used by fetch_sync is closed by close_sync: its temporary cache is gone."""
    source = MemorySource({"org/model": {"config.json": b"{}"}})
    path = modelfetch.fetch_sync("org/model", "config.json", source=source)
    assert path.read_bytes() == b"{}"
    modelfetch.close_sync(source)
    assert not source.cache_dir.exists()
    modelfetch.close_sync(source)  # idempotent


async def test_close_sync_refuses_to_block_an_event_loop() -> None:
    """Inside an event loop it would block the loop: a typed error naming the way out."""
    async with MemorySource() as source:
        with pytest.raises(modelfetch.BlockingCallError, match=r"await source\.aclose"):
            modelfetch.close_sync(source)


def test_close_sync_refuses_what_is_not_a_source() -> None:
    """A wrong argument is an InvalidRequestError, before anything runs."""
    with pytest.raises(modelfetch.InvalidRequestError):
        modelfetch.close_sync("not a source")  # type: ignore[arg-type]


@pytest.mark.parametrize("lfs", [False, True])
def test_hub_headers_carry_the_etag_the_hub_would_send(lfs: bool) -> None:
    """git's blob sha1 (or sha256 for LFS), quoted; the size; a well-formed commit."""
    data = b"hello"
    headers = hub_headers(data, lfs=lfs)
    git = hashlib.sha1(b"blob 5\0hello", usedforsecurity=False).hexdigest()
    expected = hashlib.sha256(data).hexdigest() if lfs else git
    assert headers == {"X-Repo-Commit": EXAMPLE_COMMIT, "ETag": f'"{expected}"', "Content-Length": "5"}


def test_the_developers_own_modelfetch_settings_stay_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A personal config file and MODELFETCH_* variables do not reach code run in the environment."""
    personal = tmp_path / "personal.toml"
    personal.write_text('endpoint = "http://127.0.0.1:9"\nmirror_url = "s3://team/models"\n')
    monkeypatch.setenv("MODELFETCH_CONFIG", str(personal))
    monkeypatch.setenv("MODELFETCH_MIRROR_URL", "s3://my/bucket")
    with FakeHub() as hub, hub.environment(tmp_path / "home"):
        settings = Settings.from_env()
        assert (settings.endpoint, settings.mirror_url) == (hub.endpoint, None)
    assert Settings.from_env().mirror_url == "s3://my/bucket"  # restored afterwards

"""`force_download=`: download again whatever the cache holds, replacing the cached copy by rename."""

from __future__ import annotations

from pathlib import Path

import pytest

import modelfetch
from modelfetch import CachedSource, HttpHubSource, HubSource, Settings
from modelfetch._cli.main import main
from modelfetch.testing import FakeHub

SMALL, LARGE = b'{"a": 1}', b"w" * (5 * 1024 * 1024)  # a small file, and one past small_file_limit


def _spoil(path: Path) -> None:
    """Overwrite the cached blob's bytes (same size): only a real download restores them."""
    blob = path.resolve()
    data = bytearray(blob.read_bytes())
    data[0] ^= 1
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["httpx", "hub"])
@pytest.mark.parametrize("pinned", [False, True], ids=["main", "commit"])
async def test_force_download_fetches_again_and_replaces_the_blob(
    fake_hub: FakeHub, settings: Settings, kind: str, pinned: bool
) -> None:
    """Cached (and spoilt on disk): a plain fetch serves the cache; a forced one downloads and repairs it."""
    commit = fake_hub.add_files("org/model", {"config.json": SMALL, "w.safetensors": LARGE})
    revision = commit if pinned else None
    inner = HttpHubSource(settings) if kind == "httpx" else HubSource(settings)
    async with CachedSource(inner) as source:
        for name, data in (("config.json", SMALL), ("w.safetensors", LARGE)):
            path = await modelfetch.fetch("org/model", name, revision=revision, source=source)
            _spoil(path)
            gets = fake_hub.count("GET", name)
            again = await modelfetch.fetch("org/model", name, revision=revision, source=source)
            assert fake_hub.count("GET", name) == gets  # served from memory or disk
            forced = await modelfetch.fetch(
                "org/model", name, revision=revision, source=source, force_download=True
            )
            assert fake_hub.count("GET", name) > gets
            assert forced == again
            assert forced.read_bytes() == data


async def test_snapshot_force_download_fetches_every_file_again(hub_env: FakeHub) -> None:
    """Every matching file is transferred again."""
    hub_env.add_files("org/model", {"a.json": b"A", "b.json": b"B"})
    await modelfetch.snapshot("org/model")
    before = hub_env.count("GET", "/resolve/")
    await modelfetch.snapshot("org/model", force_download=True)
    assert hub_env.count("GET", "/resolve/") == before + 2
    await modelfetch.aclose()


async def test_force_download_offline_is_a_typed_error(fake_hub: FakeHub, tmp_path: Path) -> None:
    """Offline there is nothing to download from: OfflineError; and a non-bool flag is refused."""
    settings = Settings.from_env({}, endpoint=fake_hub.endpoint, hub_cache=tmp_path / "c", offline=True)
    async with CachedSource(HttpHubSource(settings)) as source:
        with pytest.raises(modelfetch.OfflineError, match="force_download"):
            await modelfetch.fetch("org/model", "a.json", source=source, force_download=True)
        with pytest.raises(modelfetch.InvalidRequestError, match="force_download"):
            await modelfetch.fetch("org/model", "a.json", source=source, force_download="yes")  # type: ignore[arg-type]


def test_the_cli_forces_too(hub_env: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    """`get --force-download` transfers a cached file again."""
    hub_env.add_file("org/model", "a.json", b"A")
    assert main(["get", "org/model", "a.json", "--quiet"]) == 0
    assert main(["get", "org/model", "a.json", "--quiet", "--force-download"]) == 0
    assert hub_env.count("GET", "a.json") == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == out[1]

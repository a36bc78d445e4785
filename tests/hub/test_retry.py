"""The default stack retries transient failures per RetryPolicy, like HttpHubSource ([correct] 3, 7)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import modelfetch
from modelfetch import (
    AssetRef,
    CachedSource,
    HttpHubSource,
    HubSource,
    ModelAssetSource,
    RetryPolicy,
    Settings,
)
from modelfetch.testing import FakeHub, Fault, write_model_repo

from .._net import closed_port

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.02, total=30)
STACKS: dict[str, Callable[[Settings], ModelAssetSource]] = {
    "hub": lambda s: CachedSource(HubSource(s, retry=FAST)),
    "httpx": lambda s: CachedSource(HttpHubSource(s, retry=FAST)),
}


@pytest.fixture(params=list(STACKS))
def stack(request: pytest.FixtureRequest) -> Callable[[Settings], ModelAssetSource]:
    """Each Hub source behind the cache layer, with a fast retry policy."""
    return STACKS[request.param]


async def test_a_503_with_retry_after_on_the_download_is_retried(
    fake_hub: FakeHub, settings: Settings
) -> None:
    """One 503 (Retry-After: 1) on a file's GET: the default stack waits and succeeds."""
    fake_hub.add_file("org/model", "config.json", b'{"a": 1}')
    fake_hub.inject(Fault(status=503, retry_after="1"), method="GET", path="config.json", times=1)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with CachedSource(HubSource(settings, sleep=sleep)) as source:
        path = await modelfetch.fetch("org/model", "config.json", source=source)
    assert path.read_bytes() == b'{"a": 1}'
    assert slept
    assert slept[0] >= 1.0  # Retry-After honoured as the minimum wait
    assert fake_hub.count("GET", "config.json") == 2


async def test_transient_failures_on_metadata_and_listing_are_retried(
    fake_hub: FakeHub, settings: Settings, stack: Callable[[Settings], ModelAssetSource]
) -> None:
    """429 on HEAD, 502 on the revision call and 500 on the tree listing: each retried."""
    fake_hub.add_file("org/model", "config.json", b"{}")
    fake_hub.inject(Fault(status=429, retry_after="0"), method="HEAD", times=1)
    fake_hub.inject(Fault(status=502), method="GET", path="/revision/", times=1)
    fake_hub.inject(Fault(status=500), method="GET", path="/tree/", times=1)
    async with stack(settings) as source:
        folder = await modelfetch.snapshot("org/model", source=source)
        path = await source.resolve(AssetRef("org/model", "config.json", folder.name))
    assert (folder / "config.json").read_bytes() == b"{}"
    assert path.path == folder / "config.json"


async def test_one_flaky_shard_does_not_fail_fetch_safetensors(
    fake_hub: FakeHub, settings: Settings, tmp_path: Path, stack: Callable[[Settings], ModelAssetSource]
) -> None:
    """A 503 on one shard's download is retried; every shard arrives."""
    repo = write_model_repo(tmp_path / "repo", shards=3, shard_size=64 * 1024)
    fake_hub.add_folder("org/model", repo.folder)
    second = list(repo.shards)[1]
    fake_hub.inject(Fault(status=503), method="GET", path=second, times=1)
    async with stack(settings) as source:
        model = await modelfetch.fetch_safetensors("org/model", source=source)
    assert [p.name for p in model.shards] == list(repo.shards)


async def test_retries_are_bounded_and_end_in_source_unavailable(
    fake_hub: FakeHub, settings: Settings, stack: Callable[[Settings], ModelAssetSource]
) -> None:
    """A server that answers 503 every time: the policy's attempts, then SourceUnavailableError."""
    fake_hub.add_file("org/model", "config.json", b"{}")
    fake_hub.inject(Fault(status=503), method="GET", path="config.json")
    async with stack(settings) as source:
        with pytest.raises(modelfetch.SourceUnavailableError, match="503"):
            await modelfetch.fetch("org/model", "config.json", source=source)
    assert fake_hub.count("GET", "config.json") == FAST.attempts


async def test_an_unreachable_endpoint_fails_within_the_policy(tmp_path: Path) -> None:
    """Connection refused every time: HubSource gives up after the policy's attempts, no hidden retries."""
    settings = Settings.from_env({}, endpoint=f"http://127.0.0.1:{closed_port()}", hub_cache=tmp_path)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with HubSource(settings, retry=FAST, sleep=sleep) as source:
        with pytest.raises(modelfetch.SourceUnavailableError, match="after 4 attempts"):
            await source.resolve(AssetRef("org/model", "config.json"))
    assert len(slept) == FAST.attempts - 1


@pytest.mark.slow
def test_cli_on_an_unreachable_endpoint_prints_exactly_one_line(tmp_path: Path) -> None:
    """`modelfetch get` against a closed port: exit 1 and one line on stderr, with or without --quiet."""
    env = {
        "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
        "HF_HOME": str(tmp_path),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PATH": "/usr/bin:/bin",
    }
    exe = Path(sys.executable).parent / "modelfetch"
    for extra in ([], ["--quiet"]):
        done = subprocess.run(
            [exe, "get", "org/m", "config.json", *extra], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 1
        lines = done.stderr.splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("modelfetch: error:")
        assert "org/m" in lines[0]
        assert done.stdout == ""

"""Bad arguments are InvalidRequestError (also a ValueError) naming the argument, before any I/O."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import modelfetch
from modelfetch import (
    CachedSource,
    ChainSource,
    HttpHubSource,
    HubSource,
    InvalidRequestError,
    LocalDirSource,
    MirrorOptions,
    RetryPolicy,
    Settings,
    TransferOptions,
)
from modelfetch._cached.memo import CachePolicy
from modelfetch.testing import FakeHub, MemorySource

BAD_CONSTRUCTORS: dict[str, tuple[Callable[[], object], str]] = {
    "retry attempts 0": (lambda: RetryPolicy(attempts=0), "attempts"),
    "retry base -1": (lambda: RetryPolicy(base=-1), "base"),
    "retry total 0": (lambda: RetryPolicy(total=0), "total"),
    "retry attempts str": (lambda: RetryPolicy(attempts="3"), "attempts"),  # type: ignore[arg-type]
    "cache policy ttl": (lambda: CachePolicy(ttl=-1), "ttl"),
    "cache policy entries": (lambda: CachePolicy(max_entries=0), "max_entries"),
    "transfer connections 0": (lambda: TransferOptions(connections=0), "connections"),
    "transfer chunk -1": (lambda: TransferOptions(chunk_size=-1), "chunk_size"),
    "mirror lease": (lambda: MirrorOptions(lease=0), "lease"),
    "settings timeout": (lambda: Settings(etag_timeout=0), "etag_timeout"),
    "settings timeout nan": (lambda: Settings(download_timeout=float("nan")), "download_timeout"),
    "settings endpoint": (lambda: Settings(endpoint="ftp://x"), "endpoint"),
    "settings cache int": (lambda: Settings(hub_cache=3), "hub_cache"),  # type: ignore[arg-type]
    "settings offline str": (lambda: Settings(offline="yes"), "offline"),  # type: ignore[arg-type]
    "from_env typo": (lambda: Settings.from_env({}, endpont="http://x"), "endpont"),
    "chain empty": (lambda: ChainSource([]), "ChainSource"),
    "chain not a source": (lambda: ChainSource([object()]), r"sources\[0\]"),  # type: ignore[list-item]
    "cached inner": (lambda: CachedSource(object()), "inner"),  # type: ignore[arg-type]
    "cached ttl": (lambda: CachedSource(MemorySource({}), ttl=-5), "ttl"),
    "cached entries": (lambda: CachedSource(MemorySource({}), max_entries=0), "max_entries"),
    "hub workers": (lambda: HubSource(Settings(), max_workers=0), "max_workers"),
    "hub settings": (lambda: HubSource("http://x"), "settings"),  # type: ignore[arg-type]
    "http options": (lambda: HttpHubSource(Settings(), options={"connections": 2}), "options"),  # type: ignore[arg-type]
    "localdir root": (lambda: LocalDirSource(None), "root"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", list(BAD_CONSTRUCTORS))
def test_constructors_reject_bad_arguments(case: str) -> None:
    """Each public constructor raises InvalidRequestError (a ValueError) naming the argument."""
    build, name = BAD_CONSTRUCTORS[case]
    with pytest.raises(InvalidRequestError, match=name) as caught:
        build()
    assert isinstance(caught.value, ValueError)


def test_paths_accept_str_and_pathlike(tmp_path: Path) -> None:
    """Settings and LocalDirSource take `str | os.PathLike` wherever they take a path."""

    class Where(os.PathLike[str]):
        def __fspath__(self) -> str:
            return str(tmp_path / "pl")

    assert Settings(hub_cache=str(tmp_path / "s")).hub_cache == tmp_path / "s"  # type: ignore[arg-type]
    assert Settings(hub_cache=Where()).hub_cache == tmp_path / "pl"  # type: ignore[arg-type]
    assert Settings.from_env({}, hub_cache=str(tmp_path)).hub_cache == tmp_path
    assert LocalDirSource(Where()).root == tmp_path / "pl"


@pytest.mark.parametrize("workers", [0, -1, 1.5, "2"])
async def test_snapshot_max_workers_is_checked_before_any_request(
    fake_hub: FakeHub, settings: Settings, workers: object
) -> None:
    """max_workers of 0 (it used to hang), -1, a float or a str: InvalidRequestError and no request."""
    fake_hub.add_file("org/model", "config.json", b"{}")
    async with HttpHubSource(settings) as source:
        with anyio.fail_after(10):
            with pytest.raises(InvalidRequestError, match="max_workers"):
                await modelfetch.snapshot("org/model", source=source, max_workers=workers)  # type: ignore[arg-type]
            with pytest.raises(InvalidRequestError, match="max_workers"):
                await modelfetch.fetch_safetensors("org/model", source=source, max_workers=workers)  # type: ignore[arg-type]
    assert fake_hub.requests == []


async def test_entry_points_check_source_progress_and_patterns() -> None:
    """A non-source, a non-callable progress or non-string globs are refused at the call."""
    with pytest.raises(InvalidRequestError, match="source"):
        await modelfetch.fetch("org/m", "a", source="hub")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="progress"):
        await modelfetch.fetch("org/m", "a", source=MemorySource({}), progress=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="include"):
        await modelfetch.snapshot("org/m", source=MemorySource({}), include=[1])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "argv",
    [
        ["snapshot", "org/m", "--max-workers", "0"],
        ["snapshot", "org/m", "--max-workers", "-5"],
        ["demo", "--shards", "0"],
        ["demo", "--shards", "-3"],
        ["demo", "--size", "zero"],
    ],
)
def test_cli_bad_numbers_exit_2_without_a_traceback(argv: list[str], tmp_path: Path) -> None:
    """Bad numbers on the command line: exit status 2, a usage message, no traceback."""
    exe = Path(sys.executable).parent / "modelfetch"
    env = {"HF_HOME": str(tmp_path), "HF_ENDPOINT": "http://127.0.0.1:9", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([exe, *argv], env=env, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_cli_bad_timeout_variable_is_a_usage_error(tmp_path: Path) -> None:
    """An unparseable HF_HUB_ETAG_TIMEOUT: one line on stderr naming it, exit 2 (no import-time traceback)."""
    exe = Path(sys.executable).parent / "modelfetch"
    env = {"HF_HOME": str(tmp_path), "HF_HUB_ETAG_TIMEOUT": "soon", "PATH": "/usr/bin:/bin"}
    for argv in (["get", "org/m", "config.json"], ["cache", "ls"]):
        done = subprocess.run([exe, *argv], env=env, capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        assert len(done.stderr.splitlines()) == 1
        assert "HF_HUB_ETAG_TIMEOUT" in done.stderr

"""CLI parity with `hf download` / `hf cache`: snapshot --dry-run, cache ls options, hf's rm targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import modelfetch
from modelfetch._cli.main import main
from modelfetch.testing import FakeHub


def _cached(hub: FakeHub) -> tuple[str, str]:
    first = hub.add_files("org/model", {"config.json": b"{}", "w.bin": b"one" * 1000})
    modelfetch.snapshot_sync("org/model", revision=first)
    second = hub.add_files("org/model", {"config.json": b"{}", "w.bin": b"two" * 1000})
    modelfetch.snapshot_sync("org/model")
    hub.add_files("org/other", {"a.json": b"[]"})
    modelfetch.snapshot_sync("org/other")
    return first, second


def test_snapshot_dry_run_plans_and_fetches_nothing(
    hub_env: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """`snapshot --dry-run` (refused before): each file, its size, cached or not; no file GET."""
    hub_env.add_files("org/model", {"config.json": b"{}", "w.bin": b"x" * 100})
    assert main(["snapshot", "org/model", "--dry-run", "--include", "*.bin"]) == 0
    out = capsys.readouterr().out
    assert "w.bin" in out
    assert "config.json" not in out
    assert "1 of 1 file(s) to fetch, 100 bytes" in out
    assert hub_env.count("GET", "/resolve/") == 0


def test_cache_ls_json_revisions_sort_and_filter(
    hub_env: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format json, --revisions (detached ones shown), --sort size, --filter by repo id."""
    first, second = _cached(hub_env)
    capsys.readouterr()
    assert main(["cache", "ls", "--format", "json", "--filter", "org/mod*"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [r["repo"] for r in document["repos"]] == ["org/model"]
    assert sorted(r["commit"] for r in document["repos"][0]["revisions"]) == sorted([first, second])
    assert main(["cache", "ls", "--revisions"]) == 0
    out = capsys.readouterr().out
    assert f"{first}  (detached)" in out
    assert f"{second}  main" in out
    assert main(["cache", "ls", "--sort", "size"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].split()[1] == "org/model"  # the bigger repo first


def test_cache_rm_takes_hf_cache_targets_and_yes(
    hub_env: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """`model/org/name` works as a target and -y is accepted; a contradicting --repo-type is bad usage."""
    _cached(hub_env)
    cache = Path(modelfetch.Settings.from_env().hub_cache)
    assert main(["cache", "rm", "model/org/other", "-y"]) == 0
    assert not (cache / "models--org--other").exists()
    assert main(["cache", "rm", "dataset/org/model", "--repo-type", "model"]) == 2


def test_cache_verify_says_how_to_repair(hub_env: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    """A corrupt blob: exit 1, and the line to run to repair it (--force-download)."""
    hub_env.add_files("org/model", {"config.json": b'{"a": 1}'})
    path = modelfetch.fetch_sync("org/model", "config.json")
    path.resolve().write_bytes(b'{"a": 2}')
    assert main(["cache", "verify", "org/model"]) == 1
    out = capsys.readouterr().out
    assert "modelfetch snapshot org/model --revision" in out
    assert "--force-download" in out

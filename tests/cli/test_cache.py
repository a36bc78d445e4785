"""`modelfetch cache rm | prune | verify`: never a blob another revision uses, never a live partial."""

from __future__ import annotations

import os
from pathlib import Path

import filelock
import pytest

import modelfetch
from modelfetch._cli.main import main
from modelfetch.testing import FakeHub


def _two_revisions(hub: FakeHub) -> tuple[str, str]:
    """Two cached commits of org/model sharing config.json's blob; main points at the second."""
    first = hub.add_files("org/model", {"config.json": b"{}", "w.bin": b"one" * 1000})
    modelfetch.snapshot_sync("org/model", revision=first)
    second = hub.add_files("org/model", {"config.json": b"{}", "w.bin": b"two" * 1000})
    modelfetch.snapshot_sync("org/model")
    return first, second


def _snapshot(cache: Path, commit: str) -> Path:
    return cache / "models--org--model" / "snapshots" / commit


def test_rm_one_revision_keeps_the_blobs_the_other_uses(
    hub_env: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """Removing the first commit: its own weights go, the shared config stays readable from main."""
    cache = Path(modelfetch.Settings.from_env().hub_cache)
    first, second = _two_revisions(hub_env)
    assert main(["cache", "rm", "org/model", "--revision", first[:40]]) == 0
    assert "1 revision(s) removed" in capsys.readouterr().out
    assert not _snapshot(cache, first).exists()
    assert (_snapshot(cache, second) / "config.json").read_bytes() == b"{}"
    assert (_snapshot(cache, second) / "w.bin").read_bytes() == b"two" * 1000
    assert main(["cache", "rm", "org/model", "--revision", first]) == 1  # gone: a typed one-line error


def test_rm_dry_run_removes_nothing_and_rm_repo_removes_all(
    hub_env: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run reports, leaves every file; without it the whole repo goes."""
    cache = Path(modelfetch.Settings.from_env().hub_cache)
    first, second = _two_revisions(hub_env)
    assert main(["cache", "rm", "org/model", "--dry-run"]) == 0
    assert "would free" in capsys.readouterr().out
    assert _snapshot(cache, first).exists()
    assert _snapshot(cache, second).exists()
    assert main(["cache", "rm", "org/model"]) == 0
    assert not (cache / "models--org--model").exists()
    assert main(["cache", "rm", "org/model"]) == 1
    assert main(["cache", "rm", "../etc"]) == 2


def test_prune_removes_detached_revisions_and_only_abandoned_partials(
    hub_env: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first commit (no ref) goes; a partial whose lock is held by a live download stays."""
    cache = Path(modelfetch.Settings.from_env().hub_cache)
    first, second = _two_revisions(hub_env)
    blobs = cache / "models--org--model" / "blobs"
    abandoned = blobs / ("a" * 64 + ".modelfetch.incomplete")
    live = blobs / ("b" * 64 + ".modelfetch.incomplete")
    abandoned.write_bytes(b"x")
    live.write_bytes(b"y")
    orphan = blobs / f".{'c' * 64}.{'0' * 32}.tmp"  # a small blob's temp, left by a killed process
    recent = blobs / f".{'d' * 64}.{'1' * 32}.tmp"  # one being written now
    orphan.write_bytes(b"z")
    recent.write_bytes(b"w")
    os.utime(orphan, (1.0, 1.0))
    held = filelock.FileLock(str(cache / ".locks" / "models--org--model" / ("b" * 64 + ".lock")))
    with held:
        assert main(["cache", "prune"]) == 0
    out = capsys.readouterr().out
    assert "1 detached revision(s)" in out
    assert "1 partial download(s) kept" in out
    assert "2 abandoned partial download(s) removed" in out
    assert not _snapshot(cache, first).exists()
    assert (_snapshot(cache, second) / "w.bin").read_bytes() == b"two" * 1000
    assert not abandoned.exists()
    assert live.exists()
    assert not orphan.exists()
    assert recent.exists()


def test_verify_finds_a_corrupted_blob(hub_env: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    """A good revision verifies (exit 0); one flipped byte in a blob is reported (exit 1)."""
    cache = Path(modelfetch.Settings.from_env().hub_cache)
    _first, second = _two_revisions(hub_env)
    assert main(["cache", "verify", "org/model"]) == 0
    assert "2 file(s) checked, 0 problem(s)" in capsys.readouterr().out
    blob = (_snapshot(cache, second) / "w.bin").resolve()
    data = bytearray(blob.read_bytes())
    data[0] ^= 1
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    assert main(["cache", "verify", "org/model", "--revision", second]) == 1
    out = capsys.readouterr().out
    assert "corrupt  w.bin" in out
    assert "1 problem(s)" in out

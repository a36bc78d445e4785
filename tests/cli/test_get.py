"""`modelfetch get` as `hf download` users expect: files at once, every result reported."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from modelfetch._cli.main import main
from modelfetch.testing import FakeHub, Fault

TOKEN = "hf_cliTokenNeverPrinted00000000000000"


def test_files_are_fetched_at_once(hub_env: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    """While a.json is held back, b.json is fetched: `get` does not go one file at a time."""
    hub_env.add_files("org/model", {"a.json": b"A" * 4096, "b.json": b"B"})
    release = threading.Event()
    hub_env.inject(Fault(hold=release, stall_after=1024), method="GET", path="a.json")
    overlapped: list[bool] = []

    def release_after_b() -> None:
        try:
            hub_env.wait_for_requests("GET", "b.json", timeout=30)
            overlapped.append(True)
        finally:
            release.set()

    helper = threading.Thread(target=release_after_b)
    helper.start()
    assert main(["get", "org/model", "a.json", "b.json", "--quiet"]) == 0
    helper.join()
    assert overlapped == [True]
    out = capsys.readouterr().out.splitlines()
    assert [Path(p).name for p in out] == ["a.json", "b.json"]


def test_every_success_is_printed_and_the_failures_named(
    hub_env: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two good files around two missing ones: both paths in order on stdout, exit 1, one line naming both."""
    hub_env.add_files("org/model", {"a.json": b"A", "d.json": b"D"})
    assert main(["get", "org/model", "a.json", "b.json", "c.json", "d.json", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert [Path(p).read_bytes() for p in captured.out.splitlines()] == [b"A", b"D"]
    (line,) = captured.err.strip().splitlines()
    assert "2 of 4 files failed" in line
    assert "b.json" in line
    assert "c.json" in line


def test_without_files_get_takes_the_matching_files(
    hub_env: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """`get REPO --include GLOB`: every matching file of one commit, in path order."""
    commit = hub_env.add_files("org/model", {"a.json": b"A", "b.bin": b"B", "c.json": b"C"})
    assert main(["get", "org/model", "--include", "*.json", "--quiet"]) == 0
    paths = [Path(p) for p in capsys.readouterr().out.splitlines()]
    assert [p.name for p in paths] == ["a.json", "c.json"]
    assert all(p.parent.name == commit for p in paths)
    assert main(["get", "org/model", "--include", "*.txt", "--quiet"]) == 1


def test_json_output_reports_paths_and_errors(hub_env: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    """`--format json`: one document, successes with their path, failures with their error."""
    hub_env.add_file("org/model", "a.json", b"A")
    assert main(["get", "org/model", "a.json", "x.json", "--quiet", "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document[0]["file"] == "a.json"
    assert Path(document[0]["path"]).read_bytes() == b"A"
    assert document[1]["file"] == "x.json"
    assert "x.json" in document[1]["error"]
    assert main(["snapshot", "org/model", "--quiet", "--format", "json"]) == 0
    snap = json.loads(capsys.readouterr().out)
    assert snap["repo"] == "org/model"
    assert Path(snap["folder"], "a.json").read_bytes() == b"A"


def test_cache_dir_and_token_win_over_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--cache-dir` is where files land; `--token` is sent to the hub and never printed."""
    with FakeHub(tokens=(TOKEN,)) as hub, hub.environment():
        hub.add_file("org/model", "a.json", b"A")
        cache = tmp_path / "elsewhere"
        flags = ["--quiet", "--cache-dir", str(cache), "--token", TOKEN]
        assert main(["get", "org/model", "a.json", *flags]) == 0
        path = Path(capsys.readouterr().out.strip())
        assert path.is_relative_to(cache)
        assert all(r.authorized for r in hub.requests)
        assert main(["get", "org/model", "nope.json", *flags]) == 1
        captured = capsys.readouterr()
        assert TOKEN not in captured.out + captured.err


def test_offline_snapshot_is_the_same_in_the_cli_and_the_api(
    hub_env: FakeHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Offline, only config.json cached: both give the cached snapshot folder (as snapshot_download does)."""
    import modelfetch

    hub_env.add_files("org/model", {"config.json": b"{}", "w.safetensors": b"x" * 10})
    modelfetch.fetch_sync("org/model", "config.json")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    modelfetch.close_sync()
    folder = modelfetch.snapshot_sync("org/model")
    assert main(["snapshot", "org/model", "--quiet"]) == 0
    assert Path(capsys.readouterr().out.strip()) == folder
    assert [p.name for p in folder.iterdir()] == ["config.json"]
    modelfetch.close_sync()


def test_dry_run_lists_sizes_and_the_cache_and_fetches_nothing(
    hub_env: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    """`get --dry-run`: sizes, cached or not, the total to fetch; no file transferred; json too."""
    commit = hub_env.add_files("org/model", {"a.json": b"A" * 10, "b.json": b"B" * 20})
    assert main(["get", "org/model", "a.json", "--quiet"]) == 0
    capsys.readouterr()
    before = hub_env.count("GET", "/resolve/")
    assert main(["get", "org/model", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["a.json", "10", "cached"]
    assert lines[1].split()[:2] == ["b.json", "20"]
    assert lines[1].endswith("to fetch")
    assert lines[2] == f"org/model@{commit[:12]}: 1 of 2 file(s) to fetch, 20 bytes"
    assert main(["get", "org/model", "b.json", "--dry-run", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "repo": "org/model",
        "commit": commit,
        "files": [{"file": "b.json", "size": 20, "cached": False}],
    }
    assert hub_env.count("GET", "/resolve/") == before
    assert main(["get", "org/model", "nope.json", "--dry-run"]) == 1

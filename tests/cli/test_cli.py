"""The command line: paths on stdout, one-line errors on stderr, exit 0/1/2."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelfetch._cli.main import main
from modelfetch.testing import FakeHub


def test_get_prints_one_path_per_file(hub_env: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    """`get` prints each file's local path, in order, and nothing else on stdout."""
    hub_env.add_files("org/model", {"a.json": b"A", "b.json": b"B"})
    assert main(["get", "org/model", "b.json", "a.json", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [Path(p).read_bytes() for p in out] == [b"B", b"A"]


def test_snapshot_prints_the_folder(hub_env: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    """`snapshot` prints the snapshot folder, honouring --include/--exclude."""
    commit = hub_env.add_files("org/model", {"a.json": b"A", "b.bin": b"B", "c.json": b"C"})
    assert main(["snapshot", "org/model", "--include", "*.json", "--exclude", "c.*"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert folder.name == commit
    assert [p.name for p in folder.iterdir()] == ["a.json"]


def test_failure_is_one_line_and_exit_1(hub_env: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    """A failed fetch prints one line naming the request and exits 1, without a traceback."""
    hub_env.add_file("org/model", "a.json", b"A")
    assert main(["get", "org/model", "missing.json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert "missing.json" in lines[0]
    assert "org/model" in lines[0]
    assert "Traceback" not in captured.err


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown options, a bad repo id or an unknown backend exit 2."""
    with pytest.raises(SystemExit) as info:
        main(["get"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["get", "org/model", "a", "--backend", "carrier-pigeon"])
    assert info.value.code == 2
    assert main(["get", "../x", "a.json"]) == 2
    assert "repo id" in capsys.readouterr().err


def test_console_script_runs(hub_env: FakeHub, tmp_path: Path) -> None:
    """The installed `modelfetch` command works as a separate process."""
    hub_env.add_file("org/model", "config.json", b"{}")
    exe = Path(sys.executable).parent / "modelfetch"
    done = subprocess.run(
        [str(exe), "get", "org/model", "config.json"],
        capture_output=True,
        text=True,
        env=os.environ,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).read_bytes() == b"{}"
    assert done.stderr == ""  # not a terminal: no progress bars


def test_cache_ls_lists_repos(hub_env: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    """`cache ls` shows each cached repo with its refs, file count and size."""
    hub_env.add_files("org/model", {"a.json": b"A", "b.json": b"BB"})
    assert main(["get", "org/model", "a.json", "b.json", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["cache", "ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TYPE", "REPO", "REVISIONS", "FILES", "SIZE"]
    assert lines[1].split()[:4] == ["model", "org/model", "main", "2"]
    assert lines[-1].startswith("1 repos")


def test_demo_runs_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo fetches, serves a second pass with zero requests, and huggingface_hub finds every file."""
    assert main(["demo", "--size", "8", "--shards", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "second pass" in out
    assert "0 requests" in out
    assert "found 7/7 files" in out
    assert "(its own process)" in out
    assert "engine native" in out  # the default stack: HttpHubSource with the obstore engine
    assert re.search(r"^hf threads .* \d+ MiB/s; event loop p50", out, re.M)
    floor = "curl processes at once" if shutil.which("curl") else "curl is not installed"
    assert floor in out


def test_the_demo_hub_process_answers_its_commands(tmp_path: Path) -> None:
    """The demo's out-of-process FakeHub: serves the folder, counts requests, clears, stops on EOF."""

    import httpx

    (tmp_path / "config.json").write_text("{}")
    command = [sys.executable, "-m", "modelfetch._cli.demohub", "demo/x", str(tmp_path)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        hello = json.loads(proc.stdout.readline())
        got = httpx.get(f"{hello['endpoint']}/demo/x/resolve/{hello['commit']}/config.json")
        assert got.content == b"{}"

        def ask(command: str) -> dict[str, int]:
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write(command + "\n")
            proc.stdin.flush()
            answer: dict[str, int] = json.loads(proc.stdout.readline())
            return answer

        assert ask("count") == {"HEAD": 0, "GET": 1, "all": 1}
        assert ask("clear") == {}
        assert ask("count")["all"] == 0
        assert "error" in ask("reboot")
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0


def test_mirror_push_seeds_a_bucket_a_node_then_reads_without_the_hub(
    hub_env: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mirror push` copies the kept files into the bucket; a node then fetches them with no Hub request."""
    import anyio

    from modelfetch import AssetRef, HttpHubSource, MirrorSource, Settings

    weights = os.urandom(100_000)
    commit = hub_env.add_files("org/model", {"a.json": b"A", "w.bin": weights, "skip.txt": b"S"})
    url = f"file://{tmp_path / 'bucket'}"
    (tmp_path / "bucket").mkdir()
    assert (
        main(["mirror", "push", "org/model", "--url", url, "--exclude", "*.txt", "--backend", "httpx"]) == 0
    )
    captured = capsys.readouterr()
    assert captured.out.strip() == commit
    assert "2 blobs uploaded" in captured.err
    before = len(hub_env.requests)
    node = Settings.from_env({}, endpoint=hub_env.endpoint, hub_cache=tmp_path / "node")

    async def read() -> bytes:
        async with MirrorSource(url, upstream=HttpHubSource(node), settings=node) as mirror:
            got = await mirror.resolve(AssetRef("org/model", "w.bin", commit))
            return got.path.read_bytes()

    assert anyio.run(read) == weights
    assert len(hub_env.requests) == before


def test_mirror_push_to_an_unreachable_bucket_fails_with_one_line(
    hub_env: FakeHub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push whose bucket refuses connections exits 1 naming the bucket, instead of succeeding quietly."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    hub_env.add_file("org/model", "a.json", b"A")
    assert main(["mirror", "push", "org/model", "--url", "s3://fleet"]) == 1
    err = capsys.readouterr().err
    assert "s3://fleet" in err.splitlines()[-1]
    assert "push again" in err.splitlines()[-1]


def test_get_reads_through_the_bucket_named_by_the_environment(
    hub_env: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With MODELFETCH_MIRROR_URL set, `get` writes what it fetched back to that bucket."""
    hub_env.add_file("org/model", "a.json", b"A")
    (tmp_path / "bucket").mkdir()
    monkeypatch.setenv("MODELFETCH_MIRROR_URL", f"file://{tmp_path / 'bucket'}")
    assert main(["get", "org/model", "a.json", "--quiet"]) == 0
    assert Path(capsys.readouterr().out.strip()).read_bytes() == b"A"
    assert len(list((tmp_path / "bucket" / "blobs").iterdir())) == 1

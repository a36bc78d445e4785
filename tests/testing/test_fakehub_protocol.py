"""FakeHub is faithful: huggingface_hub's own client gets byte-exact results and the right errors."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub import errors as hf

from modelfetch.testing import FakeHub

TOKEN = "hf_fake_token_for_tests"


def _download(hub: FakeHub, cache: Path, repo_id: str, filename: str, **kwargs: object) -> bytes:
    path = hf_hub_download(repo_id, filename, endpoint=hub.endpoint, cache_dir=cache, token=False, **kwargs)  # type: ignore[call-overload]
    return Path(path).read_bytes()


def test_download_by_branch_tag_and_commit(fake_hub: FakeHub, tmp_path: Path) -> None:
    """A file is served by branch, tag and commit id, each at the right version."""
    first = fake_hub.add_file("org/model", "config.json", b'{"v": 1}')
    fake_hub.set_ref("org/model", "v1", first, tag=True)
    second = fake_hub.add_file("org/model", "config.json", b'{"v": 2}')
    assert first != second
    assert _download(fake_hub, tmp_path / "a", "org/model", "config.json") == b'{"v": 2}'
    assert _download(fake_hub, tmp_path / "b", "org/model", "config.json", revision="v1") == b'{"v": 1}'
    assert _download(fake_hub, tmp_path / "c", "org/model", "config.json", revision=first) == b'{"v": 1}'


def test_nested_paths_and_other_repo_types(fake_hub: FakeHub, tmp_path: Path) -> None:
    """Nested paths work, and dataset and space repos live apart from models of the same name."""
    fake_hub.add_file("org/thing", "onnx/sub/model.onnx", b"onnx-bytes", lfs=False)
    fake_hub.add_file("org/thing", "data/train.csv", b"a,b\n1,2\n", repo_type="dataset")
    fake_hub.add_file("org/thing", "app.py", b"print('hi')", repo_type="space")
    assert _download(fake_hub, tmp_path, "org/thing", "onnx/sub/model.onnx") == b"onnx-bytes"
    assert _download(fake_hub, tmp_path, "org/thing", "data/train.csv", repo_type="dataset") == b"a,b\n1,2\n"
    assert _download(fake_hub, tmp_path, "org/thing", "app.py", repo_type="space") == b"print('hi')"
    with pytest.raises(hf.RemoteEntryNotFoundError):
        _download(fake_hub, tmp_path, "org/thing", "app.py")


def test_lfs_file_through_the_cdn_redirect(fake_hub: FakeHub, tmp_path: Path) -> None:
    """An LFS file redirects to the CDN origin and lands as a blob named by its sha256."""
    data = os.urandom(300_000)
    fake_hub.add_file("org/model", "model.safetensors", data)
    path = Path(
        hf_hub_download("org/model", "model.safetensors", endpoint=fake_hub.endpoint, cache_dir=tmp_path)
    )
    assert path.read_bytes() == data
    assert path.resolve().name == hashlib.sha256(data).hexdigest()
    head = [r for r in fake_hub.requests if r.method == "HEAD"]
    assert [r.status for r in head] == [302]
    assert fake_hub.count("GET", "/cdn/") == 1


def test_cross_origin_cdn_never_receives_the_token(tmp_path: Path) -> None:
    """With a separate CDN server, the token goes to the Hub and never to the CDN."""
    with FakeHub(tokens=(TOKEN,), cdn="separate") as hub:
        hub.create_repo("org/private", private=True)
        hub.add_file("org/private", "model.bin", b"weights" * 1000)
        path = hf_hub_download(
            "org/private", "model.bin", endpoint=hub.endpoint, cache_dir=tmp_path, token=TOKEN
        )
        assert Path(path).read_bytes() == b"weights" * 1000
        hub_port = int(hub.endpoint.rsplit(":", 1)[1])
        cdn = [r for r in hub.requests if r.port != hub_port]
        assert len(cdn) == 1
        assert not cdn[0].authorized
        assert all(r.authorized for r in hub.requests if r.port == hub_port)
        assert TOKEN not in repr(hub.requests)


def test_private_and_gated_repos(tmp_path: Path) -> None:
    """Private repos look missing without a token; gated ones say so; a valid token opens both."""
    with FakeHub(tokens=(TOKEN,)) as hub:
        hub.create_repo("org/private", private=True)
        hub.add_file("org/private", "config.json", b"{}")
        hub.create_repo("org/gated", gated=True)
        hub.add_file("org/gated", "config.json", b"{}")
        with pytest.raises(hf.RepositoryNotFoundError):
            _download(hub, tmp_path, "org/private", "config.json")
        with pytest.raises(hf.GatedRepoError):
            _download(hub, tmp_path, "org/gated", "config.json")
        for repo in ("org/private", "org/gated"):
            got = hf_hub_download(repo, "config.json", endpoint=hub.endpoint, cache_dir=tmp_path, token=TOKEN)
            assert Path(got).read_bytes() == b"{}"
        with pytest.raises(hf.HfHubHTTPError) as info:
            hf_hub_download(
                "org/private", "config.json", endpoint=hub.endpoint, cache_dir=tmp_path / "x", token="hf_bad"
            )
        assert info.value.response.status_code == 401


def test_missing_repo_revision_and_file(fake_hub: FakeHub, tmp_path: Path) -> None:
    """Each kind of miss raises huggingface_hub's matching error type."""
    fake_hub.add_file("org/model", "config.json", b"{}")
    with pytest.raises(hf.RepositoryNotFoundError):
        _download(fake_hub, tmp_path, "org/nope", "config.json")
    with pytest.raises(hf.RevisionNotFoundError):
        _download(fake_hub, tmp_path, "org/model", "config.json", revision="no-such-branch")
    with pytest.raises(hf.RemoteEntryNotFoundError):
        _download(fake_hub, tmp_path, "org/model", "missing.json")
    commit = fake_hub.head("org/model")
    assert (tmp_path / "models--org--model" / ".no_exist" / commit / "missing.json").exists()


def test_snapshot_download_with_patterns(fake_hub: FakeHub, tmp_path: Path) -> None:
    """snapshot_download lists the tree and honours allow_patterns and ignore_patterns."""
    fake_hub.add_files(
        "org/model",
        {
            "config.json": b"{}",
            "model.safetensors": b"w" * 100,
            "onnx/model.onnx": b"o",
            "README.md": b"# hi",
        },
    )
    folder = Path(
        snapshot_download(
            "org/model",
            endpoint=fake_hub.endpoint,
            cache_dir=tmp_path,
            allow_patterns=["*.json", "onnx/*"],
            ignore_patterns=["*.md"],
        )
    )
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert got == ["config.json", "onnx/model.onnx"]
    assert folder.name == fake_hub.head("org/model")


def test_listing_and_info_with_pagination(tmp_path: Path) -> None:
    """list_repo_files follows Link pagination; model_info reports the commit and siblings."""
    with FakeHub(page_size=3) as hub:
        files = {f"f{i:02d}.txt": str(i).encode() for i in range(10)}
        files["dir/nested.txt"] = b"n"
        commit = hub.add_files("org/model", files)
        api = HfApi(endpoint=hub.endpoint, token=False)
        assert sorted(api.list_repo_files("org/model")) == sorted(files)
        assert hub.count("GET", "/tree/") >= 4
        info = api.model_info("org/model")
        assert info.sha == commit
        assert sorted(s.rfilename for s in info.siblings or []) == sorted(files)
        hub.add_file("org/data", "x.csv", b"1", repo_type="dataset")
        assert api.dataset_info("org/data").sha == hub.head("org/data", repo_type="dataset")


def test_range_requests(fake_hub: FakeHub) -> None:
    """Single byte ranges answer 206 with exactly those bytes; impossible ones answer 416."""
    data = bytes(range(256)) * 40
    fake_hub.add_file("org/model", "blob.bin", data, lfs=False)
    url = f"{fake_hub.endpoint}/org/model/resolve/main/blob.bin"
    with httpx.Client() as client:
        cases = {"bytes=10-19": data[10:20], "bytes=10000-": data[10000:], "bytes=-5": data[-5:]}
        for header, expected in cases.items():
            response = client.get(url, headers={"Range": header})
            assert response.status_code == 206
            assert response.content == expected
            assert response.headers["Content-Range"].endswith(f"/{len(data)}")
        assert client.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
        assert client.get(url, headers={"Range": "bytes=0-1,5-6"}).content == data


def test_request_log_counts(fake_hub: FakeHub, tmp_path: Path) -> None:
    """The log records each request with its status and bytes, and count() filters it."""
    fake_hub.add_file("org/model", "config.json", b"{}")
    _download(fake_hub, tmp_path, "org/model", "config.json")
    _download(fake_hub, tmp_path, "org/model", "config.json", revision=fake_hub.head("org/model"))
    assert fake_hub.count("HEAD", "config.json") == 1
    assert fake_hub.count("GET", "config.json") == 1
    assert fake_hub.count(None, "config.json") == 2
    get = fake_hub.wait_for_requests("GET", "config.json")[0]
    assert (get.status, get.bytes_sent, get.completed, get.finished) == (200, 2, True, True)
    fake_hub.clear_requests()
    assert fake_hub.requests == []


def test_unknown_api_routes_answer_404(fake_hub: FakeHub) -> None:
    """Routes FakeHub does not implement (like /api/agent-harnesses) answer a harmless 404."""
    response = httpx.get(f"{fake_hub.endpoint}/api/agent-harnesses")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found"}
    assert httpx.post(f"{fake_hub.endpoint}/api/models/org/x").status_code == 405


def test_add_folder_and_branches(fake_hub: FakeHub, tmp_path: Path) -> None:
    """add_folder commits a tree; a branch can be moved back to an older commit."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"A")
    (src / "sub" / "b.txt").write_bytes(b"B")
    first = fake_hub.add_folder("org/model", src)
    fake_hub.add_file("org/model", "a.txt", b"A2")
    fake_hub.set_ref("org/model", "main", first)
    assert _download(fake_hub, tmp_path / "c", "org/model", "a.txt") == b"A"
    assert _download(fake_hub, tmp_path / "c", "org/model", "sub/b.txt") == b"B"
    with pytest.raises(KeyError):
        fake_hub.set_ref("org/model", "main", "0" * 40)


async def test_async_context_manager() -> None:
    """`async with FakeHub()` starts and stops the server without blocking the loop."""
    async with FakeHub() as hub:
        endpoint = hub.endpoint
        hub.add_file("org/model", "config.json", b"{}")
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{endpoint}/org/model/resolve/main/config.json")
        assert response.content == b"{}"
    with pytest.raises(RuntimeError, match="not running"):
        _ = hub.endpoint


def test_file_bytes_served_counts_downloads_not_metadata(fake_hub: FakeHub, tmp_path: Path) -> None:
    """Bytes served counts file bodies (through the CDN redirect too), not HEADs, redirects or /api."""
    data = os.urandom(300_000)
    fake_hub.add_files("org/model", {"w.safetensors": data, "config.json": b"{}"})
    snapshot_download("org/model", endpoint=fake_hub.endpoint, cache_dir=tmp_path)
    assert fake_hub.file_bytes_served() == len(data) + 2
    snapshot_download("org/model", endpoint=fake_hub.endpoint, cache_dir=tmp_path)
    assert fake_hub.file_bytes_served() == len(data) + 2  # cached: only metadata the second time

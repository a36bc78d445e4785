"""Three node processes and a real Ceph RADOS Gateway: the Hub serves each blob once."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import obstore

from modelfetch.testing import FakeHub, write_model_repo

from .._net import closed_port
from .._units import MiB
from .conftest import Gateway

S3Store = obstore.store.S3Store

NODE = Path(__file__).with_name("_node.py")


def _environment(hub: FakeHub, cache: Path, gateway: Gateway, bucket: str) -> dict[str, str]:
    return {
        **os.environ,
        **gateway.env(bucket),
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(cache),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(NODE), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(node: subprocess.Popen[str]) -> dict[str, object]:
    out, err = node.communicate(timeout=300)
    assert node.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _model(hub: FakeHub, tmp: Path, shard_size: int) -> tuple[dict[str, str], int]:
    model = write_model_repo(tmp / "model", shards=3, shard_size=shard_size, seed=7)
    hub.add_folder("org/model", model.folder)
    files = {
        p.relative_to(model.folder).as_posix(): p.read_bytes() for p in model.folder.rglob("*") if p.is_file()
    }
    return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}, sum(map(len, files.values()))


def _store(gateway: Gateway, bucket: str) -> S3Store:
    return S3Store(
        bucket,
        endpoint=gateway.endpoint,
        access_key_id=gateway.access_key,
        secret_access_key=gateway.secret_key,
        region=gateway.region,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )


def test_a_fleet_fetches_each_blob_from_the_hub_once(
    fake_hub: FakeHub, tmp_path: Path, gateway: Gateway, bucket_name: str
) -> None:
    """3 nodes at once, then 3 more in turn, set up by MODELFETCH_MIRROR_URL: Hub bytes = model size."""
    digests, total = _model(fake_hub, tmp_path, shard_size=6 * MiB)
    nodes = [
        _start(["env", "org/model"], _environment(fake_hub, tmp_path / f"node{i}", gateway, bucket_name))
        for i in range(3)
    ]
    results = [_finish(node) for node in nodes]
    assert fake_hub.file_bytes_served() == total
    for i in range(3, 6):
        env = _environment(fake_hub, tmp_path / f"node{i}", gateway, bucket_name)
        results.append(_finish(_start(["env", "org/model"], env)))
    assert fake_hub.file_bytes_served() == total
    assert all(result["files"] == digests for result in results)
    keys = [str(m["path"]) for batch in obstore.list(_store(gateway, bucket_name)) for m in batch]
    assert sum(k.startswith("blobs/") for k in keys) == len(digests)
    assert not [k for k in keys if k.startswith("claims/")]


def test_with_the_mirror_down_a_node_fetches_from_the_hub_and_warns(
    fake_hub: FakeHub, tmp_path: Path, gateway: Gateway
) -> None:
    """A node whose bucket endpoint refuses connections still gets every file, with a warning."""
    digests, total = _model(fake_hub, tmp_path, shard_size=1 * MiB)
    env = _environment(fake_hub, tmp_path / "node", gateway, "fleet-down")
    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{closed_port()}"
    node = _start(["env", "org/model"], env)
    out, err = node.communicate(timeout=300)
    assert node.returncode == 0, err
    assert json.loads(out)["files"] == digests
    assert fake_hub.file_bytes_served() == total
    assert err.count("is unavailable") == 1


def test_a_node_killed_mid_upload_leaves_no_object_and_the_next_one_uploads(
    fake_hub: FakeHub, tmp_path: Path, gateway: Gateway, bucket_name: str
) -> None:
    """SIGKILL during a multipart upload: nothing visible; after the claim lapses the next node uploads."""
    digests, _ = _model(fake_hub, tmp_path, shard_size=12 * MiB)
    victim = _start(
        ["explicit", "org/model", "2", "--hang-in-upload"],
        _environment(fake_hub, tmp_path / "victim", gateway, bucket_name),
    )
    try:
        assert victim.stdout is not None
        assert victim.stdout.readline().strip() == "uploading"
        store = _store(gateway, bucket_name)
        claims = [str(m["path"]) for batch in obstore.list(store, prefix="claims/") for m in batch]
        assert claims  # the victim holds claims on the shards it is fetching or uploading
        etags = [key.removeprefix("claims/") for key in claims]
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)
    blob_keys = [str(m["path"]) for batch in obstore.list(store, prefix="blobs/") for m in batch]
    assert not [etag for etag in etags if f"blobs/{etag}" in blob_keys]  # no half-sent upload is visible

    result = _finish(
        _start(
            ["explicit", "org/model", "2"], _environment(fake_hub, tmp_path / "next", gateway, bucket_name)
        )
    )
    assert result["files"] == digests
    stats = result["stats"]
    assert isinstance(stats, dict)
    assert stats["waits"] >= 1  # it waited for the dead node's claims to lapse, then took over
    assert stats["uploads"] >= len(etags)
    for etag in etags:
        data = bytes(obstore.get(store, f"blobs/{etag}").bytes())
        assert hashlib.sha256(data).hexdigest() == etag

"""Three node processes and a real Ceph RADOS Gateway: the Hub serves each blob once."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import obstore

from modelfetch._store.partial import verify_bytes
from modelfetch.testing import FakeHub, Fault, write_model_repo

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
        stdin=subprocess.PIPE,
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


def _keys(store: S3Store, prefix: str) -> list[str]:
    return [str(m["path"]) for batch in obstore.list(store, prefix=prefix) for m in batch]


def _lines_until(node: subprocess.Popen[str], wanted: str) -> list[str]:
    """The node's stdout lines up to and including the first that starts with `wanted`."""
    assert node.stdout is not None
    seen: list[str] = []
    for line in node.stdout:
        seen.append(line.strip())
        if line.startswith(wanted):
            return seen
    raise AssertionError(f"the node ended without saying {wanted!r}: {seen}, {node.communicate()[1][-2000:]}")


def test_a_fetch_returns_before_its_upload_and_aclose_waits_for_it(
    fake_hub: FakeHub, tmp_path: Path, gateway: Gateway, bucket_name: str
) -> None:
    """The snapshot returns with every upload still pending; aclose() returns once they are all stored."""
    digests, total = _model(fake_hub, tmp_path, shard_size=6 * MiB)  # 6 MiB: sent as parts of 5 + 1
    node = _start(
        ["explicit", "org/model", "30", "--hold-uploads"],
        _environment(fake_hub, tmp_path / "node", gateway, bucket_name),
    )
    fetched = json.loads(_lines_until(node, '{"phase"')[-1])["stats"]
    store = _store(gateway, bucket_name)
    assert (fetched["uploads"], fetched["uploads_pending"]) == (0, len(digests) + 1)  # and the listing
    assert not _keys(store, "blobs/")
    assert not _keys(store, "parts/")
    assert len(_keys(store, "claims/")) == len(digests)  # but every blob is still claimed

    assert node.stdin is not None
    node.stdin.write("go\n")
    node.stdin.flush()
    result = _finish(node)
    stats = result["stats"]
    assert isinstance(stats, dict)
    assert (stats["uploads"], stats["uploads_pending"], stats["upload_failures"]) == (len(digests), 0, 0)
    assert len(_keys(store, "blobs/")) == len(digests) - 3  # the 3 shards are stored as parts
    assert len(_keys(store, "parts/")) == 3 * 2
    assert not _keys(store, "claims/")
    follower = _finish(
        _start(
            ["explicit", "org/model", "30"], _environment(fake_hub, tmp_path / "next", gateway, bucket_name)
        )
    )
    assert follower["files"] == digests
    assert fake_hub.file_bytes_served() == total


def test_a_node_killed_during_its_background_upload_leaves_nothing_and_the_next_one_uploads(
    fake_hub: FakeHub, tmp_path: Path, gateway: Gateway, bucket_name: str
) -> None:
    """SIGKILL while uploads are pending: nothing is visible; after the claims lapse the next node uploads."""
    digests, _ = _model(fake_hub, tmp_path, shard_size=3 * MiB)  # one PUT per blob
    victim = _start(
        ["explicit", "org/model", "2", "--hang-in-upload"],
        _environment(fake_hub, tmp_path / "victim", gateway, bucket_name),
    )
    store = _store(gateway, bucket_name)
    try:
        _lines_until(victim, "uploading")
        etags = [key.removeprefix("claims/") for key in _keys(store, "claims/")]
        assert etags  # the victim holds the claims of the blobs it has not uploaded
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)
    assert not [etag for etag in etags if f"blobs/{etag}" in _keys(store, "blobs/")]

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
        verify_bytes(bytes(obstore.get(store, f"blobs/{etag}").bytes()), etag)  # sha256, or git's sha1


def _big_model(hub: FakeHub) -> tuple[dict[str, str], bytes]:
    big = os.urandom(24 * MiB)
    files = {"config.json": b'{"model_type": "big"}', "model.safetensors": big}
    hub.add_files("org/big", files)
    return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}, big


def _big_bytes_served(hub: FakeHub) -> list[tuple[str | None, int]]:
    return [
        (r.range, r.bytes_sent) for r in hub.requests if r.method == "GET" and "model.safetensors" in r.path
    ]


def test_a_second_node_reads_a_large_files_parts_while_the_first_still_fetches_it(
    fake_hub: FakeHub, tmp_path: Path, gateway: Gateway, bucket_name: str
) -> None:
    """Node B reads the parts A has published while A's Hub download is held: the Hub sends one copy."""
    digests, big = _big_model(fake_hub)
    hold = threading.Event()
    big_body = f"/cdn/{digests['model.safetensors']}"  # not the redirect to it: the body
    fake_hub.inject(Fault(hold=hold, stall_after=17 * MiB), method="GET", path=big_body, times=1)
    first = _start(
        ["explicit", "org/big", "30", "--announce-claim"],
        _environment(fake_hub, tmp_path / "a", gateway, bucket_name),
    )
    try:
        _lines_until(first, "claimed model.safetensors")  # A fetches it; the Hub holds it at 17 MiB
        second = _start(
            ["explicit", "org/big", "30", "--announce-read"],
            _environment(fake_hub, tmp_path / "b", gateway, bucket_name),
        )
        # B finds A's claim and says it waits; A publishes what it has; B reads it, A still held.
        _lines_until(second, "reading")
    finally:
        hold.set()
    a, b = _finish(first), _finish(second)
    assert a["files"] == b["files"] == digests
    stats = b["stats"]
    assert isinstance(stats, dict)
    assert (stats["upstream_fetches"], stats["mirror_hits"]) == (0, 2)
    assert stats["mirror_bytes"] == len(big) + len(b'{"model_type": "big"}')
    assert sum(n for _, n in _big_bytes_served(fake_hub)) == len(big)  # one copy from the Hub


def test_a_claimant_killed_mid_file_is_taken_over_after_the_parts_it_published(
    fake_hub: FakeHub, tmp_path: Path, gateway: Gateway, bucket_name: str
) -> None:
    """A dies 17 MiB into a 24 MiB file (3 parts of 5 MiB published for B, who waits): B reads them,
    waits for A's claim to lapse, and fetches only the rest from the Hub, from the end of A's last part."""
    digests, big = _big_model(fake_hub)
    hold = threading.Event()
    big_body = f"/cdn/{digests['model.safetensors']}"  # not the redirect to it: the body
    fake_hub.inject(Fault(hold=hold, stall_after=17 * MiB), method="GET", path=big_body, times=1)
    victim = _start(
        ["explicit", "org/big", "2", "--announce-claim", "--announce-parts"],
        _environment(fake_hub, tmp_path / "a", gateway, bucket_name),
    )
    try:
        _lines_until(victim, "claimed model.safetensors")
        second = _start(
            ["explicit", "org/big", "2"], _environment(fake_hub, tmp_path / "b", gateway, bucket_name)
        )
        _lines_until(victim, f"part {10 * MiB}-{15 * MiB}")  # B waits: A publishes what it has
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)
    finally:
        hold.set()
    store = _store(gateway, bucket_name)
    etag = digests["model.safetensors"]
    assert not _keys(store, "blobs/" + etag)

    result = _finish(second)
    assert result["files"] == digests
    stats = result["stats"]
    assert isinstance(stats, dict)
    assert stats["waits"] >= 1
    assert stats["mirror_bytes"] >= 15 * MiB
    served = _big_bytes_served(fake_hub)
    assert served[-1] == (f"bytes={15 * MiB}-", 9 * MiB)  # B resumed after A's parts
    assert len(_keys(store, f"parts/{etag}/")) == 5  # B published the rest
    data = b"".join(bytes(obstore.get(store, key).bytes()) for key in sorted(_keys(store, f"parts/{etag}/")))
    assert data == big

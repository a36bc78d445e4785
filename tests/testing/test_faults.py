"""Each injected fault does what it says, only where and as often as it is scoped."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from modelfetch.testing import FakeHub, Fault

DATA = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def hub(fake_hub: FakeHub) -> FakeHub:
    """A hub holding one plain 1 MiB file and one small config."""
    fake_hub.add_file("org/model", "blob.bin", DATA, lfs=False)
    fake_hub.add_file("org/model", "config.json", b"{}")
    return fake_hub


def _url(hub: FakeHub, name: str = "blob.bin") -> str:
    return f"{hub.endpoint}/org/model/resolve/main/{name}"


def test_status_for_the_next_n_requests(hub: FakeHub) -> None:
    """A status fault answers with that status, Retry-After included, `times` times, then stops."""
    rule = hub.inject(Fault(status=503, retry_after="2"), path="blob.bin", times=2)
    statuses = [httpx.head(_url(hub)) for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].headers["Retry-After"] == "2"
    assert httpx.head(_url(hub, "config.json")).status_code == 200
    assert rule.fired == 2  # counts the requests it applied to, not the ones it saw


def test_method_scoping(hub: FakeHub) -> None:
    """A fault scoped to GET leaves HEAD alone."""
    hub.inject(Fault(status=429), method="GET")
    assert httpx.head(_url(hub)).status_code == 200
    assert httpx.get(_url(hub)).status_code == 429


def test_drop_after_cuts_the_body(hub: FakeHub) -> None:
    """The connection closes after exactly N body bytes, and the log says it was cut short."""
    hub.inject(Fault(drop_after=1000), method="GET")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(_url(hub))
    record = hub.wait_for_requests("GET", "blob.bin")[0]
    assert (record.bytes_sent, record.completed) == (1000, False)


def test_corrupt_flips_one_byte(hub: FakeHub) -> None:
    """Exactly the byte at the offset differs; the length is right."""
    hub.inject(Fault(corrupt_at=12345), method="GET")
    body = httpx.get(_url(hub)).content
    assert len(body) == len(DATA)
    assert [i for i, (a, b) in enumerate(zip(body, DATA, strict=True)) if a != b] == [12345]


def test_corrupt_respects_ranges(hub: FakeHub) -> None:
    """The corrupt offset is an offset in the file, also when a range is served."""
    hub.inject(Fault(corrupt_at=600_000), method="GET")
    body = httpx.get(_url(hub), headers={"Range": "bytes=500000-"}).content
    assert body[100_000] == DATA[600_000] ^ 0xFF
    assert body[:100_000] == DATA[500_000:600_000]


@pytest.mark.parametrize("delta", [10, -10])
def test_wrong_content_length(hub: FakeHub, delta: int) -> None:
    """A Content-Length that lies makes the client see a short or over-long body."""
    hub.inject(Fault(length_delta=delta), method="GET")
    if delta > 0:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(_url(hub))
    else:
        response = httpx.get(_url(hub))
        assert len(response.content) == len(DATA) - 10


def test_stall_triggers_a_read_timeout(hub: FakeHub) -> None:
    """A stalled body makes a client with a short read timeout give up."""
    hub.inject(Fault(stall=30, stall_after=1000), method="GET")
    with pytest.raises(httpx.ReadTimeout), httpx.stream("GET", _url(hub), timeout=0.3) as response:
        for _ in response.iter_bytes():
            pass


def test_latency_delays_the_answer(hub: FakeHub) -> None:
    """Latency holds the whole answer back: a client that waits less times out."""
    hub.inject(Fault(latency=30), path="config.json", times=1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(_url(hub, "config.json"), timeout=0.3)
    assert httpx.get(_url(hub, "config.json")).content == b"{}"


def test_throttled_body_is_intact(hub: FakeHub) -> None:
    """Throttling slows the body without changing it."""
    hub.inject(Fault(throttle=64 * 1024 * 1024), method="GET")
    body = httpx.get(_url(hub)).content
    assert hashlib.sha256(body).digest() == hashlib.sha256(DATA).digest()


def test_faults_compose_and_can_be_removed(hub: FakeHub) -> None:
    """Two matching rules both apply; removing one leaves the other; clearing removes all."""
    status = hub.inject(Fault(status=500), path="blob.bin")
    hub.inject(Fault(drop_after=10), method="GET")
    assert httpx.get(_url(hub)).status_code == 500
    hub.remove_fault(status)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(_url(hub))
    hub.clear_faults()
    assert httpx.get(_url(hub)).content == DATA


def test_faults_apply_to_cdn_downloads_by_file_name(fake_hub: FakeHub) -> None:
    """An LFS file's CDN URL carries its name, so a path-scoped fault reaches the real transfer."""
    fake_hub.add_file("org/model", "model.safetensors", DATA)
    fake_hub.inject(Fault(status=503), method="GET", path="model.safetensors")
    head = httpx.head(f"{fake_hub.endpoint}/org/model/resolve/main/model.safetensors")
    assert head.status_code == 302
    location = head.headers["Location"]
    assert "/cdn/" in location
    assert httpx.get(location).status_code == 503

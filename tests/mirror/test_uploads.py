"""The background upload queue: deferral while the node fetches, a bounded queue, abandoning at close."""

from __future__ import annotations

import threading
import time

import pytest

from modelfetch._mirror import uploads as uploads_module
from modelfetch._mirror.access import BucketAccess
from modelfetch._mirror.bucket import Bucket
from modelfetch._mirror.claims import Keeper
from modelfetch._mirror.uploads import Uploads


def _uploads(concurrency: int = 1) -> tuple[Uploads, Bucket]:
    bucket = Bucket.open("memory:///", timeout=5)
    access = BucketAccess(bucket, 30, time.time)
    return Uploads(access, Keeper(bucket, 30, time.time), concurrency=concurrency), bucket


def test_an_upload_nobody_asked_for_waits_until_the_node_stops_fetching() -> None:
    """Deferred D, then N: N runs first while a fetch is in flight; D once the fetch ends."""
    uploads, _ = _uploads()
    ran: list[str] = []
    uploads.fetching(+1)
    uploads.submit(lambda abandon: ran.append("D"), None, "D", wanted="wanted/d")
    n_done = threading.Event()
    uploads.submit(lambda abandon: (ran.append("N"), n_done.set()), None, "N")
    assert n_done.wait(10)
    assert ran == ["N"]
    assert uploads.pending == 1
    uploads.fetching(-1)
    uploads.wait()
    assert ran == ["N", "D"]


def test_an_upload_another_node_asked_for_runs_while_the_node_fetches() -> None:
    """`wanted/<etag>` in the bucket: the deferred upload runs although a fetch is in flight."""
    uploads, bucket = _uploads()
    bucket.create("wanted/d", b"")
    uploads.fetching(+1)
    done = threading.Event()
    uploads.submit(lambda abandon: done.set(), None, "D", wanted="wanted/d")
    assert done.wait(10)
    uploads.fetching(-1)


def test_a_full_queue_makes_room_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """With one thread busy and the queue at its bound, `room()` returns only once the queue moves."""
    monkeypatch.setattr(uploads_module, "MAX_QUEUED", 1)
    uploads, _ = _uploads()
    started, go = threading.Event(), threading.Event()
    uploads.submit(lambda abandon: (started.set(), go.wait()), None, "first")
    assert started.wait(10)
    uploads.submit(lambda abandon: None, None, "second")
    assert uploads.crowded
    roomy = threading.Thread(target=uploads.room)
    roomy.start()
    roomy.join(0.2)
    assert roomy.is_alive()  # still waiting: the only thread is busy, the queue full
    go.set()
    roomy.join(10)
    assert not roomy.is_alive()
    uploads.wait()
    assert uploads.pending == 0


def test_drain_abandons_what_is_queued_and_tells_the_running_job() -> None:
    """drain(0): the running job sees its event set, the queued one never starts."""
    uploads, _ = _uploads()
    started, seen = threading.Event(), threading.Event()
    ran: list[str] = []

    def running(abandon: threading.Event) -> None:
        started.set()
        if abandon.wait(10):
            seen.set()

    uploads.submit(running, None, "running")
    uploads.submit(lambda abandon: ran.append("queued"), None, "queued")
    assert started.wait(10)
    assert uploads.drain(0) == 2
    uploads.wait()
    assert seen.is_set()
    assert ran == []


def test_a_full_queue_runs_deferred_uploads_so_a_fetch_waiting_for_room_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deferred uploads that fill the queue while a fetch is in flight run anyway (no deadlock)."""
    monkeypatch.setattr(uploads_module, "MAX_QUEUED", 2)
    uploads, _ = _uploads()
    uploads.fetching(+1)
    first = threading.Event()
    uploads.submit(lambda abandon: first.set(), None, "a", wanted="wanted/a")
    uploads.submit(lambda abandon: None, None, "b", wanted="wanted/b")
    uploads.room()  # returns: the full queue let a deferred job run although a fetch is in flight
    assert first.wait(10)
    uploads.fetching(-1)  # the other one runs once the fetch is over
    uploads.wait()
    assert uploads.pending == 0

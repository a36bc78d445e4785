"""Progress from a worker thread reaches the loop in order, without the thread waiting for the loop."""

from __future__ import annotations

import threading

import anyio.lowlevel

from modelfetch import AssetRef, ProgressEvent, ProgressKind
from modelfetch._core.threadprogress import TransferWatch, loop_poster


async def _until(condition: object, checkpoints: int = 100) -> None:
    for _ in range(checkpoints):
        if callable(condition) and condition():
            return
        await anyio.lowlevel.checkpoint()


async def test_a_worker_thread_posts_without_waiting_for_the_loop() -> None:
    """The loop is blocked while the thread posts: a blocking relay would never return."""
    post = loop_poster()
    seen: list[int] = []
    thread = threading.Thread(target=lambda: [post(seen.append, 1), post(seen.append, 2)])
    thread.start()
    thread.join(timeout=30)  # blocks this loop on purpose
    assert not thread.is_alive()
    assert seen == []  # posted, not run: the loop has not turned yet
    await _until(lambda: len(seen) == 2)
    assert seen == [1, 2]


async def test_a_watch_relays_its_events_in_order_before_the_thread_returns() -> None:
    events: list[ProgressEvent] = []
    watch = TransferWatch(AssetRef("org/model", "w.bin"), events.append, check_stopped=lambda: None)

    def transfer() -> None:
        watch.started(10, 0)
        watch.advanced(4)
        watch.advanced(6)

    await anyio.to_thread.run_sync(transfer)
    assert len(events) == 3  # posted before the thread's result: run before this task resumes
    watch.finish(ProgressKind.FINISHED)
    assert [(e.kind, e.done) for e in events] == [
        (ProgressKind.STARTED, 0),
        (ProgressKind.ADVANCED, 4),
        (ProgressKind.ADVANCED, 10),
        (ProgressKind.FINISHED, 10),
    ]

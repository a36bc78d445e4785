"""`in_background`: a thread of its own, nicer than the process; the caller can leave at once."""

from __future__ import annotations

import os
import sys
import threading

import anyio
import pytest

from modelfetch._core.background import in_background


async def test_the_result_and_the_error_come_back_to_the_caller() -> None:
    """A value is returned; an exception is raised in the caller as it is."""
    limiter = anyio.CapacityLimiter(4)
    assert await in_background(lambda: 42, limiter) == 42

    def fail() -> None:
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        await in_background(fail, limiter)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are Linux's")
async def test_the_thread_is_nicer_than_the_process_and_the_loop_is_not() -> None:
    """The work runs 10 steps nicer (up to 19); the caller's thread keeps its priority."""
    process = os.getpriority(os.PRIO_PROCESS, os.getpid())
    seen = await in_background(
        lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), anyio.CapacityLimiter(1)
    )
    assert seen == min(19, process + 10)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == process


async def test_a_cancelled_caller_returns_while_the_work_goes_on() -> None:
    """Cancelled, the caller leaves at once; the thread finishes on its own when let go."""
    release, finished = threading.Event(), threading.Event()

    def work() -> None:
        release.wait()
        finished.set()

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(in_background, work, anyio.CapacityLimiter(1))
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
    assert not finished.is_set()  # left before the work ended
    release.set()
    assert await anyio.to_thread.run_sync(finished.wait, 30)

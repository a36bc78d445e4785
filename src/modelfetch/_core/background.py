"""Work the event loop waits for but should never wait behind: a thread of its own, less urgent.

On a busy machine the event loop's thread competes for the CPUs with the threads that
receive, write and hash file bodies, and the kernel treats them alike, so the loop waits its
turn behind bytes nobody is waiting for as urgently. `in_background` runs such work in a new
thread made 10 steps nicer than the process (Linux: `setpriority` on a thread id changes that
thread only; elsewhere nothing changes), so the loop and the rest of the application run
first when the CPUs are scarce and the transfer runs as fast as before when they are idle.
A thread of its own, not one of anyio's shared workers: a worker made nicer would stay so
for whoever uses it next, and only a privileged process may make it less nice again.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

_T = TypeVar("_T")
_NICER = 10
_LINUX = sys.platform.startswith("linux")


def lower_this_thread(niceness: int = _NICER) -> None:
    """Make the calling thread `niceness` steps nicer than its process (Linux; else nothing).

    Never raises a thread's priority, and a refusal is ignored: priority is a courtesy.
    """
    if not _LINUX:
        return
    tid = threading.get_native_id()
    try:
        wanted = min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + niceness)
        if wanted > os.getpriority(os.PRIO_PROCESS, tid):
            os.setpriority(os.PRIO_PROCESS, tid, wanted)
    except OSError:
        pass


async def in_background(func: Callable[[], _T], limiter: anyio.CapacityLimiter) -> _T:
    """`func()` in a new, nicer thread; the caller waits off the loop and abandons it if cancelled.

    The wait takes one of `limiter`'s worker threads (blocked, holding no GIL). A cancelled
    caller returns at once; the thread runs on until `func` returns (`func` must notice by
    itself that nobody waits any more, as `modelfetch._store.pull` does with its gate).
    """
    done = threading.Event()
    outcome: list[tuple[bool, object]] = []

    def body() -> None:
        lower_this_thread()
        try:
            outcome.append((True, func()))
        except BaseException as exc:  # handed to the waiting task as it is
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=body, name="modelfetch-transfer", daemon=True).start()
    await anyio.to_thread.run_sync(done.wait, limiter=limiter, abandon_on_cancel=True)
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[return-value]
    assert isinstance(value, BaseException)
    raise value

"""The libcurl engine's threads run nicer than the process on Linux, so the event loop gets the CPU first."""

from __future__ import annotations

import os
import sys
import threading

import anyio
import pytest

import modelfetch
from modelfetch import AssetRef, HttpHubSource, ProgressEvent, ProgressKind, Settings, TransferOptions
from modelfetch._http.niceness import lower_this_thread
from modelfetch.testing import FakeHub, Fault

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="threads have a niceness of their own only on Linux"
)
MiB = 1024 * 1024


def thread_niceness(native_id: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, native_id)


def _process_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, os.getpid())


def test_only_the_calling_thread_becomes_nicer() -> None:
    seen: list[int | None] = []

    def worker() -> None:
        lower_this_thread(5)
        lower_this_thread(2)  # never raised back: it stays at the nicer of the two
        seen.append(thread_niceness(threading.get_native_id()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [min(19, _process_niceness() + 5)]
    assert thread_niceness(threading.get_native_id()) == _process_niceness()  # this thread untouched


@pytest.mark.parametrize("niceness", [10, 0])
async def test_the_engine_threads_run_nicer_while_downloading(
    fake_hub: FakeHub, settings: Settings, niceness: int
) -> None:
    fake_hub.add_file("org/model", "w.safetensors", os.urandom(4 * MiB))
    release = threading.Event()
    fake_hub.inject(Fault(hold=release, stall_after=MiB), method="GET", path="w.safetensors")
    options = TransferOptions(small_file_limit=0, engine="curl", niceness=niceness)
    arrived = anyio.Event()

    def progress(event: ProgressEvent) -> None:
        if event.kind is ProgressKind.ADVANCED:
            arrived.set()

    async with HttpHubSource(settings, options=options) as source, anyio.create_task_group() as tg:
        tg.start_soon(lambda: source.resolve(AssetRef("org/model", "w.safetensors"), progress=progress))
        await arrived.wait()  # held on the server after 1 MiB: the engine's threads are running
        engine_threads = {
            t.name: thread_niceness(t.native_id)
            for t in threading.enumerate()
            if t.name in ("modelfetch-curl", "modelfetch-writer") and t.native_id is not None
        }
        release.set()
    assert set(engine_threads) == {"modelfetch-curl", "modelfetch-writer"}
    expected = min(19, _process_niceness() + niceness)
    assert set(engine_threads.values()) == {expected}
    assert thread_niceness(threading.get_native_id()) == _process_niceness()  # the loop's thread untouched


def test_a_niceness_out_of_range_is_refused() -> None:
    with pytest.raises(modelfetch.InvalidRequestError, match="niceness"):
        TransferOptions(niceness=20)
    with pytest.raises(modelfetch.InvalidRequestError, match="niceness"):
        TransferOptions(niceness=-1)
    with pytest.raises(modelfetch.InvalidRequestError, match="niceness"):
        TransferOptions(niceness="10")  # type: ignore[arg-type]

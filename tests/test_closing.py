"""One way to close per world: `aclose(source=None)` from async code, `close_sync(source=None)` from sync."""

from __future__ import annotations

import warnings

import pytest

import modelfetch
from modelfetch.testing import FakeHub, MemorySource


async def test_aclose_closes_a_source_or_the_loops_default(default_env: FakeHub) -> None:
    """With a source: that source. Without: the default source, rebuilt by the next fetch."""
    default_env.add_file("org/model", "config.json", b"{}")
    await modelfetch.fetch("org/model", "config.json")
    await modelfetch.aclose()
    default_env.clear_requests()
    await modelfetch.fetch("org/model", "config.json", force_download=True)
    assert default_env.count("GET", "config.json") == 1  # a new default source fetched it
    source = MemorySource({"org/model": {"a.txt": b"a"}})
    await modelfetch.fetch("org/model", "a.txt", source=source)
    await modelfetch.aclose(source)
    await modelfetch.aclose(source)  # idempotent
    with pytest.raises(modelfetch.InvalidRequestError, match="source"):
        await modelfetch.aclose("not a source")  # type: ignore[arg-type]


def test_close_sync_without_a_source_stops_the_facade(hub_env: FakeHub) -> None:
    """`close_sync()` closes the facade's default source; the next *_sync call starts again."""
    hub_env.add_file("org/model", "config.json", b"{}")
    assert modelfetch.fetch_sync("org/model", "config.json").read_bytes() == b"{}"
    modelfetch.close_sync()
    modelfetch.close_sync()  # idempotent
    assert modelfetch.fetch_sync("org/model", "config.json").read_bytes() == b"{}"
    modelfetch.close_sync()


async def test_close_sync_refuses_to_block_a_running_loop() -> None:
    """Inside an event loop it says to await aclose() instead."""
    with pytest.raises(modelfetch.BlockingCallError, match=r"await modelfetch\.aclose\(\)"):
        modelfetch.close_sync()


@pytest.mark.parametrize(
    ("old", "new"), [("aclose_default_source", "aclose"), ("shutdown_sync", "close_sync")]
)
def test_the_old_names_still_work_and_warn(old: str, new: str) -> None:
    """The two old closing functions stay for one release, with a DeprecationWarning naming the new one."""
    with pytest.warns(DeprecationWarning, match=f"modelfetch.{new}"):
        function = getattr(modelfetch, old)
    assert callable(function)
    assert old not in modelfetch.__all__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(modelfetch, new)

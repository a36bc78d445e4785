"""`token=` per call: the default source for that token; never with a source of yours; never shown."""

from __future__ import annotations

import pytest

import modelfetch
from modelfetch.testing import FakeHub, MemorySource

TOKEN = "hf_perCallTokenForThisRequest000000000"


async def test_a_per_call_token_reaches_the_hub_and_the_environment_is_untouched() -> None:
    """Without a token the hub refuses; with token= it answers; the next plain call is refused again."""
    with FakeHub(tokens=(TOKEN,)) as hub, hub.environment():
        hub.create_repo("org/private", private=True)
        hub.add_file("org/private", "config.json", b"{}")
        with pytest.raises((modelfetch.AuthenticationError, modelfetch.RepoNotFoundError)):
            await modelfetch.fetch("org/private", "config.json")
        path = await modelfetch.fetch("org/private", "config.json", token=TOKEN)
        assert path.read_bytes() == b"{}"
        listing = await modelfetch.get_paths_info("org/private", "config.json", token=TOKEN)
        assert [f.path for f in listing.files] == ["config.json"]
        with pytest.raises((modelfetch.AuthenticationError, modelfetch.RepoNotFoundError)):
            await modelfetch.snapshot("org/private", revision=listing.commit)
        await modelfetch.aclose()


def test_the_sync_twins_take_a_token_too() -> None:
    """fetch_sync(token=) and snapshot_sync(token=) on the portal's loop."""
    with FakeHub(tokens=(TOKEN,)) as hub, hub.environment():
        hub.create_repo("org/private", private=True)
        hub.add_file("org/private", "config.json", b"{}")
        assert modelfetch.fetch_sync("org/private", "config.json", token=TOKEN).read_bytes() == b"{}"
        folder = modelfetch.snapshot_sync("org/private", token=TOKEN)
        assert (folder / "config.json").read_bytes() == b"{}"


async def test_a_token_with_a_source_of_yours_is_refused() -> None:
    """Your source carries its own settings: both together is an InvalidRequestError, nothing sent."""
    async with MemorySource({"org/model": {"a.json": b"{}"}}) as source:
        with pytest.raises(modelfetch.InvalidRequestError, match="default source"):
            await modelfetch.fetch("org/model", "a.json", source=source, token=TOKEN)


@pytest.mark.parametrize("bad", ["hf_abc\r\nX-Injected: 1", "hf abc", ""])
async def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it(bad: str) -> None:
    """CR/LF, spaces or nothing: refused before any request, and the message does not echo it."""
    with pytest.raises(modelfetch.InvalidRequestError) as info:
        await modelfetch.fetch("org/model", "a.json", token=bad)
    if bad:
        assert bad not in str(info.value)

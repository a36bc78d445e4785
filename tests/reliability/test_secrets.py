"""Secrets: with a token and DEBUG logging, the token appears in no log, error, repr or CLI output."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import modelfetch
from modelfetch import AssetRef, CachedSource, HttpHubSource, HubSource, Settings
from modelfetch._cli.main import main
from modelfetch.testing import FakeHub

from .conftest import Ledger

TOKEN = "hf_SeCrEtToKeN_0123456789"


async def test_token_never_leaks(tmp_path: Path, caplog: pytest.LogCaptureFixture, ledger: Ledger) -> None:
    """Successes and failures with both sources, at DEBUG: no record, message or repr holds the token."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with FakeHub(tokens=(TOKEN,), cdn="separate") as hub:
        hub.create_repo("org/private", private=True)
        hub.add_files("org/private", {"config.json": b"{}", "w.safetensors": b"w" * 100_000})
        settings = Settings.from_env({"HF_TOKEN": TOKEN}, endpoint=hub.endpoint, hub_cache=tmp_path)
        bad = Settings.from_env({"HF_TOKEN": TOKEN + "x"}, endpoint=hub.endpoint, hub_cache=tmp_path / "b")
        for inner in (HubSource(settings), HttpHubSource(settings), HubSource(bad), HttpHubSource(bad)):
            async with CachedSource(inner) as source:
                texts += [repr(source), repr(inner), repr(inner.settings), str(inner.settings)]
                for name in ("config.json", "w.safetensors", "missing.json"):
                    try:
                        await source.resolve(AssetRef("org/private", name))
                    except modelfetch.FetchError as exc:
                        texts += [str(exc), repr(exc), str(exc.__cause__ or ""), repr(exc.__cause__ or "")]
        cdn_port = int(hub.cdn_endpoint.rsplit(":", 1)[1])
        to_cdn = [r for r in hub.requests if r.port == cdn_port and r.authorized]
    texts += [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    leaks = [t for t in texts if TOKEN in t]
    ledger.record(
        "token in logs, errors, reprs, or sent to another origin",
        trials=len(texts),
        failures=len(leaks) + len(to_cdn),
    )
    assert leaks == []
    assert to_cdn == []


def test_cli_output_never_shows_the_token(
    hub_env: FakeHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's output and error line never contain the token, also with --debug off."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["get", "org/nope", "config.json"]) == 1
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err

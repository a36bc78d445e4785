"""Text output escapes what a terminal would act on: names from a server or a neighbour ([security] 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfetch._cli.main import _one_line, main
from modelfetch._core.text import printable
from modelfetch.testing import FakeHub

HOSTILE = "\x1b]0;pwned\x07\x9b2J\u202etxt.exe"


def test_printable_escapes_controls_and_bidi_but_keeps_plain_text() -> None:
    """ESC, BEL, CSI (U+009B) and RLO (U+202E) become visible escapes; plain text and unicode letters stay."""
    shown = printable(HOSTILE)
    assert shown.isprintable()
    assert "\\x1b" in shown
    assert "\\x9b" in shown
    assert "\\u202e" in shown
    assert printable("org/model é 😀 a b") == "org/model é 😀 a b"


def test_one_line_errors_are_escaped() -> None:
    """A server's bytes in an error message (a Link URL, say) reach stderr escaped, on one line."""
    line = _one_line(RuntimeError(f"bad link {HOSTILE}\nsecond line"))
    assert line.isprintable()
    assert "\n" not in line


def test_cache_ls_escapes_a_neighbours_folder_name(
    hub_env: FakeHub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repo folder named with escape sequences by another user: `cache ls` prints it escaped."""
    hub_env.add_files("org/model", {"a.json": b"A"})
    assert main(["get", "org/model", "a.json", "--quiet"]) == 0
    out = capsys.readouterr().out
    cache = Path(out.strip()).parents[3]
    planted = cache / "models--evil--name\x1b[2J\x9b1;1H\u202e"
    (planted / "snapshots" / ("c" * 40)).mkdir(parents=True)
    (planted / "refs").mkdir()
    (planted / "blobs").mkdir()
    assert main(["cache", "ls"]) == 0
    shown = capsys.readouterr().out
    assert all(line.isprintable() for line in shown.splitlines())
    assert "org/model" in shown
    assert "evil/name\\x1b[2J" in shown  # shown, escaped

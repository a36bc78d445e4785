"""Reliability suite: shared fixtures, and the ledger that docs/reliability.md is generated from.

Each scenario records (trials, failures, files lost) in the session ledger. When the
suite runs with MODELFETCH_RELIABILITY_REPORT=<path>, the ledger is written there as
Markdown at the end (`make reliability` does this for docs/reliability.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Tally:
    """One scenario's counts."""

    scenario: str
    trials: int = 0
    failures: int = 0
    lost: int = 0


class Ledger:
    """Scenario name -> tally, filled in by the tests."""

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}

    def record(self, scenario: str, *, trials: int, failures: int = 0, lost: int = 0) -> None:
        """Add counts for `scenario` (tests of several backends add up)."""
        tally = self.tallies.setdefault(scenario, Tally(scenario))
        tally.trials += trials
        tally.failures += failures
        tally.lost += lost

    def markdown(self) -> str:
        """The report."""
        rows = "\n".join(
            f"| {t.scenario} | {t.trials} | {t.failures} | {t.lost} |" for t in self.tallies.values()
        )
        return (
            "# Reliability\n\n"
            "Generated from the counts of a run of `tests/reliability/` (`make reliability`); "
            "do not edit by hand. A *failure* is a trial whose outcome broke the promise (a wrong or "
            "corrupt file, an untyped error, a leaked secret, a blob left behind); *files lost* counts "
            "snapshot entries the final audit of the cache found dangling or not matching their etag "
            "(scenarios that end with that audit). Every scenario must show 0 and 0.\n\n"
            "| scenario | trials | failures | files lost |\n|---|---|---|---|\n" + rows + "\n"
        )


_LEDGER = Ledger()


@pytest.fixture(scope="session")
def ledger() -> Iterator[Ledger]:
    """The session's ledger; written out at the end if asked to."""
    yield _LEDGER
    target = os.environ.get("MODELFETCH_RELIABILITY_REPORT")
    if target:
        Path(target).write_text(_LEDGER.markdown(), encoding="utf-8")

"""docs/testing.md's sections are these files (tests/guide): each runs here under the plugin
and configuration its section describes, in a pytest of its own, with warnings as errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "tests" / "guide"

RUNS = {
    "pytest-asyncio strict, a loop per test": ("guide_pytest_asyncio.py", {"asyncio_mode": "strict"}, 5),
    "pytest-asyncio strict, one loop for the session": (
        "guide_pytest_asyncio.py",
        {"asyncio_mode": "strict", "asyncio_default_test_loop_scope": "session"},
        5,
    ),
    "pytest-asyncio auto, one loop for the session": (
        "guide_pytest_asyncio.py",
        {"asyncio_mode": "auto", "asyncio_default_test_loop_scope": "session"},
        5,
    ),
    "anyio's plugin, asyncio and trio, one loop per module": ("guide_anyio.py", {}, 4),
    "respx with pytest-asyncio, one loop for the session": (
        "guide_respx.py",
        {"asyncio_mode": "strict", "asyncio_default_test_loop_scope": "session"},
        7,
    ),
    "sync code, plain pytest": ("guide_sync.py", {}, 2),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_the_guide_runs_as_documented(name: str, tmp_path: Path) -> None:
    """Every test of the section passes, none is skipped, and no warning is raised."""
    module, options, expected = RUNS[name]
    ini = tmp_path / "pytest.ini"
    lines = [
        "[pytest]",
        "python_files = guide_*.py",
        "filterwarnings = error",
        "asyncio_default_fixture_loop_scope = function",
        *(f"{key} = {value}" for key, value in options.items()),
    ]
    ini.write_text("\n".join(lines) + "\n")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ini)]
    command += ["--rootdir", str(ROOT), str(GUIDE / module)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.stdout.strip().splitlines()[-1]
    assert re.match(rf"{expected} passed in ", summary), summary


def test_the_script_outside_pytest_runs_against_its_hub(tmp_path: Path) -> None:
    """`FakeHub.environment()` in a plain script: both lines print the same cached file."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env["HF_HOME"] = str(tmp_path / "untouched")  # the script must not use the caller's cache
    script = GUIDE / "script_outside_pytest.py"
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert run.returncode == 0, run.stderr
    ours, theirs = run.stdout.strip().splitlines()
    assert ours == theirs
    assert "/snapshots/" in ours
    assert not (tmp_path / "untouched").exists()

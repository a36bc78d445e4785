"""Every Python block of the README and docs/ runs as written (a block that is a file of
tests/guide — its first line says which — is run where that file is tested, and checked
here to be exactly that file).

Each block runs in a Python process of its own, pointed at a FakeHub serving `org/model`
(a sharded safetensors model with config and tokenizer, plus a single `model.safetensors`):
as a script, or — when it uses `await` at the top level, as in a notebook or
`python -m asyncio` — inside an asyncio event loop. A block that defines `test_*`
functions has them called too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelfetch.testing import FakeHub, write_model_repo

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

RUNNER = """
import ast, asyncio, inspect, sys
path = sys.argv[1]
code = compile(open(path).read(), path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
scope = {"__name__": "__main__"}
result = eval(code, scope)
if inspect.iscoroutine(result):
    asyncio.run(result)
for name, value in list(scope.items()):
    if name.startswith("test_") and callable(value):
        outcome = value()
        if inspect.iscoroutine(outcome):
            asyncio.run(outcome)
"""


def _blocks() -> Iterator[tuple[str, str]]:
    for page in PAGES:
        for number, match in enumerate(FENCE.finditer(page.read_text()), start=1):
            body = match.group(1)
            if body.startswith("# tests/guide/"):
                continue  # a file of tests/guide, run by tests/examples
            if body.lstrip().startswith("--8<--"):
                continue  # a data file shown as it is (the fleet benchmark's table)
            yield f"{page.relative_to(ROOT)}#{number}", body


BLOCKS = dict(_blocks())


def test_the_guide_files_are_the_pages_code() -> None:
    """tests/guide holds, byte for byte, the code the pages show (the pages are the source)."""
    from .examples.guide_pages import guide_blocks

    blocks = guide_blocks()
    assert len(blocks) >= 7
    for name, code in blocks.items():
        assert (ROOT / name).read_text() == code, (
            f"{name} differs from its page: run python -m tests.examples.guide_pages"
        )


@pytest.fixture(scope="module")
def docs_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    """`org/model` as the docs use it."""
    root = tmp_path_factory.mktemp("docs-hub")
    model = write_model_repo(root / "repo", shards=2, shard_size=256 * 1024)
    (model.folder / "model.safetensors").write_bytes((model.folder / model.files[-1]).read_bytes())
    with FakeHub() as hub:
        hub.add_folder("org/model", model.folder)
        yield hub


def test_the_docs_have_blocks_to_run() -> None:
    """The extraction finds the blocks (a broken fence would silently test nothing)."""
    assert len(BLOCKS) >= 10
    assert any(name.startswith("README.md") for name in BLOCKS)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BLOCKS))
def test_the_block_runs_as_written(name: str, docs_hub: FakeHub, tmp_path: Path) -> None:
    """Exit status 0, against the local hub only."""
    code = BLOCKS[name]
    block = tmp_path / "block.py"
    block.write_text(code)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "MODELFETCH_"))}
    env |= {
        "HF_ENDPOINT": docs_hub.endpoint,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    if "MirrorSource" in code:  # the fleet's bucket: a folder here
        (tmp_path / "bucket").mkdir()
        env["MODELFETCH_MIRROR_URL"] = (tmp_path / "bucket").as_uri()
    run = subprocess.run(
        [sys.executable, "-c", RUNNER, str(block)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, f"{name}:\n{code}\n--- stderr:\n{run.stderr[-3000:]}"

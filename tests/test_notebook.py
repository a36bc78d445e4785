"""`fetch_sync` in a real Jupyter kernel: sync code in a cell works; inside a coroutine it is refused."""

from __future__ import annotations

import os
from pathlib import Path

import nbclient
import nbformat
import pytest

from modelfetch.testing import FakeHub

CELLS = [
    # 1: the environment a user would have (their Hub: ours, on 127.0.0.1)
    "import os\nos.environ.update(ENVIRONMENT)",
    # 2: sync code in a cell, as with hf_hub_download
    'import modelfetch\npath = modelfetch.fetch_sync("org/model", "config.json")\nprint(open(path).read())',
    # 3: sync library code a cell calls
    'def load():\n    return modelfetch.snapshot_sync("org/model")\nprint(load().name)',
    # 4: inside a coroutine on the kernel's loop the refusal stays
    "async def handler():\n"
    '    return modelfetch.fetch_sync("org/model", "config.json")\n'
    "try:\n"
    "    await handler()\n"
    "except modelfetch.BlockingCallError:\n"
    '    print("refused inside a coroutine")',
]


@pytest.mark.slow
def test_fetch_sync_works_in_a_notebook_cell_and_is_refused_in_a_coroutine(
    fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real ipykernel runs the cells: the sync calls return files; the coroutine's call is refused."""
    commit = fake_hub.add_files("org/model", {"config.json": b'{"from": "the hub"}'})
    environment = {
        "HF_ENDPOINT": fake_hub.endpoint,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's migration warning, not ours
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(CELLS[0].replace("ENVIRONMENT", repr(environment)))]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in CELLS[1:]]
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": os.fspath(tmp_path)}}
    )
    client.execute()
    printed = [
        "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout").strip()
        for cell in notebook.cells
    ]
    assert printed[1] == '{"from": "the hub"}'
    assert printed[2] == commit
    assert printed[3] == "refused inside a coroutine"

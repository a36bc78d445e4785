"""A script that fetches through the mirror and simply ends still leaves the bucket complete."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from modelfetch.testing import FakeHub

from .._units import MiB


def test_a_script_that_ends_after_snapshot_sync_has_uploaded_everything(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    """The sync facade closes the default source at exit, which waits for the background uploads;
    on Python 3.12+ the part senders must not need new threads then (the interpreter refuses them)."""
    big = os.urandom(20 * MiB)  # two parts of 16 + 4 MiB
    commit = fake_hub.add_files("org/m", {"config.json": b"{}", "model.safetensors": big})
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    env = {
        **os.environ,
        "HF_ENDPOINT": fake_hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "cache"),
        "MODELFETCH_MIRROR_URL": f"file://{bucket}",
    }
    done = subprocess.run(
        [sys.executable, "-c", "import modelfetch; modelfetch.snapshot_sync('org/m')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    etag = hashlib.sha256(big).hexdigest()
    parts = sorted((bucket / "parts" / etag).iterdir())
    assert [p.name for p in parts] == [f"{0:020d}-{16 * MiB:020d}", f"{16 * MiB:020d}-{20 * MiB:020d}"]
    assert b"".join(p.read_bytes() for p in parts) == big
    assert (bucket / "repos" / "models" / "org" / "m" / commit / "files" / "model.safetensors").is_file()

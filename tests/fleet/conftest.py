"""A real Ceph RADOS Gateway on 127.0.0.1 for the fleet tests, started once per session.

`scripts/rgw start` brings up a monitor, one OSD and radosgw (~15 s) in a temporary
folder; the session stops it at the end. Each test gets a bucket of its own. Without the
Ceph packages (`scripts/rgw install`, which `make test` runs) these tests fail with a
message saying so; deselect them with `-m "not rgw"`.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ._s3admin import create_bucket

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rgw"
_NAMES = itertools.count()


@dataclass(frozen=True)
class Gateway:
    """The running gateway: endpoint and the keys of its one S3 user."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str

    def env(self, bucket: str) -> dict[str, str]:
        """The variables a node needs to use `bucket` as its mirror."""
        return {
            "MODELFETCH_MIRROR_URL": f"s3://{bucket}",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder needs the gateway."""
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.rgw)


@pytest.fixture(scope="session")
def gateway() -> Iterator[Gateway]:
    """radosgw on loopback for the whole session."""
    if shutil.which("radosgw") is None:
        pytest.fail("radosgw is not installed: run `scripts/rgw install` (make test does), or -m 'not rgw'")
    folder = Path(tempfile.mkdtemp(prefix="modelfetch-rgw-"))
    try:
        started = subprocess.run(
            [str(SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=300, check=False
        )
        if started.returncode != 0:
            pytest.fail(f"scripts/rgw start failed:\n{started.stderr[-3000:]}")
        values = dict(line.split("=", 1) for line in (folder / "env").read_text().split())
        yield Gateway(
            values["MODELFETCH_TEST_S3_ENDPOINT"],
            values["AWS_ACCESS_KEY_ID"],
            values["AWS_SECRET_ACCESS_KEY"],
            values["AWS_REGION"],
        )
    finally:
        subprocess.run([str(SCRIPT), "stop", str(folder)], capture_output=True, timeout=120, check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def bucket_name(gateway: Gateway) -> str:
    """A new, empty bucket for this test."""
    name = f"fleet-{next(_NAMES)}"
    create_bucket(gateway.endpoint, name, gateway.access_key, gateway.secret_key, gateway.region)
    return name

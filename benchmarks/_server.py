"""Run a FakeHub in its own process for the benchmarks; print its endpoint as JSON, serve until stdin closes.

Repos: `bench/large` (one LFS file of --large-mib), `bench/many` (--small-count files of 4 KiB),
`bench/eight` (8 LFS files of --eight-mib each).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from modelfetch.testing import FakeHub

from ._common import MiB, random_file


def main() -> None:
    """Build the repos, start serving, print the endpoint, wait for stdin to close."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--eight-mib", type=int, default=128)
    parser.add_argument("--small-count", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp, FakeHub() as hub:
        root = Path(tmp)
        hub.add_file(
            "bench/large", "model.safetensors", random_file(root / "large", args.large_mib * MiB, seed=1)
        )
        eight = {
            f"model-{i:05d}.safetensors": random_file(root / f"e{i}", args.eight_mib * MiB, seed=10 + i)
            for i in range(8)
        }
        hub.add_files("bench/eight", eight)  # type: ignore[arg-type]
        hub.add_files(
            "bench/many", {f"shard/{i:04d}.json": (b"%04d" % i) * 1024 for i in range(args.small_count)}
        )
        print(json.dumps({"endpoint": hub.endpoint}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()

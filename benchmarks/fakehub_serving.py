"""FakeHub must never be the bottleneck: serve 1 GiB to `curl -o /dev/null` over loopback.

Reports curl's throughput (GB/s, median of runs) and the server process's RSS growth.
Run: `python -m benchmarks.fakehub_serving [--size-mib N] [--runs N]`.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from modelfetch.testing import FakeHub

from ._common import MiB, RssSampler, median_spread, random_file


def measure(size_mib: int, runs: int) -> dict[str, float]:
    """Serve a `size_mib` LFS file `runs` times; return throughput and RSS figures."""
    with tempfile.TemporaryDirectory() as tmp, FakeHub(cdn="none") as hub:
        blob = random_file(Path(tmp) / "big.bin", size_mib * MiB)
        hub.add_file("bench/big", "model.safetensors", blob)
        url = f"{hub.endpoint}/bench/big/resolve/main/model.safetensors"
        speeds: list[float] = []
        with RssSampler() as rss:
            for _ in range(runs):
                out = subprocess.run(
                    ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}", url],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                speeds.append(float(out.stdout) / 1e9)
    median, spread = median_spread(speeds)
    return {"gb_per_s": median, "spread": spread, "rss_delta_mib": rss.peak_delta / MiB}


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    r = measure(args.size_mib, args.runs)
    print(
        f"FakeHub -> curl, {args.size_mib} MiB x {args.runs}: {r['gb_per_s']:.2f} GB/s median "
        f"(spread {r['spread']:.2f}), server RSS +{r['rss_delta_mib']:.1f} MiB"
    )


if __name__ == "__main__":
    main()

"""The fleet benchmark: a fleet's cold start with and without a shared mirror bucket.

Starts a single-node Ceph RADOS Gateway (`scripts/rgw`, so Ceph must be installed: `make
rgw`) and a FakeHub holding two models, then starts node processes (each a fresh
interpreter with its own empty cache, configured only by environment variables, running
`modelfetch.snapshot_sync` through the default stack) in the scenarios of issue #28:

- the 128 MiB model (4 shards of 32 MiB): one node alone without and with the mirror,
  N nodes at once with and without it;
- a 1 GiB single-file model: one node alone without the mirror, N nodes at once with it.

Each scenario runs `--runs` times, interleaved, each with a fresh bucket; the report gives
the median. Two times per scenario: *ready*, from starting the processes until the last
node's snapshot returned (its files verified and published: it can serve), and *exit*,
until the last process ended (which waits for its background uploads). Hub copies are the
file bytes FakeHub served divided by the model's size, exact.

Writes docs/fleet-benchmark.md. Run: `python -m benchmarks.fleet [--nodes N] [--runs N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.fleet._s3admin import create_bucket

from modelfetch.testing import FakeHub, write_model_repo

from ._common import GiB, MiB

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "tests" / "fleet" / "_node.py"
RGW = ROOT / "scripts" / "rgw"


@dataclass(frozen=True)
class Scenario:
    """One row: which model, how many nodes, with or without the mirror."""

    name: str
    repo: str
    nodes: int
    mirror: bool


@dataclass
class Run:
    """One run of a scenario; CPU seconds of the node processes, of Ceph, and of FakeHub (this one)."""

    ready: float
    exit: float
    hub_bytes: int
    cpu_nodes: float
    cpu_ceph: float
    cpu_hub: float

    @property
    def busy(self) -> float:
        """The share of the machine's CPU time (all cores, over the `exit` wall) the run used."""
        return (self.cpu_nodes + self.cpu_ceph + self.cpu_hub) / ((os.cpu_count() or 1) * self.exit)


class Fleet:
    """The gateway, the hub and a scratch folder for the runs."""

    def __init__(self, work: Path, hub: FakeHub, rgw_env: dict[str, str], rgw_dir: Path) -> None:
        self.work, self.hub, self.rgw, self.rgw_dir = work, hub, rgw_env, rgw_dir
        self.buckets = 0
        self.caches = 0

    def bucket(self) -> str:
        """A fresh bucket."""
        self.buckets += 1
        name = f"bench-{self.buckets}"
        create_bucket(
            self.rgw["MODELFETCH_TEST_S3_ENDPOINT"],
            name,
            self.rgw["AWS_ACCESS_KEY_ID"],
            self.rgw["AWS_SECRET_ACCESS_KEY"],
            self.rgw["AWS_REGION"],
        )
        return name

    def env(self, bucket: str | None) -> dict[str, str]:
        """A node's environment: its own cache, the hub, and the bucket if any."""
        self.caches += 1
        env = {
            **os.environ,
            "HF_ENDPOINT": self.hub.endpoint,
            "HF_HUB_CACHE": str(self.work / "caches" / f"cache{self.caches}"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
        env.pop("MODELFETCH_MIRROR_URL", None)
        if bucket is not None:
            env.update(
                {
                    "MODELFETCH_MIRROR_URL": f"s3://{bucket}",
                    "AWS_ENDPOINT_URL": self.rgw["MODELFETCH_TEST_S3_ENDPOINT"],
                    "AWS_ACCESS_KEY_ID": self.rgw["AWS_ACCESS_KEY_ID"],
                    "AWS_SECRET_ACCESS_KEY": self.rgw["AWS_SECRET_ACCESS_KEY"],
                    "AWS_REGION": self.rgw["AWS_REGION"],
                }
            )
        return env

    def run(self, scenario: Scenario) -> Run:
        """Start the scenario's nodes at once; time them and count the Hub's bytes."""
        bucket = self.bucket() if scenario.mirror else None
        envs = [self.env(bucket) for _ in range(scenario.nodes)]
        _drop_caches()
        before = self.hub.file_bytes_served()
        nodes, ceph, hub = _children_cpu(), self._ceph_cpu(), time.process_time()
        start = time.time()
        procs = [self._start(scenario.repo, env) for env in envs]
        ready = [self._wait(proc) for proc in procs]
        ended = time.time()
        cpu = (_children_cpu() - nodes, self._ceph_cpu() - ceph, time.process_time() - hub)
        shutil.rmtree(self.work / "caches", ignore_errors=True)
        return Run(max(ready) - start, ended - start, self.hub.file_bytes_served() - before, *cpu)

    def _ceph_cpu(self) -> float:
        """CPU seconds used so far by the gateway's monitor, OSD and radosgw (from /proc)."""
        total = 0.0
        for pidfile in (self.rgw_dir / "run").glob("*.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{int(pidfile.read_text())}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    @staticmethod
    def _start(repo: str, env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(NODE), "env", repo],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def _wait(proc: subprocess.Popen[str]) -> float:
        out, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise SystemExit(f"a node failed:\n{err[-2000:]}")
        return float(json.loads(out.strip().splitlines()[-1])["ready_at"])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _drop_caches() -> None:
    """Start each run with a cold page cache where allowed (root): runs are then comparable."""
    subprocess.run(["sync"], check=False)
    with contextlib.suppress(OSError):
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _report(
    rows: dict[Scenario, list[Run]], sizes: dict[str, int], scenarios: list[Scenario], runs: int
) -> str:
    def med(scenario: Scenario, what: str) -> float:
        return statistics.median(getattr(r, what) for r in rows[scenario])

    alone, alone_mirror, together, together_plain, big_alone, big_together = scenarios
    lines = [
        "# Fleet benchmark",
        "",
        "Generated by `make bench-fleet` (`python -m benchmarks.fleet`); do not edit by hand.",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}. "
        f"Each node is a fresh interpreter with its own empty cache, configured only by environment "
        "variables, running `modelfetch.snapshot_sync` through the default stack (with "
        "`MODELFETCH_MIRROR_URL` set: `CachedSource(MirrorSource(upstream=HttpHubSource()))`). "
        "FakeHub and a single-node Ceph RADOS Gateway run on this same machine over loopback: "
        "every node, the Hub and Ceph share 2 cores and one disk, so seconds measure contention "
        "more than any network; the bytes are exact. "
        f"Median of {runs} runs per row, interleaved, page cache dropped before each.",
        "",
        "*ready*: from starting the node processes until the last one's snapshot returned (files "
        "verified and published; it can serve). *exit*: until the last process ended, which "
        "waits for its background uploads.",
        "",
        "*CPU s*: seconds of CPU the run used: the node processes (`sync` and their children "
        "included), Ceph (monitor, OSD, radosgw), FakeHub. *machine busy*: that total over "
        f"{os.cpu_count()} cores x the exit wall; near 100% the run waits on CPU, not on anything else.",
        "",
        "| scenario | ready s | exit s | Hub copies of the model | CPU s: nodes + Ceph + Hub | machine busy "
        "| runs (ready s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in scenarios:
        copies = med(s, "hub_bytes") / sizes[s.repo]
        each = ", ".join(f"{r.ready:.2f}" for r in rows[s])
        cpu = f"{med(s, 'cpu_nodes'):.1f} + {med(s, 'cpu_ceph'):.1f} + {med(s, 'cpu_hub'):.1f}"
        busy = statistics.median(r.busy for r in rows[s])
        times = f"{med(s, 'ready'):.2f} | {med(s, 'exit'):.2f}"
        lines.append(f"| {s.name} | {times} | {copies:.2f} | {cpu} | {busy:.0%} | {each} |")

    def ratio(a: Scenario, b: Scenario, what: str) -> str:
        return f"{med(a, what) / med(b, what):.2f}x"

    lines += [
        "",
        "| target (issue #28) | ready | exit | |",
        "|---|---|---|---|",
        f"| {together.nodes} nodes at once with the mirror <= 1.3x one node alone without | "
        f"{ratio(together, alone, 'ready')} | {ratio(together, alone, 'exit')} | "
        f"Hub copies {med(together, 'hub_bytes') / sizes[together.repo]:.2f} (target 1.0) |",
        f"| one node alone with the mirror <= 1.2x without | {ratio(alone_mirror, alone, 'ready')} | "
        f"{ratio(alone_mirror, alone, 'exit')} | |",
        f"| {big_together.name.split(':')[0]}, {big_together.nodes} nodes at once <= 1.5x one node alone | "
        f"{ratio(big_together, big_alone, 'ready')} | {ratio(big_together, big_alone, 'exit')} | "
        f"Hub copies {med(big_together, 'hub_bytes') / sizes[big_together.repo]:.2f} (target 1.0) |",
        f"| for scale: {together_plain.nodes} nodes at once without the mirror, vs one alone | "
        f"{ratio(together_plain, alone, 'ready')} | {ratio(together_plain, alone, 'exit')} | "
        f"Hub copies {med(together_plain, 'hub_bytes') / sizes[together_plain.repo]:.2f} |",
        "",
        "Where the fleet rows miss, look at *machine busy*: near 100%, the run is bound by this "
        "machine's CPUs. N nodes with the mirror do all that N nodes without it do (start an "
        "interpreter, write and hash a copy each) plus Ceph's work: every byte into the store "
        "once and out once per waiting node. One machine runs that in turn; a cluster, where each "
        "node and the store have CPUs and links of their own and the Hub link is the slow one, "
        "runs it side by side.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """Run the scenarios and write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shard-mib", type=int, default=32)
    parser.add_argument("--big-mib", type=int, default=GiB // MiB)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "fleet-benchmark.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelfetch-fleet-bench-"))
    rgw_dir = work / "rgw"
    started = subprocess.run([str(RGW), "start", str(rgw_dir)], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        raise SystemExit(f"scripts/rgw start failed:\n{started.stderr[-2000:]}")
    try:
        rgw_env = dict(line.split("=", 1) for line in (rgw_dir / "env").read_text().split())
        model = write_model_repo(work / "model", shards=4, shard_size=args.shard_mib * MiB, seed=11)
        big = work / "big"
        big.mkdir()
        with open(big / "model.safetensors", "wb") as f:
            for _ in range(args.big_mib):
                f.write(os.urandom(MiB))
        (big / "config.json").write_text('{"model_type": "big"}')
        n = args.nodes
        big_name = f"{args.big_mib} MiB single file"
        scenarios = [
            Scenario("128 MiB model: one node alone, no mirror", "org/model", 1, mirror=False),
            Scenario("128 MiB model: one node alone, with the mirror", "org/model", 1, mirror=True),
            Scenario(f"128 MiB model: {n} nodes at once, with the mirror", "org/model", n, mirror=True),
            Scenario(f"128 MiB model: {n} nodes at once, no mirror", "org/model", n, mirror=False),
            Scenario(f"{big_name}: one node alone, no mirror", "org/big", 1, mirror=False),
            Scenario(f"{big_name}: {n} nodes at once, with the mirror", "org/big", n, mirror=True),
        ]
        with FakeHub() as hub:
            hub.add_folder("org/model", model.folder)
            hub.add_folder("org/big", big)
            sizes = {"org/model": _folder_bytes(model.folder), "org/big": _folder_bytes(big)}
            fleet = Fleet(work, hub, rgw_env, rgw_dir)
            rows: dict[Scenario, list[Run]] = {s: [] for s in scenarios}
            fleet.run(scenarios[2])  # untimed: a new gateway's first writes are several times slower
            for _ in range(args.runs):
                for scenario in scenarios:
                    rows[scenario].append(fleet.run(scenario))
                    print(scenario.name, rows[scenario][-1], flush=True)
        report = _report(rows, sizes, scenarios, args.runs)
        args.out.write_text(report)
        print(report)
    finally:
        subprocess.run([str(RGW), "stop", str(rgw_dir)], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""One fleet node, run as its own process by the fleet tests and benchmark.

    python tests/fleet/_node.py env REPO
        snapshot REPO through the default stack, configured only by the environment
        (HF_ENDPOINT, HF_HUB_CACHE, MODELFETCH_MIRROR_URL, AWS_*)
    python tests/fleet/_node.py explicit REPO LEASE [--hang-in-upload]
        the same through CachedSource(MirrorSource(options=...)), printing the mirror's
        stats too; with --hang-in-upload it prints "uploading" once the first part of a
        multipart upload was sent and then hangs there, to be killed

Prints one JSON line: {"files": {path: sha256}, "stats": {...}}.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

import modelfetch
from modelfetch import CachedSource, HttpHubSource, MirrorOptions, MirrorSource
from modelfetch._mirror import bucket as bucket_module

MiB = 1024 * 1024


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _hang_in_upload() -> None:
    original = bucket_module._verified_chunks
    said = threading.Lock()  # several uploads run at once: announce only the first

    def chunks(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        for number, block in enumerate(original(*args, **kwargs)):
            if number == 1:  # the first part has been handed over; the upload is under way
                if said.acquire(blocking=False):
                    sys.stdout.write("uploading\n")
                    sys.stdout.flush()
                threading.Event().wait()
            yield block

    bucket_module._verified_chunks = chunks


async def _explicit(repo: str, lease: float) -> dict[str, object]:
    options = MirrorOptions(lease=lease, poll_interval=0.2, part_size=5 * MiB)
    mirror = MirrorSource(upstream=HttpHubSource(), options=options)
    async with CachedSource(mirror) as source:
        folder = await modelfetch.snapshot(repo, source=source)
        stats = dataclasses.asdict(mirror.stats())
    return {"files": _digests(folder), "stats": stats}


def main(argv: list[str]) -> None:
    """Run one node as asked on the command line."""
    mode, repo = argv[0], argv[1]
    if os.environ.get("NODE_LOG"):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if mode == "env":
        result: dict[str, object] = {"files": _digests(modelfetch.snapshot_sync(repo))}
    else:
        if "--hang-in-upload" in argv:
            _hang_in_upload()
        result = anyio.run(_explicit, repo, float(argv[2]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

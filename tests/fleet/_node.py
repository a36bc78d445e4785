"""One fleet node, run as its own process by the fleet tests and benchmark.

    python tests/fleet/_node.py env REPO
        snapshot REPO through the default stack, configured only by the environment
        (HF_ENDPOINT, HF_HUB_CACHE, MODELFETCH_MIRROR_URL, AWS_*); prints
        {"files": {path: sha256}, "ready_at": t}: the wall-clock time the snapshot returned
        (the process then exits, which waits for its background uploads)
    python tests/fleet/_node.py explicit REPO LEASE [HOOK...]
        the same through CachedSource(MirrorSource(options=...)) with 5 MiB parts, printing
        the mirror's stats too. Hooks, each a line on stdout the test can wait for:
        --hold-uploads   print {"phase": "fetched", "stats": ...} once the snapshot returned,
                         and let no write-back (blob, part, manifest) store anything until
                         a line arrives on stdin
        --hang-in-upload print "uploading" when the first upload is about to store
                         something, then hang there (to be killed)
        --announce-parts print "part START-END" each time a part is stored
        --announce-claim print "claimed FILENAME" when it wins the claim on a file
        --announce-read  print "reading" once the first parts came from the bucket

Prints one JSON line last: {"files": {path: sha256}, "stats": {...}}.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio

import modelfetch
from modelfetch import CachedSource, HttpHubSource, MirrorOptions, MirrorSource
from modelfetch._mirror import ingest as ingest_module
from modelfetch._mirror import parts as parts_module
from modelfetch._mirror.bucket import Bucket

MiB = 1024 * 1024
_say = threading.Lock()


def _line(text: str) -> None:
    with _say:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _before_every_store(hook: Any, prefixes: tuple[str, ...] = ("parts/",)) -> None:
    """Run `hook(key)` in the uploading thread before the mirror stores a blob, or an object
    under one of `prefixes` (parts; manifests too if asked)."""
    upload, create = Bucket.upload, Bucket.create

    def hooked_upload(self: Bucket, key: str, *args: Any, **kwargs: Any) -> None:
        hook(key)
        upload(self, key, *args, **kwargs)

    def hooked_create(self: Bucket, key: str, data: bytes | bytearray) -> str | None:
        if key.startswith(prefixes):
            hook(key)
        return create(self, key, data)

    Bucket.upload = hooked_upload  # type: ignore[method-assign]
    Bucket.create = hooked_create  # type: ignore[method-assign]


def _hold_uploads() -> None:
    go = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), go.set()), daemon=True).start()
    _before_every_store(lambda key: go.wait(), ("parts/", "repos/"))  # not claims: not write-back


def _hang_in_upload() -> None:
    said = threading.Lock()

    def hang(key: str) -> None:
        if said.acquire(blocking=False):
            _line("uploading")
        threading.Event().wait()

    _before_every_store(hang)


def _announce_parts() -> None:
    send = parts_module.PartPublisher._send

    def announced(self: parts_module.PartPublisher, fd: int, first: int, end: int) -> bool:
        sent = send(self, fd, first, end)
        if sent:
            _line(f"part {first}-{end}")
        return sent

    parts_module.PartPublisher._send = announced  # type: ignore[method-assign]


async def _explicit(repo: str, lease: float, hooks: list[str]) -> dict[str, object]:
    options = MirrorOptions(lease=lease, poll_interval=0.2, part_size=5 * MiB)
    mirror = MirrorSource(upstream=HttpHubSource(), options=options)
    async with CachedSource(mirror) as source:
        folder = await modelfetch.snapshot(repo, source=source)
        if "--hold-uploads" in hooks:
            _line(json.dumps({"phase": "fetched", "stats": dataclasses.asdict(mirror.stats())}))
    stats = dataclasses.asdict(mirror.stats())
    return {"files": _digests(folder), "stats": stats}


def _announce_claim() -> None:
    claimant = MirrorSource._fetch_as_claimant

    async def announced(self: MirrorSource, ref: Any, *args: Any) -> Any:
        _line(f"claimed {ref.filename}")
        return await claimant(self, ref, *args)

    MirrorSource._fetch_as_claimant = announced  # type: ignore[method-assign]


def _announce_read() -> None:
    pull_parts = ingest_module.pull_parts
    said = threading.Lock()

    def announced(bucket: Bucket, partial: Any, entry: Any, start: int, *rest: Any) -> int:
        reached = pull_parts(bucket, partial, entry, start, *rest)
        if reached > start and said.acquire(blocking=False):
            _line("reading")
        return reached

    ingest_module.pull_parts = announced


def main(argv: list[str]) -> None:
    """Run one node as asked on the command line."""
    mode, repo = argv[0], argv[1]
    if os.environ.get("NODE_LOG"):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if mode == "env":
        folder = modelfetch.snapshot_sync(repo)
        ready = time.time()  # wall clock: the benchmark compares it with when it started us
        result: dict[str, object] = {"files": _digests(folder), "ready_at": ready}
    else:
        hooks = argv[3:]
        if "--hold-uploads" in hooks:
            _hold_uploads()
        if "--hang-in-upload" in hooks:
            _hang_in_upload()
        if "--announce-parts" in hooks:
            _announce_parts()
        if "--announce-read" in hooks:
            _announce_read()
        if "--announce-claim" in hooks:
            _announce_claim()
        result = anyio.run(_explicit, repo, float(argv[2]), hooks)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Another local user of a shared cache folder: plants links, FIFOs and files in it.

Where the tests run as root, the neighbour really is another user (uid/gid 65534, run in a
subprocess), so what it plants is owned by someone else and it cannot write the victim's
folders; otherwise it runs as the same user. The cache is made group-writable (every folder
0o777, every file 0o666), as on a lab server with `HF_HUB_CACHE=/data/hf`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"  # the neighbour cannot enter /root, where our virtualenv may live

_SCRIPT = """
import json, os, shutil, sys
for op, *args in json.loads(sys.argv[1]):
    if op == "rm":
        path = args[0]
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
    elif op == "symlink":
        os.symlink(args[0], args[1])
    elif op == "mkfifo":
        os.mkfifo(args[0])
    elif op == "write":
        with open(args[0], "wb") as f:
            f.write(args[1].encode())
"""


@dataclass(frozen=True)
class Neighbour:
    """Runs planting operations as another user (when we are root) or as us."""

    other_user: bool

    @classmethod
    def here(cls) -> Neighbour:
        """Another user where we are root and a system Python exists to run as them; else us."""
        return cls(other_user=os.geteuid() == 0 and os.access(SYSTEM_PYTHON, os.X_OK))

    def plant(self, *ops: tuple[str, ...]) -> None:
        """Run `ops`: ("rm", path), ("symlink", target, path), ("mkfifo", path), ("write", path, text)."""
        extra: dict[str, object] = {}
        python = sys.executable
        if self.other_user:
            extra = {"user": NOBODY, "group": NOBODY, "extra_groups": [], "cwd": "/"}
            python = SYSTEM_PYTHON
        done = subprocess.run(
            [python, "-c", _SCRIPT, json.dumps([[str(a) for a in op] for op in ops])],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            **extra,  # type: ignore[arg-type]
        )
        assert done.returncode == 0, done.stderr

    def replace_with_link(self, path: Path, target: Path) -> None:
        """Replace the file or folder at `path` with a link to `target`."""
        self.plant(("rm", str(path)), ("symlink", str(target), str(path)))


def share(cache: Path) -> None:
    """Make every folder of `cache` 0o777 and every file 0o666 (a group-writable shared cache)."""
    for folder, dirs, files in os.walk(cache):
        os.chmod(folder, 0o777)
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                os.chmod(path, 0o666)
        for name in dirs:
            path = Path(folder, name)
            if not path.is_symlink():
                os.chmod(path, 0o777)


@dataclass(frozen=True)
class Shared:
    """A folder the neighbour can reach: `cache` (shared) and `victim` (ours, not theirs to write)."""

    root: Path
    cache: Path
    victim: Path

    def victim_state(self) -> dict[str, bytes | str]:
        """Every entry under `victim` (links not followed): a file's bytes, a link's target, 'dir'."""
        state: dict[str, bytes | str] = {}
        for path in sorted(self.victim.rglob("*")):
            rel = str(path.relative_to(self.victim))
            if path.is_symlink():
                state[rel] = "link -> " + os.readlink(path)
            elif path.is_dir():
                state[rel] = "dir"
            elif path.is_file():
                state[rel] = path.read_bytes()
            else:
                state[rel] = "special"
        return state


def shared_folder() -> Iterator[Shared]:
    """A fresh `Shared` under the system temp folder (pytest's own is private to us)."""
    root = Path(tempfile.mkdtemp(prefix="modelfetch-shared-"))
    try:
        os.chmod(root, 0o755)
        cache, victim = root / "cache", root / "victim"
        cache.mkdir(mode=0o777)
        os.chmod(cache, 0o777)
        victim.mkdir(mode=0o755)
        (victim / "authorized_keys").write_bytes(b"ssh-ed25519 AAAA... you@laptop\n")
        (victim / "id_ed25519").write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n")
        (victim / "main").write_bytes(b"victim's own refs/main\n")
        (victim / "config.json").write_bytes(b'{"victim": true}')
        (victim / "x.incomplete").write_bytes(b"the victim's own half-written file")
        (victim / f".{'c' * 64}.{'0' * 32}.tmp").write_bytes(b"an old file of the victim's")
        os.utime(victim / f".{'c' * 64}.{'0' * 32}.tmp", (1.0, 1.0))
        yield Shared(root, cache, victim)
    finally:
        shutil.rmtree(root, ignore_errors=True)

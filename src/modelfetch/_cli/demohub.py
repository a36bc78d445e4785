"""The demo's Hub in a process of its own: `python -m modelfetch._cli.demohub REPO FOLDER`.

The demo measures the client's event loop; a FakeHub in the same process would serve
from threads that share the client's GIL and blur the figures. This serves FOLDER as
REPO from a FakeHub on 127.0.0.1, prints one JSON line (`endpoint`, `commit`), then
answers one JSON line per command read from stdin: `count` (requests by method since
the last `clear`) and `clear`. It stops when stdin closes.
"""

from __future__ import annotations

import json
import sys

from ..testing import FakeHub


def main(argv: list[str] | None = None) -> int:
    """Serve until stdin closes; 2 on a wrong command line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m modelfetch._cli.demohub REPO FOLDER", file=sys.stderr)
        return 2
    repo, folder = args
    with FakeHub() as hub:
        commit = hub.add_folder(repo, folder)
        print(json.dumps({"endpoint": hub.endpoint, "commit": commit}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            answer: dict[str, object]
            if command == "count":
                answer = {"HEAD": hub.count("HEAD"), "GET": hub.count("GET"), "all": len(hub.requests)}
            elif command == "clear":
                hub.clear_requests()
                answer = {}
            else:
                answer = {"error": f"unknown command {command[:40]!r}; use count or clear"}
            print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

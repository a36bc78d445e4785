"""FakeHub's router is a pure function: answers decided without sockets."""

from __future__ import annotations

import json

from modelfetch.testing import FakeHub
from modelfetch.testing._routes import HubRequest, route


def test_the_router_answers_without_a_socket() -> None:
    """Metadata, ranges, listings and errors come straight from route(), the same as over HTTP."""
    hub = FakeHub(cdn="none")
    try:
        commit = hub.add_file("org/model", "config.json", b'{"a": 1}', lfs=False)
        core = hub._core  # the state the server threads share

        head = route(core, HubRequest("HEAD", "/org/model/resolve/main/config.json"), cdn_only=False)
        assert head.status == 200
        assert head.headers["X-Repo-Commit"] == commit
        assert head.headers["Content-Length"] == "8"

        ranged = route(
            core, HubRequest("GET", "/org/model/resolve/main/config.json", range="bytes=2-4"), cdn_only=False
        )
        assert (ranged.status, ranged.start, ranged.length) == (206, 2, 3)
        assert ranged.headers["Content-Range"] == "bytes 2-4/8"

        tree = route(
            core, HubRequest("GET", f"/api/models/org/model/tree/{commit}?recursive=true"), cdn_only=False
        )
        assert [item["path"] for item in json.loads(tree.body)] == ["config.json"]

        missing = route(core, HubRequest("HEAD", "/org/model/resolve/main/nope.json"), cdn_only=False)
        assert (missing.status, missing.headers["X-Error-Code"]) == (404, "EntryNotFound")
        assert (
            route(core, HubRequest("GET", "/org/model/resolve/main/config.json"), cdn_only=True).status == 404
        )
    finally:
        hub.stop()

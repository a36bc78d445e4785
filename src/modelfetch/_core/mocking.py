"""Whether httpx's request path is patched right now: a respx mock, or another test double. No import.

Looks at where httpx's and httpcore's request methods are defined (a patch is defined
elsewhere: respx's `using="httpx"` replaces `Client._transport_for_url`, its default replaces
httpcore's `handle_request`/`handle_async_request`), never at respx's own state, and only at
modules already imported (a process that never imported httpx has nothing patched).
"""

from __future__ import annotations

import sys

_PATCH_POINTS = (
    ("httpx", ("AsyncClient", "Client"), "_transport_for_url"),
    ("httpcore", ("AsyncConnectionPool", "AsyncHTTPConnection"), "handle_async_request"),
    ("httpcore", ("ConnectionPool", "HTTPConnection"), "handle_request"),
)


def http_mocked() -> bool:
    """Whether any of httpx's or httpcore's request methods is defined outside those packages now."""
    for module_name, classes, method_name in _PATCH_POINTS:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for class_name in classes:
            method = getattr(getattr(module, class_name, None), method_name, None)
            home = str(getattr(method, "__module__", None) or "")
            if method is not None and not home.startswith(module_name):
                return True
    return False

"""A deadline for the status line and headers of huggingface_hub's answers, in its own threads.

httpx2's read timeout applies to each socket read, so a server that sends one header line
(or one `100 Continue`) every few seconds keeps a read going forever. The guard's request
hook notes when the answer's headers are due (the read timeout from now) and its response
hook clears that; the network streams of the client's connection pool, wrapped here, shorten
each read to what is left of that deadline and raise `ReadTimeout` once it has passed. So
the worker thread itself ends (and releases huggingface_hub's blob lock), and our retry
policy decides what comes next. Outside a guarded call nothing changes.

The pool's network backend is httpcore2's private `_network_backend`; if a future version
moves it, headers are bounded per read only and the header tests for `HubSource` fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpcore2
import httpx2

Due = Callable[[], float | None]
"""When (monotonic) the headers being read in this thread are due, or None for no deadline."""


class _DeadlineStream(httpcore2.NetworkStream):
    """A network stream whose reads stop at the header deadline `due()` gives."""

    def __init__(self, inner: httpcore2.NetworkStream, due: Due) -> None:
        self._inner = inner
        self._due = due

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read, within the per-read timeout and whatever is left of the header deadline."""
        due = self._due()
        if due is not None:
            left = due - time.monotonic()
            if left <= 0:
                raise httpcore2.ReadTimeout("the server did not finish sending its headers in time")
            timeout = left if timeout is None else min(timeout, left)
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write `buffer`."""
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        """Close the stream."""
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        """Upgrade to TLS; the TLS stream keeps the deadline."""
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout), self._due)

    def get_extra_info(self, info: str) -> Any:
        """The inner stream's extra info."""
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore2.NetworkBackend):
    """Connects as the wrapped backend does; its streams keep the header deadline."""

    def __init__(self, inner: httpcore2.NetworkBackend, due: Due) -> None:
        self.inner = inner
        self._due = due

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore2.NetworkStream:
        """A TCP connection whose reads keep the deadline."""
        return _DeadlineStream(self.inner.connect_tcp(*args, **kwargs), self._due)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore2.NetworkStream:
        """A Unix-socket connection whose reads keep the deadline."""
        return _DeadlineStream(self.inner.connect_unix_socket(*args, **kwargs), self._due)

    def sleep(self, seconds: float) -> None:
        """Sleep as the wrapped backend does."""
        self.inner.sleep(seconds)


def bound_headers_of(transport: httpx2.BaseTransport, due: Due) -> httpx2.BaseTransport:
    """Wrap `transport`'s pool's network backend (once); `transport` itself is returned."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is not None and not isinstance(backend, _DeadlineBackend):
        pool._network_backend = _DeadlineBackend(backend, due)  # type: ignore[union-attr]
    return transport


def bound_headers(client: httpx2.Client, due: Due) -> None:
    """Bound header sections on `client`'s direct transport and its mounted ones."""
    transport = getattr(client, "_transport", None)
    if transport is not None:
        bound_headers_of(transport, due)
    for mounted in getattr(client, "_mounts", {}).values():
        if mounted is not None:
            bound_headers_of(mounted, due)

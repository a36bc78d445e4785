"""FakeHub's socket side: faults, then the router's answer written to the connection.

What to answer is decided by `_routes.route` (pure); this module applies the faults a test
injected (latency, statuses, non-Hub bodies, redirects, drops, stalls, holds, throttling,
corruption, lying lengths) and writes headers and bodies (`sendfile` when nothing interferes).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from ._faults import Fault, FaultPlan
from ._hubstate import HubState
from ._requestlog import LiveRecord, RequestLog
from ._routes import HubRequest, HubResponse, error_response, route

_CHUNK = 256 * 1024
_NO_FAULT = Fault()


@dataclass(slots=True)
class HubCore:
    """What the server threads share: state, faults, log, tokens and addresses."""

    state: HubState
    tokens: frozenset[str]
    cdn: str
    page_size: int
    faults: FaultPlan = field(default_factory=FaultPlan)
    log: RequestLog = field(default_factory=RequestLog)
    stopping: threading.Event = field(default_factory=threading.Event)
    endpoint: str = ""
    cdn_base: str = ""
    connections: set[socket.socket] = field(default_factory=set)
    connections_lock: threading.Lock = field(default_factory=threading.Lock)


class HubServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server bound to loopback."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, port: int, core: HubCore, *, cdn_only: bool = False) -> None:
        self.core = core
        self.cdn_only = cdn_only
        super().__init__(("127.0.0.1", port), HubHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client goes away (that is what clients do); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Dropped(Exception):
    """The body was cut short on purpose (a drop fault)."""


class HubHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and a small body go out as two writes; no 40 ms stalls
    server: HubServer

    def setup(self) -> None:
        """Register the connection so stopping the hub can close it."""
        super().setup()
        with self.server.core.connections_lock:
            self.server.core.connections.add(self.connection)

    def finish(self) -> None:
        """Forget the connection."""
        with self.server.core.connections_lock:
            self.server.core.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; the request log is the record."""

    def do_GET(self) -> None:
        """Serve a GET."""
        self._handle(head=False)

    def do_HEAD(self) -> None:
        """Serve a HEAD."""
        self._handle(head=True)

    def do_POST(self) -> None:
        """Refuse writes: FakeHub is read-only over HTTP."""
        self.close_connection = True
        self._handle(head=False, allowed=False)

    do_PUT = do_DELETE = do_PATCH = do_POST

    # ---- the request cycle ---------------------------------------------------------------

    def _handle(self, *, head: bool, allowed: bool = True) -> None:
        core = self.server.core
        self._head = head
        self._completed = True
        target = unquote(self.path)
        self._record = core.log.begin(
            LiveRecord(
                method=self.command,
                path=target,
                authorized="Authorization" in self.headers,
                range=self.headers.get("Range"),
                port=self.server.server_address[1],
            )
        )
        try:
            fault = core.faults.take(self.command, target)
            if fault.latency:
                core.stopping.wait(fault.latency)
            if not allowed:
                self._send(error_response(405, "Method not allowed"))
            elif fault.status is not None:
                retry = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                self._send(
                    error_response(fault.status, f"Injected fault: HTTP {fault.status}", headers=retry)
                )
            elif fault.body is not None:
                headers = {"Content-Type": fault.content_type, "Content-Length": str(len(fault.body))}
                self._send(HubResponse(200, headers, fault.body))
            elif fault.redirect_slash and not urlsplit(self.path).path.endswith("/"):
                parts = urlsplit(self.path)
                location = parts.path + "/" + (f"?{parts.query}" if parts.query else "")
                self._send(HubResponse(307, {"Location": location, "Content-Length": "0"}))
            else:
                self._route(fault)
        except (_Dropped, OSError):
            self._completed = False
            self.close_connection = True
            _shutdown(self.connection)
        finally:
            core.log.finish(self._record, completed=self._completed)

    @property
    def _sent(self) -> int:
        return self._record.bytes_sent

    @_sent.setter
    def _sent(self, value: int) -> None:
        self._record.bytes_sent = value

    def _route(self, fault: Fault) -> None:
        wanted = None if fault.ignore_range else self.headers.get("Range")
        request = HubRequest(self.command, self.path, self.headers.get("Authorization"), wanted)
        self._send(route(self.server.core, request, cdn_only=self.server.cdn_only), fault)

    # ---- responses -----------------------------------------------------------------------

    def _start(self, status: int, headers: Mapping[str, str]) -> None:
        self._record.status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send(self, response: HubResponse, fault: Fault = _NO_FAULT) -> None:
        """Write `response`; a blob body goes through `fault` (drops, stalls, lies, corruption)."""
        blob = response.blob
        if blob is not None and fault.length_delta:
            response.headers["Content-Length"] = str(response.length + fault.length_delta)
            self.close_connection = True
        self._start(response.status, response.headers)
        if self._head:
            return
        if blob is None:
            if response.body:
                self.wfile.write(response.body)
                self._sent += len(response.body)
            return
        if response.length == 0:
            return
        with blob.path.open("rb") as f:
            if _is_plain(fault):
                self._sent += self.connection.sendfile(f, response.start, response.length)
                if self._sent < response.length:
                    raise _Dropped
            else:
                self._send_with_faults(f, response.start, response.length, fault)

    def _send_with_faults(self, f: Any, start: int, length: int, fault: Fault) -> None:
        stopping = self.server.core.stopping
        limit = length if fault.drop_after is None else min(length, fault.drop_after)
        chunk = _CHUNK if fault.throttle is None else max(1, min(_CHUNK, fault.throttle // 20))
        stalled = False
        f.seek(start)
        while self._sent < limit:
            pausing = bool(fault.stall) or fault.hold is not None
            if pausing and not stalled and self._sent >= fault.stall_after:
                stalled = True
                stopping.wait(fault.stall)
                _hold(fault.hold, stopping)
            step = min(chunk, limit - self._sent)
            if pausing and not stalled:
                step = min(step, max(fault.stall_after - self._sent, 1))
            data = bytearray(f.read(step))
            if (
                fault.corrupt_at is not None
                and start + self._sent <= fault.corrupt_at < start + self._sent + len(data)
            ):
                data[fault.corrupt_at - start - self._sent] ^= 0xFF
            self.connection.sendall(data)
            self._sent += len(data)
            if fault.throttle is not None and stopping.wait(len(data) / fault.throttle):
                raise _Dropped
        if self._sent < length:
            raise _Dropped


def _is_plain(fault: Fault) -> bool:
    return (
        fault.drop_after is None
        and not fault.stall
        and fault.hold is None
        and fault.throttle is None
        and fault.corrupt_at is None
    )


def _hold(event: threading.Event | None, stopping: threading.Event) -> None:
    """Wait until `event` is set; drop the connection if the server stops first."""
    while event is not None and not event.wait(0.05):
        if stopping.is_set():
            raise _Dropped


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)

"""A hostile HTTP server of our own: it sends exactly the answer a test scripts, lies included.

Unlike FakeHub it has no notion of politeness: headers, lengths and bodies are written raw,
so a test can announce 10 bytes and send a gigabyte, trickle one byte a second, never
answer, or name a path in a header. It listens on any loopback address (127.0.0.2 gives a
second origin) and records every request, headers included, so tests can see where a
token went.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType


@dataclass(frozen=True)
class Request:
    """What the server received."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Answer:
    """What to send back. The body is sent as given, whatever `headers` announce."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: Iterator[bytes] | None = None  # sent one after another instead of `body`
    trickle: float = 0.0  # seconds between body bytes (a slow-loris body)
    hang: bool = False  # read the request, then send nothing until the server stops
    header_trickle: float = 0.0  # after the status line, one more header line this often, forever
    continues: float = 0.0  # a `100 Continue` this often, forever, before any final answer


Script = Callable[[Request], Answer]


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def setup(self) -> None:
        if self.server.tls is not None:  # a client that refuses our certificate ends it here
            tls = self.server.tls.wrap_socket(self.request, server_side=True, do_handshake_on_connect=False)
            try:
                tls.do_handshake()
            except BaseException:
                tls.close()
                raise
            self.request = tls
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self.server.tls is not None:  # the server closes the plain socket, which TLS detached
                self.request.close()

    def handle(self) -> None:
        line = self.rfile.readline(65536).decode("latin-1").strip()
        if not line:
            return
        method, path, _ = [*line.split(" ", 2), "", ""][:3]
        headers: dict[str, str] = {}
        while (raw := self.rfile.readline(65536).decode("latin-1").strip()) != "":
            name, _, value = raw.partition(":")
            headers[name.strip().lower()] = value.strip()
        request = Request(method, path, headers)
        with self.server.lock:
            self.server.requests.append(request)
        answer = self.server.script(request)
        stop = self.server.stopping
        if answer.hang:
            stop.wait()
            return
        if answer.continues or answer.header_trickle:
            self._never_ending_head(answer)
            return
        head = [f"HTTP/1.1 {answer.status} X"]
        sends_length = any(k.lower() == "content-length" for k in answer.headers)
        head += [f"{k}: {v}" for k, v in answer.headers.items()]
        if not sends_length and answer.chunks is None:
            head.append(f"Content-Length: {len(answer.body)}")
        head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if method == "HEAD":
            return
        try:
            if answer.chunks is not None:
                for chunk in answer.chunks:
                    if stop.is_set():
                        return
                    self.wfile.write(chunk)
            elif answer.trickle:
                for i in range(len(answer.body)):
                    if stop.wait(answer.trickle):
                        return
                    self.wfile.write(answer.body[i : i + 1])
                    self.wfile.flush()
            else:
                self.wfile.write(answer.body)
        except OSError:
            return

    def _never_ending_head(self, answer: Answer) -> None:
        """`100 Continue` after `100 Continue`, or a status line then header after header."""
        stop, number = self.server.stopping, 0
        if answer.header_trickle:
            self.wfile.write(f"HTTP/1.1 {answer.status} X\r\n".encode("latin-1"))
        try:
            while not stop.wait(answer.continues or answer.header_trickle):
                number += 1
                line = (
                    "HTTP/1.1 100 Continue\r\n\r\n" if answer.continues else f"X-Pad-{number}: {number}\r\n"
                )
                self.wfile.write(line.encode("latin-1"))
                self.wfile.flush()
        except OSError:
            return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, script: Script, tls: ssl.SSLContext | None) -> None:
        super().__init__((host, 0), _Handler)
        self.tls = tls
        self.script = script
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):  # a refused handshake
            super().handle_error(request, client_address)


class Hostile:
    """`with Hostile(script) as server:` a server at `server.url` answering per `script`."""

    def __init__(self, script: Script, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self._server = _Server(host, script, tls)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        """The base URL, like `http://127.0.0.1:40123` (`https://` with `tls`)."""
        host, port = self._server.server_address[:2]
        return f"{'https' if self._server.tls else 'http'}://{host}:{port}"

    @property
    def requests(self) -> list[Request]:
        """Every request received so far."""
        with self._server.lock:
            return list(self._server.requests)

    def __enter__(self) -> Hostile:
        self._thread.start()
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def loopback_available(host: str) -> bool:
    """Whether this machine can listen on `host` (127.0.0.2 is loopback on Linux, not everywhere)."""
    try:
        with socket.socket() as s:
            s.bind((host, 0))
    except OSError:
        return False
    return True

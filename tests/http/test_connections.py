"""The httpx client HubClient builds: idle connections the server closed, cookies, respx."""

from __future__ import annotations

import queue
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import anyio
import anyio.to_thread
import httpx
import pytest
import respx

from modelfetch._http.connections import LeanTransport, RememberingBackend, StatelessClient

pytestmark = pytest.mark.anyio


def _client() -> StatelessClient:
    return StatelessClient(
        verify=ssl.create_default_context(),
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
        follow_redirects=False,
    )


class _OneAnswerServer:
    """Answers one request per connection (keep-alive announced), then closes it and says so."""

    def __init__(self, extra_headers: str = "") -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.closed: queue.Queue[None] = queue.Queue()
        self.requests: list[str] = []
        self.connections = 0
        self._extra = extra_headers
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    head += chunk
                self.requests.append(head.decode("latin-1"))
                answer = f"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{self._extra}\r\nok"
                conn.sendall(answer.encode("latin-1"))
                conn.shutdown(socket.SHUT_RDWR)
            self.closed.put(None)

    def close(self) -> None:
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept (close alone does not)
        self._listener.close()
        self._thread.join(timeout=5)


@contextmanager
def _server(extra_headers: str = "") -> Iterator[_OneAnswerServer]:
    server = _OneAnswerServer(extra_headers)
    try:
        yield server
    finally:
        server.close()


async def test_an_idle_connection_the_server_closed_is_not_used_again() -> None:
    """The idle check sees the server's close: the next request opens a new connection and succeeds."""
    with _server() as server:
        async with _client() as client:
            first = await client.get(f"{server.url}/a")
            await anyio.to_thread.run_sync(server.closed.get)  # the server has closed that connection
            second = await client.get(f"{server.url}/b")
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.content == b"ok"
    assert server.connections == 2


async def test_the_client_keeps_no_cookies() -> None:
    """A cookie the server sets is neither kept nor sent back."""
    with _server("Set-Cookie: session=secret; Path=/\r\n") as server:
        async with _client() as client:
            await client.get(f"{server.url}/a")
            await anyio.to_thread.run_sync(server.closed.get)
            await client.get(f"{server.url}/b")
            assert not client.cookies
            client.cookies = {"x": "y"}  # ignored, as documented
            assert not client.cookies
    assert all("cookie" not in request.lower() for request in server.requests)


def test_the_direct_transport_is_ours_on_this_httpx() -> None:
    """Pins the shortcut on the installed httpx: its pool runs on RememberingBackend.

    Reads private attributes on purpose: if a new httpx moves them, the client still works
    (with httpx's own pool) and this test says the shortcut is gone.
    """
    client = _client()
    transport = client._transport
    assert isinstance(transport, LeanTransport)
    assert isinstance(transport._pool._network_backend, RememberingBackend)  # type: ignore[union-attr]


@pytest.mark.parametrize("using", ["httpcore", "httpx"])
async def test_respx_still_intercepts(using: str) -> None:
    """Both of respx's mockers see requests of this client: nothing goes around a mock."""
    with respx.mock(using=using, assert_all_mocked=True) as mock:
        mock.get("http://hub.invalid/x").respond(200, content=b"mocked")
        async with _client() as client:
            response = await client.get("http://hub.invalid/x")
    assert response.content == b"mocked"


@pytest.mark.parametrize("using", ["httpcore", "httpx"])
def test_a_patched_request_path_is_noticed_without_reading_respx(using: str) -> None:
    """Under respx (either mocker) the source sees a patched transport; outside it, none."""
    from modelfetch._core.mocking import http_mocked as transport_patched

    assert not transport_patched()
    with respx.mock(using=using):
        assert transport_patched()
    assert not transport_patched()

"""The httpx client `HubClient` builds, with two per-request costs taken out.

Measured with py-spy on the event loop's thread during a snapshot of 500 x 4 KiB files
(one GET each), two costs of httpx's defaults stood out, neither of which buys us anything:

- Before and after every request, httpcore asks each idle connection whether the server
  closed it (`get_extra_info("is_readable")`). On asyncio, anyio answers by building a dict
  of every socket attribute, with a `getpeername()` system call, every time: with 8
  connections ~10% of the loop's time. `RememberingBackend` keeps each connection's socket
  and polls it directly — the same question, the same answer.
- httpx files each response's cookies in an `http.cookiejar`, parsing every request's URL
  and headers to do so: ~5-10%. The Hub's protocol is stateless (the token is a header), so
  `StatelessClient` keeps no cookies and sends none.

Both leave the request path as respx sees it: the transport is still an
`httpx.AsyncHTTPTransport` over an `httpcore.AsyncConnectionPool`, the two classes respx patches.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import sys
import typing
from collections.abc import Iterable
from http.cookiejar import Cookie, CookieJar

import httpcore
import httpx

from .._core.proxies import ProxyRules
from .._core.service import running_backend
from .proxies import ProxyRouter

_SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


def socket_closed_or_readable(sock: socket.socket | None) -> bool:
    """Whether `sock` has data or an end of stream waiting (or is gone): an idle connection is then dead.

    An idle HTTP/1.1 connection is sent nothing; anything readable is the server's close.
    """
    if sock is None or sock.fileno() == -1:
        return True
    if sys.platform == "win32" or not hasattr(select, "poll"):
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class _RememberingStream(httpcore.AsyncNetworkStream):
    """An anyio stream that knows its socket, so the idle check is one `poll` and nothing more."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read up to `max_bytes`."""
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write all of `buffer`."""
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        """Close the connection."""
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Upgrade to TLS; the socket underneath stays the same."""
        return _RememberingStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        """As the inner stream, but `socket` and `is_readable` from the remembered socket."""
        if info == "socket":
            return self._socket
        if info == "is_readable":
            return socket_closed_or_readable(self._socket)
        return self._inner.get_extra_info(info)


class RememberingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own backends (anyio on asyncio, trio on trio); on asyncio, streams remember their socket.

    trio's streams already answer the idle check from their socket, so they are left as they are.
    """

    def __init__(self) -> None:
        self._inner: httpcore.AsyncNetworkBackend | None = None
        self._wrap = False

    def _backend(self) -> httpcore.AsyncNetworkBackend:
        if self._inner is None:
            if running_backend() == "trio":
                self._inner = httpcore.TrioBackend()
            else:
                self._inner, self._wrap = httpcore.AnyIOBackend(), True
        return self._inner

    def _stream(self, stream: httpcore.AsyncNetworkStream) -> httpcore.AsyncNetworkStream:
        return _RememberingStream(stream) if self._wrap else stream

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Open a TCP connection."""
        backend = self._backend()
        stream = await backend.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return self._stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Open a Unix socket connection."""
        backend = self._backend()
        stream = await backend.connect_unix_socket(path, timeout=timeout, socket_options=socket_options)
        return self._stream(stream)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the running event loop."""
        await self._backend().sleep(seconds)


class LeanTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, with its connection pool on `RememberingBackend`.

    httpx takes no network backend, so the pool it built is replaced by an equal one that
    has ours. Should a future httpx keep its pool elsewhere, its own stays: slower, not wrong.
    """

    def __init__(self, *, verify: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=verify, limits=limits)
        if isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=verify,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=RememberingBackend(),
            )


class _EmptyJar(CookieJar):
    """A cookie jar that never holds a cookie."""

    def set_cookie(self, cookie: Cookie) -> None:
        """Keep nothing."""

    def extract_cookies(self, response: typing.Any, request: typing.Any) -> None:
        """Keep nothing."""

    def add_cookie_header(self, request: typing.Any) -> None:
        """Add nothing."""


class _NoCookies(httpx.Cookies):
    """An always empty cookie store; it skips httpx's per-request cookie work altogether."""

    def __init__(self) -> None:
        super().__init__(_EmptyJar())

    def extract_cookies(self, response: httpx.Response) -> None:
        """Keep nothing."""

    def set_cookie_header(self, request: httpx.Request) -> None:
        """Add nothing."""


_NO_COOKIES = _NoCookies()


class StatelessClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` that keeps no cookies and, unless given a transport, uses `LeanTransport`.

    Proxies come from the environment as `ProxyRules` reads them (CIDR blocks in `NO_PROXY`
    included, which httpx's own reading lacks): with any proxy set, a `ProxyRouter` sits in
    front of the direct transport. A transport passed in (a test's mock) is used as it is.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext,
        limits: httpx.Limits,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: typing.Any,
    ) -> None:
        if transport is None:
            transport = LeanTransport(verify=verify, limits=limits)
            rules = ProxyRules.from_env(os.environ)
            if rules.proxies:
                transport = ProxyRouter(
                    transport,
                    rules,
                    lambda proxy: httpx.AsyncHTTPTransport(proxy=proxy, verify=verify, limits=limits),
                )
        super().__init__(verify=verify, limits=limits, transport=transport, trust_env=False, **options)

    @property
    def cookies(self) -> httpx.Cookies:
        """Always empty."""
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: typing.Any) -> None:
        """Ignored: this client keeps no cookies."""

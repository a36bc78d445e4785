"""A transport that sends each request direct or through the proxy `ProxyRules` picks for it.

httpx turns `NO_PROXY` into URL patterns, which cannot express a CIDR block, so the client
is built with `trust_env=False` and this router in front: the decision is
`modelfetch._core.proxies`' (the same for the libcurl engine and huggingface_hub's client).
The direct transport is whatever the client would use anyway (`LeanTransport`); proxied
ones are httpx's own, one per proxy URL, made on first use.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from .._core.proxies import ProxyRules


class ProxyRouter(httpx.AsyncBaseTransport):
    """Route each request to `direct`, or to a transport for the proxy `rules` choose."""

    def __init__(
        self,
        direct: httpx.AsyncBaseTransport,
        rules: ProxyRules,
        via: Callable[[str], httpx.AsyncBaseTransport],
    ) -> None:
        self.direct = direct
        self._rules = rules
        self._via = via
        self._proxied: dict[str, httpx.AsyncBaseTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on the transport its URL calls for."""
        proxy = self._rules.proxy_for(str(request.url))
        if proxy is None:
            return await self.direct.handle_async_request(request)
        if proxy not in self._proxied:
            self._proxied[proxy] = self._via(proxy)
        return await self._proxied[proxy].handle_async_request(request)

    async def aclose(self) -> None:
        """Close every transport made."""
        for transport in (self.direct, *self._proxied.values()):
            await transport.aclose()

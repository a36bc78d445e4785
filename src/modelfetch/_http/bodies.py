"""Reading answers: a file body opened with redirects followed by hand (`BodyStream`), a
small answer read whole (`read_capped`), and any body's bytes at a pace and within a size
(`body_chunks`). Every answer is first judged by `modelfetch._hubapi.spec.classify`."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, suppress
from typing import Protocol

import anyio
import httpx

from .._core.errors import FetchError, IntegrityError, SourceUnavailableError
from .._core.retry import Transient
from .._core.speed import LowSpeed
from .._core.types import AssetRef, RepoRef
from .._hubapi.spec import MAX_REDIRECTS, Outcome, judge_body, redirect_target


class Sender(Protocol):
    """What a body needs of the client that opens it (`HubClient` is one)."""

    async def send_streaming(self, url: str, headers: dict[str, str]) -> httpx.Response:
        """Send a GET and return the response with its body not yet read."""
        ...

    def headers_for(self, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Headers for a request to `url` (the token only on the endpoint's origin)."""
        ...

    def classify(self, response: httpx.Response, what: AssetRef | RepoRef) -> Outcome:
        """What `response` means."""
        ...


class BodyStream:
    """`async with` a GET of `url` from `start` (to `last`), redirects followed by hand.

    Raises `Transient` for retryable statuses and the final error for the others; refuses any
    `Content-Encoding` (identity was asked for), so bodies are never inflated.
    """

    def __init__(self, client: Sender, ref: AssetRef, url: str, start: int, last: int | None) -> None:
        self._client, self._ref, self._url = client, ref, url
        self._first, self._last = start, last
        self._range = (
            f"bytes={start}-{'' if last is None else last}" if start > 0 or last is not None else None
        )
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        client, url = self._client, self._url
        extra = {"range": self._range} if self._range else {}
        for _ in range(MAX_REDIRECTS):
            response = await client.send_streaming(url, client.headers_for(url, extra))
            location = response.headers.get("location")
            if response.is_redirect and location:
                await response.aclose()
                url = redirect_target(url, location)
                continue
            await self._refuse_unless_body(response)
            self._response = response
            return response
        raise SourceUnavailableError(f"Fetching {self._ref}: more than {MAX_REDIRECTS} redirects.")

    async def _refuse_unless_body(self, response: httpx.Response) -> None:
        outcome = self._client.classify(response, self._ref)
        if outcome.kind == "ok":
            headers = response.headers
            verdict = judge_body(
                response.status_code,
                headers.get("content-range"),
                headers.get("content-encoding"),
                self._first,
                self._last,
            )
            if verdict != "encoded":  # "wrong-range" is the caller's to judge: it may resume elsewhere
                return
            await response.aclose()
            raise encoded_body(self._ref, headers.get("content-encoding"))
        await response.aclose()
        if outcome.kind == "retry":
            raise Transient(
                f"HTTP {response.status_code}", error_of(outcome), retry_after=outcome.retry_after
            )
        if outcome.kind == "redirect":  # a 3xx httpx does not follow (300, 304, 305): not a body
            raise SourceUnavailableError(
                f"Fetching {self._ref}: the server answered HTTP {response.status_code} instead of the file."
            )
        raise error_of(outcome)

    async def __aexit__(self, *exc: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def encoded_body(ref: AssetRef, encoding: str | None) -> SourceUnavailableError:
    """The error for a body sent with a `Content-Encoding` (never inflated, never written)."""
    return SourceUnavailableError(
        f"Fetching {ref}: the server sent the file with Content-Encoding "
        f"{(encoding or '').strip()[:40]!r} although identity was asked for; nothing was written."
    )


def error_of(outcome: Outcome) -> FetchError:
    """The error an outcome of "retry" or "fail" carries."""
    assert outcome.error is not None  # "retry" and "fail" always carry one
    return outcome.error


async def read_capped(response: httpx.Response, cap: int, pace: LowSpeed) -> httpx.Response:
    """A streamed small (metadata or API) answer, read whole at `pace`; over `cap` bytes is refused."""
    body = bytearray()
    try:
        async with aclosing(body_chunks(response, None, pace)) as chunks:
            async for chunk in chunks:
                body += chunk
                if len(body) > cap:
                    raise SourceUnavailableError(
                        f"{response.request.url} answered with more than {cap} bytes; "
                        "no Hub metadata or listing page is that large."
                    )
    finally:
        await response.aclose()
    headers = response.headers.copy()
    headers.pop("content-encoding", None)  # `body` is decoded already
    return httpx.Response(
        response.status_code, headers=headers, content=bytes(body), request=response.request
    )


async def body_chunks(
    response: httpx.Response, limit: int | None, pace: LowSpeed
) -> AsyncGenerator[bytes, None]:
    """The body's bytes, at most `limit` of them, at least at the pace.

    A body that runs past `limit` yields exactly `limit` bytes and then raises
    `IntegrityError`; one that stays below the low-speed limit raises `Transient`.
    """
    chunks = response.aiter_bytes()
    received = 0
    finished = False
    try:
        async for chunk in chunks:
            received += len(chunk)
            if limit is not None and received > limit:
                keep = len(chunk) - (received - limit)
                if keep:
                    yield chunk[:keep]
                raise IntegrityError(f"the body is longer than the {limit} bytes announced")
            if pace.too_slow(len(chunk)):
                slow = SourceUnavailableError(
                    f"the body stayed below the low-speed limit ({pace.describe()})"
                )
                raise Transient("too slow", slow)
            yield chunk
        finished = True
    finally:
        if not finished:
            await _drain(response, chunks)


async def _drain(response: httpx.Response, chunks: AsyncIterator[bytes]) -> None:
    """Close a body we stop reading early, and run httpx's nested generators to their end.

    httpx does not close its inner body generators when the outer one is closed; left to the
    garbage collector, trio reports each as a ResourceWarning. With the connection closed
    they end at once.
    """
    with anyio.CancelScope(shield=True):
        await response.aclose()
        with suppress(Exception):
            async for _ in chunks:
                pass

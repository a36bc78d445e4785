"""A guard on huggingface_hub's HTTP client while one of our calls runs in a worker thread.

`HubSource` runs huggingface_hub's own code, which trusts the server more than we do and
retries on its own terms (sleeping in the thread, up to a day for a `Retry-After`). Its
client is shared and built by a factory it lets callers set; we wrap whatever factory is in
place so every client it builds carries two event hooks. Outside a guarded call (a thread
with no `CallGuard` in its context — the user's own huggingface_hub calls) they do nothing.
Inside one they:

- stop the call at the next request once its caller has gone (`Abandoned`);
- bound each answer's status line and headers by the read timeout as a whole: httpx2's
  read timeout is per read, so one header line (or one `100 Continue`) every few seconds
  would never end. The socket reads of the client's pool check the deadline the request
  hook sets (`headerclock`), and time out when it has passed;
- withhold the token from any origin but the endpoint's (pagination links, redirects);
- refuse a request huggingface_hub repeats (its own retry, or a listing page that links
  back to itself) and end the call on an answer worth retrying (408, 429, 5xx), so that
  retries follow *our* `RetryPolicy`, on the event loop, cancellably (`Transient`);
- check every commit and etag before huggingface_hub turns them into cache paths: a commit
  is 40 lowercase hex (and the pinned one, when pinned); an etag that names a blob is 40 or
  64 hex. Anything else is refused with `SourceUnavailableError`;
- refuse a body with a `Content-Encoding` (huggingface_hub asks for identity), a file larger
  than the cache's free space, and watch every body as it is read: stop when the caller
  has gone, when it runs past the size the metadata announced, or when it stays below the
  low-speed limit (`Transient`: retried); with `hash_body`, hash a file's body on the way
  (`bodyhash`), so verifying it needs no second pass over the blob.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub.utils import _http as hf_http

from .._core.errors import SourceUnavailableError
from .._core.proxies import ProxyRules
from .._core.retry import Transient
from .._core.speed import LowSpeed
from .._core.validate import is_commit
from .._hubapi.spec import (
    MAX_API_BODY,
    MAX_PAGES,
    RETRYABLE_STATUS,
    judge_body,
    normalize_etag,
    parse_retry_after,
    same_origin,
)
from .._store.layout import ensure_room
from .bodyhash import BodyHash, BodyStream
from .headerclock import bound_headers, bound_headers_of

_ROOM_CHECK_MIN = 8 * 1024 * 1024  # below this a full disk is reported by the write itself
_GUARD: contextvars.ContextVar[CallGuard | None] = contextvars.ContextVar("modelfetch_guard", default=None)
_install_lock = threading.Lock()
_hooked: dict[int, httpx2.Client] = {}  # the shared client hooked last


class Abandoned(BaseException):  # like CancelledError: not an error, a stop signal
    """Raised inside a worker thread whose caller has gone, to unwind huggingface_hub's call."""


@dataclass(slots=True)
class CallGuard:
    """What one guarded call allows; shared by its worker thread and its task."""

    what: str
    endpoint: str
    pinned: str | None = None
    cache: Path | None = None
    low_speed: tuple[int, float] = (0, 30.0)
    abandoned: threading.Event = field(default_factory=threading.Event)
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    pages: int = 0
    announced: int | None = None
    hash_body: bool = False  # hash the file's body as it streams by (HubSource's verification)
    body: BodyHash | None = None
    header_timeout: float | None = None  # the bound on one answer's status line and headers
    headers_due: float | None = None  # (monotonic) when the answer being awaited is late

    def check_abandoned(self) -> None:
        """Raise `Abandoned` once the caller has gone."""
        if self.abandoned.is_set():
            raise Abandoned

    def refuse(self, problem: str) -> SourceUnavailableError:
        """The error for an answer we will not act on."""
        return SourceUnavailableError(
            f"Fetching {self.what}: {self.endpoint} {problem}; nothing was written. "
            "Check that HF_ENDPOINT is a Hub-compatible server you trust."
        )


def current() -> CallGuard | None:
    """The guard of the call running in this thread, if any."""
    return _GUARD.get()


def run_guarded(guard: CallGuard, func: Any, *args: Any) -> Any:
    """Call `func(*args)` in this worker thread under `guard`."""
    install()
    token = _GUARD.set(guard)
    try:
        return func(*args)
    finally:
        _GUARD.reset(token)


def on_request(request: httpx2.Request) -> None:
    """Request hook (see the module docstring)."""
    guard = _GUARD.get()
    if guard is None:
        return
    guard.check_abandoned()
    if guard.header_timeout is not None:
        guard.headers_due = time.monotonic() + guard.header_timeout
    url = str(request.url)
    if not same_origin(url, guard.endpoint):
        request.headers.pop("authorization", None)
    key = (request.method, url, request.headers.get("range", ""))
    api = "/api/" in request.url.path
    if key in guard.seen:
        if api and request.method == "GET":
            raise guard.refuse(f"sent a listing page that links back to a page it already sent ({url})")
        raise Transient(f"{request.method} {url} failed")
    guard.seen.add(key)
    if api:
        guard.pages += 1
        if guard.pages > MAX_PAGES:
            raise guard.refuse(f"sent more than {MAX_PAGES} pages of one listing")


def on_response(response: httpx2.Response) -> None:
    """Response hook (see the module docstring)."""
    guard = _GUARD.get()
    if guard is None:
        return
    guard.headers_due = None
    headers = response.headers
    if response.status_code in RETRYABLE_STATUS:
        raise Transient(
            f"HTTP {response.status_code}",
            retry_after=parse_retry_after(headers.get("retry-after"), time.time()),
        )
    commit = headers.get("x-repo-commit")
    if commit is not None:
        if not is_commit(commit):
            raise guard.refuse(f"answered with X-Repo-Commit {commit[:80]!r}, which is not a commit id")
        if guard.pinned is not None and commit != guard.pinned:
            raise guard.refuse(f"answered with commit {commit} for pinned revision {guard.pinned}")
    if response.request.method == "HEAD" and _names_a_blob(response, guard.endpoint):
        etag = normalize_etag(headers.get("x-linked-etag") or headers.get("etag"))
        if etag is not None and not _verifiable(etag):
            raise guard.refuse(f"answered with ETag {etag[:80]!r}, which is neither a sha256 nor a git sha1")
        guard.announced = _announced_size(response)
        _check_room(guard)
        if guard.hash_body and etag is not None:
            guard.body = BodyHash(etag, guard.announced)
    elif response.request.method == "GET" and response.is_success:
        _watch_body(response, guard, download="/api/" not in response.request.url.path)


def _names_a_blob(response: httpx2.Response, endpoint: str) -> bool:
    """Whether huggingface_hub takes its metadata from this HEAD answer (not a Hub-internal hop)."""
    if response.is_success:
        return True
    location = response.headers.get("location")
    return (
        response.is_redirect
        and location is not None
        and not same_origin(str(response.url.join(location)), endpoint)
    )


def _announced_size(response: httpx2.Response) -> int | None:
    raw = response.headers.get("x-linked-size") or (
        response.headers.get("content-length") if response.is_success else None
    )
    return int(raw) if raw is not None and raw.isdigit() else None


def _check_room(guard: CallGuard) -> None:
    """Refuse a file the cache's disk cannot hold (huggingface_hub only warns)."""
    if guard.cache is not None and guard.announced is not None and guard.announced >= _ROOM_CHECK_MIN:
        ensure_room(guard.cache, guard.announced, guard.what)


def _watch_body(response: httpx2.Response, guard: CallGuard, *, download: bool) -> None:
    """Check a body's encoding now (file downloads), and its bytes as huggingface_hub reads them."""
    encoding = response.headers.get("content-encoding")
    if download and judge_body(response.status_code, None, encoding, 0, None) == "encoded":
        shown = (encoding or "").strip()[:40]
        raise guard.refuse(f"sent a file with Content-Encoding {shown!r}; identity was asked for")
    if isinstance(response.stream, httpx2.SyncByteStream):
        limit = guard.announced if download else MAX_API_BODY
        hashing = None
        if download and guard.body is not None:
            hashing = guard.body.body(response.status_code, response.headers.get("content-range"))
        response.stream = _WatchedStream(response.stream, guard, limit, hashing)


class _WatchedStream(httpx2.SyncByteStream):
    """A response body that stops at the guard's limits (see `_watch_body`), and is hashed on the way."""

    def __init__(
        self,
        inner: httpx2.SyncByteStream,
        guard: CallGuard,
        announced: int | None,
        hashing: BodyStream | None = None,
    ) -> None:
        self._inner = inner
        self._guard = guard
        self._announced = announced
        self._pace = LowSpeed(*guard.low_speed)
        self._hashing = hashing

    def __iter__(self) -> Iterator[bytes]:
        guard, received, announced, hashing = self._guard, 0, self._announced, self._hashing
        for chunk in self._inner:
            guard.check_abandoned()
            received += len(chunk)
            if announced is not None and received > announced:
                raise guard.refuse(f"sent a body of more than the {announced} bytes expected")
            if self._pace.too_slow(len(chunk)):
                raise Transient(f"the body stayed below the low-speed limit ({self._pace.describe()})")
            if hashing is not None:
                hashing.feed(chunk)
            yield chunk

    def close(self) -> None:
        """Close the underlying stream (after the hashing of what passed has caught up)."""
        try:
            if self._hashing is not None:
                self._hashing.close()
        finally:
            self._inner.close()


def _verifiable(etag: str) -> bool:
    return len(etag) in (40, 64) and all(c in "0123456789abcdef" for c in etag)


def _hook(client: httpx2.Client) -> httpx2.Client:
    hooks = client.event_hooks
    if on_request not in hooks["request"]:
        client.event_hooks = {
            "request": [*hooks["request"], on_request],
            "response": [*hooks["response"], on_response],
        }
        _route_proxies(client)
        bound_headers(client, _headers_due)
    return client


def _headers_due() -> float | None:
    guard = _GUARD.get()
    return guard.headers_due if guard is not None else None


def _route_proxies(client: httpx2.Client) -> None:
    """Inside our calls, pick each request's proxy by `ProxyRules` (CIDR in `NO_PROXY` honoured).

    httpx2, like httpx, cannot express a CIDR block as a mount pattern, so during a guarded
    call the client's choice of transport is ours; outside one (the user's own calls) it is
    httpx2's as before. Relies on httpx2's private `_transport_for_url` and `_transport`; if
    a future httpx2 renames them, the test of `NO_PROXY=127.0.0.0/8` for `HubSource` fails.
    """
    choose = getattr(client, "_transport_for_url", None)
    if choose is None:
        return
    proxied: dict[str, httpx2.BaseTransport] = {}

    def transport_for_url(url: httpx2.URL) -> httpx2.BaseTransport:
        if _GUARD.get() is None:
            return choose(url)  # type: ignore[no-any-return]
        proxy = ProxyRules.from_env(os.environ).proxy_for(str(url))  # now: the session outlives env changes
        if proxy is None:
            return client._transport
        if proxy not in proxied:
            proxied[proxy] = bound_headers_of(httpx2.HTTPTransport(proxy=proxy), _headers_due)
        return proxied[proxy]

    client._transport_for_url = transport_for_url  # type: ignore[method-assign]


def install() -> None:
    """Make every huggingface_hub client carry the hooks: the current one and those built later.

    Idempotent. A factory the user sets later is wrapped again at our next call.
    """
    with _install_lock:
        factory = getattr(hf_http, "_GLOBAL_CLIENT_FACTORY", None)
        if factory is not None and not getattr(factory, "_modelfetch_guarded", False):

            def guarded() -> httpx2.Client:
                return _hook(factory())

            guarded._modelfetch_guarded = True  # type: ignore[attr-defined]
            hf_http._GLOBAL_CLIENT_FACTORY = guarded
        session = hf_http.get_session()
        if _hooked.get(id(session)) is not session:  # a new client: hook it (once)
            _hooked.clear()
            _hooked[id(session)] = _hook(session)

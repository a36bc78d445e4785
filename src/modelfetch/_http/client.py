"""`HubClient`: the Hub's HTTP protocol over one `httpx.AsyncClient`, without the cache.

It owns the client, the token's scope (the endpoint's origin only), redirects, the retry
loop, metadata (`HEAD .../resolve/...`), the revision and tree API, and opening a file body
(`BodyStream`, in `bodies`). Every answer is checked by the pure functions of `modelfetch._hubapi.spec`
before anything acts on it. What to do with the bytes is `modelfetch._http.transfer`'s job, and
where they go is the `BlobStore`'s.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import httpx

from .._core.errors import FetchError, SourceUnavailableError
from .._core.retry import RetryPolicy, Transient, retrying
from .._core.settings import Settings
from .._core.speed import LowSpeed
from .._core.types import AssetRef, ListedFile, RepoRef
from .._hubapi.errmap import ErrorContext, to_fetch_error
from .._hubapi.spec import (
    MAX_API_BODY,
    MAX_PAGES,
    MAX_REDIRECTS,
    FileMetadata,
    Outcome,
    check_listing,
    checked_commit,
    classify,
    commit_from_revision_info,
    decode_json,
    files_from_tree_page,
    metadata_from_headers,
    not_hub_json,
    redirect_target,
    resolve_url,
    revision_url,
    same_origin,
    tree_url,
)
from .._version import __version__ as _version
from .bodies import BodyStream, error_of, read_capped
from .connections import StatelessClient
from .netenv import ca_locations

_T = TypeVar("_T")


class HubClient:
    """One endpoint's HTTP API, retried per `retry` (see the module docstring).

    Args:
        settings: endpoint, token and timeouts.
        retry: the retry policy for connection errors, timeouts, 408, 429 and 5xx.
        sleep: how to wait between attempts.
        transport: an `httpx.AsyncBaseTransport` (tests pass `httpx.MockTransport`).
        max_connections: connections kept for all requests together.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]],
        transport: httpx.AsyncBaseTransport | None,
        max_connections: int,
    ) -> None:
        self.settings = settings
        self.retry = retry
        self._sleep = sleep
        self._transport, self._max_connections = transport, max_connections
        self._client: httpx.AsyncClient | None = None  # built on first use, in a worker thread
        self._building = anyio.Lock()

    async def _http(self) -> httpx.AsyncClient:
        """The client, built on first use off the event loop (loading CA certificates takes 20-80 ms)."""
        if self._client is None:
            async with self._building:
                if self._client is None:
                    self._client = await anyio.to_thread.run_sync(self._build)
        return self._client

    def _build(self) -> httpx.AsyncClient:
        ca_file, ca_dir = ca_locations(os.environ)
        verify = ssl.create_default_context(cafile=ca_file, capath=ca_dir)
        connections = self._max_connections
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return StatelessClient(
            transport=self._transport,
            verify=verify,
            timeout=httpx.Timeout(self.settings.download_timeout, connect=self.settings.etag_timeout),
            limits=limits,
            follow_redirects=False,
            headers={"user-agent": f"modelfetch/{_version}", "accept-encoding": "identity"},
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()

    @property
    def has_token(self) -> bool:
        """Whether requests to the endpoint carry a token."""
        return self.settings.token is not None

    def context(self, what: AssetRef | RepoRef) -> ErrorContext:
        """What error messages need to know about a request for `what`."""
        return ErrorContext(what, offline=self.settings.offline, has_token=self.has_token)

    def headers_for(self, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Headers for a request to `url`: the token only if it is on the endpoint's origin."""
        headers = dict(extra or {})
        if self.settings.token is not None and same_origin(url, self.settings.endpoint):
            headers["authorization"] = f"Bearer {self.settings.token}"
        return headers

    # ---- retries -------------------------------------------------------------------------

    async def retrying(
        self,
        what: AssetRef | RepoRef,
        once: Callable[[], Awaitable[_T]],
        after_failure: Callable[[], None] | None = None,
    ) -> _T:
        """Call `once` until it succeeds, backing off after transient failures per the policy."""

        def transient(exc: Exception) -> Transient | None:
            if isinstance(exc, httpx.TransportError):
                return Transient(str(exc), to_fetch_error(exc, self.context(what)))
            return None

        def give_up(failure: Transient, attempts: int, elapsed: float) -> BaseException:
            assert failure.final is not None  # every Transient this client raises carries one
            return failure.final

        return await retrying(
            self.retry,
            self._sleep,
            once,
            transient=transient,
            give_up=give_up,
            after_failure=after_failure,
            what=what,
        )

    async def request(
        self, method: str, url: str, what: AssetRef | RepoRef, *, allow_status: bool = False
    ) -> httpx.Response:
        """A small request (metadata, API), retried, its body read whole (at most 32 MiB)."""

        async def once() -> httpx.Response:
            http = await self._http()
            request = http.build_request(method, url, headers=self.headers_for(url))
            response = await read_capped(await self._send(http, request), MAX_API_BODY, self._pace())
            outcome = self.classify(response, what)
            if outcome.kind == "retry":
                raise Transient(
                    f"HTTP {response.status_code}", error_of(outcome), retry_after=outcome.retry_after
                )
            if not allow_status and response.is_error:
                raise error_of(outcome)
            return response

        return await self.retrying(what, once)

    async def _send(self, http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
        """Send `request`; its status line and headers must all arrive within the read timeout.

        httpx's read timeout is per read, so a server trickling one header line (or one
        `100 Continue`) at a time would never time out: the whole header section is bounded.
        """
        bound = self.settings.download_timeout
        try:
            with anyio.fail_after(bound):
                return await http.send(request, stream=True)
        except TimeoutError:
            slow = SourceUnavailableError(
                f"{request.method} {request.url.copy_with(query=None)}: the server did not finish "
                f"sending its headers within {bound:g} s (HF_HUB_DOWNLOAD_TIMEOUT)."
            )
            raise Transient("headers too slow", slow) from None

    def _pace(self) -> LowSpeed:
        """The low-speed limit for one body, API answers included."""
        return LowSpeed(self.settings.low_speed_limit, self.settings.low_speed_time)

    def classify(self, response: httpx.Response, what: AssetRef | RepoRef) -> Outcome:
        """What `response` means (`_hubproto.classify`, with this client's token state)."""
        return classify(
            response.status_code, response.headers, what, has_token=self.has_token, now=time.time()
        )

    # ---- the API -------------------------------------------------------------------------

    async def api_page(self, url: str, what: AssetRef | RepoRef) -> tuple[str, Any, str | None]:
        """GET an API URL, following redirects (bounded; the token only to the endpoint's origin).

        Returns the final URL, its parsed JSON and its `Link: rel="next"` URL, if any; an
        answer that is not JSON is a `SourceUnavailableError` saying what came back.
        """
        for _ in range(MAX_REDIRECTS):
            response = await self.request("GET", url, what)
            location = response.headers.get("location")
            if response.is_redirect and location:
                url = redirect_target(url, location)
                continue
            content_type = response.headers.get("content-type", "")
            payload = decode_json(
                response.content, content_type, endpoint=self.settings.endpoint, what=what, url=url
            )
            return url, payload, response.links.get("next", {}).get("url")
        raise SourceUnavailableError(f"Listing {what}: more than {MAX_REDIRECTS} redirects from {url}.")

    async def commit_of(self, repo: RepoRef) -> str:
        """The commit `repo`'s revision points to now (the revision itself when it is one)."""
        if repo.is_pinned:
            return repo.revision
        url, info, _ = await self.api_page(revision_url(self.settings.endpoint, repo), repo)
        return commit_from_revision_info(info, endpoint=self.settings.endpoint, what=repo, url=url)

    async def tree(self, repo: RepoRef, commit: str) -> list[ListedFile]:
        """Every file of `repo` at `commit`, page after page, checked as a whole."""
        endpoint = self.settings.endpoint
        files: list[ListedFile] = []
        seen: set[str] = set()
        page: str | None = tree_url(endpoint, repo, commit)
        while page is not None:
            if page in seen or len(seen) >= MAX_PAGES:
                raise not_hub_json(endpoint, repo, page, "a listing that never ends (a page repeats)")
            seen.add(page)
            url, payload, following = await self.api_page(page, repo)
            files.extend(files_from_tree_page(payload, endpoint=endpoint, what=repo, url=url))
            page = redirect_target(url, following) if following else None
        check_listing(files, endpoint=endpoint, what=repo, url=tree_url(endpoint, repo, commit))
        return files

    async def metadata(self, ref: AssetRef, on_missing: Callable[[str], Awaitable[None]]) -> FileMetadata:
        """`ref`'s commit, etag, size and download URL, from a HEAD (same-origin redirects followed).

        A file the Hub says does not exist at a (checked) commit is reported to `on_missing`
        with that commit before `AssetNotFoundError` is raised.
        """
        endpoint = self.settings.endpoint
        url = resolve_url(endpoint, ref)
        for _ in range(MAX_REDIRECTS):
            response = await self.request("HEAD", url, ref, allow_status=True)
            location = response.headers.get("location")
            if response.is_redirect and location and same_origin(redirect_target(url, location), endpoint):
                url = redirect_target(url, location)
                continue
            outcome = self.classify(response, ref)
            if outcome.kind in ("ok", "redirect"):  # a redirect to another origin carries the metadata
                return self._metadata_from(response, url, ref)
            error = error_of(outcome)
            commit = response.headers.get("x-repo-commit")
            if response.headers.get("x-error-code") == "EntryNotFound" and commit:
                pinned = ref.revision if ref.is_pinned else None
                await on_missing(checked_commit(commit, endpoint=endpoint, what=ref, pinned=pinned))
            raise error
        raise SourceUnavailableError(f"Fetching {ref}: more than {MAX_REDIRECTS} redirects.")

    def _metadata_from(self, response: httpx.Response, url: str, ref: AssetRef) -> FileMetadata:
        endpoint = self.settings.endpoint
        meta = metadata_from_headers(
            response.headers, url=url, endpoint=endpoint, ref=ref, redirected=response.is_redirect
        )
        if meta is None:
            raise SourceUnavailableError(
                f"Fetching {ref}: the answer from {endpoint} has no X-Repo-Commit header, "
                "so it does not look like a Hub endpoint; check HF_ENDPOINT."
            )
        return meta

    async def diagnose(self, ref: AssetRef, url: str, reason: str) -> Exception:
        """What a GET another client could not make means, learnt from one cheap GET of our own.

        The native engine's client reports a failed request as text only; this asks for the
        first byte of `url` (redirects followed by hand, as for every body) to learn the
        status and `Retry-After`. Not retried: the caller's retry loop decides. Returns the
        final error, or a `Transient` when another attempt may work.
        """
        try:
            async with self.open_body(ref, url, 0, 0):
                pass
        except httpx.TransportError as exc:
            return Transient(str(exc), to_fetch_error(exc, self.context(ref)))
        except (Transient, FetchError) as failure:
            return failure
        return Transient(reason, SourceUnavailableError(f"Fetching {ref}: {reason}."))

    def open_body(self, ref: AssetRef, url: str, start: int, last: int | None) -> BodyStream:
        """`async with` the body of `url` from byte `start` (to `last`)."""
        return BodyStream(self, ref, url, start, last)

    async def send_streaming(self, url: str, headers: dict[str, str]) -> httpx.Response:
        """Send a GET and return the response with its body not yet read."""
        http = await self._http()
        return await self._send(http, http.build_request("GET", url, headers=headers))

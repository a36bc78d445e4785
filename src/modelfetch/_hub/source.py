"""`HubSource`: huggingface_hub's own client, run in worker threads.

It keeps what the official client does (Xet, auth, the cache layout) and moves it off the
event loop: each call runs through `anyio.to_thread.run_sync` under a `CapacityLimiter` of
its own, so big downloads never starve the process's default thread pool. While it runs,
huggingface_hub's HTTP client is guarded (`modelfetch._hub.guard`): retries follow our
`RetryPolicy` on the event loop, and hostile answers are refused before huggingface_hub
turns them into paths. A cancelled call abandons its thread, which stops at its next
request, network read or progress chunk; huggingface_hub then removes its temporary file.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import httpx2
from anyio.abc import AsyncResource
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HFValidationError
from huggingface_hub.hf_api import RepoFile as HfRepoFile

from .._core.deadline import within_deadline
from .._core.errors import FetchError, IntegrityError, InvalidRequestError, SourceUnavailableError
from .._core.force import force_requested
from .._core.mocking import http_mocked
from .._core.progress import ProgressCallback, ProgressKind
from .._core.retry import RetryPolicy, Transient, retrying
from .._core.settings import Settings
from .._core.threadprogress import TransferWatch
from .._core.types import AssetRef, ListedFile, Origin, RepoListing, RepoRef, ResolvedAsset
from .._core.validate import check_instance, check_positive_int, is_commit
from .._hubapi.errmap import ErrorContext, is_size_mismatch, to_fetch_error
from .._hubapi.spec import check_listing, not_hub_json, revision_url, tree_url
from .._store.anchored import unsafe
from .._store.blobstore import BlobStore
from .._store.layout import check_folders, find_cached, read_ref
from .._store.partial import verify_file
from .bodyhash import BodyHash
from .guard import CallGuard, run_guarded
from .guard import current as current_guard
from .threadwatch import BridgeTqdm, check_stopped, run_watched

DEFAULT_MAX_WORKERS = 8
_T = TypeVar("_T")
log = logging.getLogger("modelfetch.hub")


class HubSource(AsyncResource):
    """Fetch from the Hub with `huggingface_hub.hf_hub_download` in worker threads.

    huggingface_hub's HTTP client is guarded while our calls run (see
    `modelfetch._hub.guard`): transient failures (connection errors, timeouts, 408, 429,
    5xx) are retried by `retry` on the event loop, honouring `Retry-After` up to the
    policy's cap, instead of by huggingface_hub sleeping in the thread; commits and etags
    that could not name a cache path safely are refused; the token never leaves the
    endpoint's origin. A cancelled call returns at once: its thread is abandoned and stops
    at its next request or chunk, deleting its temporary file; `aclose()` waits for such
    threads to end.

    Args:
        settings: where and how to fetch; `Settings.from_env()` when omitted.
        max_workers: how many downloads may run at once (threads of its own limiter).
        verify: check each fresh download against its etag (sha256 for LFS files, git
            sha1 otherwise) and remove it from the cache on a mismatch. huggingface_hub
            itself does not. The body is hashed in a thread as it streams by (about 0.5
            CPU-second per GiB, beside the download); a body it could not follow whole
            (resumed elsewhere than where the hash stopped, or Xet) is read back instead.
        retry: when and how long to back off after a transient failure.
        sleep: how to wait between attempts (tests pass a fake).

    Example:
        ```python
        async with modelfetch.HubSource() as hub:
            path = await modelfetch.fetch("org/model", "config.json", source=hub)
        ```
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        verify: bool = True,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.settings = check_instance("settings", settings, Settings) or Settings.from_env()
        self.verify = verify
        self.retry = check_instance("retry", retry, RetryPolicy) or RetryPolicy()
        self._sleep = sleep
        self._store = BlobStore(self.settings.hub_cache, self.settings.lock_timeout)
        self._layout = self._store.layout
        self._limiter = anyio.CapacityLimiter(check_positive_int("max_workers", max_workers))
        self._threads = ThreadCount()

    def __repr__(self) -> str:
        return f"HubSource(endpoint={self.settings.endpoint!r}, cache={str(self.settings.hub_cache)!r})"

    async def resolve(self, ref: AssetRef, *, progress: ProgressCallback | None = None) -> ResolvedAsset:
        """Download `ref` into the Hugging Face cache (or find it there); see `ModelAssetSource`."""
        watch = TransferWatch(ref, progress, check_stopped)
        pinned = ref.revision if ref.is_pinned else None
        try:
            resolved: ResolvedAsset = await within_deadline(
                self.settings.deadline,
                ref,
                lambda: self._retrying(
                    ref, lambda: self._in_thread(ref, pinned, run_watched, watch, self._download, ref, watch)
                ),
            )
        except Exception as exc:
            watch.finish(ProgressKind.FAILED)
            raise to_fetch_error(exc, self._context(ref)) from exc
        watch.finish(ProgressKind.FINISHED)
        return resolved

    async def list_files(self, repo: RepoRef) -> RepoListing:
        """List `repo` at the commit its revision points to now; see `ModelAssetSource`."""
        pinned = repo.revision if repo.is_pinned else None
        try:
            listing: RepoListing = await within_deadline(
                self.settings.deadline,
                repo,
                lambda: self._retrying(repo, lambda: self._in_thread(repo, pinned, self._list, repo)),
            )
        except Exception as exc:
            raise to_fetch_error(exc, self._context(repo)) from exc
        return listing

    async def aclose(self) -> None:
        """Wait (a bounded time) for abandoned worker threads to wind down."""
        bound = self.settings.etag_timeout + self.settings.download_timeout
        await anyio.to_thread.run_sync(self._threads.wait_idle, bound)

    def _context(self, what: AssetRef | RepoRef) -> ErrorContext:
        return ErrorContext(what, offline=self.settings.offline, has_token=self.settings.token is not None)

    async def _in_thread(self, what: AssetRef | RepoRef, pinned: str | None, func: Any, *args: Any) -> Any:
        """`func(*args)` in a guarded worker thread; abandoned (and told to stop) if we are cancelled."""
        if http_mocked():  # respx patches httpx; huggingface_hub's httpx2 would go to the network
            raise InvalidRequestError(
                f"Fetching {what}: HubSource uses huggingface_hub's own HTTP client, which a respx "
                "mock does not intercept, so nothing was sent; in respx tests use the default stack "
                "(no source=, or HttpHubSource), or test HubSource against modelfetch.testing.FakeHub."
            )
        s = self.settings
        guard = CallGuard(
            str(what),
            s.endpoint,
            pinned,
            s.hub_cache,
            low_speed=(s.low_speed_limit, s.low_speed_time),
            hash_body=self.verify,
            header_timeout=s.download_timeout,
        )
        finished = False
        try:
            result = await anyio.to_thread.run_sync(
                self._threads.run, guard, func, *args, limiter=self._limiter, abandon_on_cancel=True
            )
            finished = True
            return result
        finally:
            if not finished:
                guard.abandoned.set()

    async def _retrying(self, what: AssetRef | RepoRef, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """`attempt()` until it succeeds, backing off after transient failures per the policy."""

        def transient(exc: Exception) -> Transient | None:
            if isinstance(exc, RETRYABLE):  # huggingface_hub's client: timeouts, dropped connections
                return Transient(f"{type(exc).__name__}: {exc}")
            return None

        def give_up(failure: Transient, attempts: int, elapsed: float) -> BaseException:
            return _gave_up(what, failure, attempts, elapsed)

        return await retrying(
            self.retry, self._sleep, attempt, transient=transient, give_up=give_up, what=what
        )

    def _download(self, ref: AssetRef, watch: TransferWatch) -> ResolvedAsset:
        s = self.settings
        check_folders(self._layout, ref, read_ref(self._layout, ref, ref.revision))
        try:
            raw = hf_hub_download(
                ref.repo_id,
                ref.filename,
                repo_type=ref.repo_type,
                revision=ref.revision,
                cache_dir=s.hub_cache,
                endpoint=s.endpoint,
                token=s.token or False,
                local_files_only=s.offline,
                etag_timeout=s.etag_timeout,
                tqdm_class=BridgeTqdm,
                force_download=force_requested(),
            )
        except OSError as exc:
            if is_size_mismatch(exc):  # a body cut short or overlong: a failed attempt, nothing kept
                raise Transient("the body was not the size the server announced") from exc
            raise
        resolved = self._describe(ref, Path(str(raw)), Origin.NETWORK if watch.transferred else Origin.DISK)
        if self.verify and resolved.origin is Origin.NETWORK:
            guard = current_guard()
            self._check(resolved, guard.body if guard is not None else None)
        if resolved.etag and resolved.origin is Origin.NETWORK:
            self._store.sweep(ref, resolved.etag, resolved.size)
        return resolved

    def _check(self, resolved: ResolvedAsset, body: BodyHash | None) -> None:
        """Verify a fresh download against its etag, which huggingface_hub does not do.

        The hash of the body as it streamed by (`body`) is used when it covers exactly the
        blob's bytes; otherwise the blob is read back. huggingface_hub has already published
        the blob, so a corrupt one was briefly visible; it is removed (blob and snapshot
        link) before anyone is told about it. `HttpHubSource` verifies before publishing.
        """
        blob = self._layout.blob(resolved.ref, resolved.etag)
        try:
            streamed = None
            if body is not None and body.etag == resolved.etag:
                streamed = body.digest_of(resolved.size)
            if streamed is None:
                verify_file(self._layout.root, blob, resolved.etag)
            elif streamed != resolved.etag:
                raise IntegrityError(
                    f"content hash {streamed[:16]}... does not match the etag {resolved.etag[:16]}..."
                )
        except IntegrityError as exc:
            self._store.withdraw(resolved.ref, resolved.commit, resolved.etag)
            raise IntegrityError(
                f"Fetching {resolved.ref}: {exc}; the corrupt download was removed from the cache, retry."
            ) from None

    def _describe(self, ref: AssetRef, raw: Path, origin: Origin) -> ResolvedAsset:
        commit_dir = raw
        for _ in ref.filename.split("/"):
            commit_dir = commit_dir.parent
        commit = commit_dir.name
        cached = find_cached(self._layout, ref, commit) if is_commit(commit) else None
        if cached is None:  # huggingface_hub returned something that is not our link into blobs/
            raise unsafe(raw, "is not a file of the cache (a link elsewhere, or a special file)")
        return ResolvedAsset(ref, cached.path, commit, cached.size, cached.etag, origin)

    def _list(self, repo: RepoRef) -> RepoListing:
        s = self.settings
        api = HfApi(endpoint=s.endpoint, token=s.token or False)
        commit = repo.revision
        if not is_commit(commit):
            url = revision_url(s.endpoint, repo)
            info = _read_api(
                repo,
                s.endpoint,
                url,
                lambda: api.repo_info(repo.repo_id, revision=repo.revision, repo_type=repo.repo_type),
            )
            commit = str(info.sha)
            if not is_commit(commit):
                raise not_hub_json(s.endpoint, repo, url, f"commit {commit[:80]!r}, which is not a commit id")
            self._store.record_ref(repo, repo.revision, commit)
        url = tree_url(s.endpoint, repo, commit)
        entries = _read_api(
            repo,
            s.endpoint,
            url,
            lambda: list(
                api.list_repo_tree(repo.repo_id, recursive=True, revision=commit, repo_type=repo.repo_type)
            ),
        )
        files = sorted((_repo_file(e) for e in entries if isinstance(e, HfRepoFile)), key=lambda f: f.path)
        check_listing(files, endpoint=s.endpoint, what=repo, url=url)
        return RepoListing(repo, commit, tuple(files))


class ThreadCount:
    """The worker threads of one source still running, including abandoned ones."""

    def __init__(self) -> None:
        self._running = 0
        self._changed = threading.Condition()

    def run(self, guard: CallGuard, func: Any, *args: Any) -> Any:
        """Call `func(*args)` under `guard`, counted (runs in the worker thread)."""
        with self._changed:
            self._running += 1
        try:
            return run_guarded(guard, func, *args)
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no thread runs (or `timeout` passes); whether they all ended."""
        with self._changed:
            return self._changed.wait_for(lambda: self._running == 0, timeout)


RETRYABLE: tuple[type[Exception], ...] = (
    Transient,
    httpx2.TimeoutException,
    httpx2.NetworkError,
    httpx2.RemoteProtocolError,
)
"""What `HubSource` retries: answers the guard flags, and transport failures huggingface_hub retries."""


def _read_api(what: RepoRef, endpoint: str, url: str, call: Callable[[], _T]) -> _T:
    """`call()` (huggingface_hub parsing an API answer); an unreadable answer is the server's fault."""
    try:
        return call()
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, HFValidationError):
            raise
        problem = f"an answer it could not read ({type(exc).__name__}: {str(exc)[:120]})"
        raise not_hub_json(endpoint, what, url, problem) from exc


def _gave_up(what: AssetRef | RepoRef, exc: Transient, attempts: int, elapsed: float) -> FetchError:
    reason = str(exc)
    return SourceUnavailableError(
        f"Fetching {what}: the Hub kept failing ({reason.strip() or type(exc).__name__}) after "
        f"{attempts} attempts over {elapsed:.1f} s; check the network and HF_ENDPOINT, then retry."
    )


def _repo_file(entry: Any) -> ListedFile:
    if entry.lfs is not None:
        return ListedFile(entry.path, int(entry.lfs.size), str(entry.lfs.sha256), lfs=True)
    return ListedFile(entry.path, int(entry.size), str(entry.blob_id))

"""A mirror bucket through obstore's blocking API: every method runs in a worker thread.

obstore's `*_async` functions are asyncio-only, so on any event loop (asyncio or trio)
the mirror calls its blocking functions through `anyio.to_thread`; the Rust side releases
the GIL while it waits. This module is also the one boundary where obstore's exceptions
become ours: "not found", "already exists" and "precondition failed" are answers
(None/False); everything else is `BucketUnavailableError`, which the mirror treats as
"use upstream instead", and `to_fetch_error` makes it a `FetchError` where a caller must
see it (`modelfetch mirror push`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

from .._core.errors import (
    AuthenticationError,
    FetchError,
    IntegrityError,
    InvalidRequestError,
    SourceUnavailableError,
)
from .._core.text import printable
from .._hubapi.spec import content_hasher

if TYPE_CHECKING:
    from obstore.store import ClientConfig, ObjectStore, RetryConfig

MiB = 1024 * 1024
_READ_CHUNK = 8 * MiB


class BucketUnavailableError(Exception):
    """The bucket could not be used (unreachable, refused, misconfigured)."""

    def __init__(self, message: str, *, denied: bool = False) -> None:
        super().__init__(message)
        self.denied = denied


def to_fetch_error(exc: BucketUnavailableError, what: str) -> FetchError:
    """The `FetchError` a caller sees when the bucket itself was the job (say, a push)."""
    if exc.denied:
        return AuthenticationError(
            f"{what}: the bucket refused the credentials ({exc}); check the AWS_* variables, then push again."
        )
    return SourceUnavailableError(
        f"{what}: the mirror bucket is unavailable ({exc}); check the bucket URL, endpoint and "
        "credentials, then push again."
    )


def _obstore() -> Any:
    import obstore  # noqa: PLC0415 - imported on first use: `import modelfetch` stays light

    return obstore


def store_config(url: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The S3 settings for `url` taken from `env` (the standard `AWS_*` variables).

    Adds what S3-compatible stores in a cluster (Ceph, MinIO) need and obstore does not
    infer: path-style requests unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST` says otherwise,
    and `allow_http` (returned as `client_options`) when the endpoint is plain HTTP.
    Empty for other kinds of URL. The result holds secrets: never log it.
    """
    if not url.startswith(("s3://", "s3a://")):
        return {}
    config: dict[str, Any] = {}
    for key, variables in _AWS_VARIABLES.items():
        value = next((env[v] for v in variables if env.get(v)), None)
        if value is not None:
            config[key] = value
    if "AWS_VIRTUAL_HOSTED_STYLE_REQUEST" not in env:
        config["virtual_hosted_style_request"] = False
    if str(config.get("endpoint", "")).startswith("http://"):
        config["client_options"] = {"allow_http": True}  # the caller merges it into its own
    return config


_AWS_VARIABLES = {
    "endpoint": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"),
    "access_key_id": ("AWS_ACCESS_KEY_ID",),
    "secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
    "token": ("AWS_SESSION_TOKEN",),
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
}


def _first_line(exc: BaseException) -> str:
    """obstore's error, first line, terminal controls escaped: it may quote the bucket server's answer."""
    return printable((str(exc).strip().splitlines() or [type(exc).__name__])[0][:300])


class Bucket:
    """One bucket (and prefix) of an object store. Blocking: call from worker threads."""

    def __init__(self, store: ObjectStore, url: str) -> None:
        self.store = store
        self.url = url
        self._ob = _obstore()
        self._exc = self._ob.exceptions
        # What obstore raises for the store's failures: its own errors, and builtin OSErrors
        # (FileNotFoundError for "no such key", TimeoutError, I/O). Anything else (TypeError,
        # a bug of ours) is not the bucket's failure and propagates unchanged.
        self._errors: tuple[type[BaseException], ...] = (self._exc.BaseError, OSError)

    @classmethod
    def open(cls, url: str, *, timeout: float, env: Mapping[str, str] | None = None) -> Bucket:
        """Connect to `url` (`s3://bucket/prefix`, `file:///...`, `memory:///`); no I/O yet."""
        ob = _obstore()
        env = os.environ if env is None else env
        extra = store_config(url, env)
        client: ClientConfig = {
            "connect_timeout": timedelta(seconds=min(timeout, 5.0)),
            "timeout": timedelta(seconds=max(timeout, 30.0)),
        }
        if extra.pop("client_options", None):
            client["allow_http"] = True
        retry: RetryConfig = {"max_retries": 2, "retry_timeout": timedelta(seconds=timeout)}
        try:
            if url.startswith(("s3://", "s3a://", "gs://", "az://", "abfs://", "https://", "http://")):
                store = ob.store.from_url(url, client_options=client, retry_config=retry, **extra)
            else:
                store = ob.store.from_url(url)
        except (ValueError, ob.exceptions.BaseError) as exc:
            raise InvalidRequestError(f"mirror URL {url!r} is not usable: {_first_line(exc)}") from None
        return cls(store, url)

    @classmethod
    def wrap(cls, store: object) -> Bucket:
        """A bucket on an obstore store configured by the caller; `InvalidRequestError` if it is none."""
        stores = _obstore().store
        kinds = (stores.S3Store, stores.GCSStore, stores.AzureStore, stores.LocalStore, stores.MemoryStore)
        if not isinstance(store, kinds):
            raise InvalidRequestError(
                f"MirrorSource(bucket=...) must be an obstore store (S3Store, GCSStore, AzureStore, "
                f"LocalStore or MemoryStore), not {type(store).__name__}."
            )
        return cls(store, f"{type(store).__name__}")

    def __repr__(self) -> str:
        return f"Bucket({self.url!r})"

    def _unavailable(self, op: str, key: str, exc: BaseException) -> BucketUnavailableError:
        denied = isinstance(exc, self._exc.PermissionDeniedError | self._exc.UnauthenticatedError)
        return BucketUnavailableError(f"{op} {key} in {self.url}: {_first_line(exc)}", denied=denied)

    def read(self, key: str) -> tuple[bytes, str | None] | None:
        """The object's bytes and e_tag, or None if there is none. For small objects."""
        try:
            result = self._ob.get(self.store, key)
            return bytes(result.bytes()), result.meta.get("e_tag")
        except FileNotFoundError:
            return None
        except self._errors as exc:
            raise self._unavailable("reading", key, exc) from None

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        try:
            self._ob.head(self.store, key)
            return True
        except FileNotFoundError:
            return False
        except self._errors as exc:
            raise self._unavailable("checking", key, exc) from None

    def create(self, key: str, data: bytes | bytearray) -> str | None:
        """Store `data` only if `key` is free (atomic); its e_tag, or None if it was taken."""
        try:
            return self._put(key, data, "create")
        except self._exc.AlreadyExistsError:
            return None
        except self._errors as exc:
            raise self._unavailable("creating", key, exc) from None

    def replace(self, key: str, data: bytes, e_tag: str | None) -> str | None:
        """Overwrite `key` only if it is still at `e_tag` (atomic); the new e_tag, or None if not."""
        if not e_tag:  # a store without e_tags: last writer wins
            return self._replace(key, data, "overwrite")
        found = self._replace(key, data, {"e_tag": e_tag})
        if found is None and e_tag.startswith('"'):
            # Ceph RGW (Pacific) matches If-Match only against the unquoted etag; a second
            # conditional try is as safe as the first.
            found = self._replace(key, data, {"e_tag": e_tag.strip('"')})
        return found

    def _replace(self, key: str, data: bytes, mode: Any) -> str | None:
        try:
            return self._put(key, data, mode)
        except (self._exc.PreconditionError, self._exc.AlreadyExistsError, FileNotFoundError):
            return None
        except self._errors as exc:
            raise self._unavailable("replacing", key, exc) from None

    def _put(self, key: str, data: bytes | bytearray, mode: Any) -> str:
        result = self._ob.put(self.store, key, data, mode=mode, use_multipart=False)
        return str(result.get("e_tag") or "")

    def delete(self, key: str) -> None:
        """Remove `key` (absent is fine)."""
        try:
            self._ob.delete(self.store, key)
        except FileNotFoundError:
            return
        except self._errors as exc:
            raise self._unavailable("deleting", key, exc) from None

    def list(self, prefix: str, limit: int = 10_000) -> list[tuple[str, int]]:
        """The keys under `prefix` with their sizes, in key order (at most `limit` of them)."""
        found: list[tuple[str, int]] = []
        try:
            for batch in self._ob.list(self.store, prefix=prefix, chunk_size=1000):
                for meta in batch:
                    path, size = meta.get("path"), meta.get("size")
                    if isinstance(path, str) and isinstance(size, int):
                        found.append((path, size))
                if len(found) >= limit:
                    break
        except self._errors as exc:
            raise self._unavailable("listing", prefix, exc) from None
        return sorted(found[:limit])

    def stream(self, key: str, start: int) -> Iterator[memoryview] | None:
        """The object's bytes from `start`, in chunks of at least 8 MiB; None if it is absent.

        The store's failures, at the request or mid-body, are `BucketUnavailableError`.
        """
        try:
            options: Any = {"range": {"offset": start}} if start else None
            result = self._ob.get(self.store, key, options=options)
            chunks = iter(result.stream(min_chunk_size=_READ_CHUNK))
        except FileNotFoundError:
            return None
        except self._errors as exc:
            raise self._unavailable("reading", key, exc) from None
        return self._chunks(key, chunks)

    def _chunks(self, key: str, chunks: Iterator[Any]) -> Iterator[memoryview]:
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except self._errors as exc:
                raise self._unavailable("reading", key, exc) from None
            yield memoryview(chunk)

    def download(self, key: str, start: int, sink: Callable[[int, memoryview], None]) -> int | None:
        """Stream the object from byte `start` into `sink(offset, chunk)`; the end offset, or None if absent.

        Only the store's own failures become `BucketUnavailableError`; whatever `sink` raises
        propagates as it is.
        """
        chunks = self.stream(key, start)
        if chunks is None:
            return None
        offset = start
        for chunk in chunks:
            sink(offset, chunk)
            offset += len(chunk)
        return offset

    def upload(
        self,
        key: str,
        file: BinaryIO,
        *,
        size: int,
        etag: str,
        part_size: int,
        on_chunk: Callable[[int], None],
    ) -> None:
        """Store `size` bytes read from `file` under `key`; never visible half-written or unverified.

        What is read is hashed as it is sent and must match `etag` (sha256 or git sha1):
        otherwise `IntegrityError` and nothing is stored. Files up to `part_size` go in one
        conditional-create PUT after the check; larger ones as a multipart upload whose last
        part is only handed over once the hash matched, so a mismatch (or a writer killed
        midway) aborts it and leaves nothing readable. `on_chunk(n)` runs in this thread after
        each chunk and may raise (cancellation) to abort the upload.
        """
        chunks = _verified_chunks(file, size, etag, part_size, on_chunk)
        try:
            if size <= part_size:
                data = b"".join(chunks)
                self._ob.put(self.store, key, data, mode="create", use_multipart=False)
                return
            self._ob.put(self.store, key, chunks, use_multipart=True, chunk_size=part_size, max_concurrency=4)
        except self._exc.AlreadyExistsError:
            return
        except self._errors as exc:
            if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
                raise  # reading the local file failed: the disk's failure, not the bucket's
            raise self._unavailable("uploading", key, exc) from None


def _verified_chunks(
    file: BinaryIO, size: int, etag: str, part_size: int, on_chunk: Callable[[int], None]
) -> Iterator[bytes]:
    """`size` bytes of `file` in `part_size` blocks, hashed; the last one only if all match `etag`."""
    hasher = content_hasher(etag, size)
    left = size
    pending = b""
    while left > 0:
        block = file.read(min(part_size, left))
        if not block:
            break
        left -= len(block)
        if hasher is not None:
            hasher.update(block)
        on_chunk(len(block))
        if pending:
            yield pending
        pending = block
    digest = hasher.hexdigest() if hasher is not None else etag
    if left or file.read(1) or digest != etag:
        raise IntegrityError(
            f"the local blob {etag[:16]}... is not the {size} bytes its name promises; nothing was "
            "uploaded. Run `modelfetch cache verify` on the repo and fetch it again."
        )
    if pending:
        yield pending

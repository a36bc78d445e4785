"""`FakeHub`: a real Hub-protocol HTTP server on 127.0.0.1, for tests, demos and benchmarks."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal

import anyio.to_thread

from .._core.validate import check_filename, check_repo_id, check_repo_type
from ._faults import Fault, FaultRule
from ._handler import HubCore, HubServer
from ._hubstate import Entry, HubState, is_lfs_by_default
from ._requestlog import RequestRecord, count

CdnMode = Literal["alias", "separate", "none"]


class FakeHub:
    """A faithful stand-in for the Hugging Face Hub, serving from a background thread.

    `huggingface_hub`'s own `hf_hub_download` and `snapshot_download` work against it.
    Content lives on disk and is streamed (zero-copy `sendfile`), so big files cost no RAM.

    Args:
        tokens: the access tokens it accepts (`Authorization: Bearer <token>`).
        cdn: where LFS files redirect to. `"alias"` (default): the same server reached as
            `localhost` instead of `127.0.0.1`, a different origin, as the real Hub's CDN
            is; `"separate"`: a second server on another port; `"none"`: no redirect.
        page_size: entries per page of tree listings (the Hub uses 1000).
        root: where to keep blobs; a temporary folder (removed on stop) when omitted.
        port: the port to listen on, on 127.0.0.1 (0, the default: any free one).

    Example:
        ```python
        with FakeHub() as hub:
            hub.add_file("org/model", "config.json", b"{}")
            os.environ["HF_ENDPOINT"] = hub.endpoint
        ```
    """

    def __init__(
        self,
        *,
        tokens: tuple[str, ...] | frozenset[str] = (),
        cdn: CdnMode = "alias",
        page_size: int = 1000,
        root: str | os.PathLike[str] | None = None,
        port: int = 0,
    ) -> None:
        if cdn not in ("alias", "separate", "none"):
            raise ValueError(f"cdn must be 'alias', 'separate' or 'none', not {cdn!r}")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be 0 (any free one) to 65535, not {port!r}")
        self._port = port
        self._own_root = root is None
        self._root = Path(tempfile.mkdtemp(prefix="fakehub-")) if root is None else Path(root)
        self._core = HubCore(HubState(self._root), frozenset(tokens), cdn, page_size)
        self._servers: list[HubServer] = []
        self._threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"FakeHub(endpoint={self._core.endpoint or None!r})"

    @contextlib.contextmanager
    def environment(self, home: str | os.PathLike[str] | None = None) -> Iterator[Path]:
        """Point the code in the block at this hub; restore everything after it.

        Sets `HF_ENDPOINT`, `HF_HOME` (`home`, a temporary folder when omitted) and
        `HF_HUB_CACHE`, clears the token and offline variables, patches huggingface_hub's
        import-time constants when it is imported, and makes modelfetch's default sources
        read the environment again. Yields the hub cache folder. For scripts, notebooks and
        tests outside pytest (in pytest, the `hub_env` fixture does this).

        ```python
        with FakeHub() as hub, hub.environment() as cache:
            hub.add_file("org/model", "config.json", b"{}")
            path = modelfetch.fetch_sync("org/model", "config.json")
        ```
        """
        from ._environ import hub_environment  # noqa: PLC0415 - only this method needs it

        with contextlib.ExitStack() as stack:
            if home is None:
                home = stack.enter_context(tempfile.TemporaryDirectory(prefix="fakehub-home-"))
            yield stack.enter_context(hub_environment(self.endpoint, Path(home)))

    # ---- lifecycle -------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """Base URL to use as `HF_ENDPOINT`, like `http://127.0.0.1:54321`."""
        if not self._core.endpoint:
            raise RuntimeError("FakeHub is not running; use it as a context manager or call start()")
        return self._core.endpoint

    @property
    def cdn_endpoint(self) -> str:
        """Base URL LFS downloads are redirected to (equal to `endpoint` with cdn='none')."""
        return self._core.cdn_base or self.endpoint

    def start(self) -> FakeHub:
        """Bind to an ephemeral port on 127.0.0.1 and serve from daemon threads."""
        if self._servers:
            return self
        self._core.stopping.clear()
        main = self._serve(HubServer(self._port, self._core))
        port = main.server_address[1]
        self._core.endpoint = f"http://127.0.0.1:{port}"
        if self._core.cdn == "separate":
            cdn = self._serve(HubServer(0, self._core, cdn_only=True))
            self._core.cdn_base = f"http://127.0.0.1:{cdn.server_address[1]}"
        elif self._core.cdn == "alias":
            self._core.cdn_base = f"http://localhost:{port}"
        else:
            self._core.cdn_base = self._core.endpoint
        return self

    def _serve(self, server: HubServer) -> HubServer:
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), name="fakehub", daemon=True)
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)
        return server

    def stop(self) -> None:
        """Stop serving, end open connections, and remove a temporary root."""
        self._core.stopping.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        with self._core.connections_lock:
            connections = list(self._core.connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(2)
        for thread in self._threads:
            thread.join()
        self._servers.clear()
        self._threads.clear()
        self._core.endpoint = self._core.cdn_base = ""
        if self._own_root:
            shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> FakeHub:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)

    # ---- content ---------------------------------------------------------------------

    def create_repo(
        self, repo_id: str, *, repo_type: str = "model", private: bool = False, gated: bool = False
    ) -> str:
        """Create a repo (or change its flags) and return the head commit of `main`.

        Private repos answer 401/404 without a valid token; gated ones answer `GatedRepo`.
        """
        check_repo_id(repo_id)
        check_repo_type(repo_type)
        repo = self._core.state.create_repo(repo_type, repo_id, private=private, gated=gated)
        return repo.branches["main"]

    def add_file(
        self,
        repo_id: str,
        path_in_repo: str,
        data: bytes | os.PathLike[str] | BinaryIO,
        *,
        repo_type: str = "model",
        lfs: bool | None = None,
        branch: str = "main",
    ) -> str:
        """Add (or replace) one file as a new commit on `branch`; return the commit id.

        Args:
            repo_id: the repo, created if missing.
            path_in_repo: where the file goes, like `"onnx/model.onnx"`.
            data: the content: bytes, a path to a local file, or a binary file object.
            repo_type: `"model"`, `"dataset"` or `"space"`.
            lfs: store it with LFS; by default, by extension (`*.safetensors`, ...) and size.
            branch: the branch to commit on (created if missing, from an empty tree).
        """
        return self.add_files(repo_id, {path_in_repo: data}, repo_type=repo_type, lfs=lfs, branch=branch)

    def add_files(
        self,
        repo_id: str,
        files: dict[str, bytes | os.PathLike[str] | BinaryIO],
        *,
        repo_type: str = "model",
        lfs: bool | None = None,
        branch: str = "main",
    ) -> str:
        """Add several files as one commit on `branch`; return the commit id."""
        state = self._core.state
        repo = state.repo(repo_type, repo_id) or state.create_repo(
            repo_type, repo_id, private=False, gated=False
        )
        changes: dict[str, Entry | None] = {}
        for path, data in files.items():
            check_filename(path)
            blob = state.store(data)
            changes[path] = Entry(blob, is_lfs_by_default(path, blob.size) if lfs is None else lfs)
        return state.commit(repo, changes, branch)

    def add_folder(self, repo_id: str, folder: str | os.PathLike[str], *, repo_type: str = "model") -> str:
        """Add every file under `folder` (paths relative to it) as one commit; return its id."""
        root = Path(folder)
        files: dict[str, bytes | os.PathLike[str] | BinaryIO] = {
            p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()
        }
        return self.add_files(repo_id, files, repo_type=repo_type)

    def delete_file(
        self, repo_id: str, path_in_repo: str, *, repo_type: str = "model", branch: str = "main"
    ) -> str:
        """Remove a file in a new commit on `branch`; return the commit id."""
        state = self._core.state
        repo = state.repo(repo_type, repo_id)
        if repo is None:
            raise KeyError(f"no {repo_type} repo {repo_id!r}")
        return state.commit(repo, {path_in_repo: None}, branch)

    def set_ref(
        self, repo_id: str, name: str, commit: str, *, repo_type: str = "model", tag: bool = False
    ) -> None:
        """Point branch (or tag) `name` at `commit`, say to move `main` mid-download."""
        state = self._core.state
        with state.lock:
            repo = state.repo(repo_type, repo_id)
            if repo is None or commit not in repo.commits:
                raise KeyError(f"no commit {commit} in {repo_type} repo {repo_id!r}")
            (repo.tags if tag else repo.branches)[name] = commit

    def head(self, repo_id: str, *, repo_type: str = "model", branch: str = "main") -> str:
        """The commit `branch` points to."""
        repo = self._core.state.repo(repo_type, repo_id)
        if repo is None or branch not in repo.branches:
            raise KeyError(f"no branch {branch!r} in {repo_type} repo {repo_id!r}")
        return repo.branches[branch]

    # ---- faults ----------------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int | None = None,
    ) -> FaultRule:
        """Apply `fault` to matching requests; return the rule (pass it to `remove_fault`).

        Args:
            fault: what goes wrong.
            method: only this HTTP method (any when None).
            path: only requests whose decoded target contains this (any when None). LFS
                downloads go to `/cdn/<sha256>?filename=<name>`, so a file name matches both.
            times: how many requests it applies to (forever when None).
        """
        return self._core.faults.add(FaultRule(fault, method, path, times))

    def remove_fault(self, rule: FaultRule) -> None:
        """Stop applying one injected rule."""
        self._core.faults.remove(rule)

    def clear_faults(self) -> None:
        """Stop applying every injected rule."""
        self._core.faults.clear()

    # ---- observation -----------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request answered so far, oldest first."""
        return self._core.log.snapshot()

    def count(self, method: str | None = None, substring: str = "") -> int:
        """How many requests had `method` (any if None) and a path containing `substring`.

        Every request the server has received counts, finished or not.
        """
        return count(self._core.log.snapshot(), method, substring)

    def file_bytes_served(self) -> int:
        """Body bytes sent for file downloads (200/206 answers to GETs outside `/api/`), so far.

        What a fleet test compares with the model's size: the bytes the Hub paid for.
        """
        return sum(
            r.bytes_sent
            for r in self._core.log.snapshot()
            if r.method == "GET" and r.status in (200, 206) and "/api/" not in r.path
        )

    def clear_requests(self) -> None:
        """Forget the request log."""
        self._core.log.clear()

    def wait_for_requests(
        self,
        method: str | None = None,
        substring: str = "",
        *,
        at_least: int = 1,
        timeout: float = 30.0,
    ) -> list[RequestRecord]:
        """Block until `at_least` matching requests have been answered; return them.

        A request is logged when its answer ends (completed or cut off), so this is how a
        test waits for the server to notice a client that went away.

        Raises:
            TimeoutError: not enough matching requests within `timeout` seconds.
        """

        def enough(records: list[RequestRecord]) -> bool:
            return count(records, method, substring) >= at_least

        if not self._core.log.wait_for(enough, timeout):
            raise TimeoutError(
                f"fewer than {at_least} {method or 'any'} requests for {substring!r} in {timeout}s"
            )
        wanted = method.upper() if method else None
        return [r for r in self.requests if (wanted is None or r.method == wanted) and substring in r.path]

"""The `modelfetch` command.

    modelfetch get REPO [FILE]... [--include GLOB]... [--exclude GLOB]... [--max-workers N]
    modelfetch snapshot REPO [--revision R] [--include GLOB]... [--exclude GLOB]... [--max-workers N]
    modelfetch cache ls | rm REPO [--revision R] [--dry-run] | prune [--dry-run] | verify REPO
    modelfetch mirror push REPO [--url s3://bucket/prefix] [--include GLOB]... [--exclude GLOB]...
    modelfetch demo [--size MIB] [--shards N] [--backend threads|httpx]

`get`, `snapshot` and `mirror push` take --revision, --repo-type, --cache-dir, --token,
--format text|json, --backend threads|httpx, --quiet and --debug. stdout carries only
results (one path per line, or one JSON document); progress and errors go to stderr.
Exit status: 0 on success, 1 when a fetch fails, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import logging.handlers
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from .._api import DEFAULT_SNAPSHOT_WORKERS, snapshot
from .._core.errors import FetchError, InvalidRequestError
from .._core.force import forcing
from .._core.progress import ProgressCallback
from .._core.settings import Settings
from .._core.text import printable
from .._core.types import DEFAULT_REVISION, RepoRef
from .._default import BACKENDS, DEFAULT_BACKEND, build_default_source, hub_source, resolve_backend
from .._version import __version__
from . import cachecmd, cachels, configcmd
from .bars import ProgressBars, bars_enabled
from .get import Outcome, Planned, failure_of, get_files, plan_files

_BACKEND_HELP = f"Hub source (default: the config file's backend, else {DEFAULT_BACKEND})"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelfetch", description="Fetch Hugging Face Hub files into the Hugging Face cache."
    )
    parser.add_argument("--version", action="version", version=f"modelfetch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--revision", default=None, help="branch, tag or commit id (default: main)")
    common.add_argument("--repo-type", default="model", choices=["model", "dataset", "space"])
    common.add_argument(
        "--backend",
        default=None,
        choices=BACKENDS,
        help=_BACKEND_HELP,
    )
    common.add_argument(
        "--cache-dir", default=None, help="the Hugging Face hub cache (default: HF_HUB_CACHE)"
    )
    common.add_argument(
        "--token", default=None, help="access token (default: HF_TOKEN or the saved token); never printed"
    )
    common.add_argument(
        "--format",
        default="text",
        choices=["text", "json"],
        help="text: one result per line; json: one document",
    )
    common.add_argument("--force-download", action="store_true", help="download again even what is cached")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_argument("--debug", action="store_true", help="show tracebacks on failure")

    get = commands.add_parser(
        "get", parents=[common], help="fetch files at once; print one local path per file, in order"
    )
    get.add_argument("repo")
    get.add_argument("files", nargs="*", metavar="FILE", help="files to fetch (default: every file)")
    get.add_argument("--include", action="append", default=None, metavar="GLOB")
    get.add_argument("--exclude", action="append", default=None, metavar="GLOB")
    get.add_argument("--max-workers", type=_positive_int, default=DEFAULT_SNAPSHOT_WORKERS)
    get.add_argument(
        "--dry-run", action="store_true", help="list files, sizes and what is cached; fetch nothing"
    )
    get.add_argument(
        "--local-dir", default=None, help="also copy the files into this folder (as hf download)"
    )

    snap = commands.add_parser("snapshot", parents=[common], help="fetch a revision; print its folder")
    snap.add_argument("repo")
    snap.add_argument("--include", action="append", default=None, metavar="GLOB")
    snap.add_argument("--exclude", action="append", default=None, metavar="GLOB")
    snap.add_argument("--max-workers", type=_positive_int, default=DEFAULT_SNAPSHOT_WORKERS)
    snap.add_argument("--local-dir", default=None, help="also copy the files into this folder; print it")
    snap.add_argument(
        "--dry-run", action="store_true", help="list files, sizes and what is cached; fetch nothing"
    )

    _add_cache_commands(commands)

    mirror = commands.add_parser("mirror", help="work with a fleet's shared bucket")
    mirror_commands = mirror.add_subparsers(dest="mirror_command", required=True, metavar="ACTION")
    push = mirror_commands.add_parser(
        "push", parents=[common], help="copy a revision from the Hub into the bucket; print its commit"
    )
    push.add_argument("repo")
    push.add_argument("--url", default=None, help="the bucket (default: $MODELFETCH_MIRROR_URL)")
    push.add_argument("--include", action="append", default=None, metavar="GLOB")
    push.add_argument("--exclude", action="append", default=None, metavar="GLOB")

    demo = commands.add_parser("demo", help="fetch a generated model from an embedded fake Hub on 127.0.0.1")
    demo.add_argument(
        "--size", type=_positive_int, default=256, help="total weight size in MiB (default: 256)"
    )
    demo.add_argument(
        "--shards", type=_positive_int, default=4, help="number of safetensors shards (default: 4)"
    )
    demo.add_argument(
        "--backend",
        default=None,
        choices=BACKENDS,
        help=_BACKEND_HELP,
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.add_argument("--debug", action="store_true", help="show tracebacks on failure")
    config = commands.add_parser(
        "config", help="print the effective settings and where each came from (token not shown)"
    )
    config.add_argument("--format", choices=["text", "json"], default="text")
    return parser


def _add_cache_commands(commands: Any) -> None:
    """`cache ls | rm | prune | verify`."""
    cache = commands.add_parser("cache", help="inspect and clean the Hugging Face cache")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--cache-dir", default=None, help="the Hugging Face hub cache (default: HF_HUB_CACHE)")
    dry = argparse.ArgumentParser(add_help=False)
    dry.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    one_repo = argparse.ArgumentParser(add_help=False)
    one_repo.add_argument("repo", help="org/name, or hf cache's TYPE/org/name (model/, dataset/, space/)")
    one_repo.add_argument("--repo-type", default=None, choices=["model", "dataset", "space"])
    ls = cache_commands.add_parser(
        "ls", parents=[where], help="list cached repos: type, id, revisions, files, size"
    )
    ls.add_argument("--format", choices=["text", "json"], default="text")
    ls.add_argument("--revisions", action="store_true", help="one row per cached revision")
    ls.add_argument("--sort", choices=["name", "size", "modified"], default="name")
    ls.add_argument("--filter", default=None, metavar="GLOB", help="only repos whose id matches GLOB")
    rm = cache_commands.add_parser(
        "rm", parents=[where, dry, one_repo], help="remove a repo, or one revision; shared blobs stay"
    )
    rm.add_argument("-y", "--yes", action="store_true", help="accepted for hf cache parity (we never ask)")
    rm.add_argument("--revision", default=None, help="one revision (commit or ref) instead of the whole repo")
    cache_commands.add_parser(
        "prune", parents=[where, dry], help="remove detached revisions and abandoned partial downloads"
    )
    check = cache_commands.add_parser(
        "verify", parents=[where, one_repo], help="hash a cached revision's files; exit 1 on a mismatch"
    )
    check.add_argument("--revision", default=DEFAULT_REVISION, help="commit or ref (default: main)")


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (argparse turns the error into exit status 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


async def _run(args: argparse.Namespace, progress: ProgressCallback | None) -> list[Outcome]:
    if args.command == "demo":
        from .demo import run_demo  # noqa: PLC0415 - only the demo needs the test kit

        await run_demo(
            size_mib=args.size, shards=args.shards, backend=resolve_backend(args.backend), progress=progress
        )
        return []
    settings = _settings(args)
    if args.command == "mirror":
        with forcing(args.force_download):  # the upstream downloads again what it pushes
            return [Outcome(args.repo, path=Path(await _push(args, settings)))]
    async with contextlib.aclosing(build_default_source(settings, backend=args.backend)) as source:
        if args.dry_run:  # get or snapshot: the same plan
            commit, planned = await plan_files(args, source, settings.hub_cache)
            _print_plan(args, commit, planned)
            return []
        if args.command == "get":
            return await get_files(args, source, progress)
        folder = await snapshot(
            args.repo,
            revision=args.revision,
            repo_type=args.repo_type,
            include=args.include,
            exclude=args.exclude,
            max_workers=args.max_workers,
            source=source,
            progress=progress,
            local_dir=args.local_dir,
            force_download=args.force_download,
        )
        return [Outcome(args.repo, path=folder)]


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings, with `--cache-dir` and `--token` winning over it."""
    return Settings.from_env(hub_cache=args.cache_dir, token=args.token)


async def _push(args: argparse.Namespace, settings: Settings) -> str:
    from .._mirror.source import MirrorSource  # noqa: PLC0415 - needs the optional obstore

    repo = RepoRef(args.repo, args.revision or DEFAULT_REVISION, args.repo_type)
    async with MirrorSource(
        args.url, settings=settings, upstream=hub_source(args.backend, settings)
    ) as mirror:
        listing = await mirror.push(repo, include=args.include, exclude=args.exclude)
        stats = mirror.stats()
    print(
        f"pushed {repo.repo_id}@{listing.commit[:12]} to {mirror.bucket.url}: "
        f"{stats.uploads} blobs uploaded ({stats.upload_bytes / 2**20:.1f} MiB), the rest already there",
        file=sys.stderr,
    )
    return listing.commit


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "cache":
        return _cache(args)
    if args.command == "config":
        return _config(args)
    warnings = _route_logging(debug=args.debug)
    try:
        with contextlib.ExitStack() as stack:
            progress = None
            if bars_enabled(sys.stderr, quiet=args.quiet):
                progress = stack.enter_context(ProgressBars(sys.stderr))
            outcomes = anyio.run(_run, args, progress)
    except FetchError as exc:
        if args.debug:
            raise
        print(f"modelfetch: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, InvalidRequestError) else 1
    except KeyboardInterrupt:
        print(
            "modelfetch: interrupted; run the same command again to go on (finished files are kept, "
            "large partial files resume where they stopped)",
            file=sys.stderr,
        )
        return 130
    _print_results(args, outcomes)
    failure = failure_of(outcomes)
    if failure is not None:  # the files that did arrive were printed above, in order
        if args.debug:
            raise failure
        print(f"modelfetch: error: {_one_line(failure)}", file=sys.stderr)
        return 2 if isinstance(failure, InvalidRequestError) else 1
    for record in warnings.buffer:
        print(f"modelfetch: warning: {_one_line(record.getMessage())}", file=sys.stderr)
    return 0


def _print_plan(args: argparse.Namespace, commit: str, planned: list[Planned]) -> None:
    """`get/snapshot --dry-run`: one line per file (or one JSON document), then what would move."""
    if args.format == "json":
        files = [{"file": p.name, "size": p.size, "cached": p.cached} for p in planned]
        print(json.dumps({"repo": args.repo, "commit": commit, "files": files}, indent=2))
        return
    width = max(len(printable(p.name)) for p in planned)
    for p in planned:
        print(f"{printable(p.name).ljust(width)}  {p.size:>14,}  {'cached' if p.cached else 'to fetch'}")
    todo = [p for p in planned if not p.cached or args.force_download]
    total = sum(p.size for p in todo)
    print(f"{args.repo}@{commit[:12]}: {len(todo)} of {len(planned)} file(s) to fetch, {total:,} bytes")


def _print_results(args: argparse.Namespace, outcomes: list[Outcome]) -> None:
    """Text: one path (or commit) per line, successes only; json: one document with everything."""
    if getattr(args, "dry_run", False):  # the plan was printed instead
        return
    if getattr(args, "format", "text") == "json":
        key = {"get": "file", "snapshot": "repo", "mirror": "repo"}.get(args.command, "name")
        value = {"mirror": "commit", "snapshot": "folder"}.get(args.command, "path")
        document = [
            {key: o.name, value: str(o.path)}
            if o.path is not None
            else {key: o.name, "error": _one_line(o.error or "")}
            for o in outcomes
        ]
        print(json.dumps(document if args.command == "get" else document[0], indent=2))
        return
    for outcome in outcomes:
        if outcome.path is not None:
            print(printable(str(outcome.path)))


_FOREIGN_LOGGERS = ("huggingface_hub", "httpx", "httpcore", "httpx2", "httpcore2", "filelock", "urllib3")


def _route_logging(*, debug: bool) -> logging.handlers.BufferingHandler:
    """Keep stderr to one line on failure: foreign loggers silenced, our warnings held back.

    Our own warnings (a mirror outage, say) are printed after a success; on a failure the
    one-line error says what matters. `--debug` shows everything as it happens instead.
    """
    held = logging.handlers.BufferingHandler(capacity=1000)
    if debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        return held
    for name in _FOREIGN_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    ours = logging.getLogger("modelfetch")
    ours.addHandler(held)
    ours.setLevel(logging.WARNING)
    ours.propagate = False
    return held


def _config(args: argparse.Namespace) -> int:
    """`config`: the settings on stdout; a broken config file is a one-line error, status 2."""
    try:
        print(configcmd.report(as_json=args.format == "json"))
    except FetchError as exc:
        print(f"modelfetch: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, InvalidRequestError) else 1
    return 0


def _cache(args: argparse.Namespace) -> int:
    """`cache ls | rm | prune | verify`: results on stdout, one-line errors on stderr."""
    try:
        root = Settings.from_env(hub_cache=args.cache_dir).hub_cache
        if args.cache_command == "ls":
            print(cachels.listing(root, args))
            return 0
        if args.cache_command != "prune":
            args.repo_type, args.repo = cachecmd.split_target(args.repo, args.repo_type)
        if args.cache_command == "rm":
            report = cachecmd.remove(root, args.repo, args.repo_type, args.revision, dry_run=args.dry_run)
        elif args.cache_command == "prune":
            report = cachecmd.prune(root, dry_run=args.dry_run)
        else:
            report = cachecmd.verify(root, args.repo, args.repo_type, args.revision)
    except FetchError as exc:
        print(f"modelfetch: error: {_one_line(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, InvalidRequestError) else 1
    for line in report.lines:
        print(printable(line))
    return 0 if report.ok else 1


def _one_line(exc: BaseException | str) -> str:
    """One line of text a terminal shows as it is (whatever a server put in a message)."""
    return printable(" ".join(str(exc).split()))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

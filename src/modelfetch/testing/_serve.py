"""`python -m modelfetch.testing serve`: a FakeHub in a process of its own.

For what cannot run it in-process: a server under uvicorn, the `modelfetch` command, a tool
in another language. It prints its endpoint (`http://127.0.0.1:PORT`) as the first line on
stdout once it is serving, and stops cleanly on SIGINT or SIGTERM (exit status 0)::

    python -m modelfetch.testing serve --repo org/model=./my-model --token hf_test --port 8765
    python -m modelfetch.testing serve --generate demo/tiny --fail-status 503 --fail-times 2

Bad arguments are exit status 2 with a one-line message, as for the `modelfetch` command.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from .._core.errors import InvalidRequestError
from .._core.validate import check_repo_id
from ._fakehub import FakeHub
from ._faults import Fault
from ._modelrepo import write_model_repo


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modelfetch.testing", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a FakeHub until SIGINT or SIGTERM")
    serve.add_argument("--port", type=_port, default=0, help="port on 127.0.0.1 (default: any free one)")
    serve.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="REPO_ID=FOLDER",
        type=_repo_folder,
        help="serve FOLDER's files as the model repo REPO_ID (repeatable)",
    )
    serve.add_argument(
        "--generate",
        action="append",
        default=[],
        metavar="REPO_ID",
        help="serve a generated sharded-safetensors model as REPO_ID (repeatable)",
    )
    serve.add_argument("--token", action="append", default=[], help="an access token it accepts (repeatable)")
    serve.add_argument(
        "--cdn", choices=["alias", "separate", "none"], default="alias", help="where LFS redirects go"
    )
    faults = serve.add_argument_group("faults (applied to requests whose path contains --fail-path)")
    faults.add_argument(
        "--fail-status", type=int, metavar="CODE", help="answer with this HTTP status instead"
    )
    faults.add_argument("--retry-after", metavar="SECONDS", help="the Retry-After sent with --fail-status")
    faults.add_argument("--latency", type=float, default=0.0, metavar="SECONDS", help="wait before answering")
    faults.add_argument("--throttle", type=int, metavar="BYTES_PER_S", help="send bodies at most this fast")
    faults.add_argument("--fail-path", metavar="SUBSTRING", help="only requests whose path contains this")
    faults.add_argument("--fail-times", type=int, metavar="N", help="only the first N matching requests")
    return parser


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 to 65535)")
    return value


def _repo_folder(text: str) -> tuple[str, Path]:
    repo_id, sep, folder = text.partition("=")
    if not sep or not Path(folder).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: expected REPO_ID=FOLDER with an existing folder")
    return _repo_id(repo_id), Path(folder)


def _repo_id(text: str) -> str:
    try:
        return check_repo_id(text)
    except InvalidRequestError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fault(args: argparse.Namespace) -> Fault | None:
    if args.fail_status is None and not args.latency and args.throttle is None:
        return None
    return Fault(
        status=args.fail_status, retry_after=args.retry_after, latency=args.latency, throttle=args.throttle
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    stops = {signal.SIGINT, signal.SIGTERM}
    waits = hasattr(signal, "sigwait")
    if waits:  # block them before the server's threads start, so this thread receives them
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    with (
        tempfile.TemporaryDirectory(prefix="fakehub-generated-") as tmp,
        FakeHub(tokens=tuple(args.token), cdn=args.cdn, port=args.port) as hub,
    ):
        try:
            for repo_id, folder in args.repo:
                hub.add_folder(repo_id, folder)
            for number, repo_id in enumerate(args.generate):
                hub.add_folder(repo_id, write_model_repo(Path(tmp, str(number)), seed=number).folder)
        except ValueError as exc:  # a file name FakeHub refuses
            parser.error(str(exc))
        fault = _fault(args)
        if fault is not None:
            hub.inject(fault, path=args.fail_path, times=args.fail_times)
        print(hub.endpoint, flush=True)
        if waits:
            signal.sigwait(stops)
        else:  # pragma: no cover - Windows: Ctrl-C raises KeyboardInterrupt in the wait
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

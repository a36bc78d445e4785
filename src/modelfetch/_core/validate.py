"""Pure checks of user input: repo ids, filenames, revisions and repo types.

Everything a caller passes in ends up in a URL and in a path under the cache, so these
run before any I/O and reject anything that could escape the cache directory or be read
two ways. The rules follow the Hub's own (ASCII names, no `--` or `..`, at most 96
characters a part); filenames are relative POSIX paths.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal, TypeVar, cast

from .errors import InvalidRequestError

RepoType = Literal["model", "dataset", "space"]
REPO_TYPES: Final = ("model", "dataset", "space")

_REPO_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.\-]{0,94}[A-Za-z0-9_])?")
_COMMIT = re.compile(r"[0-9a-f]{40}")
# C0 and C1 controls, DEL, and the bidi controls that reorder what a terminal shows (U+202E...).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MAX_PATH_CHARS: Final = 1024
_MAX_SEGMENT_BYTES: Final = 255


def is_commit(revision: str) -> bool:
    """Whether `revision` is a full 40-hex commit id (and so immutable)."""
    return _COMMIT.fullmatch(revision) is not None


def _remembered(problem: Callable[[object], str]) -> Callable[[object], str]:
    """Memoize a `*_problem` check for strings (pure, and asked again on every fetch of a file)."""
    cached = functools.lru_cache(maxsize=4096)(problem)

    def check(value: object) -> str:
        return cached(value) if type(value) is str else problem(value)

    check.__doc__ = problem.__doc__
    return check


def check_repo_type(repo_type: str) -> RepoType:
    """Return `repo_type` if it is one the Hub knows, else raise `InvalidRequestError`."""
    if repo_type not in REPO_TYPES:
        raise InvalidRequestError(
            f"repo_type {repo_type!r} is not one of {', '.join(REPO_TYPES)}; "
            "pass repo_type='model', 'dataset' or 'space'."
        )
    return cast(RepoType, repo_type)


def check_repo_id(repo_id: str) -> str:
    """Return `repo_id` if it is a valid `name` or `namespace/name`, else raise."""
    problem = _repo_id_problem(repo_id)
    if problem:
        raise InvalidRequestError(
            f"repo id {repo_id!r} is not valid: {problem}. "
            "Use 'namespace/name' with letters, digits, '-', '_' and '.'."
        )
    return repo_id


@_remembered
def _repo_id_problem(repo_id: object) -> str:
    if not isinstance(repo_id, str):
        return "it must be a string"
    parts = repo_id.split("/")
    if len(parts) > 2:
        return "it has more than one '/'"
    if "--" in repo_id or ".." in repo_id:
        return "'--' and '..' are not allowed"
    if repo_id.endswith(".git"):
        return "it must not end with '.git'"
    if not all(_REPO_PART.fullmatch(part) for part in parts):
        return (
            "each part needs 1-96 ASCII letters, digits, '-', '_' or '.', "
            "not starting or ending with '-' or '.'"
        )
    return ""


def check_filename(filename: str) -> str:
    """Return `filename` if it is a safe relative path inside a repo, else raise."""
    problem = filename_problem(filename)
    if problem:
        raise InvalidRequestError(
            f"filename {filename!r} is not valid: {problem}. "
            "Use a relative path inside the repo with '/' separators, like 'onnx/model.onnx'."
        )
    return filename


@_remembered
def filename_problem(filename: object) -> str:
    """Why `filename` is not a safe relative POSIX path in a repo, or "" if it is."""
    if not isinstance(filename, str):
        return "it must be a string"
    if not filename:
        return "it is empty"
    if len(filename) > _MAX_PATH_CHARS:
        return f"it is longer than {_MAX_PATH_CHARS} characters"
    if _CONTROL.search(filename):
        return "it contains a control character (C0, C1 or bidi) or NUL"
    if "\\" in filename:
        return "it contains a backslash"
    if filename.startswith("/"):
        return "it is absolute"
    for segment in filename.split("/"):
        if segment in ("", ".", ".."):
            return "it has an empty, '.' or '..' segment"
        if len(segment.encode("utf-8", "surrogatepass")) > _MAX_SEGMENT_BYTES:
            return f"a segment is longer than {_MAX_SEGMENT_BYTES} bytes"
    return ""


def check_revision(revision: str) -> str:
    """Return `revision` (a branch, tag or commit id) if it is safe to use, else raise."""
    problem = _revision_problem(revision)
    if problem:
        raise InvalidRequestError(
            f"revision {revision!r} is not valid: {problem}. "
            "Use a branch or tag name like 'main' or 'v1.0', or a 40-hex commit id."
        )
    return revision


@_remembered
def _revision_problem(revision: object) -> str:
    if not isinstance(revision, str):
        return "it must be a string"
    if not revision:
        return "it is empty"
    if len(revision) > _MAX_SEGMENT_BYTES:
        return f"it is longer than {_MAX_SEGMENT_BYTES} characters"
    if _CONTROL.search(revision):
        return "it contains a control character (C0, C1 or bidi) or NUL"
    if "\\" in revision or ".." in revision:
        return "it contains a backslash or '..'"
    if any(segment in ("", ".") for segment in revision.split("/")):
        return "it has an empty or '.' path segment"
    if revision.endswith(".lock"):
        return "it ends with '.lock'"
    return ""


# ---- arguments of constructors and entry points ----------------------------------------


def check_positive_int(name: str, value: object) -> int:
    """Return `value` if it is an int >= 1 (not a bool), else raise `InvalidRequestError` naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"{name} must be a whole number >= 1, not {value!r}.")
    return value


def check_seconds(name: str, value: object, *, allow_zero: bool = True) -> float:
    """Return `value` as float if it is a finite number of seconds (>= 0, or > 0), else raise."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidRequestError(f"{name} must be a number of seconds, not {value!r}.")
    if value < 0 or (value == 0 and not allow_zero) or math.isinf(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidRequestError(f"{name} must be a finite number of seconds {bound}, not {value!r}.")
    return float(value)


def check_flag(name: str, value: object) -> bool:
    """Return `value` if it is True or False, else raise `InvalidRequestError` naming `name`."""
    if not isinstance(value, bool):
        raise InvalidRequestError(f"{name} must be True or False, not {value!r}.")
    return value


def check_path(name: str, value: object) -> Path:
    """Return `value` (a `str` or `os.PathLike`) as a `Path`, else raise `InvalidRequestError`."""
    if isinstance(value, Path):
        return value
    if isinstance(value, str | os.PathLike) and not isinstance(value, bytes):
        text = os.fspath(value)
        if isinstance(text, str) and text:
            return Path(text)
    raise InvalidRequestError(f"{name} must be a path (str or os.PathLike), not {value!r}.")


_T = TypeVar("_T")


def check_instance(name: str, value: _T | None, kind: type[_T]) -> _T | None:
    """Return `value` if it is None or a `kind`, else raise `InvalidRequestError` naming `name`."""
    if value is not None and not isinstance(value, kind):
        raise InvalidRequestError(f"{name} must be a {kind.__name__}, not {type(value).__name__}.")
    return value


def check_source(name: str, value: object) -> None:
    """Raise `InvalidRequestError` unless `value` implements the `ModelAssetSource` methods."""
    if not all(callable(getattr(value, method, None)) for method in ("resolve", "list_files", "aclose")):
        raise InvalidRequestError(
            f"{name} must be a ModelAssetSource (with resolve, list_files and aclose), "
            f"not {type(value).__name__}."
        )

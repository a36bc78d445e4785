"""Input validation: bad repo ids, filenames and revisions fail before any I/O."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings

from modelfetch import AssetRef, FetchError, InvalidRequestError, RepoRef
from modelfetch._core.validate import is_commit
from modelfetch._store.layout import CacheLayout

from .._hostile import hostile_names


@pytest.mark.parametrize(
    "repo_id", ["gpt2", "org/model", "Org_1/model-v1.5", "a/b", "x" * 96, "org/" + "y" * 96]
)
def test_valid_repo_ids_pass(repo_id: str) -> None:
    """Names the Hub accepts are accepted."""
    assert AssetRef(repo_id, "config.json").repo_id == repo_id


@pytest.mark.parametrize(
    "repo_id",
    [
        "",
        "/",
        "a/b/c",
        "../etc",
        "org/..",
        "org/-model",
        "org/model.",
        "a--b/c",
        "org/mod..el",
        "org/model.git",
        "x" * 97,
        "org/ model",
        "org/mödel",
        "org\\model",
        "org/mo%2Fdel",
        "\x00",
    ],
)
def test_invalid_repo_ids_fail(repo_id: str) -> None:
    """Malformed repo ids raise InvalidRequestError, which is also a ValueError and a FetchError."""
    with pytest.raises(InvalidRequestError, match="repo id") as info:
        AssetRef(repo_id, "config.json")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, FetchError)


@pytest.mark.parametrize(
    "filename",
    ["config.json", "onnx/model.onnx", "a/b/c/d.bin", ".gitattributes", "naïve.txt", "a%2Fb", "..."],
)
def test_valid_filenames_pass(filename: str) -> None:
    """Relative POSIX paths, unicode names and literal percent signs are fine."""
    assert AssetRef("org/model", filename).filename == filename


@pytest.mark.parametrize(
    "filename",
    ["", "/etc/passwd", "../secret", "a/../../b", "a/./b", "a//b", "a/", "a\\b", "a\x00b", "a\nb", "x" * 256],
)
def test_invalid_filenames_fail(filename: str) -> None:
    """Absolute, traversing, backslashed, NUL-bearing or overlong names are rejected."""
    with pytest.raises(InvalidRequestError, match="filename"):
        AssetRef("org/model", filename)


@pytest.mark.parametrize("char", ["\x1b", "\x7f", "\x85", "\x9b", "\x9d", "\u202e", "\u2066", "\u200f"])
def test_names_with_c1_or_bidi_controls_are_refused_like_c0_ones(char: str) -> None:
    """CSI, OSC, NEL, DEL and the bidi overrides in a filename or revision: refused, as ESC is."""
    with pytest.raises(InvalidRequestError, match="control character"):
        AssetRef("org/model", f"config{char}.json")
    with pytest.raises(InvalidRequestError, match="control character"):
        RepoRef("org/model", f"main{char}")


@pytest.mark.parametrize("revision", ["main", "v1.0", "refs/pr/1", "a" * 40, "release-2024.01"])
def test_valid_revisions_pass(revision: str) -> None:
    """Branches, tags, PR refs and commit ids are accepted."""
    assert RepoRef("org/model", revision).revision == revision


@pytest.mark.parametrize(
    "revision", ["", "..", "a/../b", "/main", "main/", "ma\x00in", "a\tb", "x.lock", "a\\b"]
)
def test_invalid_revisions_fail(revision: str) -> None:
    """Revisions that could escape `refs/` or confuse a URL are rejected."""
    with pytest.raises(InvalidRequestError, match="revision"):
        RepoRef("org/model", revision)


def test_invalid_repo_type_fails() -> None:
    """Only model, dataset and space repos exist."""
    with pytest.raises(InvalidRequestError, match="repo_type"):
        RepoRef("org/model", "main", "kernel")  # type: ignore[arg-type]


def test_is_commit() -> None:
    """Only a full 40-hex lowercase id counts as a commit."""
    assert is_commit("0123456789abcdef0123456789abcdef01234567")
    assert not is_commit("0123456789ABCDEF0123456789abcdef01234567")
    assert not is_commit("main")


_hostile = hostile_names


@settings(max_examples=300, deadline=None)
@given(repo_id=_hostile, filename=_hostile, revision=_hostile)
def test_hostile_input_stays_inside_the_cache(repo_id: str, filename: str, revision: str) -> None:
    """Any input either fails with InvalidRequestError or maps to paths inside the cache."""
    root = Path("/cache")
    try:
        ref = AssetRef(repo_id or "x", filename, revision or "main")
    except InvalidRequestError:
        return
    layout = CacheLayout(root)
    for path in (
        layout.snapshot(ref, "a" * 40),
        layout.ref(ref, ref.revision),
        layout.no_exist(ref, "a" * 40),
    ):
        normalised = os.path.normpath(path)
        assert normalised == str(path)
        assert normalised.startswith("/cache/models--")

"""The bucket layer is the one boundary for obstore's exceptions: none escapes it unmapped."""

from __future__ import annotations

import hashlib
import inspect
import io
import os
from pathlib import Path

import obstore
import pytest

import modelfetch
from modelfetch._mirror.bucket import Bucket, BucketUnavailableError, to_fetch_error

ONE_BYTE = hashlib.sha256(b"x").hexdigest()
ANSWERS = {"NotFoundError", "AlreadyExistsError", "PreconditionError"}
CLASSES = [
    cls
    for name, cls in vars(obstore.exceptions).items()
    if inspect.isclass(cls) and issubclass(cls, Exception) and name not in ANSWERS
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_obstore_failure_becomes_bucket_unavailable(
    cls: type[Exception], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each obstore exception that is not an answer surfaces as BucketUnavailableError from every call."""
    bucket = Bucket.open("memory:///", timeout=5)

    def fail(*args: object, **kwargs: object) -> None:
        raise cls("boom\nDebug source: many lines")

    for name in ("get", "head", "put", "delete"):
        monkeypatch.setattr(obstore, name, fail)
    (tmp_path / "f").write_bytes(b"x")
    calls = [
        lambda: bucket.read("k"),
        lambda: bucket.exists("k"),
        lambda: bucket.create("k", b"x"),
        lambda: bucket.replace("k", b"x", '"e"'),
        lambda: bucket.delete("k"),
        lambda: bucket.download("k", 0, lambda offset, chunk: None),
        lambda: bucket.upload(
            "k", io.BytesIO(b"x"), size=1, etag=ONE_BYTE, part_size=5 << 20, on_chunk=lambda n: None
        ),
    ]
    for call in calls:
        with pytest.raises(BucketUnavailableError) as info:
            call()
        assert "\n" not in str(info.value)  # one line, not obstore's debug dump
    denied = cls.__name__ in {"PermissionDeniedError", "UnauthenticatedError"}
    error = to_fetch_error(info.value, "Pushing org/model")
    expected = modelfetch.AuthenticationError if denied else modelfetch.SourceUnavailableError
    assert type(error) is expected


def test_a_bug_is_not_mistaken_for_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only obstore's errors are translated: a TypeError from a wrong call propagates as it is."""
    bucket = Bucket.open("memory:///", timeout=5)

    def wrong(*args: object, **kwargs: object) -> None:
        raise TypeError("get() got an unexpected keyword argument")

    monkeypatch.setattr(obstore, "get", wrong)
    with pytest.raises(TypeError):
        bucket.read("k")
    with pytest.raises(TypeError):
        bucket.download("k", 0, lambda offset, chunk: None)


def test_answers_are_values_not_errors() -> None:
    """Missing keys read as None/False, a taken key as None, a stale e_tag as None."""
    bucket = Bucket.open("memory:///", timeout=5)
    assert bucket.read("missing") is None
    assert not bucket.exists("missing")
    assert bucket.download("missing", 0, lambda offset, chunk: None) is None
    first = bucket.create("k", b"1")
    assert first is not None
    assert bucket.create("k", b"2") is None
    assert bucket.replace("k", b"3", "stale") is None
    bucket.delete("missing")


def test_a_bad_url_is_an_invalid_request() -> None:
    """An unusable mirror URL is refused when the source is built, naming the URL."""
    with pytest.raises(modelfetch.InvalidRequestError, match="nope://"):
        Bucket.open("nope://bucket", timeout=5)


@pytest.mark.parametrize("size", [1024, 12 << 20], ids=["one-put", "multipart"])
def test_an_upload_whose_bytes_do_not_match_the_etag_stores_nothing(size: int) -> None:
    """Bytes that do not hash to the etag: IntegrityError, and the key never appears (put or multipart)."""
    bucket = Bucket.open("memory:///", timeout=5)
    data = os.urandom(size)
    wrong = hashlib.sha256(data + b"!").hexdigest()
    with pytest.raises(modelfetch.IntegrityError, match="nothing was uploaded"):
        bucket.upload(
            "k", io.BytesIO(data), size=size, etag=wrong, part_size=5 << 20, on_chunk=lambda n: None
        )
    assert not bucket.exists("k")
    right = hashlib.sha256(data).hexdigest()
    bucket.upload("k", io.BytesIO(data), size=size, etag=right, part_size=5 << 20, on_chunk=lambda n: None)
    assert bucket.read("k") is not None
    assert bucket.read("k")[0] == data  # type: ignore[index]


def test_a_bucket_servers_words_reach_messages_with_terminal_controls_escaped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error quoting the server's answer (an OSC title sequence, a bidi override) is escaped."""
    bucket = Bucket.open("memory:///", timeout=5)

    class Hostile:
        def get(self, *args: object, **kwargs: object) -> None:
            raise OSError("503: \x1b]0;owned\x07 try \u202egnp.exe")

    monkeypatch.setattr(bucket, "_ob", Hostile())
    with pytest.raises(BucketUnavailableError) as caught:
        bucket.read("k")
    message = str(caught.value)
    assert "\x1b" not in message
    assert "\u202e" not in message
    assert "\x07" not in message
    assert "\\x1b]0;owned\\x07" in message

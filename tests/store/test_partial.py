"""PartialBlob: resumable temporary files, verified before publishing, never through symlinks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelfetch import IntegrityError, StorageError
from modelfetch._store.partial import PartialBlob, partial_paths, peek_watermark

DATA = os.urandom(3 * 1024 * 1024 + 17)
SHA = hashlib.sha256(DATA).hexdigest()
GIT = hashlib.sha1(b"blob %d\0" % len(DATA) + DATA, usedforsecurity=False).hexdigest()


def _blob(tmp_path: Path, etag: str = SHA) -> Path:
    (tmp_path / "blobs").mkdir(exist_ok=True)
    return tmp_path / "blobs" / etag


@pytest.mark.parametrize("etag", [SHA, GIT], ids=["sha256", "git-sha1"])
def test_in_order_writes_verify_and_publish(tmp_path: Path, etag: str) -> None:
    """Sequential writes are verified against the etag and published under the blob name."""
    blob = _blob(tmp_path, etag)
    part = PartialBlob(tmp_path, blob, etag, len(DATA))
    assert part.open() == 0
    for offset in range(0, len(DATA), 1 << 20):
        part.write_at(
            offset, DATA[offset : offset + (1 << 20)], offset + len(DATA[offset : offset + (1 << 20)])
        )
    part.verify()
    part.publish()
    assert blob.read_bytes() == DATA
    assert sorted(p.name for p in blob.parent.iterdir()) == [etag]


def test_out_of_order_writes_verify(tmp_path: Path) -> None:
    """Ranges written in any order still verify (the rest is hashed from disk)."""
    part = PartialBlob(tmp_path, _blob(tmp_path), SHA, len(DATA))
    part.open()
    half = len(DATA) // 2
    part.write_at(half, DATA[half:])
    part.write_at(0, DATA[:half])
    part.verify()


def test_resume_from_the_watermark_in_a_new_instance(tmp_path: Path) -> None:
    """A later open resumes at the recorded watermark, dropping unconfirmed bytes past it."""
    blob = _blob(tmp_path)
    first = PartialBlob(tmp_path, blob, SHA, len(DATA))
    first.open()
    first.write_at(0, DATA[:1000], 1000)
    first.write_at(5000, DATA[5000:6000])  # beyond the watermark: not trusted
    first.close()
    second = PartialBlob(tmp_path, blob, SHA, len(DATA))
    assert second.open() == 1000
    second.write_at(1000, DATA[1000:], len(DATA))
    second.verify()


def test_ranges_written_before_any_watermark_are_not_trusted(tmp_path: Path) -> None:
    """A file with ranges past a hole and no watermark yet (cancelled, or killed) resumes from 0,
    not from its size: the size is no watermark when ranges land out of order."""
    blob = _blob(tmp_path)
    first = PartialBlob(tmp_path, blob, SHA, len(DATA))
    first.open()
    first.write_at(1 << 20, DATA[1 << 20 : 2 << 20])  # the second range arrived, the first never did
    first.close()
    second = PartialBlob(tmp_path, blob, SHA, len(DATA))
    assert second.open() == 0
    assert second.path.stat().st_size == 0


def test_the_watermark_survives_a_close_between_its_writes_to_disk(tmp_path: Path) -> None:
    """The watermark file is rewritten every 16 MiB; close records the last one."""
    blob = _blob(tmp_path)
    first = PartialBlob(tmp_path, blob, SHA, len(DATA))
    first.open()
    for offset in range(0, 2 << 20, 1 << 16):
        first.write_at(offset, DATA[offset : offset + (1 << 16)], offset + (1 << 16))
    first.close()
    second = PartialBlob(tmp_path, blob, SHA, len(DATA))
    assert second.open() == 2 << 20


def test_corrupt_content_fails_verification(tmp_path: Path) -> None:
    """One flipped byte is an IntegrityError; discard leaves nothing behind."""
    blob = _blob(tmp_path)
    part = PartialBlob(tmp_path, blob, SHA, len(DATA))
    part.open()
    bad = bytearray(DATA)
    bad[12345] ^= 0xFF
    part.write_at(0, bytes(bad))
    with pytest.raises(IntegrityError, match="does not match"):
        part.verify()
    part.discard()
    assert list(blob.parent.iterdir()) == []


def test_wrong_size_fails_verification(tmp_path: Path) -> None:
    """A short file is an IntegrityError naming the sizes."""
    part = PartialBlob(tmp_path, _blob(tmp_path), SHA, len(DATA))
    part.open()
    part.write_at(0, DATA[:10])
    with pytest.raises(IntegrityError, match="expected"):
        part.verify()


def test_symlink_at_the_temporary_path_is_refused(tmp_path: Path) -> None:
    """A symlink planted where the temporary file goes is not written through."""
    blob = _blob(tmp_path)
    target = tmp_path / "outside.txt"
    target.write_bytes(b"precious")
    part = PartialBlob(tmp_path, blob, SHA, len(DATA))
    part.path.symlink_to(target)
    with pytest.raises(StorageError):
        part.open()
    assert target.read_bytes() == b"precious"


def test_created_files_respect_the_umask(tmp_path: Path) -> None:
    """Published blobs get 0o666 less the umask."""
    old = os.umask(0o027)
    try:
        part = PartialBlob(tmp_path, _blob(tmp_path), SHA, len(DATA))
        part.open()
        part.write_at(0, DATA)
        part.verify()
        part.publish()
    finally:
        os.umask(old)
    assert (part.blob.stat().st_mode & 0o777) == 0o640


def test_a_follower_reads_the_watermark_the_writer_recorded_and_nothing_planted(tmp_path: Path) -> None:
    """peek_watermark sees the writer's mark; a link or a FIFO planted as the mark file reads as 0."""
    blob = tmp_path / "blobs" / ("a" * 64)
    blob.parent.mkdir()
    partial = PartialBlob(tmp_path, blob, "a" * 64, 100)
    partial.open()
    partial.write_at(0, b"x" * 40, 40)
    partial.close()
    assert peek_watermark(tmp_path, blob) == 40
    mark = partial_paths(blob)[1]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("00000000000000000099\n")
    mark.unlink()
    mark.symlink_to(elsewhere)
    assert peek_watermark(tmp_path, blob) == 0
    mark.unlink()
    os.mkfifo(mark)
    assert peek_watermark(tmp_path, blob) == 0  # and did not hang

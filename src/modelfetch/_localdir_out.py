"""`local_dir=`: files copied out of the cache into a folder, as huggingface_hub's `local_dir` lays them.

Each file lands at `local_dir/<path in the repo>` (written to a temporary name, then
renamed: a reader never sees half a file), and huggingface_hub's bookkeeping
(`.cache/huggingface/download/<path>.metadata`: commit, etag, time) is written after it,
so `hf_hub_download(..., local_dir=...)` recognises the file and we recognise its. A file
already there with matching metadata is not copied again. Blocking: call from a worker
thread.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from ._core.errors import StorageError


def place(local_dir: Path, filename: str, cached: Path, commit: str, etag: str | None) -> Path:
    """Copy `cached` (a file of the cache) to `local_dir/filename`; its path there."""
    from huggingface_hub._local_folder import (  # noqa: PLC0415 - huggingface_hub reads HF_* at import
        get_local_download_paths,
        read_download_metadata,
        write_download_metadata,
    )

    try:
        paths = get_local_download_paths(local_dir, filename)
        target = Path(paths.file_path)
        known = read_download_metadata(local_dir, filename)
        if (
            known is not None
            and known.commit_hash == commit
            and (etag is None or known.etag == etag)
            and target.is_file()
            and target.stat().st_size == cached.stat().st_size
        ):
            return target
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.modelfetch.incomplete")
        try:
            shutil.copyfile(cached, temporary)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        write_download_metadata(local_dir, filename, commit, etag or "")
    except OSError as exc:
        raise StorageError(
            f"Copying {filename} into {local_dir}: {exc.strerror or exc}; check that the folder is "
            "writable and has room."
        ) from exc
    return target

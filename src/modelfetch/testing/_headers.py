"""The headers the Hub sends with a file, for tests that mock HTTP themselves (respx)."""

from __future__ import annotations

import hashlib

from .._hubapi.spec import git_blob_id

EXAMPLE_COMMIT = "0123456789abcdef0123456789abcdef01234567"
"""A well-formed commit id for mocked answers (any 40 lowercase hex digits will do)."""


def hub_headers(content: bytes, *, commit: str = EXAMPLE_COMMIT, lfs: bool = False) -> dict[str, str]:
    """What the Hub answers to `HEAD`/`GET .../resolve/<revision>/<file>` for `content`.

    `X-Repo-Commit`, `Content-Length` and the `ETag` modelfetch verifies the bytes against:
    git's blob sha1 of the content, or its sha256 when `lfs` (as the Hub does for LFS files
    it serves directly). Use it to answer both requests of a file in a respx mock:

    ```python
    url = "https://huggingface.co/org/model/resolve/main/config.json"
    respx.head(url).respond(200, headers=hub_headers(data))
    respx.get(url).respond(200, headers=hub_headers(data), content=data)
    ```
    """
    etag = hashlib.sha256(content).hexdigest() if lfs else git_blob_id(content)
    return {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "Content-Length": str(len(content))}

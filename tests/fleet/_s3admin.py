"""Bucket creation for the test gateway: obstore cannot create buckets, so sign one PUT here.

A minimal AWS Signature Version 4 for `PUT /<bucket>` with an empty body, enough for a
loopback radosgw. Test-only: the library never creates buckets.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import urllib.request

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _signing_key(secret: str, day: str, region: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def create_bucket(endpoint: str, bucket: str, access_key: str, secret_key: str, region: str) -> None:
    """Create `bucket` at the S3 `endpoint` (http://host:port); raises on any non-2xx answer."""
    host = endpoint.split("://", 1)[1].rstrip("/")
    now = datetime.datetime.now(datetime.UTC)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = f"host:{host}\nx-amz-content-sha256:{EMPTY_SHA256}\nx-amz-date:{stamp}\n"
    signed = "host;x-amz-content-sha256;x-amz-date"
    canonical = "\n".join(["PUT", f"/{bucket}", "", headers, signed, EMPTY_SHA256])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(_signing_key(secret_key, day, region), to_sign.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{endpoint.rstrip('/')}/{bucket}",
        method="PUT",
        headers={
            "x-amz-date": stamp,
            "x-amz-content-sha256": EMPTY_SHA256,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                f"SignedHeaders={signed}, Signature={signature}"
            ),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()

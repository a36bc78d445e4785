"""The mirror bucket's keys and bodies: pure, and hostile bodies decode to a miss."""

from __future__ import annotations

import json

import pytest

from modelfetch import ListedFile, RepoListing, RepoRef
from modelfetch._mirror.bucket import store_config
from modelfetch._mirror.keys import (
    Claim,
    blob_key,
    claim_key,
    decode_claim,
    decode_entry,
    decode_listing,
    encode_claim,
    encode_entry,
    encode_listing,
    entry_key,
    listing_key,
)

COMMIT = "a" * 40
SHA = "b" * 64
REPO = RepoRef("org/model", COMMIT)


def test_keys_follow_the_documented_layout() -> None:
    """Blobs by etag, entries and listings under the repo's commit, claims by etag."""
    assert blob_key(SHA) == f"blobs/{SHA}"
    assert claim_key(SHA) == f"claims/{SHA}"
    assert (
        entry_key(REPO, COMMIT, "onnx/model.onnx") == f"repos/models/org/model/{COMMIT}/files/onnx/model.onnx"
    )
    dataset = RepoRef("org/data", COMMIT, "dataset")
    assert listing_key(dataset, COMMIT) == f"repos/datasets/org/data/{COMMIT}/listing.json"


def test_entry_round_trips() -> None:
    """An encoded manifest entry decodes to the same file."""
    file = ListedFile("model.safetensors", 123, SHA, lfs=True)
    assert decode_entry(encode_entry(file), "model.safetensors") == file


def test_listing_round_trips() -> None:
    """An encoded listing decodes to the same files at the same commit."""
    files = (ListedFile("a.json", 2, "c" * 40), ListedFile("b.bin", 9, SHA, lfs=True))
    listing = RepoListing(REPO, COMMIT, files)
    assert decode_listing(encode_listing(listing), REPO) == listing


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"path": "config.json", "etag": "../../etc/passwd", "size": 1}).encode(),
        json.dumps({"path": "../config.json", "etag": SHA, "size": 1}).encode(),
        json.dumps({"path": "config.json", "etag": SHA, "size": -1}).encode(),
        json.dumps({"path": "config.json", "etag": SHA, "size": True}).encode(),
        json.dumps({"path": "config.json", "etag": SHA, "size": "1"}).encode(),
        json.dumps({"path": "other.json", "etag": SHA, "size": 1}).encode(),
        json.dumps({"path": "config.json", "etag": SHA, "size": 1, "lfs": "yes"}).encode(),
    ],
)
def test_malformed_entries_are_misses(body: bytes) -> None:
    """A bucket entry that is not valid, or names an unsafe etag or path, decodes to None."""
    assert decode_entry(body, "config.json") is None


def test_listing_of_another_commit_or_with_a_bad_file_is_a_miss() -> None:
    """A listing that names another commit, or holds one hostile entry, decodes to None."""
    good = ListedFile("a.json", 2, "c" * 40)
    other = RepoListing(RepoRef("org/model", "d" * 40), "d" * 40, (good,))
    assert decode_listing(encode_listing(other), REPO) is None
    body = json.loads(encode_listing(RepoListing(REPO, COMMIT, (good,))))
    body["files"].append({"path": "/abs", "etag": SHA, "size": 1})
    assert decode_listing(json.dumps(body).encode(), REPO) is None
    assert decode_listing(b'{"commit": "' + COMMIT.encode() + b'", "files": 3}', REPO) is None


def test_claims_round_trip_and_expire() -> None:
    """A claim decodes to itself and has lapsed exactly from its expiry time on."""
    claim = Claim("node-1:42:abcd", 1000.0)
    assert decode_claim(encode_claim(claim)) == claim
    assert not claim.expired(999.9)
    assert claim.expired(1000.0)
    assert decode_claim(b'{"owner": 1, "expires": 2}') is None
    assert decode_claim(b'{"owner": "x", "expires": true}') is None
    assert decode_claim(b"garbage") is None


def test_store_config_reads_aws_variables_and_allows_plain_http_endpoints() -> None:
    """S3 URLs get the AWS_* credentials, path-style requests, and allow_http for http:// endpoints."""
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    config = store_config("s3://models/hf", env)
    assert config == {
        "endpoint": "http://127.0.0.1:9000",
        "access_key_id": "AK",
        "secret_access_key": "SK",
        "region": "eu-west-1",
        "virtual_hosted_style_request": False,
        "client_options": {"allow_http": True},
    }
    https = store_config(
        "s3://models", {"AWS_ENDPOINT_URL": "https://s3.example", "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "1"}
    )
    assert "client_options" not in https
    assert "virtual_hosted_style_request" not in https
    assert store_config("memory:///", env) == {}

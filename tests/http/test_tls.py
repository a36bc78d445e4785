"""TLS: both engines verify the server against the CA the usual variables name.

A CA and a server certificate for 127.0.0.1 are made with the `openssl` command for the
test; the hub is the security suite's scripted server behind TLS.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelfetch
from modelfetch import AssetRef, HttpHubSource, RetryPolicy, Settings, TransferOptions

from .._units import MiB
from ..security._hub import MiniHub
from ..security._server import Hostile

CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem (a test CA) and server.pem/server.key (127.0.0.1, signed by it)."""
    folder = tmp_path_factory.mktemp("tls")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=modelfetch test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",  # Python 3.13 verifies strictly (VERIFY_X509_STRICT)
        cwd=folder,
    )
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=folder,
    )  # fmt: skip
    return folder


@pytest.fixture
def tls_hub(certificates: Path) -> Iterator[tuple[Hostile, bytes]]:
    """A hub over https serving a 6 MiB LFS file (large: the engine moves it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates / "server.pem", certificates / "server.key")
    data = os.urandom(6 * MiB)
    with Hostile(MiniHub({"w.bin": data}, lfs={"w.bin"}), tls=context) as hub:
        yield hub, data


@pytest.fixture
def no_ca_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """None of the CA variables set (this machine's image sets some)."""
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.mark.parametrize("engine", ["native", "httpx"])
@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
async def test_the_ca_named_by_the_variable_is_trusted(
    tls_hub: tuple[Hostile, bytes],
    certificates: Path,
    no_ca_variables: pytest.MonkeyPatch,
    tmp_path: Path,
    engine: str,
    variable: str,
) -> None:
    """With the test CA in SSL_CERT_FILE (or REQUESTS_CA_BUNDLE): metadata and body over https, verified."""
    hub, data = tls_hub
    no_ca_variables.setenv(variable, str(certificates / "ca.pem"))
    settings = Settings.from_env({}, endpoint=hub.url, hub_cache=tmp_path / "cache")
    options = TransferOptions(small_file_limit=0, engine=engine)
    async with HttpHubSource(settings, options=options) as source:
        resolved = await source.resolve(AssetRef("org/model", "w.bin"))
    assert resolved.path.read_bytes() == data
    assert resolved.etag == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("engine", ["native", "httpx"])
async def test_an_unknown_ca_is_refused_with_a_typed_error(
    tls_hub: tuple[Hostile, bytes], no_ca_variables: pytest.MonkeyPatch, tmp_path: Path, engine: str
) -> None:
    """No variable: certifi's bundle, which does not know the test CA: a FetchError, nothing cached."""
    hub, _data = tls_hub
    settings = Settings.from_env({}, endpoint=hub.url, hub_cache=tmp_path / "cache")
    options = TransferOptions(small_file_limit=0, engine=engine)
    async with HttpHubSource(settings, options=options, retry=RetryPolicy(attempts=1)) as source:
        with pytest.raises(modelfetch.FetchError) as info:
            await source.resolve(AssetRef("org/model", "w.bin"))
    assert "certificate" in str(info.value).lower() or "ssl" in str(info.value).lower()
    assert not list((tmp_path / "cache").rglob("w.bin"))

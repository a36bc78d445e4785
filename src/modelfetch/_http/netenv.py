"""What the network environment says the engines must use: the CA bundle (proxies: `ProxyRules`)."""

from __future__ import annotations

from collections.abc import Mapping


def ca_locations(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The CA bundle file and folder both engines trust: `SSL_CERT_FILE`, else
    `REQUESTS_CA_BUNDLE`, else `CURL_CA_BUNDLE`, and `SSL_CERT_DIR`; certifi's bundle when
    none is set (httpx's default), so a company CA set for requests or curl works here too."""

    def get(name: str) -> str | None:
        return env.get(name) or env.get(name.lower()) or None

    ca_file = get("SSL_CERT_FILE") or get("REQUESTS_CA_BUNDLE") or get("CURL_CA_BUNDLE")
    ca_dir = get("SSL_CERT_DIR")
    if ca_file is None and ca_dir is None:
        import certifi  # noqa: PLC0415 - only when no variable names a bundle

        ca_file = certifi.where()
    return ca_file, ca_dir

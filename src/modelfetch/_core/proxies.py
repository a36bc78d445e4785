"""Which proxy a request goes through, from the environment, the same way on every path. Pure.

httpx (and huggingface_hub's httpx2) read `NO_PROXY` without CIDR blocks: with
`NO_PROXY=127.0.0.0/8` they still sent requests for 127.0.0.1 — the token with them, for an
`http://` endpoint — to the proxy, where curl and huggingface_hub's old requests stack went
direct. So every engine asks `ProxyRules.proxy_for` instead, which follows curl's and
urllib's reading of the variables:

- `http_proxy`/`HTTP_PROXY`, `https_proxy`/`HTTPS_PROXY`, `all_proxy`/`ALL_PROXY` (the
  lowercase one wins); a value without a scheme means `http://`;
- under CGI (`REQUEST_METHOD` set) the uppercase `HTTP_PROXY` is ignored: a client's
  `Proxy:` header arrives as that variable (httpoxy, CVE-2016-5385), as urllib does;
- `no_proxy`/`NO_PROXY`: `*` (no proxy at all), domain names (`example.com` and
  `.example.com` both match the domain and its subdomains), IP addresses, and CIDR blocks
  (`10.0.0.0/8`, `::1/128`); a `:port` on an entry is ignored, as curl does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ProxyRules:
    """The proxies the environment names, and the hosts that bypass them."""

    proxies: tuple[tuple[str, str], ...] = ()  # (scheme or "all", proxy URL)
    bypass_all: bool = False
    domains: tuple[str, ...] = ()
    networks: tuple[_Network, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProxyRules:
        """Read the proxy variables of `env` (see the module docstring)."""

        def get(name: str) -> str:
            value = env.get(name.lower()) or ""
            if not value and not (name == "HTTP_PROXY" and "REQUEST_METHOD" in env):
                value = env.get(name) or ""
            return value.strip()

        proxies = []
        for scheme in ("http", "https", "all"):
            value = get(f"{scheme.upper()}_PROXY")
            if value:
                proxies.append((scheme, value if "://" in value else f"http://{value}"))
        entries = [e.strip() for e in get("NO_PROXY").split(",") if e.strip()]
        domains: list[str] = []
        networks: list[_Network] = []
        for entry in entries:
            network = _network(entry)
            if network is not None:
                networks.append(network)
            elif entry != "*":
                domains.append(_strip_port(entry).lstrip(".").lower())
        return cls(tuple(proxies), "*" in entries, tuple(domains), tuple(networks))

    def proxy_for(self, url: str) -> str | None:
        """The proxy URL a request to `url` goes through, or None to go direct."""
        if not self.proxies or self.bypass_all:
            return None
        parts = urlsplit(url)
        chosen = dict(self.proxies)
        proxy = chosen.get(parts.scheme.lower()) or chosen.get("all")
        if proxy is None or self.bypasses(parts.hostname or ""):
            return None
        return proxy

    def bypasses(self, host: str) -> bool:
        """Whether `host` (a name or an address, without brackets) is exempt from proxies."""
        host = host.strip("[]").rstrip(".").lower()
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return any(host == d or host.endswith("." + d) for d in self.domains if d)
        return any(address.version == n.version and address in n for n in self.networks)


def _network(entry: str) -> _Network | None:
    """`entry` as an address block (a lone address is a /32 or /128), or None for a name."""
    candidate = entry
    if entry.startswith("[") and "]" in entry:  # [v6 address]:port
        candidate = entry[1 : entry.index("]")]
    elif "/" not in candidate and candidate.count(":") == 1:
        candidate = candidate.split(":", 1)[0]  # an IPv4 address with a port
    try:
        return ipaddress.ip_network(candidate, strict=False)
    except ValueError:
        return None


def _strip_port(entry: str) -> str:
    name, sep, port = entry.rpartition(":")
    return name if sep and port.isdigit() else entry

"""The proxy environment: HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY. Pure, no I/O.

Rules (curl's, which most tools share; docs/proxies.md has the table):

* `http_proxy` / `HTTP_PROXY` for http:// URLs, `https_proxy` / `HTTPS_PROXY` for https://,
  `all_proxy` / `ALL_PROXY` for either when its own is unset. The lower-case name wins when
  both are set, even set to "" (which then means no proxy). A value without a scheme is an
  HTTP proxy (`proxy:3128` is `http://proxy:3128`).
* httpoxy (CVE-2016-5385): under CGI a request's `Proxy:` header arrives as the variable
  `HTTP_PROXY`, so the upper-case `HTTP_PROXY` is ignored when `REQUEST_METHOD` is set.
* `NO_PROXY` / `no_proxy` is a comma- or space-separated list; a URL whose host matches an
  entry goes direct. An entry is `*` (everything), a host name (that host and its
  subdomains; a leading `.` or `*.` changes nothing), an IP address (that address), a CIDR
  range (`10.0.0.0/8`, `fd00::/8`: any address inside it), and any of those but the range
  with `:port` (that port only; IPv6 as `[::1]:8080`). Names are never resolved: an IP
  entry matches URLs written with that IP only. Entries that parse as none of these are
  ignored, as curl ignores them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["NoProxy", "ProxyEnvironment"]

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_Key = TypeVar("_Key")


def _parse_ip(text: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


def _ascii_name(name: str) -> str | None:
    """A host name as URLs carry it: ASCII (IDNA), lower case, no trailing dot."""
    name = name.strip().lower().rstrip(".")
    if not name:
        return None
    try:
        name.encode("ascii")
    except UnicodeEncodeError:
        try:
            import idna

            return idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError:
            return None
    return name


@dataclass
class NoProxy:
    """A parsed NO_PROXY value: `matches(host, port)` says whether to go direct."""

    everything: bool = False
    # host name (matched with its subdomains) or address -> its ports, None for any port
    names: dict[str, set[int] | None] = field(default_factory=dict)
    addresses: dict[_IPAddress, set[int] | None] = field(default_factory=dict)
    networks: list[_IPNetwork] = field(default_factory=list)

    @classmethod
    def parse(cls, value: str) -> NoProxy:
        """Parse a NO_PROXY value; entries that make no sense are skipped."""
        rules = cls()
        for raw in value.replace(",", " ").split():
            entry = raw.partition("://")[2] if "://" in raw else raw
            entry = entry.rstrip("/")
            if entry == "*":
                rules.everything = True
            elif "/" in entry:
                try:
                    rules.networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    continue
            else:
                rules._add_host(entry)
        return rules

    def _add_host(self, entry: str) -> None:
        host, port = _split_port(entry)
        if host is None:
            return
        address = _parse_ip(host)
        if address is not None:
            _add_port(self.addresses, address, port)
            return
        name = _ascii_name(host.removeprefix("*").removeprefix("."))
        if name is not None and "*" not in name:
            _add_port(self.names, name, port)

    def matches(self, host: str, port: int) -> bool:
        """Should a URL with this (ASCII, IPv6 unbracketed) host and port go direct?"""
        if self.everything:
            return True
        address = _parse_ip(host)
        if address is not None:
            if address in self.addresses:
                ports = self.addresses[address]
                if ports is None or port in ports:
                    return True
            return any(address in network for network in self.networks)
        name = host.lower().rstrip(".")
        while True:
            if name in self.names:
                ports = self.names[name]
                if ports is None or port in ports:
                    return True
            dot = name.find(".")
            if dot < 0:
                return False
            name = name[dot + 1 :]

    def __bool__(self) -> bool:
        return self.everything or bool(self.names or self.addresses or self.networks)


def _add_port(rules: dict[_Key, set[int] | None], key: _Key, port: int | None) -> None:
    if port is None:
        rules[key] = None  # any port
    elif key not in rules:
        rules[key] = {port}
    else:
        ports = rules[key]
        if ports is not None:
            ports.add(port)


def _split_port(entry: str) -> tuple[str | None, int | None]:
    """(host, port) of `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address."""
    if entry.startswith("["):
        end = entry.find("]")
        if end < 0:
            return None, None
        host, rest = entry[1:end], entry[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            return None, None
        port_text = rest[1:]
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
    else:
        return entry, None  # a name, an IPv4 address or a bare IPv6 address
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        return None, None
    return host, int(port_text)


@dataclass(frozen=True)
class ProxyEnvironment:
    """The proxies the environment asks for; `proxy_for` picks one per URL."""

    # The URLs may carry passwords: kept out of the repr, which names the variables only.
    http: str | None = field(default=None, repr=False)
    https: str | None = field(default=None, repr=False)
    all: str | None = field(default=None, repr=False)
    no_proxy: NoProxy = field(default_factory=NoProxy)
    sources: Mapping[str, str] = field(default_factory=dict, repr=False)  # URL -> variable

    def __repr__(self) -> str:
        return f"ProxyEnvironment(from={sorted(self.sources.values())}, no_proxy={self.no_proxy!r})"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProxyEnvironment:
        """Read the variables from `environ` (normally `os.environ`)."""
        sources: dict[str, str] = {}

        def read(name: str, *, httpoxy: bool = False) -> str | None:
            lower = environ.get(name)
            if lower is not None:
                return _with_scheme(lower, name, sources)
            if httpoxy and "REQUEST_METHOD" in environ:
                return None
            upper = name.upper()
            return _with_scheme(environ.get(upper, ""), upper, sources)

        no_proxy = environ.get("no_proxy")
        if no_proxy is None:
            no_proxy = environ.get("NO_PROXY", "")
        return cls(
            http=read("http_proxy", httpoxy=True),
            https=read("https_proxy"),
            all=read("all_proxy"),
            no_proxy=NoProxy.parse(no_proxy),
            sources=sources,
        )

    @property
    def is_empty(self) -> bool:
        """True when no proxy applies to any URL."""
        return self.no_proxy.everything or not (self.http or self.https or self.all)

    def proxy_for(self, scheme: str, host: str, port: int) -> str | None:
        """The proxy URL for a URL with these parts, or None to go direct."""
        if scheme == "https":
            proxy = self.https or self.all
        elif scheme == "http":
            proxy = self.http or self.all
        else:
            return None
        if proxy is None or self.no_proxy.matches(host, port):
            return None
        return proxy


def _with_scheme(value: str, name: str, sources: dict[str, str]) -> str | None:
    value = value.strip()
    if not value:
        return None
    if "://" not in value:
        value = f"http://{value}"
    sources.setdefault(value, name)
    return value

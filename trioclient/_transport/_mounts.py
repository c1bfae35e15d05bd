"""`mounts=`: which transport answers which URL, by httpx's pattern rules.

A pattern is `scheme://host:port` where each part may be left out or widened:

- scheme `all` matches http and https; `http://` alone matches every http URL;
- host `example.org` matches that host only; `*.example.org` its subdomains only;
  `*example.org` the host and its subdomains; `*` (or no host) every host;
- a port matches that port only (the scheme's default port counts).

The most specific pattern wins: one with a port before one without, then the longer host,
then the longer scheme. A pattern mapped to `None` sends its URLs to the client's default
transport (httpx uses this to exempt hosts from a proxy mount).

Below the patterns come the environment's proxies (`trust_env`, `EnvironmentProxies`): a URL
that no pattern matched goes to the proxy HTTP_PROXY/HTTPS_PROXY/ALL_PROXY name for its
scheme, unless NO_PROXY exempts its host. NO_PROXY's IP ranges and `host:port` entries are
more than patterns can say, hence a matcher of its own (`_proxy_env.py`) instead of
httpx's translation of the environment into patterns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._proxy_env import ProxyEnvironment
from .._urlparse import DEFAULT_PORTS
from .._urls import URL

if TYPE_CHECKING:
    from ._base import Transport

__all__ = ["EnvironmentProxies", "Mounts", "URLPattern"]


class URLPattern:
    """One `mounts=` key, compiled."""

    __slots__ = ("_host_regex", "host", "pattern", "port", "scheme")

    def __init__(self, pattern: str) -> None:
        if not isinstance(pattern, str) or "://" not in pattern:
            raise ValueError(
                f"A mount pattern must look like 'scheme://host:port' ('all://' for any"
                f" URL), not {pattern!r}."
            )
        self.pattern = pattern
        scheme, _, rest = pattern.partition("://")
        authority = rest[:-1] if rest.endswith("/") else rest
        if "/" in authority or "@" in authority or "?" in authority:
            raise ValueError(
                f"A mount pattern matches scheme, host and port only; {pattern!r} also has a"
                " path, query or user name."
            )
        host, port = _split_authority(pattern, authority)
        self.scheme = "" if scheme.lower() == "all" else scheme.lower()
        self.host = "" if host == "*" else host.lower()
        self.port = port
        if not self.host:
            self._host_regex: re.Pattern[str] | None = None
        elif self.host.startswith("*."):
            self._host_regex = re.compile(rf"^.+\.{re.escape(self.host[2:])}$")
        elif self.host.startswith("*"):
            self._host_regex = re.compile(rf"^(.+\.)?{re.escape(self.host[1:])}$")
        else:
            self._host_regex = re.compile(rf"^{re.escape(self.host)}$")

    def matches(self, url: URL) -> bool:
        """Does `url` fall under this pattern?"""
        if self.scheme and url.scheme != self.scheme:
            return False
        if self._host_regex is not None and self._host_regex.match(url.host) is None:
            return False
        if self.port is not None:
            port = url.port
            if port is None:
                port = DEFAULT_PORTS.get(url.scheme)
            if port != self.port:
                return False
        return True

    @property
    def priority(self) -> tuple[bool, int, int]:
        """Sort key: the most specific pattern first."""
        return (self.port is None, -len(self.host), -len(self.scheme))

    def __repr__(self) -> str:
        return f"URLPattern({self.pattern!r})"


def _split_authority(pattern: str, authority: str) -> tuple[str, int | None]:
    """(host, port) of a pattern's `host[:port]` part; IPv6 hosts come in brackets."""
    if authority.startswith("["):
        end = authority.find("]")
        host, rest = authority[1:end], authority[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, colon, port_text = authority.partition(":")
        if colon and not port_text:
            raise ValueError(f"The mount pattern {pattern!r} has an empty port.")
    if not port_text:
        return host, None
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise ValueError(f"The mount pattern {pattern!r} has an invalid port {port_text!r}.")
    return host, int(port_text)


class EnvironmentProxies:
    """The environment's proxies, each with its transport: `lookup` picks one per URL."""

    __slots__ = ("_environment", "_transports")

    def __init__(self, environment: ProxyEnvironment, transports: Mapping[str, Transport]) -> None:
        self._environment = environment
        self._transports = dict(transports)  # proxy URL -> its transport

    def transports(self) -> list[Transport]:
        """Each proxy's transport."""
        return list(self._transports.values())

    def lookup(self, url: URL) -> Transport | None:
        """The proxy transport for `url`, or None to go direct."""
        origin = url._origin_key
        proxy = self._environment.proxy_for(origin.scheme, origin.host.decode("ascii"), origin.port)
        return None if proxy is None else self._transports[proxy]


class Mounts:
    """The patterns of one client, most specific first, then the environment's proxies."""

    __slots__ = ("_entries", "_environment", "_routes")

    def __init__(
        self,
        mounts: Mapping[str, Transport | None] | None,
        environment: EnvironmentProxies | None = None,
    ) -> None:
        from ._base import Transport

        entries: list[tuple[URLPattern, Transport | None]] = []
        for key, transport in (mounts or {}).items():
            if transport is not None and not isinstance(transport, Transport):
                raise TypeError(
                    f"mounts[{key!r}] must be a trioclient.Transport or None, not"
                    f" {type(transport).__name__}."
                )
            entries.append((URLPattern(key), transport))
        entries.sort(key=lambda entry: entry[0].priority)
        self._entries = entries
        self._environment = environment
        # Read on every request: False sends everything to the default transport at once.
        self._routes = bool(entries) or environment is not None

    def __bool__(self) -> bool:
        return self._routes

    def transports(self) -> list[Transport]:
        """Each mounted (or environment proxy) transport once, in pattern order."""
        seen: list[Transport] = []
        candidates = [transport for _, transport in self._entries]
        if self._environment is not None:
            candidates.extend(self._environment.transports())
        for transport in candidates:
            if transport is not None and all(transport is not t for t in seen):
                seen.append(transport)
        return seen

    def lookup(self, url: URL, default: Transport) -> Transport:
        """The transport for `url`: the most specific matching mount, else the
        environment's proxy for it, else `default`."""
        for pattern, transport in self._entries:
            if pattern.matches(url):
                return default if transport is None else transport
        if self._environment is not None:
            proxied = self._environment.lookup(url)
            if proxied is not None:
                return proxied
        return default

"""`Proxy`: a proxy server, as `Client(proxy=...)` and `HTTPTransport(proxy=...)` take it.

The public model follows `httpx.Proxy`: a URL (`http://`, `https://`, `socks5://`,
`socks5h://`), optional `auth` (user name and password; credentials in the URL move here),
`headers` (sent to an HTTP proxy only: with CONNECT and with forwarded requests) and
`ssl_context` (for the TLS connection to an `https://` proxy).

Credentials never appear in a repr, a log line or an exception message: the URL is stored
without them and every message names the proxy by `label`, scheme://host:port.
"""

from __future__ import annotations

import base64
import ssl

from ._headers import Headers
from ._types import HeaderTypes
from ._urls import URL

__all__ = ["PROXY_SCHEMES", "Proxy", "ProxyTypes", "as_proxy"]

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}


class Proxy:
    """A proxy server: `Proxy("http://user:pass@proxy.example:3128")`.

    Args:
        url: `http://` (forwarding for http:// URLs, CONNECT tunnels for https:// ones),
            `https://` (the same, over TLS to the proxy), `socks5://` (the client resolves
            the target's name) or `socks5h://` (the proxy resolves it).
        ssl_context: for TLS to an `https://` proxy; by default the client's `verify=`
            and `cert=` apply to the proxy too.
        auth: (user name, password): Basic `Proxy-Authorization` for HTTP proxies, the
            user name/password method for SOCKS5. A user name and password in `url` are
            taken from there instead.
        headers: extra headers for an HTTP proxy (CONNECT and forwarded requests only).
    """

    __slots__ = ("auth", "headers", "ssl_context", "url")

    def __init__(
        self,
        url: URL | str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        headers: HeaderTypes | None = None,
    ) -> None:
        url = URL(url)
        if url.scheme not in PROXY_SCHEMES:
            raise ValueError(
                f"A proxy URL must start with one of {', '.join(s + '://' for s in PROXY_SCHEMES)};"
                f" got {url.scheme + '://' if url.scheme else 'no scheme'}."
            )
        if not url.host:
            raise ValueError("A proxy URL needs a host: 'http://proxy.example:3128'.")
        if url.userinfo:
            auth = (url.username, url.password)
            url = url.copy_with(username=None, password=None)
        if auth is not None and not (
            isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(a, str) for a in auth)
        ):
            raise TypeError("Proxy auth must be a (user name, password) tuple of str.")
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError("Proxy ssl_context must be an ssl.SSLContext or None.")
        if auth is not None and url.scheme.startswith("socks"):
            for part in auth:
                if not 0 < len(part.encode("utf-8")) <= 255:
                    raise ValueError(
                        "SOCKS5 user names and passwords are 1 to 255 bytes (RFC 1929)."
                    )
        self.url = url
        self.auth = auth
        self.headers = Headers(headers)
        self.ssl_context = ssl_context

    @property
    def raw_auth(self) -> tuple[bytes, bytes] | None:
        """The credentials as UTF-8 bytes, or None."""
        if self.auth is None:
            return None
        return (self.auth[0].encode("utf-8"), self.auth[1].encode("utf-8"))

    @property
    def port(self) -> int:
        """The proxy's port, its scheme's default when the URL has none (SOCKS: 1080)."""
        port = self.url.port
        return _DEFAULT_PORTS[self.url.scheme] if port is None else port

    @property
    def label(self) -> str:
        """scheme://host:port, for messages: never the credentials."""
        host = self.url.raw_host.decode("ascii")
        if ":" in host:
            host = f"[{host}]"
        return f"{self.url.scheme}://{host}:{self.port}"

    def _authorization(self) -> bytes | None:
        """The Basic Proxy-Authorization value, or None."""
        raw = self.raw_auth
        if raw is None:
            return None
        return b"Basic " + base64.b64encode(raw[0] + b":" + raw[1])

    def __repr__(self) -> str:
        auth = f", auth=({self.auth[0]!r}, '********')" if self.auth else ""
        # Header values may carry credentials as well: only their names are shown.
        headers = f", headers={list(self.headers.keys())!r}" if self.headers else ""
        return f"Proxy({str(self.url)!r}{auth}{headers})"


ProxyTypes = URL | str | Proxy


def as_proxy(value: object, argument: str = "proxy") -> Proxy:
    """`value` (a URL string, URL or Proxy) as a Proxy; TypeError naming `argument`."""
    if isinstance(value, Proxy):
        return value
    if isinstance(value, (str, URL)):
        return Proxy(value)
    raise TypeError(
        f"{argument} must be a URL (str or trioclient.URL) or a trioclient.Proxy, not"
        f" {type(value).__name__}."
    )

"""Connecting through a proxy: HTTP forwarding, CONNECT tunnels (over TCP or TLS), SOCKS5.

Theory of operation
-------------------
A transport with a proxy opens every connection to the proxy (TCP, or the Unix socket of
`uds=`; then TLS for an `https://` proxy, checked against the proxy's name) and then:

* `http://` target, HTTP proxy: nothing more. The connection is a *forwarding* connection:
  each request goes out in absolute form (`GET http://host/path`) with the proxy's headers
  (`Proxy-Authorization`) added by the transport, below everything the client logs or
  hooks see;
* `https://` target, HTTP proxy: `CONNECT host:port`, then TLS to the target *inside* the
  tunnel (certificate checked against the target's name, ALPN may pick HTTP/2). With an
  `https://` proxy that is TLS inside TLS;
* any target, SOCKS5 proxy: the SOCKS5 handshake (`_socks5.py`), then TLS for `https://`.

The pool keys these connections on (target origin, proxy): see `Origin.via`. Forwarding
connections are keyed per target too, as httpcore does, rather than shared by every
`http://` target: `max_connections_per_host` then still means per target host, and a
connection that a target's response left in a bad state is never reused for another target.

Everything here runs inside the connect phase, under its cancel scope (the connect timeout
capped by the total): a proxy that stalls is a `ConnectTimeout` whose message says which
step stalled and names the proxy (`ConnectProgress`). The CONNECT reply head is capped at
`MAX_CONNECT_HEAD`. Any failure closes what was opened before the error leaves.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import h11
import trio

from .._exceptions import ConnectError, ProxyError
from .._headers import Headers, check_header_safety
from .._proxy import Proxy
from ._connect import ConnectProgress, close_stream_now, format_address, open_tcp
from ._errors import IO_ERRORS, translate
from ._socks5 import socks5_handshake
from ._tls import create_ssl_context

if TYPE_CHECKING:
    from .._origin import Origin
    from .._request import Request
    from .._types import CertTypes, VerifyTypes

__all__ = ["MAX_CONNECT_HEAD", "ProxyRoute", "open_via_proxy"]

MAX_CONNECT_HEAD = 16 * 1024  # the CONNECT reply's status line and headers
_READ_SIZE = 4096
# CONNECT has no use for 1xx replies: tolerate a few, never a stream of them.
MAX_INFORMATIONAL = 8


@dataclass(frozen=True)
class ProxyRoute:
    """How one transport reaches its proxy, built once from a `Proxy`."""

    label: str  # scheme://host:port, for messages and Origin.via: no credentials
    scheme: str
    host: str  # to connect to: ASCII, IPv6 without brackets
    port: int
    server_name: str  # TLS to an https:// proxy: SNI and certificate name
    tls: ssl.SSLContext | None  # TLS to the proxy itself (https:// proxies)
    # Secrets: kept out of the repr (tracebacks, debuggers, log lines print it).
    headers: tuple[tuple[bytes, bytes], ...] = field(repr=False)  # CONNECT, forwarding
    credentials: tuple[bytes, bytes] | None = field(repr=False)  # SOCKS5 user, password

    @classmethod
    def of(
        cls, proxy: Proxy, *, verify: VerifyTypes, cert: CertTypes | None, trust_env: bool
    ) -> ProxyRoute:
        """The route for `proxy`; the client's `verify`/`cert` apply to an https:// proxy."""
        url = proxy.url
        headers = Headers(proxy.headers)
        authorization = proxy._authorization()
        if authorization is not None and not url.scheme.startswith("socks"):
            headers["Proxy-Authorization"] = authorization.decode("ascii")
        check_header_safety(headers.raw)
        tls = None
        if url.scheme == "https":
            # A context of the user's (Proxy's, or verify=) is used as it is: the client's
            # own ALPN setting on it must not change. Else a context offering HTTP/1.1 only.
            tls = proxy.ssl_context
            if tls is None and isinstance(verify, ssl.SSLContext):
                tls = verify
            if tls is None:
                tls = create_ssl_context(verify, cert, trust_env=trust_env, http1=True, http2=False)
        host = url.raw_host.decode("ascii")
        return cls(
            label=proxy.label,
            scheme=url.scheme,
            host=host.replace("%25", "%", 1),
            port=proxy.port,
            server_name=host.partition("%")[0].rstrip("."),
            tls=tls,
            headers=tuple(headers.raw),
            credentials=proxy.raw_auth if url.scheme.startswith("socks") else None,
        )

    @property
    def is_socks(self) -> bool:
        """True for socks5:// and socks5h://."""
        return self.scheme.startswith("socks")

    def forwards(self, origin: Origin) -> bool:
        """Are requests to `origin` forwarded in absolute form (not tunnelled)?"""
        return origin.scheme == "http" and not self.is_socks


def _target(origin: Origin) -> str:
    host = origin.host.decode("ascii").replace("%25", "%", 1)
    return format_address(host, origin.port)


async def open_via_proxy(
    origin: Origin,
    route: ProxyRoute,
    *,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str,
    uds: str | None,
    local_address: str | None,
    request: Request,
    progress: ConnectProgress,
) -> trio.abc.Stream:
    """A stream to `origin` through the proxy of `route`; see the module docstring.

    Raises ConnectError naming the proxy if it cannot be reached (or the TLS handshake with
    it or with the target fails), ProxyError if it refuses or answers nonsense.
    """
    target = _target(origin)
    label = route.label
    if route.scheme == "socks5h" and len(origin.host) > 255:
        # SOCKS5 carries a name in one length byte: refuse before contacting the proxy.
        raise ConnectError(
            f"Cannot reach {target} through SOCKS5 proxy {label}: SOCKS5 carries host"
            f" names of at most 255 bytes, this one has {len(origin.host)}",
            request=request,
        )
    stream: trio.abc.Stream | None = None
    try:
        progress.stage = f"connecting to proxy {label} for"
        if uds is not None:
            stream = await trio.open_unix_socket(uds)
        else:
            stream = await open_tcp(route.host, route.port, local_address)
        if route.tls is not None:
            progress.stage = f"performing the TLS handshake with proxy {label} for"
            tls = trio.SSLStream(
                stream, route.tls, server_hostname=route.server_name, https_compatible=True
            )
            stream = tls
            await tls.do_handshake()
            if tls.selected_alpn_protocol() not in (None, "http/1.1"):
                raise ProxyError(
                    f"Proxy {label} chose {tls.selected_alpn_protocol()!r} through ALPN;"
                    " proxies are spoken to in HTTP/1.1 (give Proxy(ssl_context=...) a"
                    " context that offers only 'http/1.1')",
                    request=request,
                    proxy=label,
                    target=target,
                )
        if route.is_socks:
            progress.stage = f"negotiating with SOCKS5 proxy {label} for"
            host = origin.host.decode("ascii").replace("%25", "%", 1)
            if route.scheme == "socks5":  # we resolve the name, the proxy gets an address
                host = await _resolve(host, origin.port)
            await socks5_handshake(
                stream,
                host,
                origin.port,
                route.credentials,
                proxy=label,
                target=target,
                request=request,
            )
        elif origin.scheme == "https":
            progress.stage = f"waiting for proxy {label} to open a tunnel to"
            await _connect_tunnel(stream, route, target, request)
        if origin.scheme == "https":
            assert ssl_context is not None
            progress.stage = "performing the TLS handshake with"
            progress.tail = f" through proxy {label}"
            inner = trio.SSLStream(
                stream, ssl_context, server_hostname=server_hostname, https_compatible=True
            )
            stream = inner
            await inner.do_handshake()
        return stream
    except IO_ERRORS as exc:
        close_stream_now(stream)
        doing = f"{progress.stage} {target}{progress.tail}"
        raise translate(exc, ConnectError, doing, request=request) from exc
    except UnicodeError as exc:  # the name lookup's IDNA step (see _connect.py)
        close_stream_now(stream)
        raise ConnectError(
            f"Failed while {progress.stage} {target}: the host name cannot be looked up ({exc})",
            request=request,
        ) from exc
    except BaseException:
        close_stream_now(stream)
        raise


async def _resolve(host: str, port: int) -> str:
    """socks5:// resolves the target's name here: the first address the resolver gives."""
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        pass
    else:
        return host  # already an address
    infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
    if not infos:  # pragma: no cover - getaddrinfo raises gaierror instead
        raise OSError(f"no address for {host}")
    return str(infos[0][4][0])


async def _connect_tunnel(
    stream: trio.abc.Stream, route: ProxyRoute, target: str, request: Request
) -> None:
    """Send CONNECT and read the reply head; return once the tunnel is open."""
    authority = target.encode("ascii")
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_CONNECT_HEAD)
    head = conn.send(
        h11.Request(
            method=b"CONNECT", target=authority, headers=[(b"Host", authority), *route.headers]
        )
    )
    await stream.send_all(head + conn.send(h11.EndOfMessage()))
    received = 0

    def failed(problem: str) -> ProxyError:
        return ProxyError(
            f"Proxy {route.label} {problem} (CONNECT {target})",
            request=request,
            proxy=route.label,
            target=target,
        )

    informational = 0
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            if received == 0:
                raise failed("closed the connection without answering") from None
            if exc.error_status_hint == 431:
                raise failed(
                    f"sent a reply head over the limit of {MAX_CONNECT_HEAD // 1024} KiB"
                ) from None
            raise failed(f"sent an invalid reply: {exc}") from None
        if event is h11.NEED_DATA:
            data = await stream.receive_some(_READ_SIZE)
            received += len(data)
            conn.receive_data(data)  # type: ignore[arg-type]  # h11 accepts any bytes-like
            continue
        if isinstance(event, h11.InformationalResponse):
            informational += 1
            if informational > MAX_INFORMATIONAL:
                raise failed(f"sent more than {MAX_INFORMATIONAL} 1xx replies")
            continue
        if isinstance(event, h11.Response):
            status, reason = event.status_code, event.reason.decode("latin-1")
            if 200 <= status < 300:
                if conn.trailing_data[0]:
                    raise failed("sent data before the tunnel was used")
                return
            raise ProxyError(
                f"Proxy {route.label} refused to open a tunnel to {target}: {status} {reason}",
                request=request,
                status_code=status,
                reason=reason,
                proxy=route.label,
                target=target,
            )
        raise failed(f"closed the connection without answering ({type(event).__name__})")

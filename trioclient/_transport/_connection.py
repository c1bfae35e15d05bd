"""`Connection`: one pooled connection, from its reserved slot to TCP, TLS, ALPN and a driver.

Theory of operation
-------------------
The pool (`_pool.py`) decides *which* connection a request gets and when one is given back;
this class is everything about *one* connection: opening it (TCP or a Unix socket, or
through a proxy (`_tunnel.py`); TLS, then ALPN or prior knowledge picks HTTP/1.1 or
HTTP/2), running one exchange on it, telling whether it may be reused, closing it at
once, and a `statistics()` snapshot. The pool sees connections only through these methods,
so it never asks which protocol a connection speaks, and the protocol drivers never see the pool.

A connection exists in the pool's books before it is connected: the slot is reserved the
moment a request is granted it, so `http` is None until `connect()` finishes. A connection
closed while connecting has its connect scope cancelled.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import h11
import trio

from .._exceptions import ClientStateError, ConnectTimeout, TransportError, UnsupportedProtocol
from .._logs import DEBUG, pool_logger
from .._origin import Origin
from ._base import ResponseHead
from ._connect import (
    ConnectProgress,
    close_stream_now,
    format_address,
    is_readable,
    open_stream,
    socket_of,
)
from ._h2_stream import StreamBody
from ._http2 import HTTP2Connection, RetryOnNewConnection
from ._http11 import H11Body, HTTP11Connection, StaleConnection
from ._pool_state import PoolEntry
from ._tunnel import ProxyRoute, open_via_proxy

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration

    from .._config import Deadlines
    from .._request import Request
    from ._http3 import HTTP3Connection

__all__ = [
    "H3",
    "Connection",
    "ConnectionSettings",
    "ConnectionStatistics",
    "target_of",
    "where",
    "where_h3",
]

# The `via` of an HTTP/3 connection's pool key: its books are apart from the origin's TCP
# connections, so a learned alternative takes new requests away from idle TCP ones.
H3 = "h3"

# An idle HTTP/1.1 connection is checked for a close by the server (a poll syscall) before
# reuse only if it was idle this long: servers close idle connections after seconds, not
# within the microseconds a busy pool keeps them idle, and the syscall is a measurable part
# of a request's cost there. (An idempotent request is retried anyway; see the pool.)
STALE_CHECK_AFTER = 0.05


@dataclass(frozen=True)
class ConnectionSettings:
    """How a pool's connections are opened: the same for every connection of one pool."""

    ssl_context: ssl.SSLContext | None
    http1: bool
    http2: bool
    uds: str | None
    local_address: str | None
    write_timeout: float | None
    ping_interval: float | None
    proxy: ProxyRoute | None = None  # every connection goes through this proxy
    quic: QuicConfiguration | None = None  # HTTP/3's template (None: http3 off); _quic.py


@dataclass(frozen=True)
class ConnectionStatistics:
    """A snapshot of one connection, for tests and debugging."""

    origin: str
    http_version: str | None  # None while connecting
    in_use: int  # requests (HTTP/2: streams) holding it
    capacity: int  # how many it can carry at once
    is_closed: bool


class Connection(PoolEntry):
    """A pooled connection: counted from the moment a request reserves it."""

    __slots__ = ("connect_scope", "http")

    def __init__(self, origin: Origin) -> None:
        super().__init__(origin)
        self.http: HTTP11Connection | HTTP2Connection | HTTP3Connection | None = None
        self.connect_scope: trio.CancelScope | None = None  # cancelled if closed mid-connect

    # -- what the pool asks ---------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """True once TCP, TLS and the protocol choice are done."""
        return self.http is not None

    @property
    def is_multiplexed(self) -> bool:
        """True for HTTP/2 and HTTP/3: several requests share it."""
        http = self.http
        return http is not None and not isinstance(http, HTTP11Connection)

    def may_reuse(self, now: float) -> bool:
        """Can an idle (or shared) connection take another request? Synchronous."""
        http = self.http
        if http is None:
            return True
        if not isinstance(http, HTTP11Connection):
            return http.is_usable
        # Closed by the server while idle (or it sent junk)? Only worth a syscall when idle
        # for a while (see STALE_CHECK_AFTER).
        return now - self.idle_since < STALE_CHECK_AFTER or not is_readable(http._stream)

    def finish(self, reusable: bool) -> bool:
        """A request is done with this connection; may it serve another one?

        `reusable` is the request's view (its exchange completed). HTTP/2 ignores it: one
        stream's fate says nothing about the connection's.
        """
        http = self.http
        if http is None:
            return False
        if not isinstance(http, HTTP11Connection):
            return http.is_usable
        return reusable and http.finish_cycle()

    def close_now(self, reason: str | None = None) -> None:
        """Close the socket at once (wakes blocked readers); never raises, never awaits."""
        if pool_logger.isEnabledFor(DEBUG) and self._is_open():
            why = f" ({reason})" if reason else ""
            pool_logger.debug("closing the connection to %s%s", where(self.origin), why)
        self.is_closed = True
        if self.connect_scope is not None:
            self.connect_scope.cancel()
        http = self.http
        if isinstance(http, HTTP11Connection):
            if reason is not None and http.closed_reason is None:
                http.closed_reason = reason
            close_stream_now(http._stream)
        elif http is not None:
            http.close_now(reason)

    def _is_open(self) -> bool:
        """Connecting, or its socket not closed yet (the books mark `is_closed` first)."""
        http = self.http
        if http is None:
            return self.connect_scope is not None
        if not isinstance(http, (HTTP11Connection, HTTP2Connection)):
            return not http.is_closed
        sock = socket_of(http._stream)
        return sock is not None and sock.fileno() != -1

    def statistics(self) -> ConnectionStatistics:
        """A frozen snapshot of this connection."""
        http = self.http
        version = None
        if isinstance(http, HTTP11Connection):
            version = "HTTP/1.1"
        elif isinstance(http, HTTP2Connection):
            version = "HTTP/2"
        elif http is not None:
            version = "HTTP/3"
        return ConnectionStatistics(
            where(self.origin), version, self.in_use, self.capacity, self.is_closed
        )

    # -- I/O --------------------------------------------------------------------------------

    async def connect(
        self,
        settings: ConnectionSettings,
        nursery: trio.Nursery | None,
        request: Request,
        deadlines: Deadlines,
        *,
        closed_reason: Callable[[], str | None],
        on_capacity: Callable[[int], None],
        on_unusable: Callable[[], None],
        deadline: float | None = None,
    ) -> None:
        """Open the connection: TCP or Unix socket, TLS, then HTTP/1.1 or HTTP/2.

        `closed_reason` tells whether the pool closed meanwhile; the callbacks let an
        HTTP/2 connection report its stream capacity and that it takes no new streams.
        `deadline`: the connect deadline, if not the connect timeout from now (what an
        HTTP/3 attempt that fell back to TCP left of it).
        """
        if deadline is None:
            deadline = deadlines.connect()
        stream: trio.abc.Stream | None = None
        progress = ConnectProgress()
        origin = self.origin
        proxy = settings.proxy
        if proxy is not None and proxy.forwards(origin) and not settings.http1:
            raise UnsupportedProtocol(
                f"http1=False, but http:// URLs through the HTTP proxy {proxy.label} are"
                " forwarded with HTTP/1.1.",
                request=request,
            )
        try:
            with trio.CancelScope(deadline=deadline) as scope:
                self.connect_scope = scope
                ssl_context = settings.ssl_context if origin.scheme == "https" else None
                if proxy is None:
                    stream = await open_stream(
                        origin,
                        ssl_context=ssl_context,
                        server_hostname=request.url._tls_server_name,
                        uds=settings.uds,
                        local_address=settings.local_address,
                        request=request,
                        progress=progress,
                    )
                else:
                    stream = await open_via_proxy(
                        origin,
                        proxy,
                        ssl_context=ssl_context,
                        server_hostname=request.url._tls_server_name,
                        uds=settings.uds,
                        local_address=settings.local_address,
                        request=request,
                        progress=progress,
                    )
            reason = closed_reason()
            if reason is not None:
                close_stream_now(stream)
                raise ClientStateError(f"Cannot send a request: {reason}.")
            if stream is None:
                label = deadlines.why(deadline, deadlines.timeout.connect)
                target = where(origin) if proxy is None else target_of(origin)
                raise ConnectTimeout(
                    f"Timed out {progress.stage} {target}{progress.tail} ({label})",
                    request=request,
                )
        finally:
            self.connect_scope = None
        # Until self.http is set, the socket is ours alone: nobody else can close it.
        try:
            self.http = self._adopt(
                settings, nursery, stream, request, on_capacity=on_capacity, on_unusable=on_unusable
            )
        except BaseException:
            close_stream_now(stream)
            raise
        if pool_logger.isEnabledFor(DEBUG):
            _log_connected(where(self.origin), stream, settings.uds, self.is_multiplexed)

    async def connect_h3(
        self,
        settings: ConnectionSettings,
        nursery: trio.Nursery | None,
        request: Request,
        deadlines: Deadlines,
        port: int,
        *,
        deadline: float,
        budget: float | None,
        closed_reason: Callable[[], str | None],
        on_unusable: Callable[[], None],
    ) -> int:
        """Open an HTTP/3 connection: UDP to `port` on the origin's host, QUIC, TLS.

        `deadline` bounds the handshake (ConnectTimeout); ConnectError for the rest.
        `budget`: the seconds HTTP/3 got before TCP takes over, when that set `deadline`.
        Returns how many streams the server allows at once (for the pool's books).
        """
        from ._http3 import open_http3  # aioquic is optional: imported only when used

        template = settings.quic
        assert template is not None  # the pool routes to HTTP/3 only with http3=True
        origin = self.origin
        to = where_h3(origin, port)
        http = None
        try:
            with trio.CancelScope() as scope:  # cancelled if the pool closes meanwhile
                self.connect_scope = scope
                http = await open_http3(
                    host_of(origin),
                    port,
                    where=to,
                    server_name=request.url._tls_server_name,
                    template=template,
                    local_address=settings.local_address,
                    deadline=deadline,
                    timeout_label=lambda: _h3_timeout_label(deadlines, deadline, budget),
                    request=request,
                    on_unusable=on_unusable,
                )
        finally:
            self.connect_scope = None
        reason = closed_reason()
        if reason is not None or http is None or scope.cancelled_caught:
            if http is not None:
                http.close_now(reason)
            why = reason or "the connection was closed while connecting"
            raise ClientStateError(f"Cannot send a request: {why}.")
        assert nursery is not None
        http.start(nursery)
        self.http = http
        if pool_logger.isEnabledFor(DEBUG):
            pool_logger.debug("speaking HTTP/3 with %s", to)
        return http.capacity

    def _adopt(
        self,
        settings: ConnectionSettings,
        nursery: trio.Nursery | None,
        stream: trio.abc.Stream,
        request: Request,
        *,
        on_capacity: Callable[[int], None],
        on_unusable: Callable[[], None],
    ) -> HTTP11Connection | HTTP2Connection:
        """The protocol object for a fresh stream (HTTP/2's tasks already started)."""
        if not _speaks_h2(settings, stream, self.origin, request):
            return HTTP11Connection(stream, where(self.origin))
        assert nursery is not None
        http2 = HTTP2Connection(
            stream,
            where(self.origin),
            on_capacity=on_capacity,
            on_unusable=on_unusable,
            write_timeout=settings.write_timeout,
            ping_interval=settings.ping_interval,
        )
        http2.start(nursery)
        return http2

    async def exchange(
        self,
        request: Request,
        event: h11.Request,
        pool_deadline: float,
        deadlines: Deadlines,
        *,
        reused: bool = False,
    ) -> tuple[ResponseHead, H11Body | StreamBody]:
        """Send `request` and receive its response head; the body is left on the wire.

        `event` is the request's h11 event (built before a connection was taken, so an
        invalid request costs none); HTTP/2 and HTTP/3 wait for a stream slot until
        `pool_deadline`. `reused`: this request did not open the connection (HTTP/2 and
        HTTP/3 only; HTTP/1.1 knows). Such a connection that dies before the stream got any
        response frame then
        raises `StaleConnection`, HTTP/1.1's rule, for the pool to retry.
        """
        http = self.http
        if http is not None and not isinstance(http, HTTP11Connection):
            # HTTP/2 or HTTP/3: the same steps through the same duck interface.
            try:
                stream = await http.start_stream(request, pool_deadline, deadlines)
            except TransportError as exc:
                if reused and http.dropped and not isinstance(exc, RetryOnNewConnection):
                    raise StaleConnection(exc) from exc  # died before it could be sent
                raise
            try:
                # (mypy sees a union of the two drivers and of their stream types)
                head = await http.receive_response_head(
                    stream,  # type: ignore[arg-type]
                    request,
                    deadlines,
                )
            except BaseException as exc:
                http.abandon(stream)  # type: ignore[arg-type]
                if (
                    reused
                    and http.dropped
                    and stream.head is None
                    and isinstance(exc, TransportError)
                    and not isinstance(exc, RetryOnNewConnection)
                ):
                    raise StaleConnection(exc) from exc
                raise
            return head, StreamBody(http, stream, request, deadlines)
        assert http is not None
        write_error = await http.send_request(request, event, deadlines)
        if http.io is not None:
            # The checkpoint every request owes (the socket calls may not have blocked),
            # placed where it also pays: while other tasks run, the server answers, and
            # the read below finds the response instead of waiting in epoll.
            await trio.lowlevel.checkpoint()
        try:
            head = await http.receive_response_head(request, deadlines)
        except TransportError:
            if write_error is not None:
                raise write_error from None
            raise
        return head, H11Body(http, request, deadlines)


def _h3_timeout_label(deadlines: Deadlines, deadline: float, budget: float | None) -> str:
    """Which bound ended a QUIC handshake: the total timeout, the share of the connect
    timeout HTTP/3 gets before TCP takes over (`budget`), or the connect timeout."""
    if deadline == deadlines.total:
        return "total timeout"
    if budget is not None:
        return f"{budget:g} s before falling back to TCP"
    connect = deadlines.timeout.connect
    return "total timeout" if connect is None else f"connect timeout {connect:g} s"


def _speaks_h2(
    settings: ConnectionSettings, stream: trio.abc.Stream, origin: Origin, request: Request
) -> bool:
    """The protocol to use on a fresh stream: ALPN's choice, or prior knowledge."""
    if not settings.http2:
        return False
    if isinstance(stream, trio.SSLStream):
        if stream.selected_alpn_protocol() == "h2":
            return True
        if settings.http1:
            return False
        raise UnsupportedProtocol(  # the caller closes the stream
            f"The server {where(origin)} does not offer HTTP/2 (ALPN chose "
            f"{stream.selected_alpn_protocol()!r}) and http1=False leaves no fallback.",
            request=request,
        )
    return not settings.http1  # plain http: HTTP/2 with prior knowledge only if asked


def _log_connected(to: str, stream: trio.abc.Stream, uds: str | None, h2: bool) -> None:
    """The DEBUG lines of a new connection: how it was reached, TLS, the protocol."""
    if uds is not None:
        pool_logger.debug("connected to %s over the Unix socket %s", to, uds)
    else:
        sock = socket_of(stream)
        local = sock.getsockname() if sock is not None else None
        pool_logger.debug("connected to %s over TCP from %s", to, local)
    if isinstance(stream, trio.SSLStream):
        pool_logger.debug(
            "TLS handshake with %s complete: %s, %s, ALPN %s",
            to,
            stream.version(),
            (stream.cipher() or ("?",))[0],
            stream.selected_alpn_protocol(),
        )
    pool_logger.debug("speaking %s with %s", "HTTP/2" if h2 else "HTTP/1.1", to)


def host_of(origin: Origin) -> str:
    """The origin's host as a name or address to connect to (an IPv6 zone unquoted)."""
    return origin.host.decode("ascii").replace("%25", "%", 1)


def where_h3(origin: Origin, port: int) -> str:
    """`host:port` of an HTTP/3 alternative (the origin's host, the UDP port)."""
    return format_address(host_of(origin), port)


def target_of(origin: Origin) -> str:
    """`host:port` of an origin, for messages."""
    return format_address(host_of(origin), origin.port)


def where(origin: Origin) -> str:
    """`host:port` of an origin, and the proxy it goes through if any, for messages."""
    if origin.via is None or origin.via == H3:
        return target_of(origin)
    return f"{target_of(origin)} via proxy {origin.via}"

"""`HTTPTransport`: HTTP/1.1 and HTTP/2 over TCP, TLS or a Unix socket, with a connection pool.

The transport is the pool's public face: it takes the connection options a `Client` used to
take itself, turns the pool's (response head, body stream) into a `Response`, and runs the
pool's background work (idle-connection expiry, HTTP/2 reader and writer tasks) in the
nursery the client binds it to.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import trio

from .._config import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Deadlines, Limits
from .._exceptions import ClientStateError, UnsupportedProtocol
from .._proxy import ProxyTypes, as_proxy
from .._request import Request
from .._response import Response
from .._types import CertTypes, VerifyTypes
from ._base import Transport
from ._connection import ConnectionStatistics
from ._pool import ConnectionPool
from ._pool_state import PoolStatistics
from ._tls import create_ssl_context
from ._tunnel import ProxyRoute

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration

__all__ = ["HTTPTransport"]

logger = logging.getLogger("trioclient")


class HTTPTransport(Transport):
    """The default transport: pooled HTTP/1.1 and HTTP/2 connections.

    Arguments are the connection options of `Client` (which builds one of these unless it is
    given `transport=`): `verify`, `cert`, `trust_env` (SSL_CERT_FILE/SSL_CERT_DIR), `http1`,
    `http2`, `limits`, `uds` (connect to a Unix socket), `local_address` (bind the client
    end), `http2_ping_interval` and `write_timeout` (for HTTP/2 connection writes).

    `proxy` (a URL or a `Proxy`) sends every request through that proxy: forwarded for
    http:// URLs by an HTTP proxy, through a CONNECT tunnel for https:// ones, through a
    SOCKS5 tunnel for both (docs/proxies.md). With `uds`, the proxy is reached over that
    Unix socket.

    `http3=True` (needs the `http3` extra) speaks HTTP/3 over QUIC to https origins that
    advertise it in `Alt-Svc`, falling back to TCP when QUIC fails; with `http1=False,
    http2=False` as well, every https request goes over HTTP/3 with no fallback
    (docs/http3.md). Requests through a proxy never use HTTP/3.
    """

    def __init__(
        self,
        *,
        verify: VerifyTypes = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: Limits = DEFAULT_LIMITS,
        uds: str | None = None,
        local_address: str | None = None,
        http2_ping_interval: float | None = None,
        write_timeout: float | None = DEFAULT_TIMEOUT.write,
        proxy: ProxyTypes | None = None,
        http3: bool = False,
    ) -> None:
        if not (http1 or http2 or http3):
            raise UnsupportedProtocol("http1=False and http2=False leave no protocol to speak.")
        quic = None
        if http3:
            quic = _quic_template(verify, cert, trust_env)
            if proxy is not None and not (http1 or http2):
                raise UnsupportedProtocol(
                    "HTTP/3 cannot go through a proxy, and http1=False, http2=False leave no"
                    " other protocol to speak."
                )
        ssl_context = create_ssl_context(
            verify, cert, trust_env=trust_env, http1=http1 or not http2, http2=http2
        )
        route = None
        if proxy is not None:
            route = ProxyRoute.of(as_proxy(proxy), verify=verify, cert=cert, trust_env=trust_env)
        self._proxy_label = route.label if route is not None else None
        self._pool = ConnectionPool(
            limits=limits,
            ssl_context=ssl_context,
            http1=http1,
            http2=http2,
            uds=uds,
            local_address=local_address,
            write_timeout=write_timeout,
            http2_ping_interval=http2_ping_interval,
            proxy=route,
            quic=None if route is not None else quic,
        )
        self._bound = False

    def bind(self, nursery: trio.Nursery) -> None:
        """Run the pool's background work in the client's `nursery`."""
        if self._bound:
            raise ClientStateError(
                "This HTTPTransport already belongs to a client; give each client its own."
            )
        self._bound = True
        self._pool.attach(nursery)
        nursery.start_soon(self._run_housekeeping)

    # Not `async def`: it hands back the pool's coroutine itself, which saves a coroutine
    # frame per request on the hot path; awaiting it is the same to the caller.
    def handle_request(self, request: Request) -> Coroutine[Any, Any, Response]:
        """Send `request` over a pooled connection; the response body is left on the wire."""
        deadlines = request.extensions.get("deadlines")
        if not isinstance(deadlines, Deadlines):  # not sent by a client: start them now
            deadlines = Deadlines.of(request)
        return self._pool.handle_request(request, deadlines)

    async def aclose(self) -> None:
        """Close every connection, and with them every response still being read."""
        self._pool.close()
        await trio.lowlevel.checkpoint()

    @property
    def is_closed(self) -> bool:
        """True once the transport was closed."""
        return self._pool.is_closed

    def statistics(self) -> PoolStatistics:
        """A frozen snapshot of the pool's counts."""
        return self._pool.statistics()

    def connection_statistics(self) -> list[ConnectionStatistics]:
        """A frozen snapshot of each connection (origin, protocol, streams in use...)."""
        return self._pool.connection_statistics()

    def forget_alternative_services(self) -> None:
        """Forget every HTTP/3 alternative learned from Alt-Svc (and those marked broken)."""
        self._pool.forget_alternative_services()

    # KeyboardInterrupt must reach the user's code, not land in this background task, where
    # the nursery would hand it back wrapped in an ExceptionGroup.
    @trio.lowlevel.enable_ki_protection
    async def _run_housekeeping(self) -> None:
        try:
            await self._pool.run_housekeeping()
        except Exception:  # pragma: no cover - a bug; must not take the user's code down
            logger.exception("trioclient housekeeping failed; idle connections won't expire")


def _quic_template(
    verify: VerifyTypes, cert: CertTypes | None, trust_env: bool
) -> QuicConfiguration:
    """The pool's QUIC/TLS settings; ImportError naming the extra when aioquic is missing."""
    try:
        from ._quic import quic_configuration
    except ImportError as exc:
        raise ImportError(
            "Using http3=True requires the aioquic package: pip install 'trioclient[http3]'"
        ) from exc
    return quic_configuration(verify, cert, trust_env=trust_env)

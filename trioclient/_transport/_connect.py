"""Opening a byte stream to an origin: TCP (Happy Eyeballs) or a Unix socket, then TLS.

The whole of connecting (DNS, TCP, TLS handshake) runs under one cancel scope owned by the
pool (`_pool.py`), whose deadline is the connect timeout capped by the request's total
deadline, and which the pool also cancels if the client closes meanwhile. Trio's
cancel-scope rules make an outer cancellation win when both fire together: an inner scope
only catches a `Cancelled` if no enclosing scope is also cancelled, so the caller's
`move_on_after` is never converted into a `ConnectTimeout`.

Any failure closes what was opened so far before the error leaves; a half-open TLS stream
never reaches the pool. Closing is synchronous (the socket is closed without waiting for a
TLS close_notify), which is what lets every cleanup path here run without a checkpoint.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import trio

from .._exceptions import ConnectError
from ._errors import IO_ERRORS, translate

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from .._origin import Origin
    from .._request import Request

__all__ = [
    "ConnectProgress",
    "close_stream_now",
    "format_address",
    "is_readable",
    "open_stream",
    "open_tcp",
    "socket_of",
]

HAPPY_EYEBALLS_DELAY = 0.25


def format_address(host: str, port: int) -> str:
    """`host:port` for messages, with an IPv6 address in brackets (`[::1]:8080`)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The socket under `stream`, looking through TLS layers."""
    while True:
        if isinstance(stream, trio.SocketStream):
            return stream.socket
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
            continue
        return None


def close_stream_now(stream: trio.abc.Stream | None) -> None:
    """Close `stream` synchronously: no checkpoint, no TLS close_notify, never raises.

    Closing the Trio socket wakes any task blocked on it with `ClosedResourceError`.
    """
    if stream is None:
        return
    sock = socket_of(stream)
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass  # close(2) failed, but the descriptor is released all the same


def is_readable(stream: trio.abc.Stream) -> bool:
    """True when an idle connection has something to read: EOF, or data it must not have.

    Either way an idle HTTP/1.1 connection in that state cannot be reused.
    """
    sock = socket_of(stream)
    return sock is not None and sock.is_readable()


async def open_tcp(host: str, port: int, local_address: str | None) -> trio.SocketStream:
    """`trio.open_tcp_stream`, but a BaseException from its attempts comes out unwrapped.

    Happy Eyeballs runs each attempt in a child task of its own nursery, so a
    KeyboardInterrupt (or any other BaseException) landing in one of them would reach us
    inside an ExceptionGroup; our contract is that such exceptions pass through unchanged.
    (Failed attempts themselves are already folded into one OSError by Trio.)
    """
    try:
        return await trio.open_tcp_stream(
            host, port, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, local_address=local_address
        )
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        chosen = next((e for e in leaves if not isinstance(e, Exception)), leaves[0])
        raise chosen from None


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


class ConnectProgress:
    """How far a connect got: read by the caller to word a timeout precisely.

    The message is `f"{stage} {target}{tail}"`: "connecting to example.org:443", "waiting
    for proxy http://proxy:3128 to open a tunnel to example.org:443".
    """

    __slots__ = ("stage", "tail")

    def __init__(self) -> None:
        self.stage = "connecting to"
        self.tail = ""


async def open_stream(
    origin: Origin,
    *,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str,
    uds: str | None,
    local_address: str | None,
    request: Request,
    progress: ConnectProgress | None = None,
) -> trio.abc.Stream:
    """Connect to `origin` and return the (possibly TLS) stream, or raise ConnectError.

    The caller bounds the time with a cancel scope; whatever interrupts us, the partly
    opened stream is closed before the exception leaves.

    Args:
        origin: the scheme, ASCII host and port to connect to.
        ssl_context: wrap in TLS with this context; None for plain TCP.
        server_hostname: SNI and certificate check name.
        uds: connect to this Unix socket path instead of TCP.
        local_address: bind the local end to this address before connecting.
        request: attached to errors.
        progress: updated as the connect moves from TCP to the TLS handshake.
    """
    host, port = origin.host, origin.port
    address = host.decode("ascii")
    if ":" in address:  # IPv6: RFC 6874 writes the zone separator as "%25" in URLs
        address = address.replace("%25", "%", 1)
    stream: trio.abc.Stream | None = None
    try:
        if uds is not None:
            stream = await trio.open_unix_socket(uds)
        else:
            stream = await open_tcp(address, port, local_address)
        if ssl_context is not None:
            if progress is not None:
                progress.stage = "performing the TLS handshake with"
            tls = trio.SSLStream(
                stream, ssl_context, server_hostname=server_hostname, https_compatible=True
            )
            stream = tls
            await tls.do_handshake()
        return stream
    except IO_ERRORS as exc:
        close_stream_now(stream)
        where = uds if uds is not None else format_address(address, port)
        doing = f"connecting to {where}"
        if ssl_context is not None and stream is not None:
            doing = f"performing the TLS handshake with {where}"
        raise translate(exc, ConnectError, doing, request=request) from exc
    except UnicodeError as exc:
        # The name lookup's IDNA step refuses a host with an empty label or one over 63
        # characters: a valid URL, but no DNS name.
        close_stream_now(stream)  # None here, unless the UnicodeError came from TLS setup
        where = format_address(address, port)
        raise ConnectError(
            f"Failed while connecting to {where}: the host name cannot be looked up ({exc})",
            request=request,
        ) from exc
    except BaseException:
        close_stream_now(stream)
        raise

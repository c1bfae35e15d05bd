"""The one place where foreign exceptions become trioclient exceptions.

Trio streams raise `BrokenResourceError` (peer reset, broken pipe, TLS failure, with the
original error as `__cause__`) and `ClosedResourceError` (we closed the stream, possibly from
another task); sockets raise `OSError`; TLS raises `ssl.SSLError`; h11 and h2 raise their
own protocol errors. The I/O layer catches exactly these, never `BaseException`, and calls
`translate` to build the most specific trioclient error, whose message names the peer and
the operation. `trio.Cancelled` never passes through here. (HTTP/2 stream resets and GOAWAY
are not exceptions but events; `_http2.py` words those itself.)
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from typing import TYPE_CHECKING

import h2.exceptions
import h11
import trio

from .._exceptions import (
    ClientStateError,
    LocalProtocolError,
    ReadError,
    RemoteProtocolError,
    StreamError,
    TransportError,
)

if TYPE_CHECKING:
    from .._request import Request

__all__ = [
    "CLIENT_CLOSED",
    "IO_ERRORS",
    "describe",
    "fresh_error",
    "translate",
]

# What the I/O layer catches around a network operation.
IO_ERRORS = (
    OSError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    trio.BusyResourceError,
    h11.ProtocolError,
)

CLIENT_CLOSED = "the client was closed"

# OpenSSL reasons whose name alone does not say what went wrong.
_TLS_HINTS = {
    "UNEXPECTED_EOF_WHILE_READING": "the server closed the connection",
    "WRONG_VERSION_NUMBER": "the server did not answer with TLS, perhaps plain HTTP",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server requires a client certificate",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the server refused the TLS handshake",
}


def fresh_error(error: TransportError, request: Request) -> TransportError:
    """A copy of a connection-wide error for one request (its own traceback and .request).

    One HTTP/2 failure reaches many streams; raising the same instance in several tasks
    would mix their tracebacks.
    """
    return type(error)(str(error), request=request)


def describe(exc: BaseException) -> str:
    """A short, specific reason for `exc`, looking through trio's wrapping."""
    cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else None
    inner = cause if cause is not None else exc
    if isinstance(inner, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {inner.verify_message}"
    if isinstance(inner, ssl.SSLError):
        reason = inner.reason or str(inner)
        hint = _TLS_HINTS.get(reason)
        return f"TLS error: {reason}" if hint is None else f"{hint} (TLS error: {reason})"
    if isinstance(inner, socket.gaierror):
        return f"DNS lookup failed: {inner.strerror or inner}"
    if isinstance(inner, OSError):
        if inner.errno is not None:
            name = errno.errorcode.get(inner.errno)
            if name is None:
                return f"{inner.strerror or 'error'} ({inner.errno})"
            # Not inner.strerror: trio puts the address in it ("Error connecting to (...)"),
            # which the caller's message already names.
            return f"{os.strerror(inner.errno)} ({name})"
        attempts = _attempt_errors(inner)
        if attempts:
            # trio.open_tcp_stream: "all attempts to connect to host:port failed", with the
            # reason of each attempt (one per address) in an ExceptionGroup as __cause__.
            return "; ".join(dict.fromkeys(describe(attempt) for attempt in attempts))
        return str(inner) or type(inner).__name__
    if isinstance(inner, trio.BrokenResourceError):
        return "connection broken"
    if isinstance(inner, trio.ClosedResourceError):
        return "connection closed locally"
    return str(inner) or type(inner).__name__


def _attempt_errors(exc: OSError) -> list[OSError]:
    """The per-address OSErrors under trio's "all attempts to connect ... failed"."""
    group = exc.__cause__
    found: list[OSError] = []
    pending: list[object] = [group]
    while pending:
        item = pending.pop(0)
        children = getattr(item, "exceptions", None)  # an ExceptionGroup (3.10: backport)
        if isinstance(children, tuple):
            pending.extend(children)
        elif isinstance(item, OSError) and item is not exc:
            found.append(item)
    return found


def translate(
    exc: BaseException,
    kind: type[TransportError],
    doing: str,
    *,
    request: Request | None,
    closed_reason: str | None = None,
) -> Exception:
    """Map an exception from `IO_ERRORS` to a trioclient exception.

    Args:
        exc: the foreign exception.
        kind: the trioclient class for a network failure in this phase (ConnectError,
            ReadError or WriteError); for h2's errors it also says which side was at fault
            (ReadError: the server's bytes; otherwise our request).
        doing: what we were doing, for the message ("reading the response from host:port").
        request: attached to the new exception.
        closed_reason: set when the pool closed the connection on purpose (client closed).
    """
    if closed_reason is not None and isinstance(exc, (trio.ClosedResourceError, OSError)):
        return ClientStateError(f"Failed while {doing}: {closed_reason}.")
    if isinstance(exc, trio.BusyResourceError):
        return StreamError(f"Failed while {doing}: the stream is in use by another task.")
    if isinstance(exc, h11.RemoteProtocolError):
        return RemoteProtocolError(f"Protocol error while {doing}: {exc}", request=request)
    if isinstance(exc, h11.LocalProtocolError):
        return LocalProtocolError(f"Refused to send an invalid request: {exc}", request=request)
    if isinstance(exc, h2.exceptions.H2Error):
        # h2 raises while parsing what the server sent (a read) or while checking what we
        # are about to send (anything else).
        if kind is ReadError:
            return RemoteProtocolError(
                f"HTTP/2 protocol error while {doing}: {exc}", request=request
            )
        return LocalProtocolError(
            f"Refused to send an invalid HTTP/2 request: {exc}", request=request
        )
    return kind(f"Failed while {doing}: {describe(exc)}", request=request)

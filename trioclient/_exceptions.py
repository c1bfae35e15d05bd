"""The exception tree. Names and shape follow httpx, so `except httpx.X` ports directly.

* HTTPError
  * RequestError
    * TransportError
      * TimeoutException
        * ConnectTimeout
        * ReadTimeout
        * WriteTimeout
        * PoolTimeout
      * NetworkError
        * ConnectError
        * ReadError
        * WriteError
        * CloseError
      * ProtocolError
        * LocalProtocolError
        * RemoteProtocolError
      * ProxyError
      * UnsupportedProtocol
    * DecodingError
    * ResponseTooLarge (the body is larger than `max_response_size`)
    * TooManyRedirects
  * HTTPStatusError
* InvalidURL
* CookieConflict (`Cookies.get` found several cookies of that name: name the domain)
* StreamError (a RuntimeError: these are programming mistakes, not network faults)
  * StreamConsumed
  * StreamClosed
  * ResponseNotRead
  * RequestNotRead
* ClientStateError (a RuntimeError: the client was never entered, or is closed)

`ResponseTooLarge` is a RequestError beside DecodingError, not a TransportError: the
connection worked, the body is just more than the caller agreed to hold. It is not a
`StreamError` either (that tree is for programming mistakes): a crawler meets it from
servers it does not control and handles it like any other failed request.

Every transport failure is translated into this tree in exactly one place
(`_transport/_errors.py`); `trio.Cancelled` and other BaseExceptions are never caught
or converted anywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._request import Request
    from ._response import Response
    from ._retry import RetryAttempt

__all__ = [
    "ClientStateError",
    "CloseError",
    "ConnectError",
    "ConnectTimeout",
    "CookieConflict",
    "DecodingError",
    "HTTPError",
    "HTTPStatusError",
    "InvalidURL",
    "LocalProtocolError",
    "NetworkError",
    "PoolTimeout",
    "ProtocolError",
    "ProxyError",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "RequestError",
    "RequestNotRead",
    "ResponseNotRead",
    "ResponseTooLarge",
    "StreamClosed",
    "StreamConsumed",
    "StreamError",
    "TimeoutException",
    "TooManyRedirects",
    "TransportError",
    "UnsupportedProtocol",
    "WriteError",
    "WriteTimeout",
]


class HTTPError(Exception):
    """Base class for `RequestError` and `HTTPStatusError`.

    Catch this to handle any failure of `response = await client.get(...)` followed by
    `response.raise_for_status()`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._request: Request | None = None

    @property
    def request(self) -> Request:
        """The request that failed; raises RuntimeError if it was never attached."""
        if self._request is None:
            raise RuntimeError("The .request property has not been set.")
        return self._request

    @request.setter
    def request(self, request: Request) -> None:
        self._request = request


class RequestError(HTTPError):
    """An error occurred while issuing a request.

    `attempts` holds the earlier attempts of the request that were retried before this
    error ended them (empty without retries; see docs/retries.md).
    """

    attempts: tuple[RetryAttempt, ...] = ()

    def __init__(self, message: str, *, request: Request | None = None) -> None:
        super().__init__(message)
        self._request = request


class TransportError(RequestError):
    """An error occurred at the level of the transport (connection, protocol, pool)."""


class TimeoutException(TransportError):
    """A timeout of the `Timeout` configuration expired."""


class ConnectTimeout(TimeoutException):
    """Opening the connection (TCP connect and TLS handshake) took too long."""


class ReadTimeout(TimeoutException):
    """Waiting for data from the server took too long."""


class WriteTimeout(TimeoutException):
    """Sending data to the server took too long."""


class PoolTimeout(TimeoutException):
    """Waiting for a connection from the pool took too long."""


class NetworkError(TransportError):
    """A network failure while connecting, sending, receiving or closing."""


class ConnectError(NetworkError):
    """The connection could not be opened (refused, unreachable, DNS, TLS failure)."""


class ReadError(NetworkError):
    """Receiving data from the network failed."""


class WriteError(NetworkError):
    """Sending data to the network failed."""


class CloseError(NetworkError):
    """Closing the connection failed."""


class ProtocolError(TransportError):
    """The HTTP protocol was violated."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something that would violate the protocol.

    For example a header containing CR, LF or NUL, raised before any byte is sent; or a
    file of a `files=` upload that changed size while it was sent, so the body no longer
    matches the Content-Length already sent (the connection is then closed).
    """


class RemoteProtocolError(ProtocolError):
    """The server violated the protocol, or disconnected without sending a response."""


class ProxyError(TransportError):
    """A proxy refused or failed to connect us to the target.

    Raised while a connection is set up: the proxy answered CONNECT with anything but 2xx,
    a SOCKS5 proxy refused (bad credentials, a reply code other than success), or the proxy's
    reply was not valid. `proxy` names it (`scheme://host:port`, never the credentials),
    `target` is the `host:port` we asked for; `status_code` and `reason` are the proxy's
    status (407, "Proxy Authentication Required") or SOCKS5 reply code and its meaning, None
    when the proxy sent no valid reply. A proxy that cannot be reached at all is a
    `ConnectError` (or `ConnectTimeout`) naming the proxy instead.
    """

    def __init__(
        self,
        message: str,
        *,
        request: Request | None = None,
        status_code: int | None = None,
        reason: str | None = None,
        proxy: str | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.status_code = status_code
        self.reason = reason
        self.proxy = proxy
        self.target = target


class UnsupportedProtocol(TransportError):
    """The URL scheme (or the protocol the server chose) is not supported."""


class DecodingError(RequestError):
    """The response body could not be decoded with its Content-Encoding."""


class ResponseTooLarge(RequestError):
    """The response body is larger than the `max_response_size` the request was sent with.

    Raised before reading the body when `Content-Length` already says so, otherwise as soon
    as the decoded body passes the limit; the response is closed (its connection is not
    reused). `limit` is the cap in bytes; `size` is the declared Content-Length, or the
    decoded bytes counted when the limit was passed (`declared` says which);
    `response` is the closed response (headers and status are there, the body is not).
    """

    def __init__(
        self,
        message: str,
        *,
        request: Request | None = None,
        response: Response | None = None,
        limit: int,
        size: int,
        declared: bool,
    ) -> None:
        super().__init__(message, request=request)
        self.response = response
        self.limit = limit
        self.size = size
        self.declared = declared


class TooManyRedirects(RequestError):
    """More redirects were followed than `max_redirects` allows."""


class HTTPStatusError(HTTPError):
    """`Response.raise_for_status()` found a 4xx or 5xx status."""

    def __init__(self, message: str, *, request: Request, response: Response) -> None:
        super().__init__(message)
        self._request = request
        self.response = response


class InvalidURL(Exception):
    """A URL could not be parsed or is not usable; the message names the problem."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class CookieConflict(Exception):
    """`Cookies.get(name)` (or `cookies[name]`) matched several cookies, one per domain or
    path: pass `domain=` and `path=` to choose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class StreamError(RuntimeError):
    """A response or request stream was used in a way that is not allowed.

    These signal mistakes in the calling code rather than network faults, which is why
    they derive from RuntimeError and not from HTTPError.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)


class StreamConsumed(StreamError):
    """The body stream was already iterated once and cannot be read again."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "Attempted to read or stream content, but the content has already been "
            "streamed. Read the body with `await response.aread()` before using "
            "`.content` if you need it more than once."
        )


class StreamClosed(StreamError):
    """The body stream was closed (by `aclose()`, or because the client closed)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message or "Attempted to read or stream content, but the stream has been closed."
        )


class ResponseNotRead(StreamError):
    """`.content` or `.text` was used on a streamed response before `aread()`."""

    def __init__(self) -> None:
        super().__init__(
            "Attempted to access streaming response content, without having called "
            "`await response.aread()`."
        )


class RequestNotRead(StreamError):
    """`.content` was used on a request whose body is a stream that was not read."""

    def __init__(self) -> None:
        super().__init__(
            "Attempted to access streaming request content, without having called "
            "`await request.aread()`."
        )


class ClientStateError(RuntimeError):
    """The client was used before `async with` entered it, or after it closed."""

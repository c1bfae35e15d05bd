"""Raw, misbehaving HTTP/1.1 peers for socket-level tests, run inside the test's own Trio run.

Theory of operation: :func:`serve_raw` listens on 127.0.0.1 port 0 in the caller's nursery
(cancel that nursery to stop it) and calls ``handler(stream)`` once per accepted connection
with a :class:`BufferedStream`, so bytes read past a delimiter are never lost. Whatever the
handler does, the connection is closed when it returns, and the errors a misbehaving *client*
can cause (broken or closed streams, OSError, TLS failures) are swallowed: the code under test
must never be able to fail the server. Any other exception from a handler is a bug in the test
and propagates into the caller's nursery.

Closing is graceful on purpose: request bytes are drained before the handler closes (see
:func:`read_request`), because closing a TCP socket with unread input makes Linux send RST,
which can destroy response bytes the client has not read yet and make tests flaky.

Typical use::

    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, close_mid_body())
        ...  # point the client at url
        nursery.cancel_scope.cancel()
"""

from __future__ import annotations

import http
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from functools import partial

import trio

__all__ = [
    "BufferedStream",
    "ConnectionCounter",
    "Handler",
    "close_after_request_read",
    "close_mid_body",
    "close_mid_headers",
    "drip",
    "garbage",
    "keepalive_then_close",
    "oversized_headers",
    "read_request",
    "read_request_head",
    "respond",
    "response_bytes",
    "response_head",
    "serve_raw",
    "serve_raw_unix",
    "stall_after_head",
]

MAX_HEAD = 1024 * 1024
_SWALLOWED = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError)


class BufferedStream(trio.abc.HalfCloseableStream):
    """A stream with a read buffer: ``receive_until``/``receive_exactly`` keep the excess."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._buffer = bytearray()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._buffer:
            size = len(self._buffer) if max_bytes is None else min(max_bytes, len(self._buffer))
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            await trio.lowlevel.checkpoint()
            return data
        return bytes(await self.stream.receive_some(max_bytes))

    async def _fill(self, what: str) -> None:
        data = await self.stream.receive_some()
        if not data:
            raise trio.BrokenResourceError(f"peer closed the connection while we waited for {what}")
        self._buffer += data

    async def receive_until(self, delimiter: bytes, max_size: int = MAX_HEAD) -> bytes:
        """Return everything up to and including ``delimiter``.

        Raises:
            trio.BrokenResourceError: the peer closed first, or sent ``max_size`` bytes
                without the delimiter.
        """
        start = 0
        while True:
            index = self._buffer.find(delimiter, start)
            if index >= 0:
                end = index + len(delimiter)
                data = bytes(self._buffer[:end])
                del self._buffer[:end]
                return data
            if len(self._buffer) > max_size:
                raise trio.BrokenResourceError(f"no {delimiter!r} within {max_size} bytes")
            start = max(0, len(self._buffer) - len(delimiter) + 1)
            await self._fill(repr(delimiter))

    async def receive_exactly(self, n: int) -> bytes:
        """Return exactly ``n`` bytes; raises BrokenResourceError if the peer closes first."""
        while len(self._buffer) < n:
            await self._fill(f"{n} bytes")
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if isinstance(self.stream, trio.abc.HalfCloseableStream):
            await self.stream.send_eof()
        else:
            await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await self.stream.aclose()


Handler = Callable[[BufferedStream], Awaitable[None]]


# --- reading requests ------------------------------------------------------------------------


async def read_request_head(stream: BufferedStream) -> bytes:
    """Read one request head, up to and including the blank line; the rest stays buffered."""
    return await stream.receive_until(b"\r\n\r\n")


def _header_values(head: bytes, name: bytes) -> list[bytes]:
    values: list[bytes] = []
    for line in head.split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            values.append(value.strip())
    return values


async def read_request(stream: BufferedStream) -> tuple[bytes, bytes]:
    """Read one whole request: returns ``(head, body)``.

    The body is framed by Content-Length or ``Transfer-Encoding: chunked`` (chunk extensions
    and trailers are skipped); the chunked body is returned de-chunked.
    """
    head = await read_request_head(stream)
    if any(b"chunked" in v.lower() for v in _header_values(head, b"transfer-encoding")):
        parts: list[bytes] = []
        while True:
            size_line = await stream.receive_until(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await stream.receive_until(b"\r\n") != b"\r\n":
                    pass  # trailers
                return head, b"".join(parts)
            parts.append(await stream.receive_exactly(size))
            await stream.receive_exactly(2)
    lengths = _header_values(head, b"content-length")
    length = int(lengths[0]) if lengths else 0
    return head, await stream.receive_exactly(length)


async def _wait_for_peer_close(stream: BufferedStream) -> None:
    """Discard input until the peer closes (or the stream breaks)."""
    try:
        while await stream.receive_some(65536):
            pass
    except _SWALLOWED:
        pass


# --- writing responses -----------------------------------------------------------------------


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


def response_head(
    status: int = 200, headers: Iterable[tuple[str | bytes, str | bytes]] = ()
) -> bytes:
    """A status line plus headers plus the blank line, exactly as given (no Content-Length)."""
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}".encode("ascii")]
    lines.extend(_as_bytes(name) + b": " + _as_bytes(value) for name, value in headers)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def response_bytes(
    status: int = 200,
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
    body: bytes = b"",
) -> bytes:
    """A well-formed HTTP/1.1 response; adds Content-Length unless ``headers`` has one."""
    header_list = list(headers)
    if not any(_as_bytes(name).lower() == b"content-length" for name, _ in header_list):
        header_list.append((b"Content-Length", str(len(body)).encode("ascii")))
    return response_head(status, header_list) + body


# --- the server ------------------------------------------------------------------------------


async def _serve_connection(
    handler: Handler, tls: ssl.SSLContext | None, tcp_stream: trio.SocketStream
) -> None:
    stream: trio.abc.Stream = tcp_stream
    try:
        if tls is not None:
            ssl_stream = trio.SSLStream(tcp_stream, tls, server_side=True)
            stream = ssl_stream
            await ssl_stream.do_handshake()
        await handler(BufferedStream(stream))
    except _SWALLOWED:
        pass
    finally:
        # A graceful close sends TLS close_notify (trio does not wait for the reply); the
        # timeout covers a peer that stopped reading. aclose() closes even when cancelled.
        with trio.move_on_after(1):
            try:
                await stream.aclose()
            except _SWALLOWED:
                pass


async def serve_raw(
    nursery: trio.Nursery, handler: Handler, *, tls: ssl.SSLContext | None = None
) -> str:
    """Serve ``handler`` on 127.0.0.1:0 in ``nursery``; returns ``http(s)://127.0.0.1:PORT``."""
    listeners = await nursery.start(
        partial(trio.serve_tcp, partial(_serve_connection, handler, tls), 0, host="127.0.0.1")
    )
    port = listeners[0].socket.getsockname()[1]
    return f"{'https' if tls is not None else 'http'}://127.0.0.1:{port}"


async def serve_raw_unix(
    nursery: trio.Nursery, path: str, handler: Handler, *, tls: ssl.SSLContext | None = None
) -> None:
    """Serve ``handler`` on the Unix socket ``path`` in ``nursery`` (for ``Client(uds=...)``:
    any host name in a URL reaches this server, and nothing leaves the machine)."""
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen()
    listener = trio.SocketListener(sock)
    await nursery.start(
        partial(trio.serve_listeners, partial(_serve_connection, handler, tls), [listener])
    )


class ConnectionCounter:
    """Wraps a handler and counts the connections it was called for (``.count``)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.count = 0

    async def __call__(self, stream: BufferedStream) -> None:
        self.count += 1
        await self.handler(stream)


# --- ready-made handlers ---------------------------------------------------------------------


def respond(
    status: int = 200,
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
    body: bytes = b"ok",
) -> Handler:
    """A well-behaved keep-alive server: answers every request on the connection the same way."""
    response = response_bytes(status, headers, body)

    async def handler(stream: BufferedStream) -> None:
        while True:
            try:
                await read_request(stream)
            except trio.BrokenResourceError:
                return  # the client closed the idle connection
            await stream.send_all(response)

    return handler


def drip(chunks: int, delay: float, size: int) -> Handler:
    """Content-Length ``chunks * size``, then ``chunks`` chunks of ``b"*"`` ``delay`` apart."""

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(response_head(200, [("Content-Length", str(chunks * size))]))
        for index in range(chunks):
            if index:
                await trio.sleep(delay)
            await stream.send_all(b"*" * size)
        await _wait_for_peer_close(stream)

    return handler


def stall_after_head() -> Handler:
    """Read the request, then send nothing; returns only when the client closes."""

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await _wait_for_peer_close(stream)

    return handler


def close_mid_headers() -> Handler:
    """Send half a response head, then close."""

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/pl")

    return handler


def close_mid_body() -> Handler:
    """Promise ``Content-Length: 100``, send 10 bytes, then close."""

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(response_head(200, [("Content-Length", "100")]) + b"0123456789")

    return handler


def garbage() -> Handler:
    """Answer with bytes that are not HTTP, then close."""

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(b"\x00\x01garbage\r\n\r\n")

    return handler


def oversized_headers(n: int) -> Handler:
    """A response whose ``X-Big`` header value is ``n`` bytes long, then close."""

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(response_bytes(200, [("X-Big", "x" * n)]))
        await _wait_for_peer_close(stream)

    return handler


def keepalive_then_close(delay: float) -> Handler:
    """One keep-alive response per connection; close after ``delay`` seconds.

    A request sent on the connection after the first response is never answered: this is
    the "server closed the idle keep-alive connection" race clients must recover from.
    """

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(response_bytes(200, [("Content-Type", "text/plain")], b"ok"))
        with trio.move_on_after(delay):
            await _wait_for_peer_close(stream)

    return handler


def close_after_request_read() -> Handler:
    """Read the whole request and close without answering."""

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)

    return handler

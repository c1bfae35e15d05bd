"""Ready-made handlers for :func:`servers.h2_raw.serve_h2`.

Each function returns a :class:`~servers.h2_raw.HandlerFactory` (one handler per connection;
``factory.connections`` holds the record of every connection). PINGs need no handler: h2
answers them by itself, whatever the handler. The classes can be subclassed for one-off
behaviour, e.g. ``HandlerFactory(MyHandler)`` with ``class MyHandler(Echo)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import Literal

import trio
from h2.settings import SettingCodes

from .asgi_app import pattern_bytes
from .h2_raw import H2Handler, HandlerFactory, HeaderPairs, Request

__all__ = [
    "GARBAGE_FRAME",
    "BigBody",
    "Echo",
    "Fixed",
    "GarbageFrame",
    "GoawayAfter",
    "InvalidHeaders",
    "MaxConcurrent",
    "ResetStream",
    "SlowDrip",
    "Stall",
    "Trailers",
    "big_body",
    "connection_error",
    "echo",
    "fixed",
    "goaway_after",
    "invalid_headers",
    "max_concurrent",
    "reset_stream",
    "slow_drip",
    "stall",
    "tiny_window",
    "trailers",
]

# A DATA frame on stream 0: a connection error (PROTOCOL_ERROR) for any HTTP/2 client.
GARBAGE_FRAME = b"\x00\x00\x04\x00\x00\x00\x00\x00\x00junk"


def request_json(request: Request) -> bytes:
    """The JSON the echo handler answers with."""
    return json.dumps(
        {
            "stream_id": request.stream_id,
            "method": request.method,
            "path": request.path,
            "scheme": request.header(":scheme"),
            "authority": request.header(":authority"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.headers],
            "body": request.body.decode("latin-1"),
            "trailers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.trailers]
            if request.trailers is not None
            else None,
        }
    ).encode()


class Echo(H2Handler):
    """200 ``application/json``: stream id, method, path, headers, body (latin-1), trailers."""

    async def on_request(self, request: Request) -> None:
        body = request_json(request)
        await self.conn.send_response(
            request.stream_id, 200, [("content-type", "application/json")], body
        )


def echo() -> HandlerFactory:
    """Answer every request with its own description as JSON (see :class:`Echo`)."""
    return HandlerFactory(Echo)


class Fixed(H2Handler):
    """The same response for every request."""

    def __init__(self, status: int = 200, body: bytes = b"ok", headers: HeaderPairs = ()) -> None:
        self.status = status
        self.body = body
        self.headers = list(headers)

    async def on_request(self, request: Request) -> None:
        await self.conn.send_response(request.stream_id, self.status, self.headers, self.body)


def fixed(status: int = 200, body: bytes = b"ok", headers: HeaderPairs = ()) -> HandlerFactory:
    """Answer every request with ``status`` and ``body`` (plus content-length)."""
    return HandlerFactory(partial(Fixed, status, body, headers))


class Stall(H2Handler):
    """Never answers. ``ack=False``: no WINDOW_UPDATE for uploads; ``read=False``: stop
    reading (no PING/SETTINGS ACKs either) once the first request's headers arrived."""

    def __init__(self, *, ack: bool = True, read: bool = True) -> None:
        self.read = read

        self.ack_data = ack

    async def on_headers(self, request: Request) -> None:
        if not self.read:
            self.conn.pause_reading()


def stall(*, ack: bool = True, read: bool = True) -> HandlerFactory:
    """Accept requests and never answer them (see :class:`Stall`)."""
    return HandlerFactory(partial(Stall, ack=ack, read=read))


class GoawayAfter(H2Handler):
    """Answers the first ``n`` streams ``200 "stream N"``, then GOAWAY(last = the nth).

    With ``goaway_first`` the GOAWAY goes out *before* the nth response, in the same write,
    as nginx does when ``keepalive_requests`` runs out.
    """

    def __init__(self, n: int, error_code: int, goaway_first: bool) -> None:
        self.n = n
        self.error_code = error_code
        self.goaway_first = goaway_first
        self.answered: set[int] = set()

    async def on_connect(self) -> None:
        if self.n == 0:
            await self.conn.send_goaway(0, self.error_code)

    async def on_request(self, request: Request) -> None:
        conn, stream_id = self.conn, request.stream_id
        first = sorted(conn.requests)[: self.n]
        if stream_id not in first:
            return  # above the GOAWAY: left unprocessed
        body = f"stream {stream_id}".encode()
        if self.goaway_first and len(first) == self.n and stream_id == first[-1]:
            async with conn.corked():
                await conn.send_goaway(stream_id, self.error_code)
                await conn.send_response(stream_id, 200, [], body)
            self.answered.add(stream_id)
            return
        await conn.send_response(stream_id, 200, [], body)
        self.answered.add(stream_id)
        if not self.goaway_first and len(self.answered) == self.n:
            await conn.send_goaway(first[-1], self.error_code)


def goaway_after(n: int, error_code: int = 0, *, goaway_first: bool = False) -> HandlerFactory:
    """Answer ``n`` streams per connection, then GOAWAY with last_stream_id = the nth stream
    id; later streams stay unprocessed (``n=0``: GOAWAY(0) right after the preface). See
    :class:`GoawayAfter` for ``goaway_first``."""
    return HandlerFactory(partial(GoawayAfter, n, error_code, goaway_first))


class ResetStream(H2Handler):
    """Resets each request stream with ``code``; ``on`` says when: as soon as the request
    ``"headers"`` arrive, after the whole ``"request"``, or mid-``"response"`` (after the
    response headers and 5 body bytes)."""

    def __init__(self, code: int, on: Literal["headers", "request", "response"]) -> None:
        self.code = code
        self.on = on

    async def on_headers(self, request: Request) -> None:
        if self.on == "headers":
            await self.conn.reset_stream(request.stream_id, self.code)

    async def on_request(self, request: Request) -> None:
        if self.on == "response":
            await self.conn.send_response(
                request.stream_id, 200, [("content-length", "100")], b"12345", end_stream=False
            )
        if self.on != "headers":
            await self.conn.reset_stream(request.stream_id, self.code)


def reset_stream(
    code: int, *, on: Literal["headers", "request", "response"] = "request"
) -> HandlerFactory:
    """Reset every request stream with error ``code`` (see :class:`ResetStream`)."""
    return HandlerFactory(partial(ResetStream, code, on))


def tiny_window(initial_window: int = 1) -> HandlerFactory:
    """Echo, with SETTINGS_INITIAL_WINDOW_SIZE = ``initial_window``: uploads must wait for
    the server's WINDOW_UPDATEs (sent as soon as data arrives). The connection window stays
    65535, as RFC 9113 only lets WINDOW_UPDATE change it."""

    def make() -> Echo:
        handler = Echo()
        handler.settings = {SettingCodes.INITIAL_WINDOW_SIZE: initial_window}
        return handler

    return HandlerFactory(make)


class MaxConcurrent(H2Handler):
    """SETTINGS_MAX_CONCURRENT_STREAMS = ``n``; each request is answered (``200 "ok"``) once
    ``n`` streams are open at the same time, or after ``hold`` seconds. ``conn.peak_open_streams``
    tells how many the client had open at once."""

    def __init__(self, n: int, hold: float) -> None:
        self.n = n
        self.hold = hold
        self.settings = {SettingCodes.MAX_CONCURRENT_STREAMS: n}

    async def on_request(self, request: Request) -> None:
        with trio.move_on_after(self.hold):
            await self.conn.wait_for(lambda: self.conn.h2.open_inbound_streams >= self.n, None)
        await self.conn.send_response(request.stream_id, 200, [], b"ok")


def max_concurrent(n: int, *, hold: float = 0.05) -> HandlerFactory:
    """Allow ``n`` concurrent streams per connection (see :class:`MaxConcurrent`)."""
    return HandlerFactory(partial(MaxConcurrent, n, hold))


class SlowDrip(H2Handler):
    """content-length ``chunks * size``, then ``chunks`` DATA frames of ``b"*"`` ``delay`` apart."""

    def __init__(self, chunks: int, delay: float, size: int) -> None:
        self.chunks = chunks
        self.delay = delay
        self.size = size

    async def on_request(self, request: Request) -> None:
        conn, stream_id = self.conn, request.stream_id
        headers = [("content-length", str(self.chunks * self.size))]
        await conn.send_response(stream_id, 200, headers, end_stream=self.chunks == 0)
        for index in range(self.chunks):
            if index:
                await trio.sleep(self.delay)
            await conn.send_data(stream_id, b"*" * self.size, end_stream=index == self.chunks - 1)


def slow_drip(chunks: int, delay: float, size: int) -> HandlerFactory:
    """A body sent in slow chunks (see :class:`SlowDrip`)."""
    return HandlerFactory(partial(SlowDrip, chunks, delay, size))


class BigBody(H2Handler):
    """``pattern_bytes(size)`` with content-length, sent only as the client's windows allow."""

    def __init__(self, size: int) -> None:
        self.size = size

    async def on_request(self, request: Request) -> None:
        await self.conn.send_response(request.stream_id, 200, [], pattern_bytes(self.size))


def big_body(size: int) -> HandlerFactory:
    """A large body for client-side flow control tests (see :class:`BigBody`)."""
    return HandlerFactory(partial(BigBody, size))


class Trailers(H2Handler):
    """200 with ``trailer: x-checksum``, body ``b"body"``, then trailers
    ``x-checksum: abc`` and ``grpc-status: 0``."""

    TRAILERS = (("x-checksum", "abc"), ("grpc-status", "0"))

    async def on_request(self, request: Request) -> None:
        await self.conn.send_response(
            request.stream_id, 200, [("trailer", "x-checksum")], b"body", end_stream=False
        )
        await self.conn.send_trailers(request.stream_id, self.TRAILERS)


def trailers() -> HandlerFactory:
    """A response with trailers (see :class:`Trailers`)."""
    return HandlerFactory(Trailers)


INVALID_HEADERS: dict[str, Sequence[tuple[str, str]]] = {
    "uppercase": [(":status", "200"), ("X-Upper-Case", "1")],
    "connection": [(":status", "200"), ("connection", "keep-alive")],
    "transfer-encoding": [(":status", "200"), ("transfer-encoding", "chunked")],
    "pseudo": [(":status", "200"), (":bogus", "1")],
    "no-status": [("content-type", "text/plain")],
}


class InvalidHeaders(H2Handler):
    """A response whose headers RFC 9113 forbids (``kind`` is a key of INVALID_HEADERS),
    sent with h2's outbound validation and normalization turned off, then body ``b"bad"``."""

    config = {"validate_outbound_headers": False, "normalize_outbound_headers": False}

    def __init__(self, kind: str) -> None:
        self.headers = INVALID_HEADERS[kind]

    async def on_request(self, request: Request) -> None:
        await self.conn.send_headers(request.stream_id, self.headers)
        await self.conn.send_data(request.stream_id, b"bad", end_stream=True)


def invalid_headers(kind: str = "uppercase") -> HandlerFactory:
    """A malformed response (see :class:`InvalidHeaders`); the client must reject it."""
    return HandlerFactory(partial(InvalidHeaders, kind))


class GarbageFrame(H2Handler):
    """Once ``after`` requests have arrived (headers), sends ``payload`` (default
    :data:`GARBAGE_FRAME`) raw; answers nothing, so every open stream must fail."""

    def __init__(self, after: int, payload: bytes) -> None:
        self.after = after
        self.payload = payload
        self.sent = False

    async def on_headers(self, request: Request) -> None:
        if not self.sent and len(self.conn.requests) >= self.after:
            self.sent = True
            await self.conn.send_raw(self.payload)


def connection_error(after: int = 1, payload: bytes = GARBAGE_FRAME) -> HandlerFactory:
    """A connection-level protocol violation (see :class:`GarbageFrame`)."""
    return HandlerFactory(partial(GarbageFrame, after, payload))

"""HTTP/3 over one QUIC connection: aioquic's sans-I/O `H3Connection` on top of `_quic.py`.

Theory of operation
-------------------
`HTTP3Connection` offers the pool and `Connection` the duck interface of `HTTP2Connection`
(`start`, `is_usable`, `close_now`, `dropped`, `start_stream`, `receive_response_head`,
`abandon`), so they treat the two alike: a multiplexed connection whose streams the books
count. One task in the client's nursery (`QuicDriver.run`) reads datagrams and runs
aioquic's timers; every QUIC event goes through `_on_event`, which feeds aioquic's
`H3Connection` and routes its events to per-stream `H3Stream`s. Request tasks change
QUIC/HTTP/3 state synchronously and call `transmit()`, so cancelling one costs at most a
STOP_SENDING + RESET_STREAM (H3_REQUEST_CANCELLED) of that stream only.

Bounds
------
- Receive: each stream buffers at most STREAM_WINDOW unread bytes. The QUIC receive limit
  of a stream is what it delivered minus what is still unread (plus what aioquic's HTTP/3
  layer holds of an incomplete HEADERS frame), plus STREAM_WINDOW: credit comes back as the
  consumer reads (see `_quic.py` for the override that makes aioquic grant it that way).
- A response header section (or trailer section) over MAX_HEAD_SIZE fails the stream.
- Streams: at most the server's MAX_STREAMS (a request parks until the server grants more,
  bounded by the pool timeout) and our own MAX_STREAMS.
- Upload: at most UPLOAD_BUFFER bytes of one request body sit in aioquic's send buffer
  (unsent or unacknowledged); the request task waits for ACKs, bounded by the write timeout.

GOAWAY: aioquic's `H3Connection` reads the server's control stream but does not report
GOAWAY. `_ControlWatcher` parses the frame headers of that stream itself (a few bytes of
state) and hands us the GOAWAY's stream id: the connection takes no new streams, and
streams at or above that id fail with `RetryOnNewConnection`, which the pool resends on a
new connection; the others finish.

Server push is not enabled: we send no MAX_PUSH_ID, so a server that pushes anyway breaks
the protocol and the connection closes with H3_ID_ERROR.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio
from aioquic.h3.connection import ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    QuicEvent,
    StopSendingReceived,
    StreamDataReceived,
    StreamReset,
)
from aioquic.quic.packet import QuicErrorCode
from aioquic.tls import AlertDescription

from .._config import Deadlines
from .._exceptions import (
    ClientStateError,
    ConnectError,
    ConnectTimeout,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
    WriteTimeout,
)
from .._logs import DEBUG, redact_url
from ._base import ResponseHead
from ._body import checked_chunk, close_abandoned, next_chunk
from ._errors import describe, fresh_error
from ._h2_stream import StreamState
from ._http2 import RetryOnNewConnection, request_fields
from ._quic import (
    DatagramSocket,
    QuicDriver,
    configuration_for,
    open_udp,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterable

    from .._request import Request

__all__ = ["H3Stream", "HTTP3Connection", "open_http3"]

http3_logger = logging.getLogger("trioclient.http3")  # streams opened and reset, GOAWAY

STREAM_WINDOW = 1024 * 1024
UPLOAD_BUFFER = 256 * 1024
UPLOAD_PIECE = 64 * 1024
MAX_STREAMS = 1000
MAX_HEAD_SIZE = 100 * 1024
MAX_CONTROL_FRAME = 64 * 1024  # a SETTINGS frame larger than this is an attack, not settings
# With streams open, a connection silent for this share of its idle timeout (the smaller
# of ours and the server's) gets a PING, so a slow response does not idle it out.
PING_SHARE = 1 / 3


class H3Stream(StreamState):
    """An HTTP/3 request stream: also what the receive-credit rule counts (see `_limit`)."""

    __slots__ = ("advertised", "received", "send_stopped", "unread")

    def __init__(self, stream_id: int) -> None:
        super().__init__(stream_id)
        self.unread = 0  # body bytes buffered in `chunks`
        self.received = 0  # stream bytes aioquic delivered (frames included)
        self.advertised = STREAM_WINDOW  # the receive limit last granted
        self.send_stopped = False  # the server sent STOP_SENDING: it wants no more body


async def open_http3(
    host: str,
    port: int,
    *,
    where: str,
    server_name: str,
    template: QuicConfiguration,
    local_address: str | None,
    deadline: float,
    timeout_label: Callable[[], str],
    request: Request,
    on_unusable: Callable[[], None],
) -> HTTP3Connection:
    """Open a UDP socket, run the QUIC handshake (in this task), return the connection.

    Raises ConnectTimeout when `deadline` passes first, ConnectError for anything else
    (ICMP unreachable, TLS/certificate failure, version negotiation); the socket is closed
    before any exception leaves. The caller starts the connection's task (`start`).
    """
    sock = None
    http: HTTP3Connection | None = None
    try:
        with trio.move_on_at(deadline):
            sock = await open_udp(host, port, local_address)
            configuration = configuration_for(template, server_name, STREAM_WINDOW)
            http = HTTP3Connection(
                sock,
                configuration,
                where,
                on_unusable=on_unusable,
            )
            await http.handshake(request)
            return http
        raise ConnectTimeout(
            f"Timed out during the QUIC handshake with {where} ({timeout_label()})",
            request=request,
        )
    except TransportError:
        raise
    except OSError as exc:
        raise ConnectError(
            f"Failed while starting the QUIC handshake with {where}: {describe(exc)}",
            request=request,
        ) from exc
    except UnicodeError as exc:  # the name lookup's IDNA step (as over TCP)
        raise ConnectError(
            f"Failed while connecting to {where}: the host name cannot be looked up ({exc})",
            request=request,
        ) from exc
    except Exception as exc:  # aioquic failed in a way it should not: never let it out raw
        raise ConnectError(
            f"Failed during the QUIC handshake with {where}: internal error {exc!r}",
            request=request,
        ) from exc
    finally:
        if http is None or not http.handshake_done:
            if http is not None:
                http.close_now()
            elif sock is not None:
                sock.close()


class HTTP3Connection:
    """One QUIC connection carrying concurrent HTTP/3 requests."""

    def __init__(
        self,
        sock: DatagramSocket,
        configuration: QuicConfiguration,
        where: str,
        *,
        on_unusable: Callable[[], None],
    ) -> None:
        self.where = where
        self._on_unusable = on_unusable
        self._driver = QuicDriver(sock, configuration, self._on_event, self._on_socket_error)
        self._driver.extra_deadline = self._ping_deadline
        self._driver.on_extra_deadline = self._ping
        self._driver.on_received = self._on_received
        self._quic = self._driver.quic
        self._h3: H3Connection | None = None
        self._streams: dict[int, H3Stream] = {}
        self._control = _ControlWatcher()
        self._slots = trio.lowlevel.ParkingLot()  # requests waiting for MAX_STREAMS
        self._window = trio.lowlevel.ParkingLot()  # uploads waiting for ACKs
        self._pinged_for = -math.inf  # the `last_received` our keep-alive PING was sent for
        self.handshake_done = False
        self.capacity = 1  # streams the server allows at once (known after the handshake)
        self.closed_reason: str | None = None
        self.error: TransportError | None = None
        self.draining = False
        self.dropped = False

    # -- lifecycle ------------------------------------------------------------------------

    async def handshake(self, request: Request) -> None:
        """Pump the connection in this task until the handshake completes (or fails)."""
        driver = self._driver
        driver.connect()
        while not self.handshake_done:
            if self.error is not None:
                raise ConnectError(str(self.error), request=request)
            await driver.pump()
        # The pool's books take it from here (after they count the connection as connected).
        self.capacity = max(1, min(self._quic._remote_max_streams_bidi, MAX_STREAMS))

    def start(self, nursery: trio.Nursery) -> None:
        """Run the connection's task (datagrams, timers) in the client's nursery."""
        nursery.start_soon(self._driver.run)

    @property
    def is_usable(self) -> bool:
        """True while new streams may be started on this connection."""
        return self.error is None and not self.draining and self.closed_reason is None

    @property
    def is_closed(self) -> bool:
        """True once the UDP socket is closed."""
        return self._driver.closed

    def close_now(self, reason: str | None = None) -> None:
        """Send CONNECTION_CLOSE once and close the socket; every stream learns why."""
        if reason is not None and self.closed_reason is None:
            self.closed_reason = reason
        if self.error is None:
            self._fail(ReadError(f"The connection to {self.where} was closed."), notify=False)
        self._driver.send_close(ErrorCode.H3_NO_ERROR, "")
        self._driver.close()

    # -- used by request tasks ------------------------------------------------------------

    async def start_stream(
        self, request: Request, pool_deadline: float, deadlines: Deadlines
    ) -> H3Stream:
        """Open a request stream and send the request (headers, then the body)."""
        quic = self._quic
        while (
            quic.get_next_available_stream_id() // 4 >= quic._remote_max_streams_bidi
            or len(self._streams) >= MAX_STREAMS
        ):
            self._check_usable(request)
            with trio.move_on_at(pool_deadline):
                await self._slots.park()
                continue
            why = deadlines.why(pool_deadline, deadlines.timeout.pool)
            raise PoolTimeout(
                f"Timed out waiting for a stream slot on {self.where} ({why})", request=request
            )
        self._check_usable(request)
        assert self._h3 is not None
        h3 = self._h3
        headers = request_fields(request)  # before the stream exists: a refusal costs none
        stream_id = quic.get_next_available_stream_id()
        stream = H3Stream(stream_id)
        self._streams[stream_id] = stream
        quic.stream_credit[stream_id] = lambda limit: self._credit(stream, limit)
        if http3_logger.isEnabledFor(DEBUG):
            url = redact_url(request.url)
            http3_logger.debug(
                "HTTP/3 stream %d to %s: %s %s", stream_id, self.where, request.method, url
            )
        body = request._body
        h3.send_headers(stream_id, headers, end_stream=body == b"")
        self._driver.transmit()
        if body == b"":
            stream.request_done = True
            try:
                await trio.lowlevel.checkpoint()
            except BaseException:  # cancelled here: nobody else knows of the stream yet
                self.abandon(stream)
                raise
            return stream
        try:
            if isinstance(body, bytes):
                await self._send_data(stream, body, request, deadlines)
            else:
                await self._send_stream(stream, body, request, deadlines)
            if not stream.send_stopped:
                h3.send_data(stream_id, b"", end_stream=True)
                self._driver.transmit()
            stream.request_done = True
        except BaseException:
            self.abandon(stream)
            raise
        return stream

    async def receive_response_head(
        self, stream: H3Stream, request: Request, deadlines: Deadlines
    ) -> ResponseHead:
        """Wait for the response headers of `stream`."""
        while stream.head is None:
            if stream.error is not None:
                raise fresh_error(stream.error, request)
            await self.wait_stream(stream, request, deadlines)
        status = 0
        headers = []
        for name, value in stream.head:
            if name == b":status":
                status = int(value)  # aioquic checked it is three digits
            elif not name.startswith(b":"):
                headers.append((name, name, value))
        return ResponseHead(status, b"", headers, "HTTP/3")

    async def wait_stream(self, stream: H3Stream, request: Request, deadlines: Deadlines) -> None:
        """Wait for something to arrive for `stream`, bounded by the read timeout."""
        deadline = deadlines.read()
        if not await stream.wait(deadline):
            label = deadlines.why(deadline, deadlines.timeout.read, "data")
            raise ReadTimeout(
                f"Timed out reading the response from {self.where} ({label})", request=request
            )

    def consumed(self, stream: H3Stream, length: int) -> None:
        """The consumer took `length` body bytes; grant credit once a quarter window frees."""
        stream.unread -= length
        if self._limit(stream) - stream.advertised >= STREAM_WINDOW // 4 and self.error is None:
            self._driver.transmit()

    def abandon(self, stream: H3Stream) -> None:
        """The request is done with `stream`: stop and reset it if still open."""
        if self._streams.pop(stream.id, None) is None:
            return
        self._quic.stream_credit.pop(stream.id, None)
        if self.error is None and not (stream.ended and stream.request_done):
            code = ErrorCode.H3_REQUEST_CANCELLED
            try:
                if not stream.ended and stream.error is None:
                    self._quic.stop_stream(stream.id, code)
                if not stream.request_done and not stream.send_stopped:
                    self._quic.reset_stream(stream.id, code)
            except ValueError:  # pragma: no cover - aioquic already discarded the stream
                pass
            if http3_logger.isEnabledFor(DEBUG):
                http3_logger.debug(
                    "HTTP/3 stream %d to %s reset: H3_REQUEST_CANCELLED", stream.id, self.where
                )
            self._driver.transmit()
        self._slots.unpark()

    # -- flow control ---------------------------------------------------------------------

    def _limit(self, stream: H3Stream) -> int:
        """The receive limit `stream` deserves now: what was consumed, plus the window."""
        pending = 0
        h3 = self._h3
        if h3 is not None:
            partial = h3._stream.get(stream.id)  # an incomplete HEADERS frame it holds
            if partial is not None:
                pending = len(partial.buffer)
        return stream.received - stream.unread - pending + STREAM_WINDOW

    def _credit(self, stream: H3Stream, current: int) -> int:
        limit = self._limit(stream)
        if limit - current < STREAM_WINDOW // 4:
            return current  # not worth a frame yet
        stream.advertised = limit
        return limit

    # -- sending bodies -------------------------------------------------------------------

    async def _send_data(
        self, stream: H3Stream, data: bytes, request: Request, deadlines: Deadlines
    ) -> None:
        assert self._h3 is not None
        view = memoryview(data)
        while view and not stream.send_stopped:
            await self._room(stream, request, deadlines)
            if stream.send_stopped:
                break
            piece = view[:UPLOAD_PIECE]
            self._h3.send_data(stream.id, piece.tobytes(), end_stream=False)
            view = view[len(piece) :]
            self._driver.transmit()

    async def _send_stream(
        self,
        stream: H3Stream,
        body: AsyncIterable[bytes],
        request: Request,
        deadlines: Deadlines,
    ) -> None:
        iterator = aiter(body)
        try:
            while not stream.send_stopped:
                try:
                    chunk = await next_chunk(iterator)
                except StopAsyncIteration:
                    break
                await self._send_data(stream, bytes(checked_chunk(chunk)), request, deadlines)
        except BaseException:
            await close_abandoned(iterator)
            raise
        else:
            if stream.send_stopped:
                await close_abandoned(iterator)

    async def _room(self, stream: H3Stream, request: Request, deadlines: Deadlines) -> None:
        """Wait (bounded by the write timeout) until aioquic buffers little of this body."""
        await trio.lowlevel.checkpoint()
        while True:
            self._check_usable(request, draining_ok=True)
            if stream.error is not None:
                raise fresh_error(stream.error, request)
            quic_stream = self._quic._streams.get(stream.id)
            if quic_stream is None or len(quic_stream.sender._buffer) < UPLOAD_BUFFER:
                return
            deadline = deadlines.write()
            with trio.move_on_at(deadline):
                await self._window.park()
                continue
            why = deadlines.why(deadline, deadlines.timeout.write)
            if why != "total timeout":
                why = f"the server acknowledged none of the request body for {why}"
            raise WriteTimeout(
                f"Timed out sending the request to {self.where} ({why})", request=request
            )

    # -- events (run synchronously, from whichever task pumps) ---------------------------

    def _on_event(self, event: QuicEvent) -> None:
        try:
            self._handle(event)
        except Exception as exc:  # aioquic or pylsqpack choked: the connection is lost
            self._fail(
                RemoteProtocolError(f"HTTP/3 error on the connection to {self.where}: {exc!r}")
            )
            self._driver.send_close(ErrorCode.H3_INTERNAL_ERROR, "")
            self._driver.close()

    def _handle(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.received += len(event.data)
            elif event.stream_id % 4 == 3:  # a server-initiated unidirectional stream
                goaway = self._control.feed(event.stream_id, event.data)
                if self._control.error is not None:
                    self._h3_error(ErrorCode.H3_EXCESSIVE_LOAD, self._control.error)
                    return
                if goaway is not None:
                    self._goaway(goaway)
        elif isinstance(event, StopSendingReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.send_stopped = True
                self._window.unpark_all()
        elif isinstance(event, HandshakeCompleted):
            self._h3 = _ClientH3Connection(self._quic)
            self.handshake_done = True
            return
        elif isinstance(event, ConnectionTerminated):
            self._terminated(event)
            return
        h3 = self._h3
        if h3 is None:
            return
        for h3_event in h3.handle_event(event):
            self._dispatch(h3_event)
        if isinstance(event, StreamDataReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                partial = h3._stream.get(stream.id)
                if partial is not None and len(partial.buffer) > MAX_HEAD_SIZE:
                    self._stream_error(
                        stream, f"sent a header section over {MAX_HEAD_SIZE // 1024} KiB"
                    )
        elif isinstance(event, StreamReset):
            stream = self._streams.get(event.stream_id)
            if stream is not None and not stream.ended and stream.error is None:
                name = _code_name(event.error_code, application=True)
                stream.error = RemoteProtocolError(
                    f"The server {self.where} reset HTTP/3 stream {stream.id} ({name})"
                )
                if event.error_code == ErrorCode.H3_REQUEST_REJECTED and stream.head is None:
                    stream.error = RetryOnNewConnection(
                        f"{self.where} rejected HTTP/3 stream {stream.id}"
                    )
                stream.notify()
        if self._quic._close_event is not None and self.error is None:
            # aioquic's HTTP/3 layer found a protocol error and queued CONNECTION_CLOSE.
            close = self._quic._close_event
            self._h3_error(close.error_code, close.reason_phrase)

    def _dispatch(self, event: H3Event) -> None:
        if isinstance(event, DataReceived):
            stream = self._streams.get(event.stream_id)
            if stream is None or event.push_id is not None:
                return
            if event.data:
                stream.chunks.append((event.data, len(event.data)))
                stream.unread += len(event.data)
            if event.stream_ended:
                stream.ended = True
            stream.notify()
        elif isinstance(event, HeadersReceived):
            stream = self._streams.get(event.stream_id)
            if stream is None or event.push_id is not None:
                return
            size = sum(len(name) + len(value) for name, value in event.headers)
            if size > MAX_HEAD_SIZE:
                self._stream_error(
                    stream, f"sent a header section over {MAX_HEAD_SIZE // 1024} KiB"
                )
                return
            if stream.head is None:
                status = next((v for n, v in event.headers if n == b":status"), b"")
                if status.startswith(b"1"):
                    return  # an interim response (103 Early Hints...): the final one follows
                stream.head = event.headers
            else:
                stream.trailers = [(n, v) for n, v in event.headers if not n.startswith(b":")]
            if event.stream_ended:
                stream.ended = True
            stream.notify()

    def _stream_error(self, stream: H3Stream, what: str) -> None:
        if stream.error is None:
            stream.error = RemoteProtocolError(
                f"The server {self.where} {what} on HTTP/3 stream {stream.id}"
            )
            stream.notify()

    def _goaway(self, last: int) -> None:
        if http3_logger.isEnabledFor(DEBUG):
            http3_logger.debug("HTTP/3 GOAWAY from %s: stream id %d", self.where, last)
        self.draining = True
        for stream in self._streams.values():
            if stream.id >= last and stream.error is None and not stream.ended:
                stream.error = RetryOnNewConnection(
                    f"{self.where} sent GOAWAY before processing HTTP/3 stream {stream.id}"
                )
                stream.notify()
        self._slots.unpark_all()
        self._on_unusable()

    def _h3_error(self, code: int, reason: str) -> None:
        name = _code_name(code, application=True)
        said = f": {reason}" if reason else ""
        self._fail(
            RemoteProtocolError(
                f"HTTP/3 protocol error on the connection to {self.where} ({name}{said})"
            )
        )
        self._quic.close(error_code=code, reason_phrase=reason)
        self._driver.transmit()
        self._driver.close()

    def _terminated(self, event: ConnectionTerminated) -> None:
        if self.closed_reason is not None or self.error is not None:
            self._driver.close()
            return
        application = event.frame_type is None
        name = _code_name(event.error_code, application=application)
        reason = event.reason_phrase
        said = f": {reason}" if reason else ""
        if not self.handshake_done:
            if not application and 0x100 <= event.error_code < 0x200:
                alert = _alert_name(event.error_code - 0x100)
                what = f"TLS alert {alert}{said}"
            else:
                what = f"the connection was closed ({name}{said})"
            self._fail(ConnectError(f"Failed during the QUIC handshake with {self.where}: {what}"))
        elif reason == "Idle timeout" and event.error_code == QuicErrorCode.INTERNAL_ERROR:
            self.dropped = True
            self._fail(ReadError(f"The QUIC connection to {self.where} timed out (idle)"))
        else:
            self.dropped = True
            self._fail(
                RemoteProtocolError(
                    f"The server {self.where} closed the QUIC connection ({name}{said})"
                )
            )
        self._driver.close()

    def _on_socket_error(self, exc: Exception) -> None:
        """The UDP socket failed (ICMP unreachable...), or, for anything but an OSError,
        aioquic itself did: the connection is lost either way, and says why."""
        if self.closed_reason is not None:
            return
        self.dropped = self.handshake_done
        doing = "the QUIC handshake with" if not self.handshake_done else "talking to"
        kind: type[TransportError] = ConnectError if not self.handshake_done else ReadError
        why = describe(exc) if isinstance(exc, OSError) else f"internal error {exc!r}"
        self._fail(kind(f"Failed during {doing} {self.where}: {why}"))
        self._driver.close()

    def _fail(self, error: TransportError, *, notify: bool = True) -> None:
        """The connection is unusable: every unfinished stream fails with `error`."""
        if self.error is not None:
            return
        self.error = error
        for stream in self._streams.values():
            if stream.error is None and not (stream.ended and stream.head is not None):
                stream.error = error
            stream.notify()
        self._slots.unpark_all()
        self._window.unpark_all()
        if notify and self.handshake_done:
            self._on_unusable()

    def _on_received(self) -> None:
        """Datagrams arrived: ACKs may have freed upload room, MAX_STREAMS new streams."""
        if self._window:
            self._window.unpark_all()
        if self._slots:
            self._slots.unpark_all()

    # -- PING while streams wait ------------------------------------------------------------

    def _ping_deadline(self) -> float:
        if not self._streams or self._pinged_for == self._driver.last_received:
            return math.inf
        # aioquic's negotiated idle timeout (a private method: the smaller of both ends'
        # max_idle_timeout, and never under 3 PTOs).
        return self._driver.last_received + self._quic._idle_timeout() * PING_SHARE

    def _ping(self, now: float) -> None:
        self._pinged_for = self._driver.last_received
        self._quic.send_ping(0)

    # -- helpers --------------------------------------------------------------------------

    def _check_usable(self, request: Request, *, draining_ok: bool = False) -> None:
        if self.closed_reason is not None:
            raise ClientStateError(f"Cannot send a request: {self.closed_reason}.")
        if self.error is not None:
            raise fresh_error(self.error, request)
        if self.draining and not draining_ok:
            raise RetryOnNewConnection(f"{self.where} is going away", request=request)


class _ClientH3Connection(H3Connection):
    """aioquic's H3Connection without server push (we send no MAX_PUSH_ID)."""

    def _init_connection(self) -> None:
        self._max_push_id = None
        super()._init_connection()


class _ControlWatcher:
    """Reads the frame headers of the server's control stream, for GOAWAY (see the module
    docstring). Holds at most a frame header and a GOAWAY payload (a few bytes)."""

    def __init__(self) -> None:
        self._types: dict[int, bytearray] = {}  # uni streams whose type is still unknown
        self._control: int | None = None
        self._buffer = bytearray()
        self._skip = 0  # payload bytes of the current (uninteresting) frame still to skip
        self.error: str | None = None

    def feed(self, stream_id: int, data: bytes) -> int | None:
        """Take `data` of a server unidirectional stream; a GOAWAY's stream id, if one ended."""
        if self._control is None and stream_id not in self._types and len(self._types) > 8:
            return None  # not one of the few streams a server opens first
        if stream_id != self._control:
            if self._control is not None:
                return None
            pending = self._types.setdefault(stream_id, bytearray())
            pending += data
            parsed = _varint(pending)
            if parsed is None:
                if len(pending) >= 8:  # pragma: no cover - a varint is at most 8 bytes
                    del self._types[stream_id]
                return None
            stream_type, used = parsed
            del self._types[stream_id]
            if stream_type != 0x00:
                return None
            self._control = stream_id
            self._types.clear()
            data = bytes(pending[used:])
        return self._frames(data)

    def _frames(self, data: bytes) -> int | None:
        goaway = None
        buffer = self._buffer
        position, size_of_data = 0, len(data)
        while position < size_of_data:
            if self._skip:
                taken = min(self._skip, size_of_data - position)
                self._skip -= taken
                position += taken
                continue
            # Frame headers (and a GOAWAY's payload) byte by byte: a few bytes per frame.
            buffer.append(data[position])
            position += 1
            frame_type = _varint(buffer)
            length = None if frame_type is None else _varint(buffer, frame_type[1])
            if frame_type is None or length is None:
                continue
            size, header_end = length
            if frame_type[0] == 0x07:  # GOAWAY: one varint, the stream id
                if size > 8:
                    self.error = f"a GOAWAY frame of {size} bytes"
                    return None
                if len(buffer) < header_end + size:
                    continue
                parsed = _varint(buffer, header_end)
                if parsed is not None and parsed[1] == header_end + size:
                    goaway = parsed[0]
            elif frame_type[0] in (0x04, 0x0D) and size > MAX_CONTROL_FRAME:
                self.error = f"a control frame of {size} bytes"  # SETTINGS, MAX_PUSH_ID
                return None
            else:
                self._skip = size
            buffer.clear()
        return goaway


def _varint(data: bytes | bytearray, offset: int = 0) -> tuple[int, int] | None:
    """A QUIC variable-length integer at `offset`: (value, offset after it), or None."""
    if len(data) <= offset:
        return None
    first = data[offset]
    length = 1 << (first >> 6)
    if len(data) < offset + length:
        return None
    value = first & 0x3F
    for byte in data[offset + 1 : offset + length]:
        value = (value << 8) | byte
    return value, offset + length


def _code_name(code: int, *, application: bool) -> str:
    if application:
        try:
            return ErrorCode(code).name
        except ValueError:
            return f"error 0x{code:x}"
    try:
        return QuicErrorCode(code).name
    except ValueError:
        if 0x100 <= code < 0x200:
            return f"CRYPTO_ERROR {_alert_name(code - 0x100)}"
        return f"error 0x{code:x}"


def _alert_name(alert: int) -> str:
    try:
        return AlertDescription(alert).name
    except ValueError:
        return f"alert {alert}"

"""HTTP/2 over one byte stream: a sans-I/O `h2.H2Connection` driven by two tasks.

Theory of operation
-------------------
Each connection has a reader task and a writer task, both in the client's nursery (as
njsmith argued in httpx #258, HTTP/2 needs someone reading at all times: PINGs, SETTINGS,
WINDOW_UPDATEs and other streams' data arrive whether or not a given request is waiting).
The reader feeds every frame to h2 and routes the events to per-stream `H2Stream` objects.
The writer is the only code that writes to the socket: request tasks change h2's state
synchronously (headers, data, resets, window credit) and then just wake the writer. So a
request task is never cancelled half-way through a socket write, which would corrupt the
framing for every sibling stream; cancelling a request only ever costs a RST_STREAM.

Flow control: every stream's receive window is STREAM_WINDOW, so a stream buffers at most
that much unread data; credit goes back to the server only as the consumer reads (back-
pressure). The connection window is much larger, so one slow consumer cannot stall its
siblings. Uploads respect the server's windows; one WINDOW_UPDATE wakes every sender
waiting for credit (a ParkingLot, `unpark_all`).

A reused connection that dies (EOF, reset, I/O error: `dropped`) before a stream got any
response frame is stale, as in HTTP/1.1: `Connection.exchange` raises `StaleConnection`
and the pool resends an idempotent request once, on a new connection.

GOAWAY: the connection takes no new streams. Streams the server never processed (above
`last_stream_id`) fail with `RetryOnNewConnection` and the pool resends them on a new
connection; the others finish, and the connection closes once idle. h2 moves its state
machine to CLOSED on any GOAWAY, and then refuses the remaining frames of the streams that
are allowed to finish, even later frames of the same `receive_data()` call (nginx sends
GOAWAY and its last response in one write). So each connection's state machine gets a
transition table in which receiving GOAWAY keeps it open; our `draining` flag is what
stops new streams. This reaches into h2's private `_transitions` (tested against nginx).

KeyboardInterrupt: Trio raises it in whatever task is running when Ctrl-C arrives, unless
that code is KI-protected; in a big download that is often the reader, parsing frames. A
KeyboardInterrupt escaping the reader or writer would cancel the client's nursery and leave
`async with Client()` wrapped in an ExceptionGroup. So both run KI-protected, like Trio's
own system tasks: Trio then delivers the interrupt to the main task at its next checkpoint,
the request fails there like any interrupted request, and the exception comes out bare.

Rejected: the whoever-holds-the-lock-reads design (httpcore), which needs a request to be
waiting for anything to be read and lets the pool's stream count drift from h2's (#1022).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import trio
from h2.utilities import HeaderValidationFlags, validate_outbound_headers

from .._config import Deadlines
from .._exceptions import (
    ClientStateError,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
    WriteError,
    WriteTimeout,
)
from .._logs import DEBUG, http2_logger, redact_url
from ._base import ResponseHead
from ._body import checked_chunk, close_abandoned, next_chunk
from ._connect import close_stream_now
from ._errors import IO_ERRORS, fresh_error, translate
from ._h2_stream import H2Stream
from ._sockio import TLSIO, SocketIO

if TYPE_CHECKING:
    from collections.abc import AsyncIterable

    from .._request import Request

__all__ = ["HTTP2Connection", "RetryOnNewConnection", "request_fields"]

READ_SIZE = 64 * 1024
WRITE_SLICE = 64 * 1024  # the unit of socket progress that restarts the write timeout
STREAM_WINDOW = 1024 * 1024
CONNECTION_WINDOW = 16 * 1024 * 1024
MAX_STREAMS = 1000  # our own ceiling, whatever the server allows
MAX_HEAD_SIZE = 100 * 1024
MERGE_BELOW = 16 * 1024  # unread body pieces smaller than this take the next frame in
# What h2 may hold for the socket before the reader stops reading and senders wait: h2
# answers every PING and SETTINGS on its own, so a server that floods them and never reads
# would otherwise grow that queue without end (and a server granting a huge window would
# let an upload queue its whole body there).
OUTBOUND_LIMIT = 1024 * 1024
# How long a stream slot waits for the PING ACK that confirms our resets (see _count_reset)
# before the connection is retired as one whose server may count them forever.
RESET_ACK_PATIENCE = 10.0
# h2's connection transitions, except that a received GOAWAY leaves the connection open.
_TRANSITIONS = {
    **h2.connection.H2ConnectionStateMachine._transitions,
    (h2.connection.ConnectionState.CLIENT_OPEN, h2.connection.ConnectionInputs.RECV_GOAWAY): (
        None,
        h2.connection.ConnectionState.CLIENT_OPEN,
    ),
}
# Why h2 resets a stream on its own (StreamReset with remote_reset=False).
_LOCAL_RESETS: dict[int | None, str] = {
    h2.errors.ErrorCodes.FLOW_CONTROL_ERROR: (
        "the server's WINDOW_UPDATE overflowed the stream's flow-control window"
    ),
    h2.errors.ErrorCodes.STREAM_CLOSED: "the server sent frames on a stream already closed",
}
_RESET_PING = b"trio-rst"  # PING payload whose ACK confirms our RST_STREAMs
_SKIP = frozenset(
    {b"host", b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)


class RetryOnNewConnection(TransportError):
    """Internal: the server did not process this stream (GOAWAY, REFUSED_STREAM)."""

    def as_remote_error(
        self, request: Request, attempts: int, connections: int
    ) -> RemoteProtocolError:
        """What the caller sees when the retries ran out (or none was allowed): how many
        attempts were made and on how many distinct connections."""
        if attempts == 1:
            said = f"{self} (not retried: the request body cannot be sent again)"
        elif connections == 1:
            said = f"{self}; gave up after {attempts} attempts, all on one connection"
        else:
            said = f"{self}; gave up after {attempts} attempts on {connections} connections"
        return RemoteProtocolError(said, request=request)


class HTTP2Connection:
    """One HTTP/2 connection shared by many concurrent requests."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        where: str,
        *,
        on_capacity: Callable[[int], None],
        on_unusable: Callable[[], None],
        write_timeout: float | None,
        ping_interval: float | None = None,
    ) -> None:
        self._stream = stream
        # Trio sockets (and TLS over them) skip Trio's stream layers (see _sockio.py); only
        # the writer task writes, so a TLS read leaves what OpenSSL produced to the writer.
        self._io = SocketIO.for_stream(stream)
        if isinstance(self._io, TLSIO):
            self._io.reader_writes = False
        self.where = where
        self._on_capacity = on_capacity
        self._on_unusable = on_unusable
        self._write_timeout = write_timeout
        self._ping_interval = ping_interval
        # We validate request headers ourselves, before h2 sees them (see start_stream).
        config = h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=False
        )
        self._h2 = h2.connection.H2Connection(config=config)
        self._h2.state_machine._transitions = _TRANSITIONS  # see the module docstring
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEAD_SIZE,
            },
        )
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self._streams: dict[int, H2Stream] = {}
        self._window = trio.lowlevel.ParkingLot()  # senders waiting for flow-control credit
        self._slots = trio.lowlevel.ParkingLot()  # senders waiting for a stream slot
        self._drained = trio.lowlevel.ParkingLot()  # waiting for h2's queue to go out
        self._writer_wakeup: trio.Event | None = None
        # Write timeouts of the requests with a body, per stream id (see _write_bound).
        self._uploads: dict[int, float | None] = {}
        self._deadline_bound = 0.0  # the write bound of the last deadline (_write_deadline)
        # Streams we reset that the server may still count as open (see _count_reset).
        self._resets_pending = 0
        self._resets_covered = 0  # how many of them the PING in flight will confirm
        self._reset_ping_sent = 0.0  # when that PING was queued
        self._last_received = 0.0
        self._keepalive_for = -math.inf  # the _last_received our keepalive PING was sent for
        self.closed_reason: str | None = None
        self.error: TransportError | None = None  # set once the connection is unusable
        self.draining = False  # GOAWAY received: no new streams
        self.dropped = False  # the connection died under us (EOF, reset, I/O error)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, nursery: trio.Nursery) -> None:
        """Start the reader and writer tasks; the connection preface goes out at once."""
        self._last_received = trio.current_time()
        nursery.start_soon(self._read_loop)
        nursery.start_soon(self._write_loop)

    @property
    def is_usable(self) -> bool:
        """True while new streams may be started on this connection."""
        return self.error is None and not self.draining and self.closed_reason is None

    def close_now(self, reason: str | None = None) -> None:
        """Close the socket at once; every waiting stream learns why. Never awaits."""
        if reason is not None and self.closed_reason is None:
            self.closed_reason = reason
        if self.error is None:
            self._fail(ReadError(f"The connection to {self.where} was closed."), notify=False)
        close_stream_now(self._stream)
        self._want_write()

    # -- used by request tasks ------------------------------------------------------------

    async def start_stream(
        self, request: Request, pool_deadline: float, deadlines: Deadlines
    ) -> H2Stream:
        """Open a stream and send the request (headers, then body within the windows)."""
        conn = self._h2
        # h2's count of open streams walks all of them (O(streams) per request), and the
        # ones it counts are among ours (`_streams`) while the connection is usable: when
        # even ours fit, so do h2's, and the walk is skipped.
        limit = min(conn.remote_settings.max_concurrent_streams, MAX_STREAMS)
        while (
            len(self._streams) + self._resets_pending >= limit
            and conn.open_outbound_streams + self._resets_pending >= limit
        ):
            # The server lowered its limit below what the pool granted, or streams we reset
            # still count on its side (see _count_reset): wait for a slot.
            self._check_usable(request)
            deadline = pool_deadline
            if self._resets_covered:  # a PING confirming resets is in flight
                deadline = min(deadline, self._reset_ping_sent + RESET_ACK_PATIENCE)
            with trio.move_on_at(deadline):
                await self._slots.park()
                limit = min(conn.remote_settings.max_concurrent_streams, MAX_STREAMS)
                continue
            if trio.current_time() >= pool_deadline:
                # The pool timeout (or the total) ran out: that is final, not a reason to
                # resend on what may be this same connection again.
                why = deadlines.why(pool_deadline, deadlines.timeout.pool)
                raise PoolTimeout(
                    f"Timed out waiting for a stream slot on {self.where} ({why})",
                    request=request,
                )
            # Unanswered: the resets may count on the server's side forever. Retire the
            # connection (its open streams finish) rather than starve on it.
            if not self.draining:
                self._take_no_new_streams()
            raise RetryOnNewConnection(
                f"{self.where} left a PING unanswered for {RESET_ACK_PATIENCE:g} s",
                request=request,
            )
        self._check_usable(request)
        headers = request_fields(request)
        body = request._body
        try:
            stream_id = conn.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            # 2**30 streams on one connection: it can take no more; open another.
            self._take_no_new_streams()
            raise RetryOnNewConnection(
                f"{self.where} has no stream id left", request=request
            ) from None
        stream = H2Stream(stream_id)
        self._streams[stream.id] = stream
        if http2_logger.isEnabledFor(DEBUG):
            url = redact_url(request.url)
            http2_logger.debug("stream %d to %s: %s %s", stream_id, self.where, request.method, url)
        try:
            conn.send_headers(stream.id, headers, end_stream=body == b"")
        except h2.exceptions.H2Error as exc:
            # Unexpected after the check above, and h2's state is now in doubt: no new
            # streams on this connection; those already open may finish.
            del self._streams[stream.id]
            self._take_no_new_streams()
            raise translate(exc, WriteError, "", request=request) from exc
        self._want_write()
        if body == b"":
            stream.request_done = True
            return stream
        self._uploads[stream.id] = deadlines.timeout.write
        try:
            if isinstance(body, bytes):
                await self._send_data(stream, body, request, deadlines)
            else:
                await self._send_stream(stream, body, request, deadlines)
            conn.end_stream(stream.id)
            stream.request_done = True
            self._want_write()
        except h2.exceptions.StreamClosedError:
            pass  # the server answered (and reset) early: its response is what counts
        except h2.exceptions.H2Error as exc:
            error = self._stream_error(stream, request, exc)
            self.abandon(stream)
            raise error from exc
        except BaseException:
            # Cancelled, a timeout or KeyboardInterrupt waiting for credit, the connection
            # failing, the body iterator raising: the caller never gets the stream, so give
            # it up here (RST_STREAM, its table entry, h2's count of open streams).
            self.abandon(stream)
            raise
        return stream

    async def receive_response_head(
        self, stream: H2Stream, request: Request, deadlines: Deadlines
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
                # h2 checks that :status is there, not what it says.
                if len(value) != 3 or not value.isdigit():
                    raise RemoteProtocolError(
                        f"The server {self.where} sent an invalid :status {value[:20]!r}",
                        request=request,
                    )
                status = int(value)
            elif not name.startswith(b":"):
                headers.append((name, name, value))  # HTTP/2 names are lowercase already
        return ResponseHead(status, b"", headers, "HTTP/2")

    async def wait_stream(self, stream: H2Stream, request: Request, deadlines: Deadlines) -> None:
        """Wait for the reader to deliver something for `stream`."""
        deadline = deadlines.read()
        if not await stream.wait(deadline):
            label = deadlines.why(deadline, deadlines.timeout.read, "data")
            raise ReadTimeout(
                f"Timed out reading the response from {self.where} ({label})", request=request
            )

    def consumed(self, stream: H2Stream, flow_length: int) -> None:
        """The consumer took `flow_length` bytes: hand the credit back to the server."""
        stream.unacked -= flow_length
        if flow_length and self.error is None:
            try:
                self._h2.acknowledge_received_data(flow_length, stream.id)
            except h2.exceptions.H2Error:  # pragma: no cover - the stream is gone already
                return
            self._want_write()

    def abandon(self, stream: H2Stream) -> None:
        """The request is done with `stream`: reset it if still open, return its credit."""
        if self._streams.pop(stream.id, None) is None:
            return
        if self._uploads:
            self._uploads.pop(stream.id, None)
        if self.error is None:
            conn = self._h2
            if not (stream.ended and stream.request_done) and stream.error is None:
                try:
                    conn.reset_stream(stream.id, h2.errors.ErrorCodes.CANCEL)
                except h2.exceptions.H2Error:
                    pass  # h2 already considers it closed
                else:
                    self._count_reset()
                    if http2_logger.isEnabledFor(DEBUG):
                        http2_logger.debug("stream %d to %s reset: CANCEL", stream.id, self.where)
            if stream.unacked:
                try:
                    conn.acknowledge_received_data(stream.unacked, stream.id)
                except h2.exceptions.H2Error:  # pragma: no cover
                    pass
                stream.unacked = 0
            self._want_write()
        self._slots.unpark()

    # -- sending bodies -------------------------------------------------------------------

    async def _send_data(
        self,
        stream: H2Stream,
        data: bytes,
        request: Request,
        deadlines: Deadlines,
    ) -> None:
        view = memoryview(data)
        while view:
            if self._queued() > OUTBOUND_LIMIT:
                await self._wait_drained(stream, request, deadlines)
            window = await self._credit(stream, request, deadlines)
            size = min(window, self._h2.max_outbound_frame_size, len(view))
            self._h2.send_data(stream.id, view[:size].tobytes())
            view = view[size:]
            self._want_write()

    async def _send_stream(
        self,
        stream: H2Stream,
        body: AsyncIterable[bytes],
        request: Request,
        deadlines: Deadlines,
    ) -> None:
        iterator = aiter(body)
        try:
            while True:
                try:
                    chunk = await next_chunk(iterator)
                except StopAsyncIteration:
                    break
                data = bytes(checked_chunk(chunk))
                await self._send_data(stream, data, request, deadlines)
        except BaseException:
            await close_abandoned(iterator)
            raise

    def _queued(self) -> int:
        """Bytes h2 holds for the writer (h2 has no public way to ask)."""
        return len(self._h2._data_to_send)

    async def _wait_drained(self, stream: H2Stream, request: Request, deadlines: Deadlines) -> None:
        """Wait (bounded by the write timeout) until h2's queue is below OUTBOUND_LIMIT."""
        while self._queued() > OUTBOUND_LIMIT:
            self._check_usable(request, draining_ok=True)
            if stream.error is not None:
                raise fresh_error(stream.error, request)
            deadline = deadlines.write()
            with trio.move_on_at(deadline):
                await self._drained.park()
                continue
            why = deadlines.why(deadline, deadlines.timeout.write)
            if why != "total timeout" and self.error is None:
                # Nothing left the queue for the write timeout: the socket took nothing,
                # so the whole connection is stalled (as the writer would find), not this
                # stream alone; it must not go back to the pool as reusable.
                self._stalled(deadlines.timeout.write or 0.0)
            raise WriteTimeout(
                f"Timed out sending the request to {self.where} ({why})", request=request
            )

    async def _credit(self, stream: H2Stream, request: Request, deadlines: Deadlines) -> int:
        """Flow-control credit for `stream`, waiting (bounded) for a WINDOW_UPDATE."""
        while True:
            self._check_usable(request, draining_ok=True)
            if stream.error is not None:
                raise fresh_error(stream.error, request)
            window = self._h2.local_flow_control_window(stream.id)
            if window > 0:
                return window
            deadline = deadlines.write()
            with trio.move_on_at(deadline):
                await self._window.park()
                continue
            why = deadlines.why(deadline, deadlines.timeout.write)
            if why != "total timeout":
                why = f"the server granted no flow-control window for {why}"
            raise WriteTimeout(
                f"Timed out sending the request to {self.where} ({why})", request=request
            )

    # -- the reader task ------------------------------------------------------------------

    @trio.lowlevel.enable_ki_protection
    async def _read_loop(self) -> None:
        try:
            io = self._io
            data: bytes | bytearray
            while self.error is None:
                try:
                    if io is not None:
                        data = await io.receive_some(READ_SIZE, math.inf) or b""
                    else:
                        data = await self._stream.receive_some(READ_SIZE)
                except IO_ERRORS as exc:
                    self.dropped = self.error is None and self.closed_reason is None
                    self._fail_from(exc, ReadError, f"reading from {self.where}")
                    return
                if not data:
                    self.dropped = self.error is None
                    self._fail(RemoteProtocolError(f"Server {self.where} closed the connection."))
                    return
                self._last_received = trio.current_time()
                try:
                    events = self._h2.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    self._want_write()  # h2 queued a GOAWAY for the server
                    self._fail_from(exc, ReadError, f"reading from {self.where}")
                    return
                for event in events:
                    self._dispatch(event)
                self._want_write()
                # Backpressure on a server that sends faster than it reads our answers.
                while self._queued() > OUTBOUND_LIMIT and self.error is None:
                    await self._drained.park()
        except Exception as exc:  # pragma: no cover - a bug must not crash the client
            self._fail(RemoteProtocolError(f"Internal error on {self.where}: {exc!r}"))

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            stream = self._streams.get(event.stream_id)
            length = event.flow_controlled_length or 0
            if stream is None:  # already abandoned: just hand the credit back
                if length:
                    self._h2.acknowledge_received_data(length, event.stream_id)
                return
            if event.data:
                chunks = stream.chunks
                if chunks and len(chunks[-1][0]) < MERGE_BELOW:
                    # Flow control bounds the bytes a stream buffers, not the frames: an
                    # unread run of tiny frames is merged into one piece (a tuple and an
                    # object per frame would cost ~120 bytes per body byte). A reader that
                    # keeps up finds the deque empty and never pays for this.
                    last, last_length = chunks[-1]
                    merged = last if isinstance(last, bytearray) else bytearray(last)
                    merged += event.data
                    chunks[-1] = (merged, last_length + length)
                else:
                    chunks.append((event.data, length))
                stream.unacked += length
            else:
                # No body byte (an empty or padding-only frame): not progress, so the
                # waiting reader is not woken and its read deadline keeps running.
                if length:
                    self._h2.acknowledge_received_data(length, event.stream_id)
                if event.stream_ended is None:
                    return
            if event.stream_ended is not None:
                stream.ended = True
            stream.notify()
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.head = event.headers
                stream.ended = event.stream_ended is not None
                stream.notify()
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.trailers = event.headers
                stream.ended = True
                stream.notify()
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.ended = True
                stream.notify()
        elif isinstance(event, h2.events.StreamReset):
            if http2_logger.isEnabledFor(DEBUG):
                by = self.where if event.remote_reset else "the client (protocol error)"
                code = getattr(event.error_code, "name", event.error_code)
                http2_logger.debug("stream %d reset by %s: %s", event.stream_id, by, code)
            stream = self._streams.get(event.stream_id)
            if stream is not None and not stream.ended:
                stream.error = self._reset_error(event)
                stream.notify()
            if event.remote_reset:
                self._slots.unpark()
            elif stream is not None:
                self._count_reset()  # h2 sent RST_STREAM on an open stream of ours
        elif isinstance(event, h2.events.PingAckReceived):
            if event.ping_data == _RESET_PING and self._resets_covered:
                self._resets_confirmed()
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self._window.unpark_all()
            if isinstance(event, h2.events.RemoteSettingsChanged):
                limit = self._h2.remote_settings.max_concurrent_streams
                self._on_capacity(max(1, min(limit, MAX_STREAMS)))
                self._slots.unpark_all()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event)

    def _reset_error(self, event: h2.events.StreamReset) -> TransportError:
        code = event.error_code
        if code == h2.errors.ErrorCodes.REFUSED_STREAM:
            return RetryOnNewConnection(f"{self.where} refused stream {event.stream_id}")
        name = getattr(code, "name", str(code))
        if not event.remote_reset:
            # h2 reset the stream itself (RST_STREAM from us) because of what the server sent.
            why = _LOCAL_RESETS.get(code, "the server broke the HTTP/2 protocol on it")
            return RemoteProtocolError(
                f"The client reset stream {event.stream_id} to {self.where} ({name}): {why}"
            )
        return RemoteProtocolError(
            f"The server {self.where} reset stream {event.stream_id} ({name})"
        )

    # -- reset streams still counted by the server ------------------------------------------
    #
    # h2 (and the pool) free a stream's slot the moment we queue RST_STREAM, but the server
    # counts the stream as open until it has *processed* that frame, and nginx until it has
    # also flushed what it had queued for the stream. Opening a new stream in that slot at
    # once makes a storm of cancellations exceed the server's SETTINGS_MAX_CONCURRENT_STREAMS
    # on its side: nginx answers "concurrent streams exceeded" with REFUSED_STREAM and, past
    # max(128, 100) refusals, "client sent too many refused streams" and closes the
    # connection (its CVE-2023-44487 rapid-reset defence). So a stream we reset keeps
    # counting against the server's limit until the server acknowledges a PING sent after
    # the RST_STREAM: frames are processed in order, and nginx writes its PING ACK in the same
    # pass as the frames it had queued for the reset streams. One PING covers every reset
    # queued before it; at most one is in flight (the rule Go's HTTP/2 client adopted). A
    # server that leaves that PING unanswered for RESET_ACK_PATIENCE while a request waits
    # for a slot gets no new streams: the request goes to another connection.

    def _count_reset(self) -> None:
        """We queued RST_STREAM on an open stream: it counts until a PING ACK."""
        self._resets_pending += 1
        if not self._resets_covered:
            self._ping_for_resets()

    def _ping_for_resets(self) -> None:
        self._resets_covered = self._resets_pending
        self._reset_ping_sent = trio.current_time()
        self._h2.ping(_RESET_PING)
        self._want_write()

    def _resets_confirmed(self) -> None:
        """The server acknowledged the PING: it has processed the resets queued before it."""
        self._resets_pending -= self._resets_covered
        self._resets_covered = 0
        if self._resets_pending:
            self._ping_for_resets()  # resets queued after that PING
        self._slots.unpark_all()

    def _take_no_new_streams(self) -> None:
        """Our own reason to retire the connection: open streams finish, then it closes."""
        self.draining = True
        self._slots.unpark_all()  # requests waiting for a slot go to another connection
        self._on_unusable()

    def _goaway(self, event: h2.events.ConnectionTerminated) -> None:
        last = event.last_stream_id or 0
        code = event.error_code
        name = getattr(code, "name", str(code))
        if http2_logger.isEnabledFor(DEBUG):
            http2_logger.debug("GOAWAY from %s: %s, last stream %d", self.where, name, last)
        self.draining = True
        self._slots.unpark_all()  # waiting for a slot here is over: see _check_usable
        for stream in list(self._streams.values()):
            if stream.id > last:
                stream.error = RetryOnNewConnection(
                    f"{self.where} sent GOAWAY before processing stream {stream.id}"
                )
                stream.notify()
        if code != h2.errors.ErrorCodes.NO_ERROR:
            self._fail(RemoteProtocolError(f"The server {self.where} sent GOAWAY ({name})"))
            return
        self._on_unusable()  # the streams the server did accept may finish

    def _fail_from(self, exc: BaseException, kind: type[TransportError], doing: str) -> None:
        if self.closed_reason is not None:
            return  # we closed it on purpose; close_now already told every stream
        error = translate(exc, kind, doing, request=None)
        self._fail(error if isinstance(error, TransportError) else kind(str(error)))

    def _fail(self, error: TransportError, *, notify: bool = True) -> None:
        """The connection is unusable: every open stream fails with `error`."""
        if self.error is not None:
            return
        self.error = error
        for stream in self._streams.values():
            if stream.error is None and not (stream.ended and stream.head is not None):
                stream.error = error
            stream.notify()
        self._window.unpark_all()
        self._slots.unpark_all()
        self._drained.unpark_all()
        self._want_write()
        if notify:
            self._on_unusable()

    # -- the writer task ------------------------------------------------------------------

    def _want_write(self) -> None:
        wakeup = self._writer_wakeup
        if wakeup is not None:
            self._writer_wakeup = None
            wakeup.set()

    @trio.lowlevel.enable_ki_protection
    async def _write_loop(self) -> None:
        conn = self._h2
        try:
            io = self._io
            while True:
                data = conn.data_to_send()
                if not data and (io is None or not io.pending_out()):
                    if self.error is not None:
                        return
                    self._writer_wakeup = wakeup = trio.Event()
                    with trio.move_on_at(self._ping_deadline()):
                        await wakeup.wait()
                        continue
                    self._ping_or_give_up()
                    continue
                if self.closed_reason is not None:
                    return
                try:
                    if not await self._send(data):
                        return
                    self._drained.unpark_all()
                except IO_ERRORS as exc:
                    self.dropped = self.error is None and self.closed_reason is None
                    self._fail_from(exc, WriteError, f"writing to {self.where}")
                    return
        except Exception as exc:  # pragma: no cover - a bug must not crash the client
            self._fail(RemoteProtocolError(f"Internal error on {self.where}: {exc!r}"))

    async def _send(self, data: bytes) -> bool:
        """Write `data` in slices, each under a fresh deadline, so the write timeout bounds
        a silence of the socket (no byte accepted), not the time it takes to drain all that
        h2 queued. False: the socket stalled and the connection has failed."""
        if self._io is not None:
            if await self._io.send_until(data, self._write_deadline):
                return True
            self._stalled(self._deadline_bound)
            return False
        view = memoryview(data) if len(data) > WRITE_SLICE else data
        for start in range(0, len(data), WRITE_SLICE):
            bound = self._write_bound()
            if bound is None:
                await self._stream.send_all(view[start : start + WRITE_SLICE])
                continue
            with trio.move_on_after(bound):
                await self._stream.send_all(view[start : start + WRITE_SLICE])
                continue
            self._stalled(bound)
            return False
        return True

    def _write_deadline(self) -> float:
        """When a socket that takes nothing from now on has stalled (see _send)."""
        bound = self._write_bound()
        if bound is None:
            return math.inf
        self._deadline_bound = bound  # for the message, should this deadline pass
        return trio.current_time() + bound

    def _stalled(self, bound: float) -> None:
        """The socket took nothing for `bound` seconds: every stream on it is stalled."""
        self._fail(
            WriteTimeout(f"Timed out writing to {self.where} (no byte accepted for {bound:g} s)")
        )
        close_stream_now(self._stream)

    def _write_bound(self) -> float | None:
        """How long the socket may accept nothing: the client's write timeout, or the longest
        one among requests still sending or holding a stream with a body (None: unbounded).
        A request's own (shorter) write timeout bounds its waits for flow-control credit."""
        bound = self._write_timeout
        for seconds in self._uploads.values():
            if seconds is None or bound is None:
                return None
            if seconds > bound:
                bound = seconds
        return bound

    def _ping_deadline(self) -> float:
        interval = self._ping_interval
        if interval is None:
            return math.inf
        if self._keepalive_for == self._last_received:
            # This silence already got its PING: next stop, giving up (not another PING).
            return self._last_received + 2 * interval
        return self._last_received + interval

    def _ping_or_give_up(self) -> None:
        interval = self._ping_interval
        assert interval is not None
        silent = trio.current_time() - self._last_received
        if silent >= 2 * interval:
            self._fail(ReadError(f"{self.where} did not answer a PING within {interval:g} s"))
            close_stream_now(self._stream)
            return
        self._keepalive_for = self._last_received
        self._h2.ping(b"trioclnt")

    # -- helpers --------------------------------------------------------------------------

    def _check_usable(self, request: Request, *, draining_ok: bool = False) -> None:
        if self.closed_reason is not None:
            raise ClientStateError(f"Cannot send a request: {self.closed_reason}.")
        if self.error is not None:
            raise fresh_error(self.error, request)
        if self.draining and not draining_ok:
            raise RetryOnNewConnection(f"{self.where} is going away", request=request)

    def _stream_error(self, stream: H2Stream, request: Request, exc: Exception) -> TransportError:
        if stream.error is not None:
            return fresh_error(stream.error, request)
        return RemoteProtocolError(
            f"HTTP/2 error on stream {stream.id} to {self.where}: {exc}", request=request
        )


_REQUEST_FLAGS = HeaderValidationFlags(
    is_client=True, is_trailer=False, is_response_header=False, is_push_promise=False
)


def request_fields(request: Request) -> list[tuple[bytes, bytes]]:
    """The request's header fields for HTTP/2 and HTTP/3: pseudo-headers first, no
    connection-specific fields, validated as h2 validates them.

    Validated before a stream exists: h2 validates while it encodes, so a refusal there
    would leave the stream counted as open and HPACK entries the server never saw.
    """
    try:
        return list(validate_outbound_headers(_fields(request), _REQUEST_FLAGS))
    except h2.exceptions.H2Error as exc:
        raise translate(exc, WriteError, "", request=request) from None


def _fields(request: Request) -> list[tuple[bytes, bytes]]:
    url = request.url
    authority = url.netloc
    headers = []
    for _, lower, value in request.headers._list:
        if lower in _SKIP:
            if lower == b"host":
                authority = value
            continue
        if lower == b"te" and value.lower() != b"trailers":
            continue
        headers.append((lower, value))
    return [
        (b":method", request._method_bytes),
        (b":authority", authority),
        (b":scheme", url.scheme.encode("ascii")),
        (b":path", url._target),
        *headers,
    ]

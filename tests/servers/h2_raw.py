"""Raw HTTP/2 peers built on the sans-I/O ``h2`` library, run inside a test's own Trio run.

Theory of operation: :func:`serve_h2` listens on 127.0.0.1 port 0 in the caller's nursery
(cancel that nursery to stop it). Every accepted connection gets a fresh handler from
``handler_factory()`` and an :class:`H2ServerConnection` that runs a reader loop: bytes from
the client are recorded frame by frame (:class:`servers.h2_record.ConnectionRecord`, the base
class of :class:`H2ServerConnection`) and fed to h2, whose events fill in
:attr:`~servers.h2_record.ConnectionRecord.requests` and start the handler's hooks. Each hook
runs in its own task, so a hook may block (wait for the client's flow-control window, sleep,
stall) without stopping the reader. The handler acts
through ``self.conn`` (:class:`H2ServerConnection`): ``send_response``, ``send_data`` (waits
for window), ``send_trailers``, ``reset_stream``, ``send_goaway``, ``ping``,
``update_settings``, ``pause_reading``, ``abort``, ``send_raw``, ``corked`` (one write).

Choices worth knowing:

* The server preface is one SETTINGS frame with h2's defaults plus the handler's and the
  ``settings`` argument's values. h2 applies them to its own (inbound) accounting only when
  the client ACKs them, as RFC 9113 allows, so a client that sends a request and body before
  it has read the server's SETTINGS is not punished for using the default window.
* GOAWAY is serialized by hand (``send_goaway``) instead of ``H2Connection.close_connection``,
  which would move h2 to CLOSED and make every later client frame a protocol error. So the
  server can still finish the streams at or below ``last_stream_id``; requests above it are
  recorded with ``ignored=True`` and never reach the handler.
* Errors a misbehaving *client* can cause (broken or closed streams, OSError, TLS errors, h2
  errors) are swallowed and kept in :attr:`H2ServerConnection.errors` (handler tasks) or
  :attr:`H2ServerConnection.protocol_error` (h2 rejected the client's bytes: h2's GOAWAY is
  sent, then input is drained and recorded until the client closes). Anything else from a
  handler is a bug in the test and propagates into the caller's nursery.
* The server never closes first unless asked (``close``/``abort``): closing a TCP socket with
  unread input makes Linux send RST, which can destroy frames the client has not read yet.
  A connection ends when the client closes it (its pending hooks are cancelled then), when a
  handler calls ``close``/``abort``, or when the caller's nursery is cancelled; the socket is
  always closed.

Typical use::

    async with trio.open_nursery() as nursery:
        factory = h2_handlers.echo()
        url = await serve_h2(nursery, factory, tls=server_ssl_context)
        ...  # point the client at url
        await factory.wait_closed()
        assert factory.connections[0].resets == [(1, ErrorCodes.CANCEL)]
        nursery.cancel_scope.cancel()
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import trio
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import GoAwayFrame

from .h2_record import PREFACE, ConnectionRecord, HandlerFactory, HeaderPairs, Request

__all__ = [
    "PREFACE",
    "SWALLOWED",
    "ConnectionRecord",
    "H2Handler",
    "H2ServerConnection",
    "HandlerFactory",
    "HeaderPairs",
    "Request",
    "Settings",
    "serve_h2",
]

Settings = dict[SettingCodes | int, int]  # SETTINGS values, e.g. {MAX_CONCURRENT_STREAMS: 1}
SWALLOWED = (
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    OSError,
    ssl.SSLError,
    h2.exceptions.H2Error,
)


def _b(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


class H2Handler:
    """Base class for per-connection handlers: every hook is a no-op, so nothing is answered.

    ``settings`` are announced in the server preface (``serve_h2(settings=...)`` wins);
    ``config`` holds extra :class:`h2.config.H2Configuration` keyword arguments;
    ``ack_data`` is the connection's initial ``ack_data``; ``read_delay`` makes a slow reader
    (a sleep after each read of at most 64 KiB). ``conn`` is set before any hook
    runs. ``on_connect`` runs concurrently with the reader, like every other hook.
    """

    settings: Settings = {}
    config: dict[str, Any] = {}
    ack_data = True
    read_delay = 0.0  # seconds slept after each read of at most 64 KiB (throttles uploads)
    conn: H2ServerConnection

    async def on_connect(self) -> None:
        """Runs once the server preface is sent."""

    async def on_headers(self, request: Request) -> None:
        """Request headers arrived (the body may still be coming)."""

    async def on_request(self, request: Request) -> None:
        """The whole request (END_STREAM) arrived: ``request.body`` is complete."""

    async def on_reset(self, stream_id: int, error_code: int) -> None:
        """The client sent RST_STREAM on an open stream."""

    async def on_ping(self, data: bytes) -> None:
        """The client sent a PING (h2 has already queued the ACK)."""

    async def on_window_update(self, stream_id: int, delta: int) -> None:
        """The client opened a flow-control window (stream 0: the connection's)."""

    async def on_terminated(self, error_code: int, last_stream_id: int) -> None:
        """The client sent GOAWAY."""


class H2ServerConnection(ConnectionRecord):
    """One accepted connection: the h2 state machine, what was received, and the actions."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        handler: H2Handler,
        *,
        settings: Settings | None = None,
        alpn: str | None = None,
    ) -> None:
        super().__init__()
        self.stream = stream
        self.handler = handler
        self.alpn = alpn  # the negotiated ALPN protocol (TLS only)
        config = h2.config.H2Configuration(
            client_side=False, header_encoding=None, **handler.config
        )
        self.h2 = h2.connection.H2Connection(config)
        self.events: list[h2.events.Event] = []
        self.errors: list[BaseException] = []  # swallowed exceptions from hooks
        self.protocol_error: BaseException | None = None  # h2 rejected the client's bytes
        self.goaway_sent: tuple[int, int] | None = None  # (last_stream_id, error_code)
        self.ping_acks: list[bytes] = []
        self.settings_acks = 0
        self.peak_open_streams = 0
        self.ack_data = handler.ack_data  # give received DATA back as WINDOW_UPDATE
        self.read_delay = handler.read_delay  # sleep after each read: a slow reader
        self.peer_closed = False  # the client closed (or broke) its side
        self.aborted: str | None = None  # "fin" or "rst" after abort()
        self.done = trio.Event()  # the socket is closed; everything is on record
        self._settings = {**handler.settings, **(settings or {})}
        self._reading = trio.Event()
        self._reading.set()
        self._send_lock = trio.Lock()
        self._cork: bytearray | None = None
        self._nursery: trio.Nursery | None = None
        handler.conn = self

    # --- acting --------------------------------------------------------------------------

    async def _flush(self) -> None:
        await self.send_raw(b"")

    async def send_raw(self, data: bytes) -> None:
        """Send ``data`` as is, after anything h2 has queued (protocol violations go here)."""
        if self._cork is not None:
            self._cork += self.h2.data_to_send() + data
            await trio.lowlevel.checkpoint()
            return
        async with self._send_lock:
            data = self.h2.data_to_send() + data
            if data:
                await self.stream.send_all(data)

    @asynccontextmanager
    async def corked(self) -> AsyncIterator[None]:
        """Everything sent in the block (by any task) goes out in one write when it ends, e.g.
        GOAWAY and a response in one TCP segment, as nginx does. Do not wait for window in it."""
        self._cork = bytearray()
        try:
            yield
        finally:
            pending, self._cork = bytes(self._cork), None
            async with self._send_lock:
                # The corked bytes are older than anything h2 queued since: they go first.
                data = pending + self.h2.data_to_send()
                if data:
                    await self.stream.send_all(data)

    async def send_headers(
        self, stream_id: int, headers: HeaderPairs, *, end_stream: bool = False
    ) -> None:
        """Send a HEADERS frame with exactly ``headers`` (pseudo-headers included)."""
        pairs = [(_b(name), _b(value)) for name, value in headers]
        self.h2.send_headers(stream_id, pairs, end_stream=end_stream)
        await self._flush()

    async def send_response(
        self,
        stream_id: int,
        status: int = 200,
        headers: HeaderPairs = (),
        body: bytes = b"",
        *,
        end_stream: bool = True,
    ) -> None:
        """``:status`` plus ``headers`` (adds content-length for a complete body), then body."""
        pairs = [(b":status", str(status).encode())]
        pairs += [(_b(name), _b(value)) for name, value in headers]
        if end_stream and body and all(name.lower() != b"content-length" for name, _ in pairs):
            pairs.append((b"content-length", str(len(body)).encode()))
        await self.send_headers(stream_id, pairs, end_stream=end_stream and not body)
        if body:
            await self.send_data(stream_id, body, end_stream=end_stream)

    async def send_data(
        self,
        stream_id: int,
        data: bytes,
        *,
        end_stream: bool = False,
        chunk_size: int | None = None,
    ) -> None:
        """Send ``data`` in DATA frames, never beyond the client's windows (waits for them)."""
        offset = 0
        while offset < len(data):
            size = min(
                self.h2.local_flow_control_window(stream_id),
                self.h2.max_outbound_frame_size,
                len(data) - offset,
                chunk_size or len(data),
            )
            if size <= 0:
                await self.wait_for(
                    lambda: self.h2.local_flow_control_window(stream_id) > 0, timeout=None
                )
                continue
            offset += size
            last = end_stream and offset == len(data)
            self.h2.send_data(stream_id, data[offset - size : offset], end_stream=last)
            await self._flush()
        if end_stream and not data:
            self.h2.end_stream(stream_id)
            await self._flush()

    async def send_trailers(self, stream_id: int, trailers: HeaderPairs) -> None:
        """Send trailers; they end the stream."""
        await self.send_headers(stream_id, trailers, end_stream=True)

    async def reset_stream(self, stream_id: int, error_code: int = ErrorCodes.CANCEL) -> None:
        """Send RST_STREAM."""
        self.h2.reset_stream(stream_id, error_code)
        await self._flush()

    async def send_goaway(
        self,
        last_stream_id: int | None = None,
        error_code: int = ErrorCodes.NO_ERROR,
        additional_data: bytes = b"",
    ) -> None:
        """Send GOAWAY (default ``last_stream_id``: the highest stream seen); keep serving."""
        if last_stream_id is None:
            last_stream_id = self.h2.highest_inbound_stream_id
        self.goaway_sent = (last_stream_id, int(error_code))
        frame = GoAwayFrame(
            0,
            last_stream_id=last_stream_id,
            error_code=int(error_code),
            additional_data=additional_data,
        )
        await self.send_raw(frame.serialize())

    async def ping(self, data: bytes = b"h2-tests", *, wait_ack: bool = True) -> None:
        """Send a PING with 8 bytes of ``data``; by default wait for the client's ACK."""
        self.h2.ping(data)
        await self._flush()
        if wait_ack:
            await self.wait_for(lambda: data in self.ping_acks, timeout=None)

    async def update_settings(self, settings: Settings, *, wait_ack: bool = False) -> None:
        """Send SETTINGS (e.g. lower MAX_CONCURRENT_STREAMS); optionally wait for the ACK."""
        acks = self.settings_acks
        self.h2.update_settings(settings)
        await self._flush()
        if wait_ack:
            await self.wait_for(lambda: self.settings_acks > acks, timeout=None)

    async def acknowledge(self, stream_id: int, size: int) -> None:
        """Give ``size`` received bytes back (WINDOW_UPDATE), for use with ``ack_data=False``."""
        self.h2.acknowledge_received_data(size, stream_id)
        await self._flush()

    def pause_reading(self) -> None:
        """Stop reading: nothing is ACKed or processed until :meth:`resume_reading`."""
        if self._reading.is_set():
            self._reading = trio.Event()

    def resume_reading(self) -> None:
        self._reading.set()

    def abort(self, *, rst: bool = False) -> None:
        """Close the TCP connection now, without GOAWAY or TLS close_notify (RST if ``rst``)."""
        self.aborted = "rst" if rst else "fin"
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def close(self, error_code: int = ErrorCodes.NO_ERROR, *, linger: float = 1.0) -> None:
        """GOAWAY, then wait up to ``linger`` s for the client to close, then close."""
        await self.send_goaway(error_code=error_code)
        with trio.move_on_after(linger):
            await self.wait_for(lambda: self.peer_closed, timeout=None)
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    # --- running -------------------------------------------------------------------------

    async def _guard(self, hook: Callable[..., Awaitable[None]], *args: Any) -> None:
        try:
            await hook(*args)
        except SWALLOWED as exc:
            self.errors.append(exc)
            self._notify()

    def _spawn(self, hook: Callable[..., Awaitable[None]], *args: Any) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._guard, hook, *args)

    async def _start(self) -> None:
        self.h2.initiate_connection()
        self.h2.data_to_send()  # replaced by one SETTINGS frame that takes effect on ACK
        self.h2.update_settings({**dict(self.h2.local_settings), **self._settings})
        await self._flush()
        assert self._nursery is not None
        self._nursery.start_soon(self._read_loop)
        self._spawn(self.handler.on_connect)

    async def run(self) -> None:
        """Serve until the client closes, a hook closes, or the caller cancels."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._guard, self._start)

    async def _read_loop(self) -> None:
        try:
            while True:
                await self._reading.wait()
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                if self.read_delay:
                    await trio.sleep(self.read_delay)
                await self._reading.wait()  # paused while receive_some was waiting
                self.feed(bytes(data))
                if self.protocol_error is None:
                    try:
                        events = self.h2.receive_data(bytes(data))
                    except h2.exceptions.H2Error as exc:
                        self.protocol_error = exc  # h2 queued its GOAWAY; keep recording
                        events = []
                    for event in events:
                        self._dispatch(event)
                self._notify()
                await self._flush()
        except SWALLOWED:
            pass
        finally:
            self.peer_closed = True
            self._notify()
            assert self._nursery is not None
            self._nursery.cancel_scope.cancel()

    def _dispatch(self, event: h2.events.Event) -> None:
        self.events.append(event)
        handler = self.handler
        stream_id: int = getattr(event, "stream_id", 0) or 0
        request = self.requests.get(stream_id)
        if isinstance(event, h2.events.RequestReceived):
            request = self.requests[stream_id] = Request(stream_id, list(event.headers or []))
            self.peak_open_streams = max(self.peak_open_streams, self.h2.open_inbound_streams)
            if self.goaway_sent is not None and stream_id > self.goaway_sent[0]:
                request.ignored = True
            else:
                self._spawn(handler.on_headers, request)
        elif isinstance(event, h2.events.DataReceived):
            if request is not None:
                request.body += event.data or b""
            if self.ack_data and event.flow_controlled_length:
                self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
        elif isinstance(event, h2.events.TrailersReceived) and request is not None:
            request.trailers = list(event.headers or [])
        elif isinstance(event, h2.events.StreamEnded) and request is not None:
            request.complete = True
            if not request.ignored:
                self._spawn(handler.on_request, request)
        elif isinstance(event, h2.events.StreamReset):
            if request is not None:
                request.reset_code = int(event.error_code or 0)
            self._spawn(handler.on_reset, stream_id, int(event.error_code or 0))
        elif isinstance(event, h2.events.WindowUpdated):
            self._spawn(handler.on_window_update, stream_id, event.delta or 0)
        elif isinstance(event, h2.events.PingReceived):
            self._spawn(handler.on_ping, event.ping_data or b"")
        elif isinstance(event, h2.events.PingAckReceived):
            self.ping_acks.append(event.ping_data or b"")
        elif isinstance(event, h2.events.SettingsAcknowledged):
            self.settings_acks += 1
        elif isinstance(event, h2.events.ConnectionTerminated):
            error_code = int(event.error_code or 0)
            self._spawn(handler.on_terminated, error_code, event.last_stream_id or 0)


async def _close(
    conn: H2ServerConnection | None, stream: trio.abc.Stream, tcp: trio.SocketStream
) -> None:
    if conn is not None and conn.aborted is not None:
        if conn.aborted == "rst":
            tcp.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await trio.aclose_forcefully(tcp)  # skips TLS close_notify
        return
    # close_notify for TLS (trio does not wait for the reply); the timeout covers a client
    # that stopped reading. aclose() closes even when cancelled.
    with trio.move_on_after(1):
        try:
            await stream.aclose()
        except SWALLOWED:
            pass


async def _serve_connection(
    handler_factory: Callable[[], H2Handler],
    tls: ssl.SSLContext | None,
    settings: Settings | None,
    tcp_stream: trio.SocketStream,
) -> None:
    stream: trio.abc.Stream = tcp_stream
    conn: H2ServerConnection | None = None
    try:
        alpn = None
        if tls is not None:
            ssl_stream = trio.SSLStream(tcp_stream, tls, server_side=True)
            stream = ssl_stream
            await ssl_stream.do_handshake()
            alpn = ssl_stream.selected_alpn_protocol()
        conn = H2ServerConnection(stream, handler_factory(), settings=settings, alpn=alpn)
        if isinstance(handler_factory, HandlerFactory):
            handler_factory.attach(conn)
        await conn.run()
    except SWALLOWED:
        pass
    finally:
        await _close(conn, stream, tcp_stream)
        if conn is not None:
            conn.peer_closed = True
            conn.done.set()
            conn._notify()


async def serve_h2(
    nursery: trio.Nursery,
    handler_factory: Callable[[], H2Handler],
    *,
    tls: ssl.SSLContext | None = None,
    settings: Settings | None = None,
) -> str:
    """Serve HTTP/2 on 127.0.0.1:0 in ``nursery``; returns ``http(s)://127.0.0.1:PORT``.

    With ``tls`` (whose ALPN protocols are set to ``["h2"]``) the URL is https, else the
    listener expects h2c with prior knowledge. ``settings`` go into the server preface on top
    of the handler's own.
    """
    if tls is not None:
        tls.set_alpn_protocols(["h2"])
    handler = partial(_serve_connection, handler_factory, tls, settings)
    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    return f"{'https' if tls is not None else 'http'}://127.0.0.1:{port}"

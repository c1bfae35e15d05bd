"""A raw QUIC + HTTP/3 peer for misbehaviour tests, built on aioquic's sans-I/O server side and
run inside the test's own Trio run; plus a UDP blackhole.

Theory of operation: :func:`serve_quic` binds a Trio UDP socket on 127.0.0.1 port 0 in the
caller's nursery (cancel that nursery to stop it; the socket is closed then). One reader task
receives datagrams and routes them by the client's address (trioclient, like every client
here, uses one UDP socket per connection). The first Initial packet (at least 1200 bytes) from
a new address creates a :class:`QuicRawConnection`: a ``QuicConnection(is_client=False)``, an
``H3Connection`` once ALPN ``h3`` is negotiated, and a fresh handler from
``handler_factory()``. Each connection has one driver task that handles aioquic's events,
fires its timer (``get_timer``/``handle_timer``) and sends what aioquic has to send; the
reader only feeds datagrams in and wakes the driver. Handler hooks run as tasks of their own
(in the connection's nursery, cancelled when the connection ends), so a hook may sleep or
stall without stopping the connection.

A handler acts through ``self.conn`` (:class:`QuicRawConnection`). Every action changes
aioquic's state synchronously and wakes the driver, which sends: ``send_response``,
``send_headers``, ``send_data``, ``reset_stream`` (RESET_STREAM + STOP_SENDING),
``send_goaway`` (a GOAWAY frame written on the H3 control stream by hand: aioquic has no API
for it), ``close`` (CONNECTION_CLOSE with an error code), ``send_raw`` / ``send_control_raw``
(bytes straight onto a stream: malformed frames), ``pause_reading`` (drop every datagram from
now on, as if the server vanished), ``hold_credit`` (never grant more flow-control credit on
request streams than already granted, so an upload stalls; a handler class with
``hold_credit = True`` does so from the connection's first packet), ``wait_requests`` (a count of
requests, to act on deterministically) and ``peer_credit`` (how far the client lets the
server send on a stream: the client's backpressure, seen from here).

A stream the client stopped (STOP_SENDING, as when it gives up on a request) takes no more
answers: sending on it is skipped and recorded in ``skipped_after_stop``, never an error, so
a handler need not race the client.

Requests on streams at or above a GOAWAY's id are recorded with ``ignored=True`` and reset
with H3_REQUEST_REJECTED, never shown to the handler: the server did not process them, so
the client may retry them elsewhere (RFC 9114, 5.2).

``versions=`` other than aioquic's makes the server answer every Initial with a Version
Negotiation packet listing only those: a handshake that can never succeed, for fallback tests.

Typical use::

    async with trio.open_nursery() as nursery:
        server = await serve_quic(nursery, QuicFactory(Answer), certificate=leaf)
        ...  # point the client at server.url
        nursery.cancel_scope.cancel()
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import trio
import trustme
from aioquic.buffer import Buffer, encode_uint_var  # type: ignore[attr-defined]
from aioquic.h3.connection import H3_ALPN, ErrorCode, FrameType, H3Connection, encode_frame
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    ProtocolNegotiated,
    QuicEvent,
    StopSendingReceived,
    StreamReset,
)
from aioquic.quic.packet import (
    QuicPacketType,
    encode_quic_version_negotiation,
    pull_quic_header,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

__all__ = [
    "ErrorCode",
    "H3Request",
    "QuicFactory",
    "QuicHandler",
    "QuicRawConnection",
    "QuicRawServer",
    "UdpBlackhole",
    "serve_quic",
    "serve_udp_blackhole",
]

HeaderPairs = list[tuple[bytes, bytes]]
READ_BATCH = 64  # datagrams the reader takes per wake-up before letting drivers run


def _b(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


@dataclass
class H3Request:
    """One request stream as the server saw it."""

    stream_id: int
    headers: HeaderPairs = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    ignored: bool = False  # at or above our GOAWAY's id: rejected, never handled
    reset_code: int | None = None  # the client's RESET_STREAM
    stop_sending_code: int | None = None  # the client's STOP_SENDING
    complete: trio.Event = field(default_factory=trio.Event)  # ended, or reset by the client

    @property
    def method(self) -> str:
        return dict(self.headers).get(b":method", b"").decode()

    @property
    def path(self) -> str:
        return dict(self.headers).get(b":path", b"").decode()


class QuicHandler:
    """Base class for per-connection handlers: every hook is a no-op, so nothing is answered.

    ``conn`` is set before any hook runs; hooks run concurrently with the connection (and
    with each other), in the connection's nursery.
    """

    conn: QuicRawConnection
    hold_credit = False  # True: the connection never grants more than its initial windows

    async def on_connect(self) -> None:
        """The handshake completed."""

    async def on_headers(self, request: H3Request) -> None:
        """A request's headers arrived (its body may still be coming)."""

    async def on_request(self, request: H3Request) -> None:
        """A request ended (its whole body arrived)."""


_Handler = TypeVar("_Handler", bound=QuicHandler)


class QuicFactory(Generic[_Handler]):
    """Makes one handler per connection and keeps every connection, in order."""

    def __init__(self, make: Callable[[], _Handler]) -> None:
        self.make = make
        self.connections: list[QuicRawConnection] = []
        self.handlers: list[_Handler] = []
        self._changed = trio.Event()

    def __call__(self) -> _Handler:
        handler = self.make()
        self.handlers.append(handler)
        return handler

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_connections(self, count: int) -> None:
        """Until `count` connections have completed their handshake."""
        while sum(c.handshake is not None for c in self.connections) < count:
            await self._changed.wait()

    async def wait_closed(self) -> None:
        """Until every connection so far has terminated."""
        while any(c.terminated is None for c in self.connections):
            await self._changed.wait()


class QuicRawConnection:
    """One client's QUIC connection, its H3 layer, its handler and what was seen on it."""

    def __init__(
        self,
        server: QuicRawServer,
        address: tuple[str, int],
        quic: QuicConnection,
        handler: QuicHandler,
    ) -> None:
        self.server = server
        self.address = address
        self.quic = quic
        self.h3: H3Connection | None = None
        self.handler = handler
        handler.conn = self
        self.requests: dict[int, H3Request] = {}
        self.events: list[QuicEvent] = []
        self.handshake: HandshakeCompleted | None = None
        self.terminated: ConnectionTerminated | None = None
        self.goaway_id: int | None = None
        self.reading = True
        self.datagrams_received = 0
        self.datagrams_dropped = 0
        self.skipped_after_stop: list[int] = []  # streams whose answer the client had stopped
        self._wake = trio.Event()
        self._requests_changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        if handler.hold_credit:
            self.hold_credit()  # from the first packet on, before any credit could be raised

    # --- what handlers call --------------------------------------------------------------------

    def wake(self) -> None:
        """Let the driver send what aioquic now has to send (every action below calls it)."""
        self._wake.set()

    def _stopped_by_client(self, stream_id: int) -> bool:
        """The client stopped our side of the stream (STOP_SENDING: aioquic reset it), or
        the stream is over both ways and aioquic has discarded it."""
        stream = self.quic._streams.get(stream_id)
        if stream is None:
            return bool(self.quic._stream_is_discarded(stream_id))
        return stream.sender._reset_error_code is not None

    def _on_stream(self, stream_id: int, action: Callable[[], object]) -> None:
        """Run `action` on a stream, unless the client stopped it: a client may give up on
        a request at any time, and the handler answering it anyway is no error."""
        if self._stopped_by_client(stream_id):
            self.skipped_after_stop.append(stream_id)
            return
        action()
        self.wake()

    def send_headers(
        self, stream_id: int, headers: Sequence[tuple[str | bytes, str | bytes]], *, end: bool
    ) -> None:
        h3 = self.h3
        assert h3 is not None
        pairs = [(_b(k), _b(v)) for k, v in headers]
        self._on_stream(stream_id, lambda: h3.send_headers(stream_id, pairs, end_stream=end))

    def send_response(
        self,
        stream_id: int,
        status: int = 200,
        headers: Sequence[tuple[str | bytes, str | bytes]] = (),
        body: bytes | None = None,
    ) -> None:
        """The response head, and `body` with END_STREAM if given (else the stream stays open)."""
        head = [(b":status", str(status).encode()), *headers]
        self.send_headers(stream_id, head, end=body == b"")
        if body:
            self.send_data(stream_id, body, end=True)

    def send_data(self, stream_id: int, data: bytes, *, end: bool = False) -> None:
        """Queue DATA (aioquic sends it as the client's flow-control credit allows)."""
        h3 = self.h3
        assert h3 is not None
        self._on_stream(stream_id, lambda: h3.send_data(stream_id, data, end_stream=end))

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.H3_INTERNAL_ERROR) -> None:
        """RESET_STREAM and STOP_SENDING on one request stream."""
        if not self._stopped_by_client(stream_id):
            self.quic.reset_stream(stream_id, error_code)
        self.quic.stop_stream(stream_id, error_code)
        self.wake()

    def send_goaway(self, stream_id: int) -> None:
        """GOAWAY: requests on streams >= `stream_id` will not be processed."""
        self.goaway_id = stream_id
        self.send_control_raw(encode_frame(FrameType.GOAWAY, encode_uint_var(stream_id)))
        for request in self.requests.values():
            if request.stream_id >= stream_id and not request.ignored:
                self._reject(request)

    def close(self, error_code: int = ErrorCode.H3_NO_ERROR, reason: str = "") -> None:
        """CONNECTION_CLOSE with `error_code` (an H3 code: application close)."""
        self.quic.close(error_code=error_code, reason_phrase=reason)
        self.wake()

    def send_raw(self, stream_id: int, data: bytes, *, end: bool = False) -> None:
        """Bytes straight onto a stream, bypassing the H3 layer (malformed frames)."""
        self._on_stream(stream_id, lambda: self.quic.send_stream_data(stream_id, data, end))

    def send_control_raw(self, data: bytes) -> None:
        """Bytes onto the server's H3 control stream (after its SETTINGS)."""
        assert self.h3 is not None
        assert self.h3._local_control_stream_id is not None
        self.send_raw(self.h3._local_control_stream_id, data)

    def pause_reading(self) -> None:
        """Drop every datagram from this client from now on (nothing is acknowledged)."""
        self.reading = False

    def hold_credit(self) -> None:
        """Grant no more flow-control credit on request streams than already granted."""

        def no_raise(builder: Any, space: Any, stream: Any) -> None:
            pass

        self.quic._write_stream_limits = no_raise  # type: ignore[method-assign]

    def peer_credit(self, stream_id: int) -> int:
        """How many bytes the client lets us send on `stream_id` (its MAX_STREAM_DATA)."""
        stream = self.quic._streams.get(stream_id)
        return 0 if stream is None else int(stream.max_stream_data_remote)

    def sent_offset(self, stream_id: int) -> int:
        """How many bytes of `stream_id` we have put on the wire so far."""
        stream = self.quic._streams.get(stream_id)
        return 0 if stream is None else int(stream.sender.highest_offset)

    async def wait_requests(self, count: int) -> list[H3Request]:
        """Until `count` requests (headers received, not ignored) exist; returns them."""
        while len(self.handled_requests()) < count:
            await self._requests_changed.wait()
        return self.handled_requests()

    def handled_requests(self) -> list[H3Request]:
        return [r for r in self.requests.values() if not r.ignored]

    # --- the driver ----------------------------------------------------------------------------

    def _reject(self, request: H3Request) -> None:
        request.ignored = True
        self.reset_stream(request.stream_id, ErrorCode.H3_REQUEST_REJECTED)

    def _spawn(self, hook: Callable[[H3Request], Any], request: H3Request) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(hook, request)

    def _notify_requests(self) -> None:
        self._requests_changed.set()
        self._requests_changed = trio.Event()

    def _handle_events(self) -> None:
        while (event := self.quic.next_event()) is not None:
            self.events.append(event)
            if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
                self.h3 = H3Connection(self.quic)
            elif isinstance(event, HandshakeCompleted):
                self.handshake = event
                assert self._nursery is not None
                self._nursery.start_soon(self.handler.on_connect)
                self.server.factory._notify()
            elif isinstance(event, ConnectionTerminated):
                self.terminated = event
            elif isinstance(event, StreamReset) and event.stream_id in self.requests:
                self.requests[event.stream_id].reset_code = event.error_code
                self.requests[event.stream_id].complete.set()
            elif isinstance(event, StopSendingReceived) and event.stream_id in self.requests:
                self.requests[event.stream_id].stop_sending_code = event.error_code
            if self.h3 is None:
                continue
            for h3_event in self.h3.handle_event(event):
                if not isinstance(h3_event, (HeadersReceived, DataReceived)):
                    continue
                request = self.requests.get(h3_event.stream_id)
                if request is None:
                    request = self.requests[h3_event.stream_id] = H3Request(h3_event.stream_id)
                    if self.goaway_id is not None and request.stream_id >= self.goaway_id:
                        self._reject(request)
                    self._notify_requests()
                    if isinstance(h3_event, HeadersReceived) and not request.ignored:
                        self._spawn(self.handler.on_headers, request)
                if isinstance(h3_event, HeadersReceived):
                    request.headers.extend(h3_event.headers)
                else:
                    request.body.extend(h3_event.data)
                if h3_event.stream_ended:
                    request.ended = True
                    request.complete.set()
                    if not request.ignored:
                        self._spawn(self.handler.on_request, request)

    async def _drive(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while self.terminated is None:
                self._handle_events()
                await self.server._send_datagrams(self.quic.datagrams_to_send(trio.current_time()))
                if self.terminated is not None:
                    break
                timer = self.quic.get_timer()
                with trio.move_on_at(math.inf if timer is None else timer):
                    await self._wake.wait()
                self._wake = trio.Event()
                if timer is not None and trio.current_time() >= timer:
                    self.quic.handle_timer(now=trio.current_time())
            nursery.cancel_scope.cancel()  # the handler's hooks end with the connection
        self.server.factory._notify()
        self._notify_requests()

    def _receive(self, data: bytes) -> None:
        self.datagrams_received += 1
        if not self.reading:
            self.datagrams_dropped += 1
            return
        self.quic.receive_datagram(data, self.address, now=trio.current_time())
        self.wake()


class QuicRawServer:
    """The UDP socket, the connections by client address, and the routing between them."""

    def __init__(
        self,
        sock: trio.socket.SocketType,
        factory: QuicFactory[Any],
        configuration: QuicConfiguration,
        versions: Sequence[int] | None,
    ) -> None:
        self.sock = sock
        self.factory = factory
        self.configuration = configuration
        self.versions = list(versions) if versions is not None else None
        self.connections: dict[tuple[str, int], QuicRawConnection] = {}
        self.version_negotiations = 0
        self.port: int = sock.getsockname()[1]
        self._send_lock = trio.Lock()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def _send_datagrams(self, datagrams: list[tuple[bytes, Any]]) -> None:
        # One lock: trio lets only one task at a time wait for a socket to become writable.
        async with self._send_lock:
            for data, address in datagrams:
                try:
                    await self.sock.sendto(data, address)
                except OSError:
                    pass  # the client's socket is gone (ICMP unreachable): QUIC copes

    async def _serve(self, nursery: trio.Nursery) -> None:
        while True:
            for _ in range(READ_BATCH):
                try:
                    data, address = await self.sock.recvfrom(65536)
                except OSError:
                    continue  # ICMP unreachable from a client that went away
                await self._route(nursery, data, address)
            await trio.lowlevel.checkpoint()

    async def _route(self, nursery: trio.Nursery, data: bytes, address: tuple[str, int]) -> None:
        connection = self.connections.get(address)
        if connection is not None and connection.terminated is None:
            connection._receive(data)
            return
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=8)
        except ValueError:
            return
        if header.packet_type != QuicPacketType.INITIAL or len(data) < 1200:
            return
        if self.versions is not None:
            self.version_negotiations += 1
            negotiation = encode_quic_version_negotiation(
                source_cid=header.destination_cid,
                destination_cid=header.source_cid,
                supported_versions=self.versions,
            )
            await self._send_datagrams([(negotiation, address)])
            return
        quic = QuicConnection(
            configuration=self.configuration,
            original_destination_connection_id=header.destination_cid,
        )
        connection = QuicRawConnection(self, address, quic, self.factory())
        self.connections[address] = connection
        self.factory.connections.append(connection)
        connection._receive(data)
        nursery.start_soon(connection._drive)


def _server_configuration(
    certificate: trustme.LeafCert, idle_timeout: float, max_stream_data: int | None
) -> QuicConfiguration:
    configuration = QuicConfiguration(
        is_client=False, alpn_protocols=H3_ALPN, idle_timeout=idle_timeout
    )
    configuration.certificate = x509.load_pem_x509_certificate(
        certificate.cert_chain_pems[0].bytes()
    )
    configuration.private_key = load_pem_private_key(
        certificate.private_key_pem.bytes(), password=None
    )
    if max_stream_data is not None:
        configuration.max_stream_data = max_stream_data
    return configuration


async def serve_quic(
    nursery: trio.Nursery,
    factory: QuicFactory[Any],
    *,
    certificate: trustme.LeafCert,
    idle_timeout: float = 30.0,
    max_stream_data: int | None = None,
    versions: Sequence[int] | None = None,
) -> QuicRawServer:
    """Serve `factory`'s handlers on a new UDP socket on 127.0.0.1 in `nursery`.

    ``idle_timeout`` is the server's max_idle_timeout transport parameter (the connection's
    is the smaller of both ends'); ``max_stream_data`` the initial per-stream window the
    client gets (aioquic's default 1 MiB); ``versions`` see the module docstring.
    """
    configuration = _server_configuration(certificate, idle_timeout, max_stream_data)
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    try:
        await sock.bind(("127.0.0.1", 0))
    except BaseException:
        sock.close()
        raise
    server = QuicRawServer(sock, factory, configuration, versions)

    async def run() -> None:
        with sock:
            async with trio.open_nursery() as connections:
                await server._serve(connections)

    nursery.start_soon(run)
    return server


class UdpBlackhole:
    """A UDP socket on 127.0.0.1 that reads and drops everything (``received`` counts it)."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.received = 0
        self._changed = trio.Event()

    async def wait_received(self, count: int = 1) -> None:
        """Until at least `count` datagrams arrived."""
        while self.received < count:
            await self._changed.wait()

    async def _run(self) -> None:
        with self.sock:
            while True:
                try:
                    await self.sock.recvfrom(65536)
                except OSError:
                    continue
                self.received += 1
                self._changed.set()
                self._changed = trio.Event()


async def serve_udp_blackhole(nursery: trio.Nursery, port: int = 0) -> UdpBlackhole:
    """A :class:`UdpBlackhole` in `nursery` (cancel it to close the socket).

    ``port`` may name a port number that is in use by TCP (an h3 peer's), to advertise a
    QUIC endpoint that never answers on the same number.
    """
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    try:
        await sock.bind(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    blackhole = UdpBlackhole(sock)
    nursery.start_soon(blackhole._run)
    return blackhole

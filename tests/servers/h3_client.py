"""A minimal HTTP/3 client (Trio + aioquic, driven by hand) for the peers' self-tests.

:class:`MiniH3Client` runs in one task with no background reader: whoever awaits :meth:`pump`
(directly or through ``until``/``request``) reads one datagram or fires aioquic's timer,
handles the events and sends what aioquic has to send. It never imports trioclient, so the
HTTP/3 test peers can be checked before (and independently of) trioclient's own HTTP/3 code.
Every QUIC event is kept in :attr:`MiniH3Client.quic_events` and the raw bytes of every
stream in :attr:`MiniH3Client.stream_bytes` (the server's control stream holds its SETTINGS
and any GOAWAY, which aioquic's H3Connection does not report: see :meth:`goaway_id`)::

    async with connect(port, cafile=ca_path) as client:
        response = await client.request("GET", "/bytes/10")
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from aioquic.buffer import Buffer, BufferReadError  # type: ignore[attr-defined]
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    QuicEvent,
    StreamDataReceived,
    StreamReset,
)

__all__ = ["H3Response", "MiniH3Client", "connect"]

GOAWAY_FRAME = 0x7
CONTROL_STREAM_TYPE = 0x0


@dataclass
class H3Response:
    """What arrived on one request stream."""

    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset_code: int | None = None

    @property
    def status(self) -> int:
        return int(dict(self.headers)[b":status"])

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def done(self) -> bool:
        return self.ended or self.reset_code is not None


class MiniH3Client:
    """One QUIC connection (``QuicConnection`` + ``H3Connection``) on a connected UDP socket."""

    def __init__(
        self,
        sock: trio.socket.SocketType,
        address: tuple[str, int],
        configuration: QuicConfiguration,
    ) -> None:
        self.sock = sock
        self.address = address
        self.quic = QuicConnection(configuration=configuration)
        self.h3 = H3Connection(self.quic)
        self.responses: dict[int, H3Response] = {}
        self.quic_events: list[QuicEvent] = []
        self.stream_bytes: dict[int, bytearray] = {}
        self.handshake: HandshakeCompleted | None = None
        self.terminated: ConnectionTerminated | None = None
        self.datagrams_received = 0

    async def transmit(self) -> None:
        for data, address in self.quic.datagrams_to_send(now=trio.current_time()):
            await self.sock.sendto(data, address)

    async def pump(self) -> None:
        """Read one datagram, or fire the due timer; handle the events; send."""
        timer = self.quic.get_timer()
        data: bytes | None = None
        with trio.move_on_at(math.inf if timer is None else timer):
            data, address = await self.sock.recvfrom(65536)
        now = trio.current_time()
        if data is not None:
            self.datagrams_received += 1
            self.quic.receive_datagram(data, address, now=now)
        else:
            self.quic.handle_timer(now=now)
        self._handle_events()
        await self.transmit()

    def _handle_events(self) -> None:
        while (event := self.quic.next_event()) is not None:
            self.quic_events.append(event)
            if isinstance(event, HandshakeCompleted):
                self.handshake = event
            elif isinstance(event, ConnectionTerminated):
                self.terminated = event
            elif isinstance(event, StreamDataReceived):
                self.stream_bytes.setdefault(event.stream_id, bytearray()).extend(event.data)
            elif isinstance(event, StreamReset) and event.stream_id in self.responses:
                self.responses[event.stream_id].reset_code = event.error_code
            for h3_event in self.h3.handle_event(event):
                if isinstance(h3_event, HeadersReceived):
                    response = self.responses.setdefault(h3_event.stream_id, H3Response())
                    response.headers.extend(h3_event.headers)
                    response.ended |= h3_event.stream_ended
                elif isinstance(h3_event, DataReceived):
                    response = self.responses.setdefault(h3_event.stream_id, H3Response())
                    response.body.extend(h3_event.data)
                    response.ended |= h3_event.stream_ended

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Pump until `predicate()` holds; raise if the connection ends first."""
        while not predicate():
            if self.terminated is not None:
                raise ConnectionError(f"QUIC connection terminated: {self.terminated}")
            await self.pump()

    async def start_request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Sequence[tuple[bytes, bytes]] = (),
        *,
        end_stream: bool = True,
    ) -> int:
        """Send a request's headers (and `body`) on a new stream; return its id."""
        stream_id = self.quic.get_next_available_stream_id()
        self.responses[stream_id] = H3Response()
        authority = f"{self.address[0]}:{self.address[1]}".encode()
        head = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", authority),
            (b":path", path.encode()),
            *headers,
        ]
        self.h3.send_headers(stream_id, head, end_stream=end_stream and not body)
        if body:
            self.h3.send_data(stream_id, body, end_stream=end_stream)
        await self.transmit()
        return stream_id

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> H3Response:
        """Send one request and pump until its response has ended or was reset."""
        stream_id = await self.start_request(method, path, body, headers)
        response = self.responses[stream_id]
        await self.until(lambda: response.done)
        return response

    def goaway_id(self) -> int | None:
        """The id in the last GOAWAY on the server's control stream, if one arrived."""
        for stream_id, data in self.stream_bytes.items():
            if stream_id % 4 != 3:  # server-initiated unidirectional streams only
                continue
            buffer = Buffer(data=bytes(data))
            found: int | None = None
            try:
                if buffer.pull_uint_var() != CONTROL_STREAM_TYPE:
                    continue
                while not buffer.eof():
                    frame_type = buffer.pull_uint_var()
                    length = buffer.pull_uint_var()
                    payload = buffer.pull_bytes(length)
                    if frame_type == GOAWAY_FRAME:
                        found = Buffer(data=payload).pull_uint_var()
            except BufferReadError:
                pass  # a frame still arriving
            return found
        return None

    async def close(self, error_code: int = 0) -> None:
        """Send CONNECTION_CLOSE (once) without waiting for anything."""
        if self.terminated is None:
            self.quic.close(error_code=error_code)
            await self.transmit()


@asynccontextmanager
async def connect(
    port: int,
    *,
    cafile: str | None,
    server_name: str = "127.0.0.1",
    host: str = "127.0.0.1",
    idle_timeout: float = 30.0,
    handshake: bool = True,
) -> AsyncIterator[MiniH3Client]:
    """A :class:`MiniH3Client` to ``host:port`` (after the handshake unless `handshake` is
    False); the connection is closed and the socket released on exit. ``cafile=None``
    turns certificate verification off."""
    import ssl

    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, server_name=server_name, idle_timeout=idle_timeout
    )
    if cafile is None:
        configuration.verify_mode = ssl.CERT_NONE
    else:
        configuration.load_verify_locations(cafile=cafile)
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind(("127.0.0.1", 0))
        client = MiniH3Client(sock, (host, port), configuration)
        client.quic.connect((host, port), now=trio.current_time())
        await client.transmit()
        try:
            if handshake:
                await client.until(lambda: client.handshake is not None)
            yield client
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await client.close()
                except OSError:
                    pass

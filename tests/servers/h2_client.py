"""A minimal HTTP/2 client (Trio + h2) for the infrastructure's self-tests and for poking peers.

:class:`MiniClient` runs in one task with no background reader: whoever awaits :meth:`pump`
(directly or through ``until``/``response``/``request``) reads and handles events. It never
imports trioclient. Use :func:`connect` for a started client::

    async with connect("https://127.0.0.1:PORT", ssl_context) as client:
        response = await client.get("/index.txt")
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.settings
import trio
from h2.connection import ConnectionInputs, ConnectionState
from h2.settings import SettingCodes

__all__ = ["MiniClient", "Response", "connect"]


@dataclass
class Response:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] | None = None
    ended: bool = False
    reset_code: int | None = None

    @property
    def status(self) -> int:
        return int(dict(self.headers)[b":status"])

    @property
    def done(self) -> bool:
        return self.ended or self.reset_code is not None


class MiniClient:
    """One HTTP/2 connection driven by whoever awaits: :meth:`pump` reads and handles events.

    Received DATA is acknowledged at once unless ``ack=False``. :meth:`start` waits for the
    server's SETTINGS, so the server's values apply to everything sent afterwards.
    """

    def __init__(
        self, stream: trio.abc.Stream, *, settings: dict[SettingCodes, int] | None = None
    ) -> None:
        self.stream = stream
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config)
        if settings:
            self.h2.local_settings = h2.settings.Settings(client=True, initial_values=settings)
        # h2 moves to CLOSED on any GOAWAY and then rejects every frame, even the rest of the
        # streams the server still answers (nginx sends GOAWAY and the last response in one
        # write). Stay open instead; MiniClient never opens streams after a GOAWAY.
        machine = self.h2.state_machine
        machine._transitions = {
            **machine._transitions,
            (ConnectionState.CLIENT_OPEN, ConnectionInputs.RECV_GOAWAY): (
                None,
                ConnectionState.CLIENT_OPEN,
            ),
        }
        self.responses: dict[int, Response] = {}
        self.events: list[h2.events.Event] = []
        self.terminated: h2.events.ConnectionTerminated | None = None
        self.eof = False
        self.ack = True

    async def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            await self.stream.send_all(data)

    async def start(self) -> None:
        self.h2.initiate_connection()
        await self.flush()
        await self.until(
            lambda: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in self.events)
        )

    async def pump(self) -> None:
        """Read once and handle the events (raises h2's ProtocolError after flushing GOAWAY)."""
        data = await self.stream.receive_some(65536)
        if not data:
            self.eof = True
            return
        try:
            events = self.h2.receive_data(bytes(data))
        finally:
            await self.flush()
        for event in events:
            self.events.append(event)
            response = self.responses.get(getattr(event, "stream_id", 0) or 0)
            if isinstance(event, h2.events.ResponseReceived) and response is not None:
                response.headers = list(event.headers or [])
            elif isinstance(event, h2.events.DataReceived) and response is not None:
                response.body += event.data or b""
                if self.ack:
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.TrailersReceived) and response is not None:
                response.trailers = list(event.headers or [])
            elif isinstance(event, h2.events.StreamEnded) and response is not None:
                response.ended = True
            elif isinstance(event, h2.events.StreamReset) and response is not None:
                response.reset_code = event.error_code
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.terminated = event
        await self.flush()

    async def until(self, predicate: Callable[[], object]) -> None:
        while not predicate():
            assert not self.eof, "the server closed the connection"
            await self.pump()

    async def request(
        self,
        path: str = "/",
        *,
        method: str = "GET",
        body: bytes = b"",
        authority: str = "127.0.0.1",
        scheme: str = "https",
        end_stream: bool = True,
    ) -> int:
        """Send a request (the body as the server's windows allow); returns the stream id."""
        stream_id = self.h2.get_next_available_stream_id()
        self.responses[stream_id] = Response()
        headers = [
            (":method", method),
            (":scheme", scheme),
            (":authority", authority),
            (":path", path),
        ]
        if body:
            headers.append(("content-length", str(len(body))))
        self.h2.send_headers(stream_id, headers, end_stream=end_stream and not body)
        await self.flush()
        offset = 0
        while offset < len(body):
            window = self.h2.local_flow_control_window(stream_id)
            if window == 0:
                await self.pump()
                continue
            size = min(window, self.h2.max_outbound_frame_size, len(body) - offset)
            offset += size
            last = end_stream and offset == len(body)
            self.h2.send_data(stream_id, body[offset - size : offset], end_stream=last)
            await self.flush()
        return stream_id

    async def response(self, stream_id: int) -> Response:
        await self.until(lambda: self.responses[stream_id].done)
        return self.responses[stream_id]

    async def get(self, path: str = "/", **kwargs: object) -> Response:
        return await self.response(await self.request(path, **kwargs))  # type: ignore[arg-type]

    async def ping(self, data: bytes = b"pingpong") -> None:
        """PING and wait for the ACK: the server has processed everything sent before."""
        self.h2.ping(data)
        await self.flush()
        await self.until(
            lambda: any(
                isinstance(e, h2.events.PingAckReceived) and e.ping_data == data
                for e in self.events
            )
        )

    async def close(self) -> None:
        if self.terminated is None and self.h2.state_machine.state != ConnectionState.CLOSED:
            self.h2.close_connection()
            try:
                await self.flush()
            except trio.BrokenResourceError:
                pass


@asynccontextmanager
async def connect(
    url: str,
    context: ssl.SSLContext | None = None,
    *,
    settings: dict[SettingCodes, int] | None = None,
) -> AsyncIterator[MiniClient]:
    """A started :class:`MiniClient` for ``url`` (TLS with ``context`` for https URLs)."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    tcp = await trio.open_tcp_stream(parts.hostname, parts.port)
    stream: trio.abc.Stream = tcp
    if parts.scheme == "https":
        assert context is not None
        stream = trio.SSLStream(tcp, context, server_hostname=parts.hostname)
    async with stream:
        if isinstance(stream, trio.SSLStream):
            await stream.do_handshake()
            assert stream.selected_alpn_protocol() == "h2"
        client = MiniClient(stream, settings=settings)
        await client.start()
        try:
            yield client
        finally:
            await client.close()

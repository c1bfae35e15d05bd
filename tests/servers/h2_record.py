"""The record of what an HTTP/2 client sent to a :mod:`servers.h2_raw` server.

:class:`ConnectionRecord` parses the client's bytes into hyperframe frames by itself, apart
from h2, so every frame is on record, even those h2 swallows (RST_STREAM on a closed stream,
frames after a protocol error). Requests are filled in from h2's events by its subclass
:class:`servers.h2_raw.H2ServerConnection`. :class:`HandlerFactory` keeps the connections a
server accepted, so a test can inspect and wait for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio
from hyperframe.exceptions import HyperframeError
from hyperframe.frame import (
    Frame,
    GoAwayFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

if TYPE_CHECKING:
    from .h2_raw import H2Handler, H2ServerConnection

__all__ = ["PREFACE", "ConnectionRecord", "HandlerFactory", "HeaderPairs", "Request"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HeaderPairs = Iterable[tuple[str | bytes, str | bytes]]


@dataclass
class Request:
    """One request stream as the server saw it (headers are raw ``(name, value)`` bytes)."""

    stream_id: int
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] | None = None
    complete: bool = False  # END_STREAM received
    reset_code: int | None = None  # the client reset the stream with this code
    ignored: bool = False  # opened above the last_stream_id of a GOAWAY we sent

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), decoded as latin-1."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    @property
    def method(self) -> str | None:
        return self.header(":method")

    @property
    def path(self) -> str | None:
        return self.header(":path")


class ConnectionRecord:
    """What the client sent on one connection: every frame (parsed by hyperframe,
    independently of h2) and the requests; :meth:`wait_for` waits for the record to change."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []  # every frame the client sent, in order
        self.parse_error: str | None = None  # set once the bytes stopped making sense
        self.requests: dict[int, Request] = {}
        self._listeners: list[Callable[[], None]] = []
        self._changed = trio.Event()
        self._buffer = bytearray()
        self._preface_seen = False

    def feed(self, data: bytes) -> None:
        """Record ``data``, the next bytes the client sent (the preface first)."""
        if self.parse_error is not None:
            return
        buf = self._buffer
        buf += data
        try:
            if not self._preface_seen:
                if len(buf) < len(PREFACE):
                    return
                if buf[: len(PREFACE)] != PREFACE:
                    raise ValueError(f"bad client preface {bytes(buf[:24])!r}")
                del buf[: len(PREFACE)]
                self._preface_seen = True
            while len(buf) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(bytes(buf[:9])))
                if len(buf) < 9 + length:
                    return
                frame.parse_body(memoryview(bytes(buf[9 : 9 + length])))
                del buf[: 9 + length]
                self.frames.append(frame)
        except (HyperframeError, ValueError) as exc:
            self.parse_error = repr(exc)

    # --- the record ----------------------------------------------------------------------

    @property
    def resets(self) -> list[tuple[int, int]]:
        """RST_STREAM frames received, as ``(stream_id, error_code)``."""
        return [(f.stream_id, f.error_code) for f in self.frames if isinstance(f, RstStreamFrame)]

    @property
    def window_updates(self) -> list[tuple[int, int]]:
        """WINDOW_UPDATE frames received, as ``(stream_id, increment)``."""
        return [
            (f.stream_id, f.window_increment)
            for f in self.frames
            if isinstance(f, WindowUpdateFrame)
        ]

    @property
    def pings(self) -> list[bytes]:
        """Payloads of the PING frames the client sent (ACKs excluded)."""
        return [
            f.opaque_data for f in self.frames if isinstance(f, PingFrame) and "ACK" not in f.flags
        ]

    @property
    def goaways(self) -> list[tuple[int, int, bytes]]:
        """GOAWAY frames received, as ``(last_stream_id, error_code, additional_data)``."""
        return [
            (f.last_stream_id, f.error_code, f.additional_data)
            for f in self.frames
            if isinstance(f, GoAwayFrame)
        ]

    @property
    def client_settings(self) -> list[dict[int, int]]:
        """The client's SETTINGS frames (ACKs excluded)."""
        return [
            dict(f.settings)
            for f in self.frames
            if isinstance(f, SettingsFrame) and "ACK" not in f.flags
        ]

    # --- waiting -------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
        for listener in self._listeners:
            listener()

    async def wait_for(self, predicate: Callable[[], object], timeout: float | None = 10) -> None:
        """Wait until ``predicate()`` is true, re-checking whenever the connection changes."""
        with trio.fail_after(timeout) if timeout is not None else trio.CancelScope():
            while not predicate():
                await self._changed.wait()


class HandlerFactory:
    """Makes one handler per connection and remembers every connection it served."""

    def __init__(self, make: Callable[[], H2Handler]) -> None:
        self.make = make
        self.connections: list[H2ServerConnection] = []
        self._changed = trio.Event()

    def __call__(self) -> H2Handler:
        return self.make()

    def attach(self, conn: H2ServerConnection) -> None:
        self.connections.append(conn)
        conn._listeners.append(self._notify)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    @property
    def requests(self) -> list[Request]:
        """Every request of every connection, connection by connection."""
        return [r for conn in self.connections for r in conn.requests.values()]

    async def wait_for(self, predicate: Callable[[], object], timeout: float | None = 10) -> None:
        """Wait until ``predicate()`` is true, re-checking whenever any connection changes."""
        with trio.fail_after(timeout) if timeout is not None else trio.CancelScope():
            while not predicate():
                await self._changed.wait()

    async def wait_closed(self, count: int = 1, timeout: float | None = 10) -> None:
        """Wait until at least ``count`` connections were accepted and all of them are done."""
        await self.wait_for(
            lambda: (
                len(self.connections) >= count
                and all(conn.done.is_set() for conn in self.connections)
            ),
            timeout,
        )

"""One multiplexed exchange: its state, the waits of the task that owns it, its body stream.

`StreamState` and `StreamBody` serve HTTP/2 (`H2Stream`, here) and HTTP/3 (`H3Stream`, in
`_http3.py`) alike: both connections deliver body pieces as `(data, flow-controlled length)`
and take them back through the same four calls (`StreamDriver`).

The connection's reader task (`_http2.py`) is the only code that feeds an `H2Stream`; the
request's own task is the only code that waits on it. They meet through plain attributes
and a `trio.Event` that the reader sets, so a waiting request can be cancelled at any
moment without touching the connection: giving a stream up (`abandon`) is synchronous. It
resets the stream with RST_STREAM(CANCEL) if it is still open and hands the flow-control
credit of any unread data back, so one abandoned stream never shrinks the window its
siblings share.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

import trio

from .._exceptions import TransportError
from ._errors import fresh_error

if TYPE_CHECKING:
    from .._config import Deadlines
    from .._request import Request

__all__ = ["H2Stream", "StreamBody", "StreamDriver", "StreamState"]


class StreamState:
    """What has arrived for one stream, as delivered by the connection's task."""

    __slots__ = ("_waiter", "chunks", "ended", "error", "head", "id", "request_done", "trailers")

    def __init__(self, stream_id: int) -> None:
        self.id = stream_id
        self.head: list[tuple[bytes, bytes]] | None = None
        # (data, flow-controlled length); see HTTP2Connection._dispatch for why a piece may
        # be a bytearray (small frames merged while unread).
        self.chunks: deque[tuple[bytes | bytearray, int]] = deque()
        self.ended = False
        self.error: TransportError | None = None
        self.trailers: list[tuple[bytes, bytes]] = []
        self.request_done = False
        self._waiter: trio.Event | None = None

    def notify(self) -> None:
        """Wake the task waiting on this stream (called by the reader task)."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    async def wait(self, deadline: float) -> bool:
        """Wait for the reader to deliver something; False if `deadline` passed first."""
        waiter = self._waiter = trio.Event()
        if deadline == math.inf:  # no cancel scope to enter and leave
            await waiter.wait()
            return True
        with trio.CancelScope(deadline=deadline) as scope:
            await waiter.wait()
        return not scope.cancelled_caught


class H2Stream(StreamState):
    """An HTTP/2 stream: also the flow-controlled bytes not yet handed back to h2."""

    __slots__ = ("unacked",)

    def __init__(self, stream_id: int) -> None:
        super().__init__(stream_id)
        self.unacked = 0  # flow-controlled bytes received but not yet consumed


class StreamDriver(Protocol):
    """What a `StreamBody` needs of its connection (HTTP2Connection, HTTP3Connection)."""

    closed_reason: str | None

    async def wait_stream(
        self, stream: Any, request: Request, deadlines: Deadlines
    ) -> None: ...  # pragma: no cover - a protocol

    def consumed(self, stream: Any, flow_length: int) -> None: ...  # pragma: no cover

    def abandon(self, stream: Any) -> None: ...  # pragma: no cover


class StreamBody:
    """Raw body bytes of one HTTP/2 or HTTP/3 response. Closing it gives the stream up
    (`abandon`); the pool's wrapper (`PooledStream`) gives the connection's slot back."""

    __slots__ = ("_conn", "_deadlines", "_request", "_stream", "driver")

    def __init__(
        self, http: StreamDriver, stream: StreamState, request: Request, deadlines: Deadlines
    ) -> None:
        self._conn = self.driver = http  # `driver.closed_reason`: read by the pool's wrapper
        self._stream = stream
        self._request = request
        self._deadlines = deadlines

    @property
    def closed_reason(self) -> str | None:
        """Why the connection was closed under this stream (the client closed), if so."""
        return self._conn.closed_reason

    @property
    def trailers(self) -> list[tuple[bytes, bytes]]:
        """Trailing headers, once the body has been read to its end."""
        return self._stream.trailers

    async def receive_some(self) -> bytes:
        """The next body chunk; b"" at the end of the body."""
        stream = self._stream
        while not stream.chunks:
            if stream.error is not None:
                raise fresh_error(stream.error, self._request)
            if stream.ended:
                return b""
            await self._conn.wait_stream(stream, self._request, self._deadlines)
        data, flow_length = stream.chunks.popleft()
        if type(data) is not bytes:
            data = bytes(data)
        self._conn.consumed(stream, flow_length)
        return data

    def close(self) -> None:
        """Reset the stream if it is still open (and return its unread credit)."""
        self._conn.abandon(self._stream)

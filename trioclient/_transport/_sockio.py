"""Plain-socket I/O for HTTP/1.1: try the syscall first, wait in Trio only when it would block.

Theory of operation
-------------------
`trio.SocketStream.send_all` and `receive_some` are general and careful: a conflict
detector, an error-translating context manager, a check for cancellation before the
syscall and a cancel-shielded schedule point after it. Our timeouts then add a cancel scope
around each call. For HTTP/1.1 over plain TCP most of that is wasted: a request head almost
always fits in the socket buffer, and a response is often already waiting. Measured with
callgrind, two cancel scopes and two stream calls were the largest part of what a request
cost us beyond h11 itself.

So for a plain socket (TCP or Unix; TLS goes through `trio.SSLStream`) we call `os.write`
and `os.read` on its non-blocking descriptor, and only when the kernel answers EAGAIN do we
wait with `trio.lowlevel.wait_writable` / `wait_readable`, under a cancel scope carrying the
deadline. Only public APIs are used. The descriptor is looked up before every syscall,
never cached: closing the socket (the pool does that from another task when the client
closes) sets it to -1, and its number may be reused by a new socket at once.

Waiting is a Trio checkpoint; a call that did not wait is not, so the pool adds one
checkpoint per request itself (right after sending it).

Only Trio's own socket class takes this path. A socket from a custom socket factory (test
instrumentation, fault injection) keeps going through `SocketStream`, so that it still sees
every operation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable

import trio

from .._config import Deadlines

__all__ = ["SocketIO"]


class SocketIO:
    """Non-blocking reads and writes on one Trio socket, with deadlines."""

    __slots__ = ("_sock",)

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._sock = sock

    @classmethod
    def for_stream(cls, stream: trio.abc.Stream) -> SocketIO | None:
        """A SocketIO for a plain Trio socket stream; None for TLS or custom sockets."""
        if not isinstance(stream, trio.SocketStream):
            return None
        sock = stream.socket
        if type(sock).__module__.partition(".")[0] != "trio":
            return None
        return cls(sock)

    def _fd(self) -> int:
        fd = self._sock.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the socket was closed")
        return fd

    async def receive_some(self, size: int, deadline: float) -> bytes | None:
        """Up to `size` bytes (b"" at EOF), or None if `deadline` passed while waiting."""
        while True:
            try:
                return os.read(self._fd(), size)
            except BlockingIOError:
                pass
            if not await self._wait(trio.lowlevel.wait_readable, deadline):
                return None

    async def send_all(self, data: bytes, deadlines: Deadlines) -> bool:
        """Send everything; False if the write timeout passed without progress (or the
        total deadline did)."""
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self._fd(), view)
            except BlockingIOError:
                sent = 0
            if sent:
                view = view[sent:]
                continue
            if not await self._wait(trio.lowlevel.wait_writable, deadlines.write()):
                return False
        return True

    async def _wait(
        self, wait: Callable[[trio.socket.SocketType], Awaitable[None]], deadline: float
    ) -> bool:
        if deadline == math.inf:
            await wait(self._sock)
            return True
        with trio.CancelScope(deadline=deadline) as scope:
            await wait(self._sock)
        return not scope.cancelled_caught

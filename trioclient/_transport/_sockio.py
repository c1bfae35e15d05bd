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

TLS (`TLSIO`) takes the same shortcut one layer up. `trio.SSLStream` wraps every read in
its generic retry loop: a conflict detector, a lock, an `SSLWantReadError` raised and
caught before each socket read, then `SocketStream`'s own layers. Measured with callgrind
that was most of what an HTTPS request cost us beyond a plain one. Once trio has done the
handshake, `TLSIO` drives the same `ssl.SSLObject` and memory BIOs with the same
non-blocking syscalls as `SocketIO`: ciphertext is read from the socket only when OpenSSL
has no complete record, and written as soon as OpenSSL produced it. It keeps trio's
`https_compatible=True` meaning (an EOF without close_notify is an EOF, not an error).
Those three objects are private attributes of `trio.SSLStream`; if a trio release renames
them, `for_stream` returns None and the stream is used through trio as before (a test
checks the shortcut is taken with the trio we test against).
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Awaitable, Callable

import trio

from .._config import Deadlines

__all__ = ["TLSIO", "SocketIO"]


class SocketIO:
    """Non-blocking reads and writes on one Trio socket, with deadlines."""

    __slots__ = ("_sock",)

    def pending_out(self) -> int:
        """Bytes a read produced that wait to be written (TLS only; see TLSIO)."""
        return 0

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._sock = sock

    @classmethod
    def for_stream(cls, stream: trio.abc.Stream) -> SocketIO | TLSIO | None:
        """Direct I/O for a Trio socket stream, or TLS over one; None for anything else."""
        if isinstance(stream, trio.SSLStream):
            return TLSIO.for_stream(stream)
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
        return await self.send_until(data, deadlines.write)

    async def send_until(self, data: bytes, deadline: Callable[[], float]) -> bool:
        """Send everything; False if a wait for the socket outlasted `deadline()` (asked
        afresh before each wait, so it can bound each silence rather than the whole)."""
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self._fd(), view)
            except BlockingIOError:
                sent = 0
            if sent:
                view = view[sent:]
                continue
            if not await self._wait(trio.lowlevel.wait_writable, deadline()):
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


_TLS_READ = 64 * 1024 + 512  # a 64 KiB plaintext read is a few records of ciphertext
_TLS_WRITE = 64 * 1024  # plaintext encrypted (so ciphertext buffered) per step


class TLSIO(SocketIO):
    """TLS over a Trio socket after trio's handshake: the SSL object driven directly."""

    __slots__ = ("_incoming", "_outgoing", "_ssl", "reader_writes")

    def __init__(
        self,
        sock: trio.socket.SocketType,
        ssl_object: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
    ) -> None:
        super().__init__(sock)
        self._ssl = ssl_object
        self._incoming = incoming
        self._outgoing = outgoing
        # Whether receive_some may write what OpenSSL produced while reading (a KeyUpdate
        # reply). HTTP/2 has a reader and a writer task, and only the writer may write
        # (two writers could interleave records): it turns this off and sends `pending_out`.
        self.reader_writes = True

    def pending_out(self) -> int:
        """Ciphertext OpenSSL produced that is not sent yet."""
        return self._outgoing.pending

    @classmethod
    def for_stream(cls, stream: trio.abc.Stream) -> TLSIO | None:
        """A TLSIO for an SSLStream over a plain Trio socket; None if that cannot be done."""
        assert isinstance(stream, trio.SSLStream)
        transport = stream.transport_stream
        plain = SocketIO.for_stream(transport)
        ssl_object = getattr(stream, "_ssl_object", None)
        incoming = getattr(stream, "_incoming", None)
        outgoing = getattr(stream, "_outgoing", None)
        if (
            type(plain) is not SocketIO
            or not isinstance(ssl_object, ssl.SSLObject)
            or not isinstance(incoming, ssl.MemoryBIO)
            or not isinstance(outgoing, ssl.MemoryBIO)
        ):
            return None
        return cls(plain._sock, ssl_object, incoming, outgoing)

    async def receive_some(self, size: int, deadline: float) -> bytes | None:
        """Up to `size` plaintext bytes (b"" at EOF), or None if `deadline` passed."""
        ssl_object = self._ssl
        incoming = self._incoming
        while True:
            if incoming.pending or ssl_object.pending() or incoming.eof:
                try:
                    data = ssl_object.read(size)
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as exc:
                    # https_compatible: a TCP close without close_notify is an EOF.
                    if incoming.eof and _is_eof(exc):
                        return b""
                    raise
                else:
                    if self._outgoing.pending and self.reader_writes:  # a KeyUpdate reply
                        await SocketIO.send_until(self, self._outgoing.read(), lambda: deadline)
                    return data
            try:
                cipher = os.read(self._fd(), _TLS_READ)
            except BlockingIOError:
                if not await self._wait(trio.lowlevel.wait_readable, deadline):
                    return None
                continue
            if cipher:
                incoming.write(cipher)
            else:
                incoming.write_eof()

    async def send_until(self, data: bytes, deadline: Callable[[], float]) -> bool:
        """Encrypt and send everything (and any ciphertext already pending); False if a
        wait outlasted `deadline()`."""
        view = memoryview(data)
        ssl_object = self._ssl
        send = SocketIO.send_until
        if not view and self._outgoing.pending:
            return await send(self, self._outgoing.read(), deadline)
        while view:
            try:
                sent = ssl_object.write(view[:_TLS_WRITE])
            except ssl.SSLWantReadError:
                # OpenSSL needs the peer's bytes first (a renegotiation): read some.
                if not await send(self, self._outgoing.read(), deadline):
                    return False
                if not await self._wait(trio.lowlevel.wait_readable, deadline()):
                    return False
                cipher = os.read(self._fd(), _TLS_READ)
                if cipher:
                    self._incoming.write(cipher)
                else:
                    self._incoming.write_eof()
                continue
            view = view[sent:]
            if not await send(self, self._outgoing.read(), deadline):
                return False
        return True


def _is_eof(exc: ssl.SSLError) -> bool:
    """An EOF from the peer without close_notify (what trio's https_compatible forgives)."""
    return isinstance(exc, ssl.SSLEOFError) or "UNEXPECTED_EOF_WHILE_READING" in str(exc)

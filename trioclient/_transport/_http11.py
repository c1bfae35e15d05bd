"""HTTP/1.1 over one byte stream: a thin Trio driver around a sans-I/O `h11.Connection`.

Theory of operation
-------------------
`HTTP11Connection` moves bytes and nothing else: h11 decides what they mean. There are only
two awaits on the network, `_write` and `_read`; each runs under a cancel scope whose
deadline is the phase's timeout capped by the request's total deadline, and each translates
I/O errors in one place. (The only other await, besides the request body iterator itself,
is `aclose()` of that iterator when it is abandoned part-way.) If either is interrupted by
*anything* (timeout, error, `Cancelled`, `KeyboardInterrupt`) the connection's framing is
unknown, so the caller must close it: `reusable` only turns true after h11 has seen both
our request and the server's response complete, with no EOF and no `Connection: close`.

Reused connections can go stale while idle (the server closes at its keep-alive timeout).
The pool checks readability before reuse, but a close can race with our write, so a *reused*
connection on which reading fails before the first response byte arrives raises
`StaleConnection`, which the pool retries once for idempotent requests. A failed write alone
is not judged stale: the server may have answered early (below), so we read first.

Early responses: a server may answer (413, 401...) and close before reading a large body. A
failed body write therefore does not raise at once; we still try to read the response, and
only if that fails does the write error surface.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterable, Coroutine
from typing import TYPE_CHECKING, Any, NoReturn

import h11
import trio

from .._config import Deadlines
from .._exceptions import (
    LocalProtocolError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
    WriteError,
    WriteTimeout,
)
from .._headers import check_header_safety
from ._base import ResponseHead
from ._body import checked_chunk, close_abandoned, next_chunk
from ._errors import IO_ERRORS, translate
from ._h1_reader import SPEEDUPS, FastReader, ResponseReader
from ._sockio import SocketIO

if TYPE_CHECKING:
    from .._request import Request

__all__ = ["H11Body", "HTTP11Connection", "RequestEvents", "StaleConnection"]

READ_SIZE = 64 * 1024  # a read while waiting for a response head
# A read in the body: larger, since a large download costs a syscall, a checkpoint and a
# trip through the driver per read (W3: 4x fewer of each, 30% less CPU per MB). Still one
# bounded buffer: the bytes read are handed out as they are, never accumulated.
BODY_READ_SIZE = 256 * 1024
WRITE_SLICE = 64 * 1024  # the unit of progress that resets the write timeout
MAX_HEAD_SIZE = 100 * 1024
_DONE = h11.DONE


class StaleConnection(Exception):
    """Internal: a reused connection failed before any response byte; safe to retry."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(str(error))
        self.error = error


class HTTP11Connection:
    """One HTTP/1.1 connection: sends requests and receives responses, one at a time."""

    __slots__ = (
        "_bytes_in",
        "_eof",
        "_fast",
        "_frame",
        "_h11",
        "_our_done",
        "_reader",
        "_stream",
        "closed_reason",
        "io",
        "reused",
        "trailers",
        "where",
    )

    def __init__(self, stream: trio.abc.Stream, where: str, *, speedups: bool = SPEEDUPS) -> None:
        self._stream = stream
        # Plain sockets skip Trio's stream layer on the hot path (see _sockio.py).
        self.io = SocketIO.for_stream(stream)
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_SIZE)
        # Responses are read by h11 itself, or by llhttp where it agrees (_h1_reader.py).
        self._fast = FastReader(MAX_HEAD_SIZE) if speedups else None
        self._reader: ResponseReader = self._h11 if self._fast is None else self._fast
        # With the fast reader, h11 only frames requests, and the bytes it wrote for the
        # last request head are reused when the next request is the same event with a body
        # of the same length that h11 passed through unchanged (see send_request).
        self._frame: tuple[h11.Request, int, bytes, bool] | None = None
        self._our_done: bool | None = None  # None: ask self._h11 (see finish_cycle)
        self._eof = False
        self._bytes_in = 0  # response bytes received in the current cycle
        self.where = where
        self.reused = False
        self.closed_reason: str | None = None
        self.trailers: list[tuple[bytes, bytes]] = []  # of the current response

    # -- the exchange ---------------------------------------------------------------------

    async def send_request(
        self,
        request: Request,
        event: h11.Request,
        deadlines: Deadlines,
    ) -> TransportError | None:
        """Send the request head and body. Returns a write error to report *after* reading.

        `event` comes from `RequestEvents.event_for` (built before a connection was taken, so an
        invalid request never costs one). The write timeout bounds each write's silence.
        """
        conn = self._h11
        self._bytes_in = 0
        self.trailers = []
        body = request._body
        fast = self._fast
        if fast is not None:
            frame = self._frame
            if (
                frame is not None
                and frame[0] is event
                and type(body) is bytes
                and len(body) == frame[1]
            ):
                # h11 would write these very bytes and end in the same state.
                fast.start(None, event)
                self._our_done = frame[3]
                try:
                    await self._write(frame[2] + body if body else frame[2], deadlines, request)
                except WriteError as exc:
                    return exc
                return None
            conn = self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_SIZE)
            self._our_done = None
            fast.start(conn, event)
        try:
            data = conn.send(event)
            if isinstance(body, bytes):
                head = data
                if body:
                    data += conn.send(h11.Data(data=body))
                data += conn.send(h11.EndOfMessage())
                if fast is not None and len(data) == len(head) + len(body):
                    self._frame = (event, len(body), head, conn.our_state is _DONE)
                await self._write(data, deadlines, request)
                return None
            await self._write(data, deadlines, request)
            await self._send_stream(body, deadlines, request)
        except h11.LocalProtocolError as exc:
            raise translate(exc, WriteError, "building the request", request=request) from exc
        except WriteError as exc:
            # Even on a reused connection this may be an early response (413, 401) rather
            # than a stale connection: reading tells them apart, and raises StaleConnection
            # if the server went away without a response byte.
            return exc
        return None

    async def _send_stream(
        self,
        body: AsyncIterable[bytes],
        deadlines: Deadlines,
        request: Request,
    ) -> None:
        conn = self._h11
        iterator = aiter(body)
        try:
            while True:
                try:
                    chunk = await next_chunk(iterator)
                except StopAsyncIteration:
                    break
                if checked_chunk(chunk):
                    await self._write(conn.send(h11.Data(data=chunk)), deadlines, request)
        except BaseException:
            await close_abandoned(iterator)
            raise
        await self._write(conn.send(h11.EndOfMessage()), deadlines, request)

    async def receive_response_head(self, request: Request, deadlines: Deadlines) -> ResponseHead:
        """Wait for the final response head, skipping 1xx ones (but 101, see below)."""
        while True:
            event = await self._next_event(request, deadlines, head=True)
            if type(event) is ResponseHead:  # read by llhttp
                return event
            if isinstance(event, (h11.Response, h11.InformationalResponse)):
                # 101 Switching Protocols (the request asked for an Upgrade) ends HTTP on
                # this connection: it is the final response, with no body, never reused.
                if isinstance(event, h11.InformationalResponse) and event.status_code != 101:
                    continue
                version = "HTTP/1.1" if event.http_version == b"1.1" else "HTTP/1.0"
                return ResponseHead(
                    event.status_code, event.reason, _triples(event.headers), version
                )
            raise RemoteProtocolError(  # pragma: no cover - h11 only yields the above here
                f"Unexpected {type(event).__name__} from {self.where}", request=request
            )

    async def receive_body_chunk(self, request: Request, deadlines: Deadlines) -> bytes:
        """The next piece of the response body; b"" once the body is complete."""
        while True:
            event = await self._next_event(request, deadlines, head=False)
            if type(event) is bytes:  # read by llhttp
                return event
            if type(event) is h11.Data:
                if event.data:
                    return bytes(event.data)
                continue
            if type(event) is h11.EndOfMessage and event.headers:
                self.trailers = event.headers.raw_items()
            # EndOfMessage; ConnectionClosed; or PAUSED once the server switched protocols
            # (a 2xx to CONNECT, a 101). h11 returns PAUSED again on every call, without
            # reading: looping on it would spin forever without a checkpoint.
            return b""

    def finish_cycle(self) -> bool:
        """After a complete exchange: make the connection ready for the next request.

        Returns False when the connection cannot be reused (EOF seen, `Connection: close`,
        or the exchange did not complete).
        """
        conn = self._h11
        fast = self._fast
        if fast is not None:
            # h11 never saw this response (or read it on a connection of its own): the next
            # exchange gets a new h11 connection if it needs one.
            our_done = self._our_done
            if our_done is None:
                our_done = conn.our_state is _DONE
            if self._eof or not our_done or not fast.finish():
                return False
            self.reused = True
            return True
        if self._eof or conn.our_state is not _DONE or conn.their_state is not _DONE:
            return False
        conn.start_next_cycle()
        self.reused = True
        return True

    # -- the only two awaits --------------------------------------------------------------

    async def _next_event(self, request: Request, deadlines: Deadlines, *, head: bool) -> object:
        conn = self._reader
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if head and self._eof and self._bytes_in == 0:
                    error = RemoteProtocolError(
                        f"Server {self.where} disconnected without sending a response.",
                        request=request,
                    )
                    if self.reused:
                        raise StaleConnection(error) from exc
                    raise error from exc
                if head and exc.error_status_hint == 431:  # h11: "Receive buffer too long"
                    raise RemoteProtocolError(
                        f"The response head from {self.where} exceeds the limit of"
                        f" {MAX_HEAD_SIZE // 1024} KiB.",
                        request=request,
                    ) from exc
                raise translate(
                    exc, ReadError, f"reading the response from {self.where}", request=request
                ) from exc
            if event is not h11.NEED_DATA:
                return event
            data = await self._read(request, deadlines, head=head)
            conn.receive_data(data)  # type: ignore[arg-type]  # both accept any bytes-like

    async def _read(
        self, request: Request, deadlines: Deadlines, *, head: bool
    ) -> bytes | bytearray:
        deadline = deadlines.read()
        size = READ_SIZE if head else BODY_READ_SIZE
        data: bytes | bytearray | None
        try:
            if self.io is not None:
                data = await self.io.receive_some(size, deadline)
                if data is None:
                    raise self._read_timeout(request, deadlines, deadline)
            elif deadline == math.inf:
                data = await self._stream.receive_some(size)
            else:
                with trio.CancelScope(deadline=deadline) as scope:
                    data = await self._stream.receive_some(size)
                if scope.cancelled_caught:
                    raise self._read_timeout(request, deadlines, deadline)
        except IO_ERRORS as exc:
            error = translate(
                exc,
                ReadError,
                f"reading the response from {self.where}",
                request=request,
                closed_reason=self.closed_reason,
            )
            if head and self.reused and self._bytes_in == 0 and isinstance(error, ReadError):
                raise StaleConnection(error) from exc
            raise error from exc
        if not data:
            self._eof = True
            return b""
        self._bytes_in += len(data)
        return data

    async def _write(self, data: bytes, deadlines: Deadlines, request: Request) -> None:
        try:
            if self.io is not None:
                if not await self.io.send_all(data, deadlines):
                    raise self._write_timeout(request, deadlines, deadlines.write())
                return
            if deadlines.timeout.write is None and deadlines.total == math.inf:
                await self._stream.send_all(data)
                return
            # The write timeout bounds each *silence*, not the whole upload: a large body is
            # sent in slices, each under a fresh deadline, so an upload that keeps moving is
            # never cut off (only `total` bounds the whole of it).
            view = memoryview(data) if len(data) > WRITE_SLICE else data
            for start in range(0, len(view) or 1, WRITE_SLICE):
                deadline = deadlines.write()
                with trio.CancelScope(deadline=deadline) as scope:
                    await self._stream.send_all(view[start : start + WRITE_SLICE])
                if scope.cancelled_caught:
                    raise self._write_timeout(request, deadlines, deadline)
        except IO_ERRORS as exc:
            raise translate(
                exc,
                WriteError,
                f"sending the request to {self.where}",
                request=request,
                closed_reason=self.closed_reason,
            ) from exc

    def _read_timeout(self, request: Request, deadlines: Deadlines, deadline: float) -> ReadTimeout:
        why = deadlines.why(deadline, deadlines.timeout.read, "data")
        return ReadTimeout(
            f"Timed out reading the response from {self.where} ({why})", request=request
        )

    def _write_timeout(
        self, request: Request, deadlines: Deadlines, deadline: float
    ) -> WriteTimeout:
        why = deadlines.why(deadline, deadlines.timeout.write, "progress")
        return WriteTimeout(
            f"Timed out sending the request to {self.where} ({why})", request=request
        )


class H11Body:
    """The raw (still content-encoded) body of the response now being read on a connection.

    It only moves bytes: the pool's wrapper (`PooledStream`) decides what the body's end,
    failure or early close means for the connection.
    """

    __slots__ = ("_deadlines", "_http", "_request", "driver")

    def __init__(self, http: HTTP11Connection, request: Request, deadlines: Deadlines) -> None:
        self._http = self.driver = http  # `driver.closed_reason`: read by the pool's wrapper
        self._request = request
        self._deadlines = deadlines

    @property
    def closed_reason(self) -> str | None:
        """Why the connection was closed under this body (the client closed), if so."""
        return self._http.closed_reason

    @property
    def trailers(self) -> list[tuple[bytes, bytes]]:
        """Trailing headers of a chunked response, once its body has been read."""
        return self._http.trailers

    # Not `async def`: it hands back the driver's coroutine (a frame less per chunk).
    def receive_some(self) -> Coroutine[Any, Any, bytes]:
        """The next raw body chunk; b"" at the end of the body."""
        return self._http.receive_body_chunk(self._request, self._deadlines)

    def close(self) -> None:
        """Nothing to do here: an unfinished exchange makes the pool close the connection."""


# The field grammar of RFC 9110 (the rules h11 applies). Checking every field of every
# request is a large part of h11's cost per request, yet most fields repeat (User-Agent,
# Accept, Host...), so fields that passed are remembered and h11 is told the headers are
# already checked (`_parsed=True`, which skips only these two regexes). Whole request
# events repeat too (a client polling one URL): h11 events are frozen, so those that were
# built once are reused. The memory belongs to one pool (one client), is bounded, and is
# dropped when the client closes, so header values (credentials among them) never outlive
# the client or cross to another one.
_FIELD_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")
_MAX_CACHED = 1024


class RequestEvents:
    """Builds h11 request events, remembering checked fields and whole events (bounded)."""

    __slots__ = ("_checked", "_events")

    def __init__(self) -> None:
        self._checked: dict[tuple[bytes, bytes], None] = {}
        self._events: dict[tuple[bytes, bytes, tuple[tuple[bytes, bytes], ...]], h11.Request] = {}

    def clear(self) -> None:
        """Forget everything (the client closed)."""
        self._checked.clear()
        self._events.clear()

    def event_for(
        self,
        request: Request,
        target: bytes | None = None,
        extra: tuple[tuple[bytes, bytes], ...] = (),
    ) -> h11.Request:
        """The h11 event for `request`, or LocalProtocolError; never quotes a header value.

        `target` replaces the URL's origin-form target (a forward proxy wants the absolute
        form); `extra` fields (the proxy's, already checked) follow the request's own.
        """
        headers = request.headers.raw
        if extra:
            headers = [*headers, *extra]
        if target is None:
            target = request.url._target
        key = (request._method_bytes, target, tuple(headers))
        events = self._events
        event = events.get(key)
        if event is not None:
            return event
        checked = self._checked
        for field in headers:
            if field not in checked:
                name, value = field
                if _FIELD_NAME.fullmatch(name) is None or _FIELD_VALUE.fullmatch(value) is None:
                    _refuse(request, headers)
                if len(checked) >= _MAX_CACHED:
                    checked.clear()
                checked[field] = None
        try:
            event = h11.Request(
                method=request._method_bytes,
                target=target,
                headers=headers,
                _parsed=True,
            )
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(
                f"Refused to send an invalid request: {exc}", request=request
            ) from None
        if len(events) >= _MAX_CACHED:
            events.clear()
        events[key] = event
        return event


def _refuse(request: Request, headers: list[tuple[bytes, bytes]]) -> NoReturn:
    """Raise LocalProtocolError for an invalid field, naming it but never quoting its value."""
    try:
        check_header_safety(headers)
    except LocalProtocolError as unsafe:
        unsafe.request = request
        raise
    for name, value in headers:
        if _FIELD_NAME.fullmatch(name) is None:
            what = f"Illegal header name {name!r}"
            break
        if _FIELD_VALUE.fullmatch(value) is None:
            what = f"Header value for {name.decode('latin-1')!r} has leading or trailing whitespace"
            break
    raise LocalProtocolError(f"Refused to send an invalid request: {what}", request=request)


def _triples(headers: h11._headers.Headers) -> list[tuple[bytes, bytes, bytes]]:
    """(raw name, lowercased name, value) for each field, as our Headers keeps them.

    h11 already holds exactly these triples; taking its list saves rebuilding it for every
    response. Should h11's private attribute go away, we rebuild it (tested).
    """
    full = getattr(headers, "_full_items", None)
    if isinstance(full, list):
        return full
    return [(name, name.lower(), value) for name, value in headers.raw_items()]

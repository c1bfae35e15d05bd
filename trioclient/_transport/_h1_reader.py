"""Reading HTTP/1.1 responses: h11, or llhttp (`httptools`) when `trioclient[speedups]` is in.

Theory of operation
-------------------
The driver (`_http11.py`) reads responses through `ResponseReader`, a two-method sans-I/O
interface that `h11.Connection` already has: `receive_data(bytes)` (b"" is EOF) and
`next_event()`. h11 is the reference implementation and the only one without the extra.

`FastReader` is the other implementation. About half of what a small HTTP/1.1 request cost
us was h11 parsing the response head (a regex per line, a regex per field, an event object
validated again); llhttp does the same in C. The two must never disagree, so `FastReader`
only handles a response itself when it can show that h11 would accept it and read the
same thing into it; for anything else it *hands the response to h11*, replaying the bytes
received so far chunk by chunk as they arrived, so h11 sees exactly what it would have seen
had it been reading all along and decides (accepts, or raises its own error). The fast path
therefore covers the common case only:

- a response to a request other than HEAD or CONNECT (their framing depends on the
  request; h11 knows it, and they are rare);
- a head made of CRLF lines that matches `_FAST_HEAD`, a strict subset of h11's grammar
  (no obs-fold, no bare LF, no whitespace after a value, HTTP/1.0 or 1.1, a final status);
- framed by exactly one Content-Length of plain digits, or bodiless (204, 304).

Chunked bodies, read-until-close bodies, 1xx responses, duplicate or comma-separated
Content-Length, and every malformed head go to h11. The hand-over is only possible before
the head is returned, which is why the fast path is decided on the complete head; after it,
a Content-Length body is only counted and sliced (no parser needed), and an EOF before its
end raises h11's own error with h11's own words.

h11 still frames our requests (`_http11.py` sends with an `h11.Connection`). With the fast
reader that connection never sees a response, so the driver gives each exchange a fresh
one; the bytes after a response (if the server sent any) are carried to the next exchange,
as h11 would carry them in its buffer.

Events are h11's (`NEED_DATA`, `Data`, `EndOfMessage`...) when h11 reads; the fast path
returns a `ResponseHead` for the head, `bytes` for body data and `EndOfMessage()`.

Environment: `TRIOCLIENT_NO_SPEEDUPS=1` (read once, at import) turns the fast reader off.
"""

from __future__ import annotations

import os
import re
from typing import Protocol

import h11

from ._base import ResponseHead

try:
    import httptools
except ImportError:  # pragma: no cover - the [speedups] extra is not installed
    httptools = None  # type: ignore[assignment]

__all__ = ["SPEEDUPS", "FastReader", "ResponseReader"]

SPEEDUPS: bool = httptools is not None and os.environ.get("TRIOCLIENT_NO_SPEEDUPS", "") in ("", "0")

NEED_DATA = h11.NEED_DATA
_END = h11.EndOfMessage()  # frozen, without trailers: one is enough

# What h11 takes as the end of a head (any line break, CRLF or a bare LF).
_BLANK_LINE = re.compile(rb"\n\r?\n")
# The heads the fast path takes: a subset of h11's grammar (RFC 9112) in which every field
# is `name ":" OWS value CRLF` with no whitespace after a non-empty value, so that llhttp's
# split of each line is exactly h11's.
_VCHAR = rb"[\x21-\x7e\x80-\xff]"
_FAST_HEAD = re.compile(
    rb"HTTP/1\.[01] [2-9][0-9][0-9](?: [\t\x20-\x7e\x80-\xff]*)?\r\n"
    rb"(?:[-!#$%&'*+.^_`|~0-9A-Za-z]+:[ \t]*(?:" + _VCHAR + rb"+(?:[ \t]+" + _VCHAR + rb"+)*)?"
    rb"\r\n)*\r\n"
)
_DIGITS = re.compile(rb"[0-9]{1,20}")  # h11 refuses a longer Content-Length
_NO_BODY = frozenset((204, 304))
_SPECIAL = frozenset((b"content-length", b"transfer-encoding", b"connection"))


class ResponseReader(Protocol):
    """The reading half of `h11.Connection`, which is all the driver needs to read."""

    def receive_data(self, data: bytes) -> None:
        """Bytes from the server; b"" means EOF."""

    def next_event(self) -> object:
        """The next event, `h11.NEED_DATA`, or h11.RemoteProtocolError for bad input."""


class _Bail(Exception):
    """Internal: the response goes to h11."""


class FastReader:
    """Reads responses with llhttp where that provably agrees with h11, else with h11."""

    __slots__ = (
        "_buf",
        "_chunks",
        "_eof",
        "_event",
        "_fields",
        "_h11",
        "_h11_reads",
        "_keep_alive",
        "_leftover",
        "_length",
        "_limit",
        "_pending",
        "_remaining",
        "_search",
        "_special",
        "done",
    )

    def __init__(self, limit: int) -> None:
        self._limit = limit  # the driver's h11 max_incomplete_event_size
        self._leftover = b""  # what followed the last response, for the next one
        self._h11: h11.Connection | None = None
        self._h11_reads = True
        self._pending: list[bytes] = []
        # The head being read (a bytearray once it takes several reads), then the unread
        # part of the body: always bytes then.
        self._buf: bytes | bytearray = b""
        self.done = False

    def start(self, conn: h11.Connection | None, event: h11.Request) -> None:
        """A new exchange: `event` is being sent, by `conn` (or by the driver without h11,
        in which case an h11 connection is made up only if h11 has to read)."""
        self._h11 = conn
        self._event = event
        leftover = self._leftover
        self._leftover = b""
        self._pending = []
        self.done = False
        self._eof = False
        if event.method == b"HEAD" or event.method == b"CONNECT":
            self._h11_reads = True
            if leftover:
                self._reader().receive_data(leftover)
            return
        self._h11_reads = False
        self._buf = leftover
        self._chunks = [leftover] if leftover else []
        self._search = 0
        self._remaining = -1  # -1 while reading the head

    def finish(self) -> bool:
        """The exchange is over: did the server finish its response and allow reuse?"""
        if self._h11_reads:
            conn = self._reader()
            if conn.their_state is not h11.DONE:
                return False
            data, _closed = conn.trailing_data
            self._leftover = data + b"".join(self._pending)
            return True
        if not (self.done and self._keep_alive):
            return False
        self._leftover = bytes(self._buf)  # bytes already (the body phase), so no copy
        return True

    # -- ResponseReader ---------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the server; b"" means EOF."""
        if self._h11_reads:
            self._reader().receive_data(data)
        elif not data:
            self._eof = True
        elif self._remaining >= 0:  # body: the driver only reads once the buffer is empty
            self._buf = data if type(data) is bytes else bytes(data)
        else:
            if type(data) is not bytes:
                data = bytes(data)
            self._chunks.append(data)
            buf = self._buf
            if not buf:
                self._buf = data
            elif type(buf) is bytearray:  # a head in many reads: grow in place, not n² copies
                buf += data
            else:
                self._buf = bytearray(buf) + data

    def next_event(self) -> object:
        """The next event (see the module docstring for their types)."""
        if self._h11_reads:
            return self._from_h11()
        remaining = self._remaining
        if remaining < 0:
            try:
                return self._head()
            except _Bail:
                self._h11_reads = True
                self._pending = [*self._chunks, b""] if self._eof else self._chunks
                self._chunks = []
                self._buf = b""
                return self._from_h11()
        buf = self._buf
        if remaining == 0:
            self.done = True
            return _END
        if buf:
            if len(buf) <= remaining:
                self._buf = b""
                self._remaining = remaining - len(buf)
                return buf
            self._buf = buf[remaining:]
            self._remaining = 0
            return buf[:remaining]
        if self._eof:
            raise h11.RemoteProtocolError(
                "peer closed connection without sending complete message body "
                f"(received {self._length - remaining} bytes, expected {self._length})"
            )
        return NEED_DATA

    # -- internals ---------------------------------------------------------------------------

    def _reader(self) -> h11.Connection:
        """The h11 connection that reads this response, made up if the request was sent
        without one (h11 frames a response by the request it answers)."""
        conn = self._h11
        if conn is None:
            conn = self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=self._limit)
            conn.send(self._event)
        return conn

    def _from_h11(self) -> object:
        """h11's next event, feeding it the replayed chunks one at a time as it asks."""
        conn = self._reader()
        pending = self._pending
        while True:
            event = conn.next_event()
            if event is not NEED_DATA or not pending:
                return event
            conn.receive_data(pending.pop(0))

    def _head(self) -> object:
        buf = self._buf
        blank = _BLANK_LINE.search(buf, self._search)
        if blank is None:
            # h11 would wait too, unless it would already refuse what it has.
            if self._eof or len(buf) > self._limit or (buf and buf[0] < 0x21):
                raise _Bail
            self._search = max(0, len(buf) - 2)
            return NEED_DATA
        end = blank.end()
        if end - blank.start() != 3 or buf[end - 4] != 13:  # ended by a bare LF
            raise _Bail
        if _FAST_HEAD.fullmatch(buf, 0, end) is None:
            raise _Bail
        self._fields: list[tuple[bytes, bytes, bytes]] = []
        self._special: list[tuple[bytes, bytes]] = []
        parser = httptools.HttpResponseParser(self)
        try:
            parser.feed_data(memoryview(buf)[:end])
        except httptools.HttpParserError:
            raise _Bail from None
        status = int(buf[9:12])
        length = -1
        self._keep_alive = buf[7] == 49  # HTTP/1.1 (h11: a 1.0 response closes)
        for name, value in self._special:
            if name == b"content-length":
                if length >= 0 or _DIGITS.fullmatch(value) is None:
                    raise _Bail  # h11 merges or refuses; it will say which
                length = int(value)
            elif name == b"transfer-encoding":
                raise _Bail
            elif b"close" in [v.strip() for v in value.lower().split(b",")]:
                self._keep_alive = False
        if status in _NO_BODY:
            length = 0
        elif length < 0:
            raise _Bail  # read until EOF: h11's Http10Reader
        self._length = self._remaining = length
        self._buf = bytes(buf[end:]) if type(buf) is bytearray else buf[end:]
        self._chunks = []
        line_end = buf.index(b"\r\n")
        version = "HTTP/1.1" if buf[7] == 49 else "HTTP/1.0"
        return ResponseHead(status, bytes(buf[13:line_end]), self._fields, version)

    def on_header(self, name: bytes, value: bytes) -> None:
        """llhttp: one header field."""
        lower = name.lower()
        self._fields.append((name, lower, value))
        if lower in _SPECIAL:
            self._special.append((lower, value))

"""The `[speedups]` response reader (llhttp) against h11, the reference: they must agree.

Every case runs the real HTTP/1.1 driver (`HTTP11Connection`) twice, once reading with h11
and once with `FastReader`, over the same bytes cut into the same pieces, and compares
everything a caller can see: heads, body pieces, trailers, whether the connection is reused,
what the next exchange on it reads, and the exact error (class and message). The server
here is a scripted in-memory stream rather than a socket because the test is about byte
boundaries, which a real socket would merge; the whole suite also runs against real servers
in both modes (`.ci/run`).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trioclient import Timeout, TransportError
from trioclient._config import Deadlines
from trioclient._request import Request
from trioclient._transport import _h1_reader
from trioclient._transport._http11 import (
    BODY_READ_SIZE,
    READ_SIZE,
    HTTP11Connection,
    RequestEvents,
    StaleConnection,
)

pytestmark = pytest.mark.skipif(
    _h1_reader.httptools is None, reason="httptools ([speedups]) is not installed"
)


class Scripted(trio.abc.Stream):
    """The server: its bytes in exactly the pieces given, then EOF. Writes are dropped."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = list(pieces)
        self.sent = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        self.sent += data

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        return self.pieces.pop(0) if self.pieces else b""

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def run_exchanges(
    pieces: list[bytes], methods: list[str | tuple[str, bytes]], speedups: bool
) -> list[Any]:
    """Everything the driver sends and reports for a series of requests on one connection.

    A method may come with a body: (method, body)."""
    stream = Scripted(pieces)
    http = HTTP11Connection(stream, "example.test:80", speedups=speedups)
    events = RequestEvents()
    out: list[Any] = []
    for item in methods:
        method, body = (item, b"") if isinstance(item, str) else item
        request = Request(method, "http://example.test/", content=body or None)
        deadlines = Deadlines(Timeout(None))
        try:
            await http.send_request(request, events.event_for(request), deadlines)
            out.append(("sent", bytes(stream.sent)))
            stream.sent.clear()
            head = await http.receive_response_head(request, deadlines)
            fields = [tuple(bytes(part) for part in field) for field in head.headers]
            out.append(("head", head.status, bytes(head.reason), head.http_version, fields))
            while chunk := await http.receive_body_chunk(request, deadlines):
                assert type(chunk) is bytes
                out.append(("data", chunk))
            out.append(("trailers", [(bytes(n), bytes(v)) for n, v in http.trailers]))
        except (TransportError, StaleConnection) as exc:
            out.append(("error", type(exc).__name__, str(exc)))
            return out
        reusable = http.finish_cycle()
        out.append(("reusable", reusable))
        if not reusable:
            return out
    return out


def both(
    pieces: list[bytes], methods: list[str | tuple[str, bytes]]
) -> tuple[list[Any], list[Any]]:
    async def main() -> tuple[list[Any], list[Any]]:
        pure = await run_exchanges(pieces, methods, speedups=False)
        fast = await run_exchanges(pieces, methods, speedups=True)
        return pure, fast

    return trio.run(main)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted({p for p in points if 0 < p < len(data)}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


OK_1K = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 17:40:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\nContent-Length: 10\r\n"
    b'Connection: keep-alive\r\nETag: "6743f4ae-400"\r\n\r\n0123456789'
)
NEXT = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok"

# Valid and malformed responses, each followed by a second one for the next request.
CORPUS = [
    OK_1K + NEXT,
    OK_1K + b"junk",
    b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc" + NEXT,
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\nz" + NEXT,
    b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n" + NEXT,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"
    + NEXT,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi" + NEXT,
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello" + NEXT,
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n" + NEXT,
    b"HTTP/1.1 200 OK\nContent-Length: 1\n\nz" + NEXT,
    b"HTTP/1.1 200 OK\r\nX-Trailing: a \r\nContent-Length: 0\r\n\r\n" + NEXT,
    b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
    b" HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"",
]


@pytest.mark.parametrize("response", CORPUS, ids=range(len(CORPUS)))
@pytest.mark.parametrize("methods", [["GET", "GET"], ["HEAD", "GET"]])
def test_every_byte_boundary(response: bytes, methods: list[str | tuple[str, bytes]]) -> None:
    """One cut at every position, and one byte per read: both readers agree."""

    async def main() -> None:
        cuts = [[i] for i in range(1, len(response))] + [list(range(1, len(response)))]
        for points in [[], *cuts]:
            pieces = cut(response, points)
            pure = await run_exchanges(pieces, methods, speedups=False)
            fast = await run_exchanges(pieces, methods, speedups=True)
            assert fast == pure, pieces

    trio.run(main)


# -- generated responses -----------------------------------------------------------------------

_NAMES = [
    b"Content-Length",
    b"content-length",
    b"Transfer-Encoding",
    b"Connection",
    b"X-A",
    b"Server",
    b"Bad Name",
    b"",
    b"X\x80",
]
_VALUES = [
    b"0",
    b"5",
    b"chunked",
    b"close",
    b"keep-alive",
    b"Close, x",
    b" 5",
    b"5, 5",
    b"5,6",
    b"-1",
    b"1" * 21,
    b"gzip, chunked",
    b"",
    b"   ",
    b"a\x01b",
    b"a \t b",
    b"caf\xc3\xa9",
    b"x\x7f",
]


_GOOD_NAMES = [b"X-A", b"Server", b"connection", b"Content-Type", b"ETag"]
_GOOD_VALUES = [b"keep-alive", b"close", b"a \t b", b"caf\xc3\xa9", b"", b"x, y", b"text/html"]


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    """A response, well-formed or not, then maybe bytes the server was not asked for."""
    clean = draw(st.booleans())  # half the cases only use what h11 accepts (mostly)

    def pick(good: list[Any], bad: list[Any]) -> Any:
        return draw(st.sampled_from(good if clean else good + bad))

    eol = pick([b"\r\n"], [b"\n"])
    out = b""
    if draw(st.integers(0, 4)) == 0:
        out += b"HTTP/1.1 100 Continue" + eol + eol
    version = pick([b"HTTP/1.1", b"HTTP/1.0"], [b"HTTP/2.0", b"http/1.1"])
    status = pick([b"200", b"204", b"304", b"404", b"500"], [b"101", b"999", b"099", b"2x0"])
    reason = pick([b" OK", b"", b" ", b"  two", b" caf\xc3\xa9", b" a\tb"], [b" \x00"])
    out += version + b" " + status + reason + eol
    body = draw(st.binary(max_size=12))
    framing = pick(["length", "length", "length", "chunked"], ["none", "short", "long"])
    fields: list[tuple[bytes, bytes]] = []
    if framing in ("length", "short", "long"):
        delta = {"length": 0, "short": 3, "long": -3}[framing]
        fields.append((b"Content-Length", str(max(0, len(body) + delta)).encode()))
    elif framing == "chunked":
        fields.append((b"Transfer-Encoding", b"chunked"))
        size = pick([f"{len(body):x}".encode()], [b"zz", b"1"])
        ext = pick([b"", b";a=b"], [b" "])
        trailer = pick([b"", b"T: v" + eol], [b"Bad T" + eol])
        body = (
            size + ext + eol + body + eol + b"0" + eol + trailer + eol if body else b"0" + eol + eol
        )
    extra = draw(
        st.lists(
            st.tuples(
                st.sampled_from(_GOOD_NAMES if clean else _NAMES),
                st.sampled_from(_GOOD_VALUES if clean else _VALUES),
            ),
            max_size=4,
        )
    )
    for name, value in draw(st.permutations(fields + extra)):
        ws = draw(st.sampled_from([b" ", b"", b"\t", b"  "]))
        trailing = pick([b""], [b" ", b"\t"])
        out += name + b":" + ws + value + trailing + eol
        if not clean and draw(st.integers(0, 7)) == 0:
            out += b" folded" + eol
    out += eol + body
    return out + pick([b"", NEXT], [b"\r\n", b"junk", NEXT + b"x"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    response=responses(),
    points=st.lists(st.integers(1, 400), max_size=4),
    methods=st.sampled_from([["GET", "GET"], ["HEAD", "GET"], ["CONNECT", "GET"]]),
)
def test_generated_responses_agree(response: bytes, points: list[int], methods: list[str]) -> None:
    pure, fast = both(cut(response, points), methods)
    assert fast == pure


def test_fast_path_is_taken() -> None:
    """The common case really is read by llhttp (a head the driver did not get from h11)."""

    async def main() -> None:
        http = HTTP11Connection(Scripted([OK_1K + NEXT]), "example.test:80", speedups=True)
        request = Request("GET", "http://example.test/")
        deadlines = Deadlines(Timeout(None))
        await http.send_request(request, RequestEvents().event_for(request), deadlines)
        assert type(await http._next_event(request, deadlines, head=True)).__name__ == (
            "ResponseHead"
        )

    trio.run(main)


def test_head_limit_is_h11s() -> None:
    """A head over the limit fails the same way, whether it arrives in one piece or many."""
    big = b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * (120 * 1024) + b"\r\n\r\n"
    # h11 checks its limit only while a head is incomplete: in one piece, it is taken.
    for pieces, outcome in (([big], "head"), (cut(big, list(range(0, len(big), 20_000))), "error")):
        pure, fast = both(pieces, ["GET"])
        assert fast == pure
        assert pure[1][0] == outcome
    assert "exceeds the limit of 100 KiB" in pure[1][2]


def test_request_bytes_are_h11s() -> None:
    """With the speedups a repeated request head is not framed by h11 again: the bytes sent
    must still be exactly h11's, whatever the bodies (same length, another length, none)."""
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    methods: list[str | tuple[str, bytes]] = [
        ("POST", b"abc"),
        ("POST", b"xyz"),
        ("POST", b"longer"),
        ("POST", b"longer"),
        "GET",
        "GET",
        ("PUT", b"abc"),
    ]
    pure, fast = both([ok * len(methods)], methods)
    assert fast == pure
    assert [e[0] for e in pure].count("reusable") == len(methods)
    sent = [e[1] for e in pure if e[0] == "sent"]
    assert sent[1] == sent[0].replace(b"abc", b"xyz")


def test_connection_close_in_the_request_is_h11s() -> None:
    """A request saying `Connection: close` leaves the connection unusable in both modes."""
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    async def main() -> list[bool]:
        out = []
        for speedups in (False, True):
            http = HTTP11Connection(Scripted([ok]), "example.test:80", speedups=speedups)
            request = Request("GET", "http://example.test/", headers={"Connection": "close"})
            deadlines = Deadlines(Timeout(None))
            await http.send_request(request, RequestEvents().event_for(request), deadlines)
            await http.receive_response_head(request, deadlines)
            assert await http.receive_body_chunk(request, deadlines) == b""
            out.append(http.finish_cycle())
        return out

    assert trio.run(main) == [False, False]


def test_a_head_in_many_small_reads() -> None:
    """A long head dripped a few bytes per read (built up in place, not copied per read)."""
    fields = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 200) for i in range(150))
    head = b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 2\r\n\r\nok" + NEXT
    for step in (1, 7):
        pure, fast = both(cut(head, list(range(step, len(head), step))), ["GET", "GET"])
        assert fast == pure
        assert [e[0] for e in pure].count("reusable") == 2


def test_read_sizes_are_bounded() -> None:
    """A head is read 64 KiB at a time and a body 256 KiB at a time (fewer trips through
    the driver for a large download), in both modes: each read is one bounded buffer,
    handed out as it came."""
    body = bytes(range(256)) * 4096  # 1 MiB
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    class Recording(Scripted):
        def __init__(self, pieces: list[bytes]) -> None:
            super().__init__(pieces)
            self.asked: list[int | None] = []

        async def receive_some(self, max_bytes: int | None = None) -> bytes:
            self.asked.append(max_bytes)
            await trio.lowlevel.checkpoint()
            if not self.pieces:
                return b""
            piece = self.pieces.pop(0)
            assert max_bytes is not None
            if len(piece) > max_bytes:
                self.pieces.insert(0, piece[max_bytes:])
            return piece[:max_bytes]

    async def main(speedups: bool) -> tuple[list[int | None], list[int]]:
        stream = Recording([response])
        http = HTTP11Connection(stream, "example.test:80", speedups=speedups)
        request = Request("GET", "http://example.test/")
        deadlines = Deadlines(Timeout(None))
        await http.send_request(request, RequestEvents().event_for(request), deadlines)
        await http.receive_response_head(request, deadlines)
        chunks = []
        while chunk := await http.receive_body_chunk(request, deadlines):
            chunks.append(chunk)
        assert b"".join(chunks) == body
        assert http.finish_cycle()
        return stream.asked, [len(chunk) for chunk in chunks]

    for speedups in (False, True):
        asked, sizes = trio.run(main, speedups)
        assert asked == [READ_SIZE] + [BODY_READ_SIZE] * (len(asked) - 1)
        assert max(sizes) <= BODY_READ_SIZE
        # The first read took the head and the start of the body; the rest in full reads.
        assert len(asked) == 1 + math.ceil((len(response) - READ_SIZE) / BODY_READ_SIZE)

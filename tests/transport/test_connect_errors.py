"""Misbehaving peers and bad input: each gets a precise trioclient exception, never a hang.

Every failure must come out as one exception from trioclient's tree whose message names the
peer (``127.0.0.1:PORT``) and what was going on; never a raw OSError, ssl.SSLError,
trio.BrokenResourceError or h11 error. After it, the pool's books balance and the *same*
client still works; the autouse leak checker verifies that no client socket is left open.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys
import tempfile
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing
from helpers import assert_quiet
from servers.raw import (
    BufferedStream,
    ConnectionCounter,
    close_after_request_read,
    close_mid_body,
    close_mid_headers,
    garbage,
    keepalive_then_close,
    oversized_headers,
    read_request,
    read_request_head,
    respond,
    response_bytes,
    response_head,
    serve_raw,
)

import trioclient
from trioclient._transport._connect import (
    close_stream_now,
    format_address,
    is_readable,
    socket_of,
)
from trioclient._transport._errors import describe, translate

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

# --- helpers ---------------------------------------------------------------------------------


async def assert_still_works(client: trioclient.Client, url: str) -> None:
    """The same client can still send a request, and its books balance before and after."""
    assert_quiet(client)
    response = await client.get(url)
    assert response.status_code == 200
    assert_quiet(client)


def authority(url: str) -> str:
    return url.split("://", 1)[1].rstrip("/")


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    """A handler recording every byte each connection sends; answers complete requests."""

    def __init__(self) -> None:
        self.received: list[bytearray] = []

    async def __call__(self, stream: BufferedStream) -> None:
        received = bytearray()
        self.received.append(received)
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            received += data
            if b"\r\n\r\n" in received:
                await stream.send_all(response_bytes(200, [("Connection", "close")], b"ok"))
                return


def answer_once_then_drop() -> ConnectionCounter:
    """First connection: answer one request, then read the next one and close silently.

    Later connections answer every request. This is the keep-alive race where the server
    closes a reused connection just as a request arrives on it, with no response byte.
    """

    async def handler(stream: BufferedStream) -> None:
        if counter.count == 1:
            await read_request(stream)
            await stream.send_all(response_bytes(200, body=b"first"))
            await read_request(stream)
            return
        await respond(body=b"fresh")(stream)

    counter = ConnectionCounter(handler)
    return counter


# --- connecting ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["a..b", "a" * 64 + ".test"])
async def test_host_name_that_cannot_be_looked_up(http_url: str, host: str) -> None:
    """An empty label or one over 63 characters: a valid URL, but no DNS name. The lookup
    refuses it locally (nothing reaches the network) with a UnicodeError, which used to
    escape as it was."""
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.ConnectError, match=f"connecting to {host}:80") as info:
            await client.get(f"http://{host}/")
        assert "cannot be looked up" in str(info.value)
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_connection_refused_names_host_and_port(http_url: str) -> None:
    port = unused_port()
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.ConnectError) as info:
            await client.get(f"http://127.0.0.1:{port}/")
        assert str(info.value) == (
            f"Failed while connecting to 127.0.0.1:{port}: Connection refused (ECONNREFUSED)"
        )
        assert info.value.request.url.port == port
        assert not isinstance(info.value.__cause__, trioclient.HTTPError)
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_local_address_binds_the_client_end(http_url: str) -> None:
    async with trioclient.Client(local_address="127.0.0.1") as client:
        response = await client.get(f"{http_url}/conn-id")
        assert response.text.startswith("127.0.0.1:")
        await assert_still_works(client, http_url)


def _short_socket_path(tmp_path: Path) -> str:
    path = str(tmp_path / "raw.sock")
    if len(path) < 100:
        return path
    return os.path.join(tempfile.mkdtemp(prefix="tc-"), "raw.sock")  # pragma: no cover


async def _serve_unix(nursery: trio.Nursery, path: str, handler: ConnectionCounter) -> None:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen()

    async def serve_one(stream: trio.SocketStream) -> None:
        try:
            await handler(BufferedStream(stream))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await stream.aclose()

    await nursery.start(partial(trio.serve_listeners, serve_one, [trio.SocketListener(sock)]))


async def test_unix_domain_socket(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = _short_socket_path(tmp_path)
    recorded: list[bytes] = []

    async def handler(stream: BufferedStream) -> None:
        while True:
            try:
                head, _ = await read_request(stream)
            except trio.BrokenResourceError:
                return
            recorded.append(head)
            await stream.send_all(response_bytes(200, body=b"over uds"))

    counter = ConnectionCounter(handler)
    await _serve_unix(nursery, path, counter)
    async with trioclient.Client(uds=path) as client:
        response = await client.get("http://localhost/path?q=1")
        assert response.status_code == 200
        assert response.text == "over uds"
        assert recorded[0].startswith(b"GET /path?q=1 HTTP/1.1\r\n")
        assert b"\r\nHost: localhost\r\n" in recorded[0]
        await assert_still_works(client, "http://localhost/again")
    assert counter.count == 1  # kept alive and reused


async def test_unix_domain_socket_missing_path_is_connect_error(
    tmp_path: Path, http_url: str
) -> None:
    path = _short_socket_path(tmp_path)
    async with trioclient.Client(uds=path) as client:
        with pytest.raises(trioclient.ConnectError, match=r"raw\.sock") as info:
            await client.get("http://localhost/")
        assert "ENOENT" in str(info.value)
        assert_quiet(client)
        assert client.pool_statistics().connections == 0


# --- the response head -----------------------------------------------------------------------


async def test_close_mid_headers(nursery: trio.Nursery, http_url: str) -> None:
    url = await serve_raw(nursery, close_mid_headers())
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.RemoteProtocolError) as info:
            await client.get(url)
        message = str(info.value)
        assert f"reading the response from {authority(url)}" in message
        assert "closed" in message
        await assert_still_works(client, http_url)


async def test_close_after_request_without_response(nursery: trio.Nursery, http_url: str) -> None:
    counter = ConnectionCounter(close_after_request_read())
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        with pytest.raises(
            trioclient.RemoteProtocolError,
            match=f"Server {authority(url)} disconnected without sending a response",
        ):
            await client.get(url)
        assert counter.count == 1  # a fresh connection is never retried
        await assert_still_works(client, http_url)


async def test_garbage_instead_of_a_status_line(nursery: trio.Nursery, http_url: str) -> None:
    url = await serve_raw(nursery, garbage())
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.RemoteProtocolError) as info:
            await client.get(url)
        assert f"reading the response from {authority(url)}" in str(info.value)
        await assert_still_works(client, http_url)


async def test_oversized_response_head(nursery: trio.Nursery, http_url: str) -> None:
    url = await serve_raw(nursery, oversized_headers(200 * 1024))
    async with trioclient.Client() as client:
        with pytest.raises(
            trioclient.RemoteProtocolError,
            match=f"response head from {authority(url)} exceeds the limit of 100 KiB",
        ):
            await client.get(url)
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_large_but_acceptable_response_head(nursery: trio.Nursery) -> None:
    url = await serve_raw(nursery, oversized_headers(60 * 1024))
    async with trioclient.Client() as client:
        response = await client.get(url)
        assert len(response.headers["x-big"]) == 60 * 1024
        assert_quiet(client)


@pytest.mark.parametrize(
    "bad_length",
    [b"abc", b"-1", b"5, 6", b"1" * 40],
    ids=["letters", "negative", "conflicting-list", "huge"],
)
async def test_invalid_content_length(
    nursery: trio.Nursery, http_url: str, bad_length: bytes
) -> None:
    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(response_head(200, [(b"Content-Length", bad_length)]) + b"hello")

    url = await serve_raw(nursery, handler)
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.RemoteProtocolError) as info:
            await client.get(url)
        assert authority(url) in str(info.value)
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_informational_responses_are_skipped(nursery: trio.Nursery) -> None:
    async def handler(stream: BufferedStream) -> None:
        while True:
            try:
                await read_request(stream)
            except trio.BrokenResourceError:
                return
            await stream.send_all(
                b"HTTP/1.1 100 Continue\r\n\r\n"
                b"HTTP/1.1 102 Processing\r\n\r\n"
                b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                + response_bytes(201, [("X-Final", "yes")], b"created")
            )

    counter = ConnectionCounter(handler)
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        for _ in range(2):
            response = await client.get(url)
            assert response.status_code == 201
            assert response.headers["x-final"] == "yes"
            assert "link" not in response.headers
            assert response.text == "created"
            assert_quiet(client)
    assert counter.count == 1  # the 1xx responses do not spoil keep-alive


# --- the response body -----------------------------------------------------------------------


async def test_close_mid_body(nursery: trio.Nursery, http_url: str) -> None:
    url = await serve_raw(nursery, close_mid_body())
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.RemoteProtocolError) as info:
            await client.get(url)
        message = str(info.value)
        assert f"reading the response from {authority(url)}" in message
        assert "received 10 bytes, expected 100" in message
        await assert_still_works(client, http_url)


async def test_close_mid_body_while_streaming(nursery: trio.Nursery, http_url: str) -> None:
    url = await serve_raw(nursery, close_mid_body())
    async with trioclient.Client() as client:
        received = bytearray()
        with pytest.raises(trioclient.RemoteProtocolError, match=authority(url)):
            async with client.stream("GET", url) as response:
                assert response.status_code == 200
                async for chunk in response.aiter_raw():
                    received += chunk
        assert received == b"0123456789"
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


def chunked_handler(chunks: list[bytes]) -> ConnectionCounter:
    async def handler(stream: BufferedStream) -> None:
        while True:
            try:
                await read_request(stream)
            except trio.BrokenResourceError:
                return
            await stream.send_all(response_head(200, [("Transfer-Encoding", "chunked")]))
            for index, chunk in enumerate(chunks):
                extension = b";ext=1" if index == 0 else b""
                await stream.send_all(b"%x%s\r\n%s\r\n" % (len(chunk), extension, chunk))
            await stream.send_all(b"0\r\nX-Trailer: done\r\n\r\n")

    return ConnectionCounter(handler)


async def test_chunked_response_body(nursery: trio.Nursery) -> None:
    chunks = [b"hello ", b"chunked " * 1000, b"world"]
    counter = chunked_handler(chunks)
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        for _ in range(3):
            response = await client.get(url)
            assert response.content == b"".join(chunks)
            assert_quiet(client)
    assert counter.count == 1  # a complete chunked body leaves the connection reusable


async def test_chunked_response_from_hypercorn(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/stream/100000?chunk=777")
        assert response.headers.get("transfer-encoding") == "chunked"
        assert len(response.content) == 100000
        await assert_still_works(client, http_url)


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(
            response_head(200, [("Content-Length", "5"), ("Content-Length", "6")]) + b"hello!",
            id="conflicting-content-lengths",
        ),
        pytest.param(
            response_head(200, [("Transfer-Encoding", "chunked")]) + b"a\r\n01234",
            id="truncated-chunked-body",
        ),
        pytest.param(
            response_head(200, [("Transfer-Encoding", "chunked")]) + b"zz\r\nhello\r\n0\r\n\r\n",
            id="invalid-chunk-size",
        ),
    ],
)
async def test_malformed_body_framing(nursery: trio.Nursery, http_url: str, reply: bytes) -> None:
    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(reply)

    url = await serve_raw(nursery, handler)
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.RemoteProtocolError, match=authority(url)):
            await client.get(url)
        await assert_still_works(client, http_url)


async def test_http10_response_read_to_eof(nursery: trio.Nursery) -> None:
    body = b"no length, just EOF " * 5000

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        for start in range(0, len(body), 7000):
            await stream.send_all(body[start : start + 7000])

    counter = ConnectionCounter(handler)
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        response = await client.get(url)
        assert response.http_version == "HTTP/1.0"
        assert response.content == body
        assert client.pool_statistics().connections == 0  # EOF-framed: never reused
        assert_quiet(client)
        second = await client.get(url)
        assert second.content == body
    assert counter.count == 2


async def test_http11_response_without_length_read_to_eof(nursery: trio.Nursery) -> None:
    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(response_head(200, [("Connection", "close")]) + b"until eof")

    url = await serve_raw(nursery, handler)
    async with trioclient.Client() as client:
        response = await client.get(url)
        assert response.content == b"until eof"
        assert_quiet(client)
        assert client.pool_statistics().connections == 0


# --- keep-alive ------------------------------------------------------------------------------


async def test_connection_close_response_is_not_reused(nursery: trio.Nursery) -> None:
    counter = ConnectionCounter(respond(headers=[("Connection", "close")], body=b"bye"))
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        for _ in range(3):
            assert (await client.get(url)).text == "bye"
            assert client.pool_statistics().connections == 0
            assert_quiet(client)
    assert counter.count == 3


async def test_connection_close_from_hypercorn(http_url: str, socket_leak_checker) -> None:
    async with trioclient.Client() as client:
        assert (await client.get(f"{http_url}/close")).text == "bye"
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)
    assert socket_leak_checker.created == 2


async def test_keep_alive_is_reused(nursery: trio.Nursery) -> None:
    counter = ConnectionCounter(respond(body=b"same"))
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        for _ in range(4):
            assert (await client.get(url)).text == "same"
        assert client.pool_statistics().idle == 1
    assert counter.count == 1


async def test_idle_connection_closed_by_server_is_not_reused(nursery: trio.Nursery) -> None:
    server_closed = trio.Event()
    inner = keepalive_then_close(0.01)

    async def handler(stream: BufferedStream) -> None:
        await inner(stream)
        await stream.aclose()  # close now, before telling the test
        server_closed.set()

    counter = ConnectionCounter(handler)
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        assert (await client.get(url)).text == "ok"
        assert client.pool_statistics().idle == 1
        with trio.fail_after(5):
            await server_closed.wait()
        # The pool sees the EOF on the idle socket and opens a fresh connection instead.
        assert (await client.get(url)).text == "ok"
        assert counter.count == 2
        assert_quiet(client)


async def test_idle_close_is_detected_before_reuse_even_for_a_post(
    nursery: trio.Nursery,
) -> None:
    """A POST is never retried, so the pool must see the close before reusing the socket."""
    from trioclient._transport._connection import STALE_CHECK_AFTER

    server_closed = trio.Event()
    inner = keepalive_then_close(0.01)

    async def handler(stream: BufferedStream) -> None:
        await inner(stream)
        await stream.aclose()
        server_closed.set()

    counter = ConnectionCounter(handler)
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        assert (await client.get(url)).text == "ok"
        with trio.fail_after(5):
            await server_closed.wait()
        await trio.sleep(2 * STALE_CHECK_AFTER)  # idle long enough to be checked
        assert (await client.post(url, content=b"once only")).text == "ok"
        assert counter.count == 2
        assert_quiet(client)


async def test_reused_get_dropped_without_response_is_retried_once(
    nursery: trio.Nursery,
) -> None:
    counter = answer_once_then_drop()
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        assert (await client.get(url)).text == "first"
        response = await client.get(url)
        assert response.text == "fresh"
        assert counter.count == 2
        assert_quiet(client)
        assert client.pool_statistics().idle == 1


async def test_reused_post_dropped_without_response_is_not_retried(
    nursery: trio.Nursery,
) -> None:
    counter = answer_once_then_drop()
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        assert (await client.get(url)).text == "first"
        with pytest.raises(
            trioclient.RemoteProtocolError,
            match=f"Server {authority(url)} disconnected without sending a response",
        ):
            await client.post(url, content=b"not idempotent")
        assert counter.count == 1  # not retried
        assert client.pool_statistics().connections == 0
        assert_quiet(client)
        assert (await client.post(url, content=b"again")).text == "fresh"
        assert counter.count == 2


async def test_reused_get_dropped_twice_fails_after_one_retry(nursery: trio.Nursery) -> None:
    """The retry happens once: if the fresh connection also fails, that error surfaces."""

    async def handler(stream: BufferedStream) -> None:
        if counter.count == 1:
            await read_request(stream)
            await stream.send_all(response_bytes(200, body=b"first"))
        await read_request(stream)

    counter = ConnectionCounter(handler)
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        assert (await client.get(url)).text == "first"
        with pytest.raises(trioclient.RemoteProtocolError, match="disconnected without"):
            await client.get(url)
        assert counter.count == 2
        assert_quiet(client)


async def test_early_response_before_the_body_is_read(nursery: trio.Nursery, http_url: str) -> None:
    """The server answers 413 and closes without reading an 8 MiB body: we get the 413."""

    async def handler(stream: BufferedStream) -> None:
        await read_request_head(stream)
        await stream.send_all(
            response_bytes(413, [("Connection", "close")], b"too large, not reading that")
        )

    url = await serve_raw(nursery, handler)
    async with trioclient.Client() as client:
        response = await client.post(url, content=b"x" * (8 * 1024 * 1024))
        assert response.status_code == 413
        assert response.text == "too large, not reading that"
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_early_response_to_a_streamed_upload(nursery: trio.Nursery, http_url: str) -> None:
    async def handler(stream: BufferedStream) -> None:
        await read_request_head(stream)
        await stream.send_all(response_bytes(401, [("Connection", "close")], b"who are you"))

    async def body() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b"y" * (256 * 1024)

    url = await serve_raw(nursery, handler)
    async with trioclient.Client() as client:
        response = await client.post(url, content=body())
        assert response.status_code == 401
        assert response.text == "who are you"
        await assert_still_works(client, http_url)


async def test_write_error_surfaces_when_no_response_follows(
    nursery: trio.Nursery, http_url: str
) -> None:
    """The server closes without reading the body and without answering: a network or
    protocol error naming the peer (which one depends on where the reset lands), never a
    raw OSError."""

    async def handler(stream: BufferedStream) -> None:
        await read_request_head(stream)

    url = await serve_raw(nursery, handler)
    async with trioclient.Client() as client:
        with pytest.raises((trioclient.NetworkError, trioclient.RemoteProtocolError)) as info:
            await client.post(url, content=b"x" * (8 * 1024 * 1024))
        assert not isinstance(info.value, trioclient.ConnectError)
        assert authority(url) in str(info.value)
        await assert_still_works(client, http_url)


# --- bad input is refused before anything is sent --------------------------------------------


@pytest.mark.parametrize("bad", ["a\r\nInjected: yes", "a\nb", "a\rb", "a\x00b"])
async def test_header_value_with_cr_lf_nul_is_refused_before_connecting(
    nursery: trio.Nursery, bad: str
) -> None:
    counter = ConnectionCounter(respond())
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.LocalProtocolError, match="X-Evil") as info:
            await client.get(url, headers={"X-Evil": bad})
        assert "Injected" not in str(info.value)  # the value itself is never quoted
        assert_quiet(client)
        assert client.pool_statistics().connections == 0
        await trio.testing.wait_all_tasks_blocked()
        assert counter.count == 0  # not even a connection
        await assert_still_works(client, url)


@pytest.mark.parametrize("name", ["X Evil", "X:Evil", "X\r\nEvil", ""])
async def test_bad_header_name_is_refused(nursery: trio.Nursery, name: str) -> None:
    counter = ConnectionCounter(respond())
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.LocalProtocolError, match="Header name"):
            await client.get(url, headers={name: "v"})
        assert counter.count == 0
        await assert_still_works(client, url)


async def test_client_default_header_with_crlf_is_refused(nursery: trio.Nursery) -> None:
    counter = ConnectionCounter(respond())
    url = await serve_raw(nursery, counter)
    with pytest.raises(trioclient.LocalProtocolError, match="X-Default"):
        trioclient.Client(headers={"X-Default": "a\r\nb"})  # refused when set, not later
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.LocalProtocolError, match="X-Later"):
            client.headers = {"X-Later": "a\r\nb"}
        client.headers["X-Mutated"] = "a\r\nb"  # slips past the setter...
        with pytest.raises(trioclient.LocalProtocolError, match="X-Mutated"):
            await client.get(url)  # ...but never reaches the wire
        assert counter.count == 0


async def test_header_mutated_after_build_is_refused_before_any_byte(
    nursery: trio.Nursery,
) -> None:
    """A header smuggled in after `build_request` is still caught (by h11) before sending."""
    recorder = Recorder()
    url = await serve_raw(nursery, recorder)
    async with trioclient.Client() as client:
        request = client.build_request("GET", url)
        request.headers["X-Late"] = "a\r\nInjected: yes"
        with pytest.raises(trioclient.LocalProtocolError, match="X-Late") as info:
            await client.send(request)
        assert "Injected" not in str(info.value)  # the value may be a credential
        assert info.value.request is request
        assert_quiet(client)
        assert client.pool_statistics().connections == 0
        assert (await client.get(url)).text == "ok"
        await trio.testing.wait_all_tasks_blocked()
    good = [conn for conn in recorder.received if conn]
    assert len(good) == 1
    assert b"Injected" not in good[0]
    assert all(conn == b"" for conn in recorder.received if conn is not good[0])


@pytest.mark.parametrize("method", ["GE T", "GET\r\nX-Injected: 1", "G(T"])
async def test_invalid_method_is_refused_before_any_byte(
    nursery: trio.Nursery, method: str
) -> None:
    recorder = Recorder()
    url = await serve_raw(nursery, recorder)
    async with trioclient.Client() as client:
        # A caller's bad argument: ValueError naming it (issue 10), no longer h11's
        # LocalProtocolError from the send.
        with pytest.raises(ValueError, match="method must be an HTTP token"):
            await client.request(method, url)
        assert_quiet(client)
        assert (await client.get(url)).text == "ok"
        await trio.testing.wait_all_tasks_blocked()
    # Refused before a connection was even taken: the good request opened the only one.
    assert len(recorder.received) == 1
    assert not any(b"Injected" in conn for conn in recorder.received)


@pytest.mark.parametrize(
    ("declared", "body"), [("5", b"abc"), ("2", b"abc")], ids=["too-little", "too-much"]
)
async def test_content_length_mismatch_is_refused_before_any_byte(
    nursery: trio.Nursery, declared: str, body: bytes
) -> None:
    recorder = Recorder()
    url = await serve_raw(nursery, recorder)
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.LocalProtocolError, match="Content-Length"):
            await client.post(url, content=body, headers={"Content-Length": declared})
        assert_quiet(client)
        assert (await client.get(url)).text == "ok"
        await trio.testing.wait_all_tasks_blocked()
    assert sum(1 for conn in recorder.received if conn) == 1


async def test_streamed_body_longer_than_content_length(
    nursery: trio.Nursery, http_url: str
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"12345"
        yield b"6789"

    recorder = Recorder()
    url = await serve_raw(nursery, recorder)
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.LocalProtocolError, match="Content-Length"):
            await client.post(url, content=body(), headers={"Content-Length": "6"})
        await assert_still_works(client, http_url)


async def test_streamed_body_yielding_str_is_a_type_error(http_url: str) -> None:
    async def body() -> AsyncIterator[object]:
        yield "not bytes"

    async with trioclient.Client() as client:
        with pytest.raises(TypeError, match="must yield bytes"):
            await client.post(f"{http_url}/echo", content=body())  # type: ignore[arg-type]
        await assert_still_works(client, http_url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a\r\nInjected: yes",
        "http://127.0.0.1/a\nb",
        "http://127.0.0.1/a\x00b",
        "http://127.0.0.1\r\n/",
        "http://127.0.0.1/?q=\r\n",
    ],
)
async def test_url_with_control_characters_is_invalid(url: str, http_url: str) -> None:
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.InvalidURL, match=r"non-printable|Invalid"):
            await client.get(url)
        await assert_still_works(client, http_url)


async def test_crlf_in_query_params_is_percent_encoded(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/echo", params={"q": "a\r\nb"})
        assert response.json()["query"] == "q=a%0D%0Ab"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://127.0.0.1/file", "unsupported scheme 'ftp'"),
        ("ws://127.0.0.1/", "unsupported scheme 'ws'"),
        ("/relative/path", "missing an 'http://' or 'https://' scheme"),
        ("127.0.0.1/path", "missing an 'http://' or 'https://' scheme"),
        ("http:///no-host", "no host|Missing host"),
    ],
)
async def test_unusable_urls(url: str, expected: str, http_url: str) -> None:
    async with trioclient.Client() as client:
        with pytest.raises((trioclient.UnsupportedProtocol, trioclient.InvalidURL), match=expected):
            await client.get(url)
        await assert_still_works(client, http_url)


async def test_unsupported_scheme_is_a_transport_error() -> None:
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.UnsupportedProtocol) as info:
            await client.get("ftp://127.0.0.1/file")
        assert isinstance(info.value, trioclient.TransportError)
        assert client.pool_statistics().connections == 0


async def test_early_response_on_a_reused_connection(nursery: trio.Nursery, http_url: str) -> None:
    """Same as above on a kept-alive connection: the 413 must not be mistaken for a stale
    connection (and the POST, which cannot be retried, must not fail with a WriteError)."""

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(response_bytes(200, body=b"first"))
        await read_request_head(stream)
        await stream.send_all(response_bytes(413, [("Connection", "close")], b"too large"))

    counter = ConnectionCounter(handler)
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        assert (await client.get(url)).text == "first"
        response = await client.post(url, content=b"x" * (8 * 1024 * 1024))
        assert response.status_code == 413
        assert response.text == "too large"
        assert counter.count == 1
        await assert_still_works(client, http_url)


# --- error descriptions that no 127.0.0.1 peer can produce -----------------------------------


def test_describe_dns_failure() -> None:
    exc = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    error = translate(
        exc, trioclient.ConnectError, "connecting to nowhere.invalid:80", request=None
    )
    assert isinstance(error, trioclient.ConnectError)
    assert str(error) == (
        "Failed while connecting to nowhere.invalid:80: DNS lookup failed: "
        "Name or service not known"
    )


def test_describe_every_failed_attempt_once() -> None:
    attempts = [
        OSError(errno.ECONNREFUSED, "Error connecting to ('::1', 80): Connection refused"),
        OSError(errno.ECONNREFUSED, "Error connecting to ('127.0.0.1', 80): Connection refused"),
        OSError(errno.ENETUNREACH, "Error connecting to ('10.0.0.1', 80): unreachable"),
    ]
    exc = OSError("all attempts to connect to localhost:80 failed")
    exc.__cause__ = ExceptionGroup("all attempts failed", attempts)
    assert describe(exc) == (
        f"{os.strerror(errno.ECONNREFUSED)} (ECONNREFUSED); "
        f"{os.strerror(errno.ENETUNREACH)} (ENETUNREACH)"
    )
    assert describe(OSError("plain message")) == "plain message"
    assert describe(OSError(99999, "odd")) == "odd (99999)"


# --- protocol switches: never a hang ---------------------------------------------------------


async def test_101_switching_protocols_is_final_and_not_reused(
    nursery: trio.Nursery, http_url: str
) -> None:
    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n\r\nnot http any more"
        )
        await wait_for_close(stream)

    url = await serve_raw(nursery, handler)
    async with trioclient.Client() as client:
        with trio.fail_after(5):
            response = await client.get(
                url, headers={"Upgrade": "websocket", "Connection": "Upgrade"}
            )
        assert response.status_code == 101
        assert response.headers["upgrade"] == "websocket"
        assert response.content == b""
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def test_101_without_an_upgrade_request(nursery: trio.Nursery, http_url: str) -> None:
    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
        await wait_for_close(stream)

    url = await serve_raw(nursery, handler)
    async with trioclient.Client() as client:
        with (
            trio.fail_after(5),
            pytest.raises(trioclient.RemoteProtocolError, match=authority(url)),
        ):
            await client.get(url)
        await assert_still_works(client, http_url)


async def test_connect_method_answered_2xx_does_not_hang(
    nursery: trio.Nursery, http_url: str
) -> None:
    """h11 switches protocols after a 2xx to CONNECT; reading the body must end, not spin."""

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(response_bytes(200, body=b""))
        await wait_for_close(stream)

    url = await serve_raw(nursery, handler)
    async with trioclient.Client() as client:
        with trio.fail_after(5):
            response = await client.request("CONNECT", url)
        assert response.status_code == 200
        assert response.content == b""
        assert client.pool_statistics().connections == 0
        await assert_still_works(client, http_url)


async def wait_for_close(stream: BufferedStream) -> None:
    try:
        while await stream.receive_some(65536):
            pass
    except trio.BrokenResourceError:
        pass


async def test_ipv6_literal_with_zone_is_connected_and_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, int]] = []

    async def fake_open_tcp_stream(host: str, port: int, **kwargs: object) -> trio.SocketStream:
        calls.append((host, port))
        raise OSError(errno.ECONNREFUSED, f"Error connecting to {(host, port)!r}: refused")

    monkeypatch.setattr(trio, "open_tcp_stream", fake_open_tcp_stream)
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.ConnectError) as info:
            await client.get("http://[fe80::1%25eth0]:8080/")
        assert str(info.value).startswith(
            "Failed while connecting to [fe80::1%eth0]:8080: Connection refused"
        )
        assert_quiet(client)
    assert calls == [("fe80::1%eth0", 8080)]


def reset_on_second_request() -> ConnectionCounter:
    """First connection: answer one request, read the next one, then reset (RST)."""

    async def handler(stream: BufferedStream) -> None:
        if counter.count == 1:
            await read_request(stream)
            await stream.send_all(response_bytes(200, body=b"first"))
            await read_request(stream)
            tcp = stream.stream
            assert isinstance(tcp, trio.SocketStream)
            tcp.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return  # closing now sends RST instead of FIN
        await respond(body=b"fresh")(stream)

    counter = ConnectionCounter(handler)
    return counter


async def test_reused_get_reset_before_the_response_is_retried(nursery: trio.Nursery) -> None:
    counter = reset_on_second_request()
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        assert (await client.get(url)).text == "first"
        assert (await client.get(url)).text == "fresh"
        assert counter.count == 2
        assert_quiet(client)


async def test_reused_post_reset_before_the_response_is_not_retried(
    nursery: trio.Nursery,
) -> None:
    counter = reset_on_second_request()
    url = await serve_raw(nursery, counter)
    async with trioclient.Client() as client:
        assert (await client.get(url)).text == "first"
        with pytest.raises(trioclient.ReadError) as info:
            await client.post(url, content=b"once only")
        assert str(info.value) == (
            f"Failed while reading the response from {authority(url)}: "
            f"{os.strerror(errno.ECONNRESET)} (ECONNRESET)"
        )
        assert counter.count == 1
        assert_quiet(client)
        assert (await client.post(url, content=b"again")).text == "fresh"


def test_stream_helpers_on_a_stream_without_socket() -> None:
    send, _receive = trio.testing.memory_stream_pair()
    assert socket_of(send) is None
    assert not is_readable(send)
    close_stream_now(send)  # nothing to close: a no-op
    close_stream_now(None)


def test_format_address() -> None:
    assert format_address("127.0.0.1", 80) == "127.0.0.1:80"
    assert format_address("::1", 8080) == "[::1]:8080"


def test_describe_trio_errors_without_cause() -> None:
    assert describe(trio.BrokenResourceError()) == "connection broken"
    assert describe(trio.ClosedResourceError()) == "connection closed locally"
    error = translate(trio.BusyResourceError(), trioclient.ReadError, "reading", request=None)
    assert isinstance(error, trioclient.StreamError)
    assert "in use by another task" in str(error)
    error = translate(
        trio.ClosedResourceError(),
        trioclient.ReadError,
        "reading the response from h:1",
        request=None,
        closed_reason="the client was closed",
    )
    assert isinstance(error, trioclient.ClientStateError)
    assert str(error) == "Failed while reading the response from h:1: the client was closed."


async def test_invalid_request_to_an_unreachable_host_is_refused_locally() -> None:
    """Validation happens before connecting, so the error names the request, not the host."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with trioclient.Client() as client:
        with pytest.raises(ValueError, match="method must be an HTTP token"):
            await client.request("GE T", f"http://127.0.0.1:{port}/")
        assert client.pool_statistics().connections == 0

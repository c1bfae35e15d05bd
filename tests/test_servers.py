"""Self-tests for the test infrastructure; they never import trioclient.

The hypercorn server is exercised with raw Trio streams plus h11/h2 (async tests) and with the
stdlib ``http.client`` (sync tests); the raw servers with raw Trio streams; the socket-leak
checker through ``pytester`` so that a deliberately leaky test can fail in isolation.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import ssl
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h11
import pytest
import trio
import trio.testing
from servers import raw
from servers.asgi_app import CHARSET_TEXT, JSON_BODY, PAYLOAD, pattern_bytes

# --- tiny clients ------------------------------------------------------------------------------


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


async def h11_request(
    stream: trio.abc.Stream,
    target: str,
    *,
    host: str = "127.0.0.1",
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> tuple[h11.Response, bytes]:
    conn = h11.Connection(h11.CLIENT)
    request_headers = [("Host", host), *headers, ("Content-Length", str(len(body)))]
    data = conn.send(h11.Request(method=method, target=target, headers=request_headers))
    data += conn.send(h11.Data(data=body)) if body else b""
    data += conn.send(h11.EndOfMessage())
    await stream.send_all(data)
    response: h11.Response | None = None
    parts: list[bytes] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some()))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            parts.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            return response, b"".join(parts)
        else:
            raise AssertionError(f"unexpected h11 event {event!r}")


async def h2_get(
    stream: trio.abc.Stream, path: str, *, authority: str, scheme: str
) -> tuple[dict[bytes, bytes], bytes]:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    stream_id = conn.get_next_available_stream_id()
    request = [(":method", "GET"), (":scheme", scheme), (":authority", authority), (":path", path)]
    conn.send_headers(stream_id, request, end_stream=True)
    await stream.send_all(conn.data_to_send())
    headers: dict[bytes, bytes] = {}
    body = bytearray()
    while True:
        data = await stream.receive_some()
        assert data, "server closed the HTTP/2 connection early"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                headers = {bytes(k): bytes(v) for k, v in event.headers or []}
            elif isinstance(event, h2.events.DataReceived):
                body += event.data or b""
                conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                conn.close_connection()
                await stream.send_all(conn.data_to_send())
                return headers, bytes(body)
        await stream.send_all(conn.data_to_send())


def stdlib_request(
    url: str,
    path: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    host, port = _host_port(url)
    conn: http.client.HTTPConnection
    if url.startswith("https://"):
        conn = http.client.HTTPSConnection(host, port, timeout=5, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def header(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name.lower()]


# --- hypercorn over raw Trio streams -----------------------------------------------------------


async def test_plain_http11_get_root(http_url: str) -> None:
    stream = await trio.open_tcp_stream(*_host_port(http_url))
    async with stream:
        response, body = await h11_request(stream, "/")
    assert response.status_code == 200
    assert body == b"Hello, world!"


async def test_tls_offers_h2_and_http11(https_url: str, ssl_context: ssl.SSLContext) -> None:
    ssl_context.set_alpn_protocols(["h2", "http/1.1"])
    stream = await trio.open_ssl_over_tcp_stream(*_host_port(https_url), ssl_context=ssl_context)
    async with stream:
        await stream.do_handshake()
        assert stream.selected_alpn_protocol() == "h2"
        headers, body = await h2_get(stream, "/echo", authority="127.0.0.1", scheme="https")
    assert headers[b":status"] == b"200"
    echo = json.loads(body)
    assert echo["http_version"] == "2"
    assert echo["scheme"] == "https"


async def test_tls_http11(https_url: str, ssl_context: ssl.SSLContext) -> None:
    ssl_context.set_alpn_protocols(["http/1.1"])
    stream = await trio.open_ssl_over_tcp_stream(*_host_port(https_url), ssl_context=ssl_context)
    async with stream:
        await stream.do_handshake()
        assert stream.selected_alpn_protocol() == "http/1.1"
        response, body = await h11_request(stream, "/")
    assert response.status_code == 200
    assert body == b"Hello, world!"


@pytest.mark.parametrize("host", ["localhost", "testserver.local"])
async def test_tls_certificate_names(
    https_url: str, ssl_context: ssl.SSLContext, host: str
) -> None:
    tcp = await trio.open_tcp_stream(*_host_port(https_url))
    stream = trio.SSLStream(tcp, ssl_context, server_hostname=host)
    async with stream:
        await stream.do_handshake()


async def test_h2c_prior_knowledge(http_url: str) -> None:
    stream = await trio.open_tcp_stream(*_host_port(http_url))
    async with stream:
        headers, body = await h2_get(stream, "/echo", authority="127.0.0.1", scheme="http")
    assert headers[b":status"] == b"200"
    assert json.loads(body)["http_version"] == "2"


async def test_close_route_closes_the_connection(http_url: str) -> None:
    stream = await trio.open_tcp_stream(*_host_port(http_url))
    async with stream:
        response, body = await h11_request(stream, "/close")
        assert (b"connection", b"close") in response.headers
        assert body == b"bye"
        with trio.fail_after(5):
            assert await stream.receive_some() == b""


async def test_drip_then_hold_on_one_connection(http_url: str) -> None:
    stream = await trio.open_tcp_stream(*_host_port(http_url))
    async with stream:
        response, body = await h11_request(stream, "/drip?chunks=3&delay=0.01&size=4")
        assert response.status_code == 200
        assert body == b"*" * 12
        await stream.send_all(b"GET /hold HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        with trio.move_on_after(0.2) as scope:
            await stream.receive_some()
        assert scope.cancelled_caught


async def test_socket_leak_checker_counts_sockets(http_url: str, socket_leak_checker: Any) -> None:
    assert type(socket_leak_checker).__name__ == "SocketLeakChecker"
    for _ in range(2):
        stream = await trio.open_tcp_stream(*_host_port(http_url))
        await stream.aclose()
    assert socket_leak_checker.created == 2
    assert socket_leak_checker.open_sockets() == []


# --- hypercorn routes through http.client (sync tests) ------------------------------------------


def test_echo_reports_the_request(http_url: str) -> None:
    status, _, body = stdlib_request(
        http_url, "/echo?a=1&b=%20x", method="POST", body=b"caf\xe9", headers={"X-Test": "yes"}
    )
    assert status == 200
    echo = json.loads(body)
    assert echo["method"] == "POST"
    assert echo["path"] == "/echo"
    assert echo["query"] == "a=1&b=%20x"
    assert echo["body"] == "café"
    assert echo["http_version"] == "1.1"
    assert ["x-test", "yes"] in echo["headers"]
    assert echo["headers"][0][0] == "host"


@pytest.mark.parametrize(
    ("path", "expected_length_header"),
    [("/bytes/1000?chunk=7", "1000"), ("/stream/1000?chunk=7", None), ("/bytes/0", "0")],
)
def test_bytes_and_stream(http_url: str, path: str, expected_length_header: str | None) -> None:
    status, headers, body = stdlib_request(http_url, path)
    n = int(path.split("/")[2].split("?")[0])
    assert status == 200
    assert body == bytes(i % 251 for i in range(n)) == pattern_bytes(n)
    if expected_length_header is None:
        assert header(headers, "transfer-encoding") == ["chunked"]
        assert header(headers, "content-length") == []
    else:
        assert header(headers, "content-length") == [expected_length_header]


def test_pattern_bytes_with_offset() -> None:
    assert pattern_bytes(600, offset=300) == bytes(i % 251 for i in range(300, 900))


def test_compressed_routes(http_url: str) -> None:
    decoders: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
        "/gzip": ("gzip", gzip.decompress),
        "/deflate": ("deflate", zlib.decompress),
        "/gzip-deflate": ("deflate, gzip", lambda data: zlib.decompress(gzip.decompress(data))),
    }
    for path, (encoding, decode) in decoders.items():
        status, headers, body = stdlib_request(http_url, path)
        assert status == 200
        assert header(headers, "content-encoding") == [encoding]
        assert json.loads(decode(body)) == PAYLOAD
    status, headers, body = stdlib_request(http_url, "/bad-gzip")
    assert header(headers, "content-encoding") == ["gzip"]
    with pytest.raises((OSError, EOFError)):
        gzip.decompress(body)


@pytest.mark.parametrize("charset", ["utf-8", "latin-1", "utf-16"])
def test_charset(http_url: str, charset: str) -> None:
    _, headers, body = stdlib_request(http_url, f"/charset/{charset}")
    assert header(headers, "content-type") == [f"text/plain; charset={charset}"]
    assert body.decode(charset) == CHARSET_TEXT


def test_no_charset_and_json(http_url: str) -> None:
    _, headers, body = stdlib_request(http_url, "/no-charset")
    assert header(headers, "content-type") == ["text/plain"]
    assert body == CHARSET_TEXT.encode("utf-8")
    _, headers, body = stdlib_request(http_url, "/json")
    assert header(headers, "content-type") == ["application/json"]
    assert json.loads(body) == JSON_BODY


@pytest.mark.parametrize("code", [200, 201, 204, 304, 404, 418, 500, 503])
def test_status(http_url: str, code: int) -> None:
    status, headers, body = stdlib_request(http_url, f"/status/{code}")
    assert status == code
    assert body == b""
    if code in (204, 304):
        assert header(headers, "content-length") == []


def test_redirects(http_url: str) -> None:
    status, headers, _ = stdlib_request(http_url, "/redirect/3")
    assert (status, header(headers, "location")) == (302, ["/redirect/2"])
    assert stdlib_request(http_url, "/redirect/0")[::2] == (200, b"done")
    status, headers, _ = stdlib_request(
        http_url, "/redirect-to?url=https%3A%2F%2Fa.test%2Fx&status=307"
    )
    assert (status, header(headers, "location")) == (307, ["https://a.test/x"])
    status, headers, _ = stdlib_request(http_url, "/relative-redirect")
    assert (status, header(headers, "location")) == (302, ["echo"])


def test_basic_auth(http_url: str) -> None:
    status, headers, _ = stdlib_request(http_url, "/basic-auth/user/pass")
    assert status == 401
    assert header(headers, "www-authenticate") == ['Basic realm="test"']
    good = {"Authorization": "Basic dXNlcjpwYXNz"}  # user:pass
    status, _, body = stdlib_request(http_url, "/basic-auth/user/pass", headers=good)
    assert status == 200
    assert json.loads(body) == {"authenticated": True, "user": "user"}


def test_headers_cookies_and_response_headers(http_url: str) -> None:
    _, _, body = stdlib_request(http_url, "/headers", headers={"X-One": "1"})
    assert ["x-one", "1"] in json.loads(body)["headers"]
    _, headers, _ = stdlib_request(http_url, "/response-headers?X-A=1&X-A=2&X-B=")
    assert header(headers, "x-a") == ["1", "2"]
    assert header(headers, "x-b") == [""]
    _, headers, _ = stdlib_request(http_url, "/cookies/set?a=1&b=2")
    assert header(headers, "set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    _, _, body = stdlib_request(http_url, "/cookies", headers={"Cookie": "a=1; b=2"})
    assert json.loads(body) == {"cookies": {"a": "1", "b": "2"}}


def test_big_headers_and_not_found(http_url: str) -> None:
    _, headers, _ = stdlib_request(http_url, "/big-headers?n=20000")
    assert header(headers, "x-big") == ["x" * 20000]
    assert stdlib_request(http_url, "/no/such/route")[0] == 404
    assert stdlib_request(http_url, "/bytes/-1")[0] == 400


def test_conn_id_detects_reuse_and_close(http_url: str) -> None:
    conn = http.client.HTTPConnection(*_host_port(http_url), timeout=5)
    try:
        ids = []
        for path in ["/conn-id", "/conn-id", "/close", "/conn-id"]:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read().decode()
            if path == "/close":
                assert response.getheader("connection") == "close"
            else:
                ids.append(body)
    finally:
        conn.close()
    assert ids[0] == ids[1] != ids[2]
    assert ids[0].startswith("127.0.0.1:")


def test_hold_never_answers(http_url: str) -> None:
    conn = http.client.HTTPConnection(*_host_port(http_url), timeout=0.2)
    try:
        conn.request("GET", "/hold")
        with pytest.raises(TimeoutError):
            conn.getresponse()
    finally:
        conn.close()


def test_https_with_stdlib(https_url: str, ssl_context: ssl.SSLContext, ca_pem_path: str) -> None:
    assert stdlib_request(https_url, "/", context=ssl_context)[::2] == (200, b"Hello, world!")
    from_file = ssl.create_default_context(cafile=ca_pem_path)
    assert stdlib_request(https_url, "/json", context=from_file)[0] == 200


def test_client_cert_files(client_cert: tuple[str, str]) -> None:
    cert_path, key_path = client_cert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_cert_chain(cert_path, key_path)


def test_environment_is_clean() -> None:
    assert not [k for k in os.environ if k.upper().endswith("_PROXY")]
    assert not [k for k in os.environ if k.upper().startswith("SSL_CERT_")]


# --- raw servers -------------------------------------------------------------------------------


async def _raw_exchange(url: str, request: bytes) -> bytes:
    """Send ``request``, then read until EOF (or 2 s)."""
    stream = await trio.open_tcp_stream(*_host_port(url))
    received = bytearray()
    async with stream:
        await stream.send_all(request)
        with trio.move_on_after(2):
            while data := await stream.receive_some():
                received += data
    return bytes(received)


GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def test_raw_keepalive_server_and_counter() -> None:
    counter = raw.ConnectionCounter(raw.respond(body=b"hi"))
    async with trio.open_nursery() as nursery:
        url = await raw.serve_raw(nursery, counter)
        assert url.startswith("http://127.0.0.1:")
        stream = await trio.open_tcp_stream(*_host_port(url))
        async with stream:
            for _ in range(2):
                response, body = await h11_request(stream, "/", method="POST", body=b"x" * 10)
                assert (response.status_code, body) == (200, b"hi")
        nursery.cancel_scope.cancel()
    assert counter.count == 1


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (raw.close_mid_headers(), b"HTTP/1.1 200 OK\r\nContent-Type: text/pl"),
        (raw.close_mid_body(), b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"),
        (raw.garbage(), b"\x00\x01garbage\r\n\r\n"),
        (raw.close_after_request_read(), b""),
    ],
)
async def test_raw_misbehaving_handlers(handler: raw.Handler, expected: bytes) -> None:
    async with trio.open_nursery() as nursery:
        url = await raw.serve_raw(nursery, handler)
        assert await _raw_exchange(url, GET) == expected
        nursery.cancel_scope.cancel()


async def test_raw_drip() -> None:
    async with trio.open_nursery() as nursery:
        url = await raw.serve_raw(nursery, raw.drip(3, 0.01, 2))
        stream = await trio.open_tcp_stream(*_host_port(url))
        async with stream:
            response, body = await h11_request(stream, "/")
        assert (response.status_code, body) == (200, b"******")
        nursery.cancel_scope.cancel()


async def test_raw_stall_oversized_and_keepalive_close() -> None:
    async with trio.open_nursery() as nursery:
        stall = await raw.serve_raw(nursery, raw.stall_after_head())
        stream = await trio.open_tcp_stream(*_host_port(stall))
        async with stream:
            await stream.send_all(GET)
            with trio.move_on_after(0.1) as scope:
                await stream.receive_some()
            assert scope.cancelled_caught

        big = await raw.serve_raw(nursery, raw.oversized_headers(100_000))
        stream = await trio.open_tcp_stream(*_host_port(big))
        async with stream:
            await stream.send_all(GET)
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive_some()
        assert b"X-Big: " + b"x" * 1000 in head

        url = await raw.serve_raw(nursery, raw.keepalive_then_close(0.05))
        stream = await trio.open_tcp_stream(*_host_port(url))
        async with stream:
            response, body = await h11_request(stream, "/")
            assert (response.status_code, body) == (200, b"ok")
            with trio.fail_after(2):
                assert await stream.receive_some() == b""  # closed after 0.05 s idle
        nursery.cancel_scope.cancel()


async def test_raw_tls_server(
    server_ssl_context: ssl.SSLContext, ssl_context: ssl.SSLContext
) -> None:
    async with trio.open_nursery() as nursery:
        url = await raw.serve_raw(nursery, raw.respond(), tls=server_ssl_context)
        assert url.startswith("https://127.0.0.1:")
        # A client that is not speaking TLS must not crash the server...
        assert b"HTTP" not in await _raw_exchange(url, GET)
        # ...and a real TLS client is served afterwards.
        stream = await trio.open_ssl_over_tcp_stream(*_host_port(url), ssl_context=ssl_context)
        async with stream:
            response, body = await h11_request(stream, "/")
        assert (response.status_code, body) == (200, b"ok")
        nursery.cancel_scope.cancel()


async def test_raw_handler_errors_from_the_client_are_swallowed() -> None:
    async def rude(stream: raw.BufferedStream) -> None:
        await raw.read_request(stream)
        raise trio.BrokenResourceError("client went away")

    async with trio.open_nursery() as nursery:
        url = await raw.serve_raw(nursery, rude)
        assert await _raw_exchange(url, GET) == b""
        nursery.cancel_scope.cancel()


async def test_buffered_stream_keeps_extra_bytes() -> None:
    left, right = trio.testing.memory_stream_pair()
    buffered = raw.BufferedStream(right)
    await left.send_all(b"HEAD\r\n\r\nBODYrest")
    assert await raw.read_request_head(buffered) == b"HEAD\r\n\r\n"
    assert await buffered.receive_exactly(4) == b"BODY"
    assert await buffered.receive_some() == b"rest"
    await left.send_all(b"5\r\nhello\r\n0\r\n\r\n")
    await left.aclose()
    with pytest.raises(trio.BrokenResourceError):
        await buffered.receive_exactly(100)


def test_response_bytes() -> None:
    assert raw.response_bytes(404, [("X-A", "1")], b"nope") == (
        b"HTTP/1.1 404 Not Found\r\nX-A: 1\r\nContent-Length: 4\r\n\r\nnope"
    )
    assert raw.response_bytes(299, [("Content-Length", "0")]) == (
        b"HTTP/1.1 299 Unknown\r\nContent-Length: 0\r\n\r\n"
    )


# --- the socket-leak checker, tested in an isolated pytest run ---------------------------------

_LEAK_TESTS = """
import hypothesis
import pytest
import trio
from hypothesis import strategies as st

LEAKED = []

async def test_leaky():
    LEAKED.append(trio.socket.socket())

async def test_clean():
    sock = trio.socket.socket()
    sock.close()

def test_sync_not_affected():
    import socket
    socket.socket().close()

@pytest.fixture
async def fixture_socket():
    sock = trio.socket.socket()
    yield sock
    sock.close()

async def test_fixture_closes_its_socket_at_teardown(fixture_socket):
    assert fixture_socket.fileno() != -1

@pytest.fixture
async def leaky_fixture():
    yield LEAKED.append(trio.socket.socket())

async def test_leaky_fixture(leaky_fixture):
    pass

async def test_fails_and_leaks():
    LEAKED.append(trio.socket.socket())
    assert False, "original failure"

@hypothesis.given(st.integers())
@hypothesis.settings(max_examples=3)
async def test_hypothesis_leaky(n):
    LEAKED.append(trio.socket.socket())
"""


def test_socket_leak_checker(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text())
    pytester.makepyfile(test_leaks=_LEAK_TESTS)
    # Our conftest loads the trioclient_mock plugin itself; keep the entry point's copy out
    # (as pyproject's addopts does) or the plugin would be registered twice.
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:trioclient", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 3, result.stdout.str()
    assert outcomes.get("failed") == 4, result.stdout.str()
    output = result.stdout.str()
    for name in ["test_leaky", "test_leaky_fixture", "test_hypothesis_leaky"]:
        assert f"FAILED test_leaks.py::{name} - " in output
        assert "socket(s) created by this test were still open" in output
    assert "original failure" in output
    assert "AF_INET/SOCK_STREAM" in output


_SKIP_IN_NURSERY = """
import pytest
import trio

@pytest.fixture
async def nursery_fixture():
    async with trio.open_nursery() as nursery:
        yield nursery

async def test_skips_in_a_nursery(nursery_fixture):
    async def skip():
        pytest.skip("the reason, kept")
    nursery_fixture.start_soon(skip)
    await trio.sleep_forever()

async def test_xfails_in_a_nursery(nursery_fixture):
    async def xfail():
        pytest.xfail("the xfail reason, kept")
    nursery_fixture.start_soon(xfail)
    await trio.sleep_forever()
"""


def test_a_skip_inside_a_nursery_keeps_its_reason(pytester: pytest.Pytester) -> None:
    # pytest-trio alone reports these as "Skipped" at a line of pytest's own python.py.
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makeconftest(Path(__file__).with_name("conftest.py").read_text())
    pytester.makepyfile(test_skips=_SKIP_IN_NURSERY)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:trioclient", "-ra")
    result.assert_outcomes(skipped=1, xfailed=1)
    output = result.stdout.str()
    assert "test_skips.py:11: the reason, kept" in output
    assert "the xfail reason, kept" in output


def test_hypercorn_server_start_stop_standalone(tmp_path: Path) -> None:
    from servers.hypercorn_server import HypercornServer

    with HypercornServer() as server:
        status, _, body = stdlib_request(server.http_url, "/")
        assert (status, body) == (200, b"Hello, world!")
        assert Path(server.ca_pem_path).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.ca_pem_path
    # leave a raw socket idle on a fresh server: stop must not hang on it
    with HypercornServer() as server:
        sock = socket.create_connection(_host_port(server.http_url))
    sock.close()

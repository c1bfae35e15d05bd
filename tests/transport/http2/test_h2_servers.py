"""Self-tests of the HTTP/2 test infrastructure; they never import trioclient.

A minimal HTTP/2 client (:class:`servers.h2_client.MiniClient`: Trio + h2, one task)
talks to the raw h2 servers of :mod:`servers.h2_raw` / :mod:`servers.h2_handlers`, to
hypercorn, nginx and nghttpd, and checks what each peer sent and what the raw servers recorded.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import h2.events
import h2.exceptions
import pytest
import trio
import trustme
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hyperframe.frame import DataFrame
from servers import h2_handlers
from servers.asgi_app import pattern_bytes
from servers.h2_client import Response, connect
from servers.h2_raw import H2Handler, HandlerFactory, Request, Settings, serve_h2
from servers.peers import BIG_FILE_SIZE, INDEX_TEXT, NghttpdServer, NginxServer, unavailable


@asynccontextmanager
async def raw_server(
    factory: HandlerFactory,
    tls: ssl.SSLContext | None = None,
    settings: Settings | None = None,
) -> AsyncIterator[str]:
    """Serve ``factory`` for the block; afterwards every connection must have been closed."""
    async with trio.open_nursery() as nursery:
        yield await serve_h2(nursery, factory, tls=tls, settings=settings)
        await factory.wait_closed(len(factory.connections))
        nursery.cancel_scope.cancel()


def body_json(response: Response) -> dict[str, object]:
    result: dict[str, object] = json.loads(bytes(response.body))
    return result


# --- raw h2 servers ------------------------------------------------------------------------


async def test_echo_over_tls(
    server_ssl_context: ssl.SSLContext, h2_ssl_context: ssl.SSLContext
) -> None:
    factory = h2_handlers.echo()
    async with (
        raw_server(factory, server_ssl_context) as url,
        connect(url, h2_ssl_context) as client,
    ):
        response = await client.get("/upload?x=1", method="POST", body=b"hello")
    assert response.status == 200
    echoed = body_json(response)
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/upload?x=1"
    assert echoed["body"] == "hello"
    (conn,) = factory.connections
    assert conn.alpn == "h2"
    assert conn.requests[1].body == b"hello"
    assert conn.requests[1].header("content-length") == "5"
    assert conn.client_settings  # the client's preface SETTINGS is on record
    assert conn.goaways == [(0, ErrorCodes.NO_ERROR, b"")]  # MiniClient.close()
    assert conn.protocol_error is None


async def test_fixed_over_h2c() -> None:
    factory = h2_handlers.fixed(404, b"nope", [("x-test", "1")])
    async with raw_server(factory) as url, connect(url) as client:
        response = await client.get("/missing", scheme="http")
    assert response.status == 404
    assert bytes(response.body) == b"nope"
    assert (b"x-test", b"1") in response.headers
    assert (b"content-length", b"4") in response.headers


async def test_client_reset_is_recorded() -> None:
    factory = h2_handlers.stall()
    async with raw_server(factory) as url, connect(url) as client:
        stream_id = await client.request("/", end_stream=False)
        client.h2.reset_stream(stream_id, ErrorCodes.CANCEL)
        await client.flush()
        await factory.wait_for(lambda: factory.connections[0].resets)
        (conn,) = factory.connections
        assert conn.resets == [(1, ErrorCodes.CANCEL)]
        await conn.wait_for(lambda: conn.requests[1].reset_code is not None)
        assert conn.requests[1].reset_code == ErrorCodes.CANCEL
        assert not conn.requests[1].complete


async def test_stall_never_answers_but_acks_pings() -> None:
    factory = h2_handlers.stall()
    async with raw_server(factory) as url, connect(url) as client:
        stream_id = await client.request("/")
        await client.ping(b"12345678")
        await factory.wait_for(lambda: factory.requests and factory.requests[0].complete)
        await client.ping(b"87654321")
        assert not client.responses[stream_id].headers
    assert factory.connections[0].pings == [b"12345678", b"87654321"]


async def test_stall_without_reading_acks_nothing() -> None:
    factory = h2_handlers.stall(read=False)
    async with raw_server(factory) as url, connect(url) as client:
        await client.request("/")
        await factory.wait_for(lambda: factory.requests)
        client.h2.ping(b"unanswer")
        await client.flush()
        conn = factory.connections[0]
        assert conn.pings == []  # not even read
        conn.resume_reading()
        await client.ping(b"answered")
        assert conn.pings == [b"unanswer", b"answered"]


async def test_goaway_after_leaves_later_streams_unprocessed() -> None:
    factory = h2_handlers.goaway_after(2)
    async with raw_server(factory) as url, connect(url) as client:
        ids = [await client.request(f"/{n}", scheme="http") for n in range(3)]
        assert ids == [1, 3, 5]
        await client.until(lambda: client.terminated is not None)
        assert client.terminated is not None
        assert client.terminated.last_stream_id == 3
        assert client.terminated.error_code == ErrorCodes.NO_ERROR
        for stream_id in (1, 3):
            response = await client.response(stream_id)
            assert bytes(response.body) == f"stream {stream_id}".encode()
        (conn,) = factory.connections
        await conn.wait_for(lambda: 5 in conn.requests and conn.requests[5].complete)
        assert not client.responses[5].headers
    assert conn.goaway_sent == (3, 0)
    assert sorted(conn.requests) == [1, 3, 5]
    assert isinstance(conn.handler, h2_handlers.GoawayAfter)
    assert conn.handler.answered == {1, 3}


async def test_goaway_zero_refuses_everything() -> None:
    factory = h2_handlers.goaway_after(0)
    async with raw_server(factory) as url, connect(url) as client:
        await client.until(lambda: client.terminated is not None)
        assert client.terminated is not None
        assert client.terminated.last_stream_id == 0


async def test_reset_stream_handler() -> None:
    factory = h2_handlers.reset_stream(ErrorCodes.REFUSED_STREAM)
    async with raw_server(factory) as url, connect(url) as client:
        response = await client.get("/", scheme="http")
    assert response.reset_code == ErrorCodes.REFUSED_STREAM
    assert not response.headers


async def test_reset_stream_mid_response() -> None:
    factory = h2_handlers.reset_stream(ErrorCodes.INTERNAL_ERROR, on="response")
    async with raw_server(factory) as url, connect(url) as client:
        response = await client.get("/", scheme="http")
    assert response.status == 200
    assert bytes(response.body) == b"12345"
    assert response.reset_code == ErrorCodes.INTERNAL_ERROR


async def test_tiny_window_makes_uploads_wait() -> None:
    factory = h2_handlers.tiny_window(initial_window=1)
    async with raw_server(factory) as url, connect(url) as client:
        assert client.h2.remote_settings.initial_window_size == 1
        response = await client.get("/", method="PUT", body=b"x" * 40, scheme="http")
    assert body_json(response)["body"] == "x" * 40
    (conn,) = factory.connections
    data_frames = [f for f in conn.frames if isinstance(f, DataFrame) and f.stream_id == 1]
    assert len(data_frames) >= 40
    assert all(len(f.data) <= 1 for f in data_frames)


async def test_max_concurrent_streams_is_announced_and_respected() -> None:
    factory = h2_handlers.max_concurrent(2)
    async with raw_server(factory) as url, connect(url) as client:
        assert client.h2.remote_settings.max_concurrent_streams == 2
        first = [await client.request(f"/{n}", scheme="http") for n in range(2)]
        with pytest.raises(h2.exceptions.TooManyStreamsError):
            client.h2.send_headers(client.h2.get_next_available_stream_id(), [])
        for stream_id in first:
            assert bytes((await client.response(stream_id)).body) == b"ok"
    assert factory.connections[0].peak_open_streams == 2


async def test_update_settings_mid_connection() -> None:
    class LowerLimit(h2_handlers.Fixed):
        async def on_request(self, request: Request) -> None:
            await self.conn.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: 1}, wait_ack=True)
            await super().on_request(request)

    factory = HandlerFactory(LowerLimit)
    async with raw_server(factory) as url, connect(url) as client:
        assert client.h2.remote_settings.max_concurrent_streams == 100
        await client.get("/", scheme="http")
        assert client.h2.remote_settings.max_concurrent_streams == 1
    assert factory.connections[0].settings_acks == 2  # the preface's and this one


async def test_slow_drip() -> None:
    factory = h2_handlers.slow_drip(chunks=3, delay=0.01, size=10)
    async with raw_server(factory) as url, connect(url) as client:
        response = await client.get("/", scheme="http")
    assert bytes(response.body) == b"*" * 30
    data_events = [e for e in client.events if isinstance(e, h2.events.DataReceived)]
    assert len(data_events) == 3


async def test_big_body_respects_client_windows() -> None:
    size = 300_000
    factory = h2_handlers.big_body(size)
    window = {SettingCodes.INITIAL_WINDOW_SIZE: 4096}
    async with raw_server(factory) as url, connect(url, settings=window) as client:
        # h2 (client side) raises FlowControlError if the server overran a window
        response = await client.get("/", scheme="http")
    assert bytes(response.body) == pattern_bytes(size)
    (conn,) = factory.connections
    stream_updates = [delta for stream_id, delta in conn.window_updates if stream_id == 1]
    assert sum(stream_updates) >= size - 4096


async def test_trailers() -> None:
    factory = h2_handlers.trailers()
    async with raw_server(factory) as url, connect(url) as client:
        response = await client.get("/", scheme="http")
    assert bytes(response.body) == b"body"
    assert response.trailers == [(b"x-checksum", b"abc"), (b"grpc-status", b"0")]


@pytest.mark.parametrize("kind", sorted(h2_handlers.INVALID_HEADERS))
async def test_invalid_headers_are_rejected_by_h2(kind: str) -> None:
    factory = h2_handlers.invalid_headers(kind)
    async with raw_server(factory) as url, connect(url) as client:
        await client.request("/", scheme="http")
        with pytest.raises(h2.exceptions.ProtocolError):
            await client.until(lambda: False)
        await factory.wait_for(lambda: factory.connections[0].goaways)
    (goaway,) = factory.connections[0].goaways
    assert goaway[1] == ErrorCodes.PROTOCOL_ERROR


async def test_connection_error_fails_every_stream() -> None:
    factory = h2_handlers.connection_error(after=2)
    async with raw_server(factory) as url, connect(url) as client:
        await client.request("/a", scheme="http")
        await client.request("/b", scheme="http")
        with pytest.raises(h2.exceptions.ProtocolError):
            await client.until(lambda: False)
        await factory.wait_for(lambda: factory.connections[0].goaways)
    assert factory.connections[0].goaways[0][1] == ErrorCodes.PROTOCOL_ERROR


@pytest.mark.parametrize("rst", [False, True])
async def test_abort_closes_without_goaway(
    rst: bool, server_ssl_context: ssl.SSLContext, h2_ssl_context: ssl.SSLContext
) -> None:
    class Abort(H2Handler):
        async def on_request(self, request: Request) -> None:
            self.conn.abort(rst=rst)

    factory = HandlerFactory(Abort)
    async with (
        raw_server(factory, server_ssl_context) as url,
        connect(url, h2_ssl_context) as client,
    ):
        await client.request("/")
        # no close_notify: trio reports a broken stream, for FIN and RST alike
        with pytest.raises(trio.BrokenResourceError):
            await client.until(lambda: False)
        assert client.terminated is None


async def test_server_ping_and_close() -> None:
    class PingThenClose(H2Handler):
        async def on_request(self, request: Request) -> None:
            await self.conn.ping(b"server!!")
            await self.conn.send_response(request.stream_id, 200)
            await self.conn.close()

    factory = HandlerFactory(PingThenClose)
    async with raw_server(factory) as url, connect(url) as client:
        response = await client.get("/", scheme="http")
        assert response.status == 200
        await client.until(lambda: client.terminated is not None)
    assert factory.connections[0].ping_acks == [b"server!!"]


async def test_client_garbage_is_recorded_not_raised() -> None:
    factory = h2_handlers.echo()
    async with raw_server(factory) as url, connect(url) as client:
        await client.stream.send_all(h2_handlers.GARBAGE_FRAME)
        await client.until(lambda: client.terminated is not None)
        assert client.terminated is not None
        assert client.terminated.error_code == ErrorCodes.PROTOCOL_ERROR
    assert factory.connections[0].protocol_error is not None


# --- real peers ----------------------------------------------------------------------------


async def test_hypercorn_h2_over_tls(https_url: str, h2_ssl_context: ssl.SSLContext) -> None:
    async with connect(https_url, h2_ssl_context) as client:
        response = await client.get("/echo", method="POST", body=b"data")
    assert response.status == 200
    assert body_json(response)["body"] == "data"


async def test_hypercorn_h2c_prior_knowledge(http_url: str) -> None:
    async with connect(http_url) as client:
        first = await client.request("/", scheme="http")
        second = await client.request("/bytes/1000", scheme="http")
        assert bytes((await client.response(first)).body) == b"Hello, world!"
        assert bytes((await client.response(second)).body) == pattern_bytes(1000)


async def test_nginx_h2_over_tls(nginx_server: NginxServer, h2_ssl_context: ssl.SSLContext) -> None:
    async with connect(nginx_server.https_url, h2_ssl_context) as client:
        index = await client.request("/index.txt")
        big = await client.request("/big.bin")
        missing = await client.request("/status/404")
        assert bytes((await client.response(index)).body) == INDEX_TEXT
        assert bytes((await client.response(big)).body) == pattern_bytes(BIG_FILE_SIZE)
        assert (await client.response(missing)).status == 404
        if nginx_server.has_echo:
            echoed = await client.get("/echo", method="POST", body=b"x" * 100_000)
            assert bytes(echoed.body) == b"x" * 100_000
        assert client.h2.remote_settings.max_concurrent_streams == 128


async def test_nginx_h2c(nginx_server: NginxServer) -> None:
    async with connect(nginx_server.h2c_url) as client:
        response = await client.get("/fixed", scheme="http")
    assert bytes(response.body) == b"fixed response\n"


async def test_nghttpd_h2_over_tls(
    nghttpd_server: NghttpdServer, h2_ssl_context: ssl.SSLContext
) -> None:
    async with connect(nghttpd_server.url, h2_ssl_context) as client:
        index = await client.get("/index.txt")
        echoed = await client.get("/upload", method="POST", body=b"y" * 70_000)
    assert bytes(index.body) == NghttpdServer.INDEX_TEXT
    assert bytes(echoed.body) == b"y" * 70_000


async def test_nghttpd_h2c(nghttpd_h2c_server: NghttpdServer) -> None:
    async with connect(nghttpd_h2c_server.url) as client:
        response = await client.get("/big.bin", scheme="http")
    assert bytes(response.body) == pattern_bytes(BIG_FILE_SIZE)


async def test_goaway_first_shares_a_write_with_the_last_response() -> None:
    factory = h2_handlers.goaway_after(2, goaway_first=True)
    async with raw_server(factory) as url, connect(url) as client:
        ids = [await client.request(f"/{n}", scheme="http") for n in range(3)]
        for stream_id in ids[:2]:
            response = await client.response(stream_id)
            assert bytes(response.body) == f"stream {stream_id}".encode()
        assert client.terminated is not None
        assert client.terminated.last_stream_id == 3
    kinds = [type(e).__name__ for e in client.events]
    goaway = kinds.index("ConnectionTerminated")
    assert kinds.index("ResponseReceived", goaway) > goaway  # stream 3 answered after it


async def test_hooks_see_client_events() -> None:
    class Hooks(H2Handler):
        def __init__(self) -> None:
            self.calls: list[tuple[object, ...]] = []

        async def on_headers(self, request: Request) -> None:
            self.calls.append(("headers", request.stream_id))

        async def on_reset(self, stream_id: int, error_code: int) -> None:
            self.calls.append(("reset", stream_id, error_code))

        async def on_ping(self, data: bytes) -> None:
            self.calls.append(("ping", data))

        async def on_window_update(self, stream_id: int, delta: int) -> None:
            self.calls.append(("window", stream_id, delta))

        async def on_terminated(self, error_code: int, last_stream_id: int) -> None:
            self.calls.append(("goaway", error_code, last_stream_id))

    factory = HandlerFactory(Hooks)
    async with raw_server(factory) as url, connect(url) as client:
        stream_id = await client.request("/", scheme="http", end_stream=False)
        client.h2.increment_flow_control_window(1000)
        client.h2.reset_stream(stream_id, ErrorCodes.CANCEL)
        await client.ping(b"hookping")
    handler = factory.connections[0].handler
    assert isinstance(handler, Hooks)
    await factory.wait_for(lambda: ("goaway", 0, 0) in handler.calls)
    assert ("headers", 1) in handler.calls
    assert ("window", 0, 1000) in handler.calls
    assert ("reset", 1, ErrorCodes.CANCEL) in handler.calls
    assert ("ping", b"hookping") in handler.calls


def test_missing_peer_skips_locally_and_fails_when_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TRIOCLIENT_REQUIRE_PEERS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install nginx-light"):
        unavailable("nginx is not installed")
    monkeypatch.setenv("TRIOCLIENT_REQUIRE_PEERS", "0")
    with pytest.raises(pytest.skip.Exception):
        unavailable("nginx is not installed")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required"):
        unavailable("nginx is not installed")


async def test_nginx_goaway_precedes_last_response(tls_ca: trustme.CA) -> None:
    """nginx's GOAWAY when keepalive_requests runs out comes *before* the last response."""
    if not NginxServer.available():
        unavailable("nginx is not installed")
    with NginxServer(tls_ca, keepalive_requests=2) as nginx:
        async with connect(nginx.h2c_url) as client:
            ids = [await client.request("/index.txt", scheme="http") for _ in range(2)]
            for stream_id in ids:
                assert bytes((await client.response(stream_id)).body) == INDEX_TEXT
            assert client.terminated is not None
            assert (client.terminated.error_code, client.terminated.last_stream_id) == (0, 3)
            kinds = [type(e).__name__ for e in client.events]
            goaway = kinds.index("ConnectionTerminated")
            assert "ResponseReceived" in kinds[goaway:]

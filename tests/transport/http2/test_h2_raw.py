"""HTTP/2 against raw h2 servers that misbehave on purpose (tests/servers/h2_*.py).

The S-numbers are the cancellation-contract scenarios of docs/cancellation.md.
"""

from __future__ import annotations

import hashlib
import json
import random
import ssl

import pytest
import trio
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from helpers import assert_quiet
from servers import h2_handlers
from servers.asgi_app import pattern_bytes
from servers.h2_raw import H2Handler, HandlerFactory, Request, serve_h2

import trioclient
from trioclient import Timeout

H2C = {"http1": False, "http2": True}


async def test_tls_alpn_h2_against_raw_server(
    nursery: trio.Nursery, server_ssl_context: ssl.SSLContext, ssl_context: ssl.SSLContext
) -> None:
    factory = h2_handlers.echo()
    url = await serve_h2(nursery, factory, tls=server_ssl_context)
    async with trioclient.Client(verify=ssl_context, http2=True) as client:
        response = await client.post(f"{url}/upload?x=1", content=b"hello")
        assert response.http_version == "HTTP/2"
        echo = response.json()
    assert echo["method"] == "POST"
    assert echo["path"] == "/upload?x=1"
    assert echo["body"] == "hello"
    assert echo["scheme"] == "https"
    names = [name for name, _ in echo["headers"]]
    assert "connection" not in names
    assert "host" not in names  # carried as :authority


async def test_cancel_k_of_n_streams_resets_only_those(nursery: trio.Nursery) -> None:
    """S7: RST_STREAM(CANCEL) for each cancelled stream; the siblings progress."""
    factory = h2_handlers.slow_drip(chunks=5, delay=0.02, size=100)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C) as client:
        done: list[int] = []

        async def request(index: int, cancel: bool) -> None:
            with trio.CancelScope() as scope:
                if cancel:
                    scope.deadline = trio.current_time() + 0.03
                response = await client.get(f"{url}/{index}")
                assert response.content == b"*" * 500
                done.append(index)

        async with trio.open_nursery() as inner:
            for index in range(10):
                inner.start_soon(request, index, index < 4)
        assert sorted(done) == list(range(4, 10))
        assert_quiet(client)
        conn = factory.connections[0]

        def cancelled() -> set[int]:
            return {sid for sid, code in conn.resets if code == ErrorCodes.CANCEL}

        # (h2 may also answer DATA that was in flight with RST_STREAM(STREAM_CLOSED).)
        await conn.wait_for(lambda: len(cancelled()) == 4)
        assert len(factory.connections) == 1
        response = await client.get(f"{url}/again")  # the connection still works
        assert response.status_code == 200


async def test_lowered_max_concurrent_streams_does_not_deadlock(nursery: trio.Nursery) -> None:
    """S8: the server lowers MAX_CONCURRENT_STREAMS below the number in flight."""

    class Lowering(H2Handler):
        settings = {SettingCodes.MAX_CONCURRENT_STREAMS: 20}

        async def on_request(self, request: Request) -> None:
            if request.stream_id == 1:
                await self.conn.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: 2})
            await trio.sleep(0.01)
            await self.conn.send_response(request.stream_id, 200, [], b"ok")

    factory = HandlerFactory(Lowering)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C) as client:
        async with trio.open_nursery() as inner:
            for index in range(30):
                inner.start_soon(client.get, f"{url}/{index}")
        assert_quiet(client)
    assert sum(conn.peak_open_streams for conn in factory.connections) >= 2


async def test_request_h2_refuses_leaves_the_connection_intact(nursery: trio.Nursery) -> None:
    """A request HTTP/2 cannot carry (an ordinary CONNECT with :scheme and :path) is refused
    before h2 touches the connection. h2 used to count the half-made stream as open (with
    MAX_CONCURRENT_STREAMS 2, two refusals starved the connection) and put its headers in
    the HPACK table, where the server's decoder never saw them."""
    factory = HandlerFactory(h2_handlers.Echo)
    url = await serve_h2(nursery, factory, settings={SettingCodes.MAX_CONCURRENT_STREAMS: 2})
    limits = trioclient.Limits(max_connections=1)
    headers = {"x-shared": "in both requests"}
    async with trioclient.Client(**H2C, limits=limits, timeout=2) as client:
        for _ in range(3):
            with pytest.raises(trioclient.LocalProtocolError, match="HTTP/2"):
                await client.request("CONNECT", f"{url}/", headers=headers)
        for index in range(3):
            response = await client.get(f"{url}/{index}", headers=headers)
            assert response.status_code == 200
        assert_quiet(client)
    assert len(factory.connections) == 1


async def test_stream_ids_running_out_moves_to_a_new_connection(nursery: trio.Nursery) -> None:
    """After 2**30 streams a client has no stream id left on a connection: the request goes
    to a new connection (h2's NoAvailableStreamIDError used to escape)."""
    from trioclient._transport._http2 import HTTP2Connection

    factory = HandlerFactory(h2_handlers.Echo)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C) as client:
        assert (await client.get(f"{url}/first")).status_code == 200
        (conn,) = [e.http for e in client._transport._pool._books.entries()]
        assert isinstance(conn, HTTP2Connection)
        conn._h2.highest_outbound_stream_id = 2**31 - 1  # the last id a client may use
        assert (await client.get(f"{url}/second")).status_code == 200
        assert_quiet(client)
    assert len(factory.connections) == 2


async def test_uploads_wait_for_window_and_all_wake(nursery: trio.Nursery) -> None:
    """S9: concurrent uploads with an exhausted window; each WINDOW_UPDATE wakes senders."""
    factory = h2_handlers.tiny_window(initial_window=1)
    url = await serve_h2(nursery, factory)
    bodies = {index: bytes([index]) * 3000 for index in range(8)}
    async with trioclient.Client(**H2C) as client:
        results: dict[int, str] = {}

        async def upload(index: int) -> None:
            response = await client.post(f"{url}/{index}", content=bodies[index])
            results[index] = response.json()["body"]

        async with trio.open_nursery() as inner:
            for index in bodies:
                inner.start_soon(upload, index)
        assert {i: r.encode("latin-1") for i, r in results.items()} == bodies
        assert_quiet(client)


@pytest.mark.parametrize("goaway_first", [False, True], ids=["after", "nginx-style"])
async def test_goaway_retries_unprocessed_streams(
    nursery: trio.Nursery, goaway_first: bool
) -> None:
    """S10: streams above last_stream_id go to a new connection; the rest finish."""
    factory = h2_handlers.goaway_after(3, goaway_first=goaway_first)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C) as client:
        bodies: list[bytes] = []

        async def get(index: int) -> None:
            bodies.append((await client.get(f"{url}/{index}")).content)

        async with trio.open_nursery() as inner:
            for index in range(7):
                inner.start_soon(get, index)
                await trio.lowlevel.checkpoint()
        assert len(bodies) == 7
        assert all(body.startswith(b"stream ") for body in bodies)
        assert len(factory.connections) >= 2
        assert_quiet(client)


async def test_goaway_with_error_fails_open_streams_cleanly(nursery: trio.Nursery) -> None:
    factory = h2_handlers.goaway_after(1, error_code=ErrorCodes.INTERNAL_ERROR)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C) as client:
        assert (await client.get(f"{url}/first")).content.startswith(b"stream")
        response = await client.get(f"{url}/second")  # on a new connection
        assert response.status_code == 200
        assert_quiet(client)


async def test_connection_error_fails_every_open_stream(nursery: trio.Nursery) -> None:
    factory = h2_handlers.connection_error(after=3)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C) as client:
        errors: list[BaseException] = []

        async def get(index: int) -> None:
            try:
                await client.get(f"{url}/{index}")
            except trioclient.RemoteProtocolError as exc:
                errors.append(exc)

        async with trio.open_nursery() as inner:
            for index in range(3):
                inner.start_soon(get, index)
        assert len(errors) == 3
        assert all("protocol error" in str(exc).lower() for exc in errors)
        assert all(exc.request is not None for exc in errors)  # type: ignore[attr-defined]
        assert client.pool_statistics().connections == 0
        assert_quiet(client)


@pytest.mark.parametrize("when", ["headers", "request", "response"])
async def test_stream_reset_by_server_fails_that_request_only(
    nursery: trio.Nursery, when: str
) -> None:
    resetting = h2_handlers.reset_stream(ErrorCodes.INTERNAL_ERROR, on=when)  # type: ignore[arg-type]
    url = await serve_h2(nursery, resetting)
    async with trioclient.Client(**H2C) as client:
        with pytest.raises(trioclient.RemoteProtocolError, match="reset stream 1") as info:
            await client.get(f"{url}/x")
        assert "INTERNAL_ERROR" in str(info.value)
        assert client.pool_statistics().connections == 1
        assert_quiet(client)


async def test_refused_stream_is_retried(nursery: trio.Nursery) -> None:
    class RefuseFirst(h2_handlers.Echo):
        async def on_headers(self, request: Request) -> None:
            if request.stream_id == 1:
                await self.conn.reset_stream(1, ErrorCodes.REFUSED_STREAM)

        async def on_request(self, request: Request) -> None:
            if request.stream_id != 1:
                await super().on_request(request)

    factory = HandlerFactory(RefuseFirst)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C) as client:
        response = await client.post(f"{url}/x", content=b"payload")
        assert response.json()["body"] == "payload"


@pytest.mark.parametrize("kind", sorted(h2_handlers.INVALID_HEADERS))
async def test_invalid_response_headers_are_a_clear_error(nursery: trio.Nursery, kind: str) -> None:
    url = await serve_h2(nursery, h2_handlers.invalid_headers(kind))
    async with trioclient.Client(**H2C) as client:
        with pytest.raises(trioclient.RemoteProtocolError) as info:
            await client.get(f"{url}/x")
        assert "127.0.0.1" in str(info.value)
        assert_quiet(client)


async def test_trailers(nursery: trio.Nursery) -> None:
    url = await serve_h2(nursery, h2_handlers.trailers())
    async with trioclient.Client(**H2C) as client:
        response = await client.get(f"{url}/x")
        assert response.content == b"body"
        assert response.trailers["x-checksum"] == "abc"
        assert response.trailers["grpc-status"] == "0"


async def test_slow_consumer_is_bounded_and_does_not_stall_siblings(
    nursery: trio.Nursery,
) -> None:
    size = 8 * 1024 * 1024
    factory = h2_handlers.big_body(size)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C) as client:
        async with client.stream("GET", f"{url}/big") as slow:
            chunks = slow.aiter_raw()
            await chunks.__anext__()
            await trio.sleep(0.2)  # let the server push as much as it may
            stream = slow._stream
            assert stream is not None
            buffered = sum(len(chunk) for chunk, _ in stream._body._stream.chunks)  # type: ignore[attr-defined]
            assert buffered <= 1024 * 1024  # the stream window, not the body size
            sibling = await client.get(f"{url}/small")  # same connection, not stalled
            assert len(sibling.content) == size
            async for _chunk in chunks:
                pass
        assert slow.num_bytes_downloaded == size
        assert len(factory.connections) == 1


async def test_ping_keepalive_drops_a_silent_peer(nursery: trio.Nursery) -> None:
    factory = h2_handlers.stall(read=False)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, http2_ping_interval=0.05, timeout=Timeout(5)) as client:
        with pytest.raises(trioclient.ReadError, match="PING"):
            await client.get(f"{url}/x")
        assert_quiet(client)
        assert client.pool_statistics().connections == 0


async def test_ping_keepalive_on_a_live_peer(nursery: trio.Nursery) -> None:
    # The interval is also how long the PING's ACK may take: 0.02 s failed CI on a loaded
    # machine; silences of 0.8 s still make the client PING, and 0.5 s is ample for an ACK.
    factory = h2_handlers.slow_drip(chunks=3, delay=0.8, size=1)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, http2_ping_interval=0.5) as client:
        assert (await client.get(f"{url}/x")).content == b"***"
    assert factory.connections[0].pings


async def test_read_timeout_resets_the_stream(nursery: trio.Nursery) -> None:
    factory = h2_handlers.stall()
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, timeout=Timeout(5, read=0.05)) as client:
        with pytest.raises(trioclient.ReadTimeout, match=r"127\.0\.0\.1"):
            await client.get(f"{url}/x")
        conn = factory.connections[0]
        await conn.wait_for(lambda: conn.resets == [(1, ErrorCodes.CANCEL)])
        assert_quiet(client)


async def test_write_timeout_when_the_window_never_opens(nursery: trio.Nursery) -> None:
    factory = h2_handlers.stall(ack=False)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, timeout=Timeout(5, write=0.1)) as client:
        with pytest.raises(trioclient.WriteTimeout, match="flow-control window"):
            await client.post(f"{url}/x", content=b"z" * 200_000)
        assert_quiet(client)


async def test_two_hundred_requests_with_random_cancellations(nursery: trio.Nursery) -> None:
    """Every survivor gets its own, correct body; no stream or connection leaks."""
    factory = h2_handlers.echo()
    url = await serve_h2(nursery, factory)
    rng = random.Random(1234)
    plan = [(index, rng.random() < 0.3, rng.randrange(1, 40_000)) for index in range(200)]
    survivors: dict[int, str] = {}
    async with trioclient.Client(**H2C) as client:

        async def request(index: int, cancel: bool, size: int) -> None:
            body = hashlib.sha256(str(index).encode()).hexdigest().encode() * (size // 64 + 1)
            with trio.CancelScope() as scope:
                if cancel:
                    scope.deadline = trio.current_time() + rng.random() * 0.01
                response = await client.post(f"{url}/{index}", content=body)
                echoed = json.loads(response.content)
                assert echoed["path"] == f"/{index}"
                assert echoed["body"].encode("latin-1") == body
                survivors[index] = hashlib.sha256(body).hexdigest()

        async with trio.open_nursery() as inner:
            for index, cancel, size in plan:
                inner.start_soon(request, index, cancel, size)
        assert len(survivors) >= sum(1 for _, cancel, _ in plan if not cancel)
        assert_quiet(client)
        # The server allows 100 streams per connection: 200 at once need two connections.
        assert client.pool_statistics().connections == 2


async def test_big_download_is_checksummed(nursery: trio.Nursery) -> None:
    size = 3 * 1024 * 1024 + 17
    url = await serve_h2(nursery, h2_handlers.big_body(size))
    async with trioclient.Client(**H2C) as client:
        response = await client.get(f"{url}/x")
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(pattern_bytes(size)).digest()

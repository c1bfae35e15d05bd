"""HTTP/2 against hostile or broken servers (issue 10, "HTTP/2"): timeouts that mean what
they say, error messages that say what happened, retries of dead reused connections, and
cancellation storms that never trip a server's rapid-reset defences.

The raw servers are tests/servers/h2_*.py; nginx runs through tests/servers/peers.py.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import h2.events
import pytest
import trio
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from helpers import assert_quiet
from hyperframe.frame import PingFrame
from servers import h2_handlers
from servers.h2_raw import H2Handler, HandlerFactory, Request, serve_h2

import trioclient

H2C = {"http1": False, "http2": True}


def window_update(stream_id: int, increment: int) -> bytes:
    """A raw WINDOW_UPDATE frame (hyperframe refuses to build an out-of-range one)."""
    return struct.pack(">I", 4)[1:] + bytes([0x8, 0]) + struct.pack(">II", stream_id, increment)


# -- error messages ---------------------------------------------------------------------------


async def test_stream_we_reset_for_a_bad_window_update_is_not_blamed_on_a_server_reset(
    nursery: trio.Nursery,
) -> None:
    """A WINDOW_UPDATE that overflows a stream's window makes h2 reset the stream itself
    (RST_STREAM(FLOW_CONTROL_ERROR) from us): the server reset nothing."""

    class Overflow(h2_handlers.Stall):
        async def on_headers(self, request: Request) -> None:
            await self.conn.send_raw(window_update(request.stream_id, 2**31 - 1))

    factory = HandlerFactory(Overflow)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, timeout=5) as client:
        with pytest.raises(trioclient.RemoteProtocolError) as info:
            await client.get(f"{url}/x")
        message = str(info.value)
        assert "The server" not in message  # not "The server ... reset stream 1"
        assert message.startswith("The client reset stream 1 to 127.0.0.1:")
        assert "WINDOW_UPDATE" in message
        assert "FLOW_CONTROL_ERROR" in message
        conn = factory.connections[0]
        await conn.wait_for(lambda: (1, ErrorCodes.FLOW_CONTROL_ERROR) in conn.resets)
        assert_quiet(client)


async def test_refused_on_the_same_connection_does_not_claim_new_connections(
    nursery: trio.Nursery,
) -> None:
    """REFUSED_STREAM leaves the connection usable, so every resend went to the same one."""
    factory = h2_handlers.reset_stream(ErrorCodes.REFUSED_STREAM, on="headers")
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, timeout=5) as client:
        with pytest.raises(trioclient.RemoteProtocolError) as info:
            await client.get(f"{url}/x")
        message = str(info.value)
        assert "new connections" not in message
        assert "refused stream 21" in message
        assert "11 attempts, all on one connection" in message
        assert_quiet(client)
    assert len(factory.connections) == 1


async def test_goaway_retries_say_how_many_connections_were_tried(nursery: trio.Nursery) -> None:
    """GOAWAY(0) on every connection: each resend really went to a new connection."""
    factory = h2_handlers.goaway_after(0)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, timeout=5) as client:
        with pytest.raises(trioclient.RemoteProtocolError) as info:
            await client.get(f"{url}/x")
        message = str(info.value)
        assert "GOAWAY" in message
        assert "11 attempts on 11 connections" in message
        assert_quiet(client)


# -- read timeout: progress is body bytes, not frames -----------------------------------------


class EmptyFrames(H2Handler):
    """200 with content-length 10, then a zero-length DATA frame every ``gap`` seconds (no
    body byte ever), for ``duration`` seconds; ``byte_every`` sends one body byte instead
    every that many frames."""

    def __init__(self, gap: float = 0.02, duration: float = 3.0, byte_every: int = 0) -> None:
        self.gap = gap
        self.duration = duration
        self.byte_every = byte_every

    async def on_request(self, request: Request) -> None:
        conn, stream_id = self.conn, request.stream_id
        await conn.send_response(stream_id, 200, [("content-length", "10")], end_stream=False)
        sent = 0
        with trio.move_on_after(self.duration):
            for index in range(1, 10**6):
                await trio.sleep(self.gap)
                if self.byte_every and index % self.byte_every == 0:
                    sent += 1
                    await conn.send_data(stream_id, b"x", end_stream=sent == 10)
                    if sent == 10:
                        return
                else:
                    conn.h2.send_data(stream_id, b"")
                    await conn.send_raw(b"")


async def test_empty_data_frames_are_not_read_progress(nursery: trio.Nursery) -> None:
    factory = HandlerFactory(EmptyFrames)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, timeout=trioclient.Timeout(5, read=0.3)) as client:
        async with client.stream("GET", f"{url}/x") as response:
            start = trio.current_time()
            with pytest.raises(trioclient.ReadTimeout, match=r"no data for 0\.3 s"):
                await response.aread()
            assert trio.current_time() - start < 1.0  # not the 3 s of empty frames
        assert_quiet(client)


async def test_body_bytes_are_read_progress(nursery: trio.Nursery) -> None:
    """One body byte per 0.12 s (empty frames between) under read=0.3: never a timeout."""
    factory = HandlerFactory(lambda: EmptyFrames(gap=0.03, duration=5.0, byte_every=4))
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, timeout=trioclient.Timeout(5, read=0.3)) as client:
        response = await client.get(f"{url}/x")
        assert response.content == b"x" * 10
        assert_quiet(client)


# -- cancellation storms: reset streams count until the server has seen the reset ----------------


async def test_reset_streams_count_against_the_limit_until_a_ping_ack(
    nursery: trio.Nursery,
) -> None:
    """MAX_CONCURRENT_STREAMS 4, 20 tasks sending requests each cancelled after 20 ms, until
    the server has seen 40 (a count, not a duration: a busy machine sends fewer per second;
    bounded at 30 s). A server like nginx
    counts a reset stream until it has processed the reset (and flushed its frames), which
    the client only knows once a PING sent after the RST_STREAM is acknowledged. Replaying
    the server's events in order with that rule, no more than 4 streams ever count."""
    factory = h2_handlers.stall()
    url = await serve_h2(nursery, factory, settings={SettingCodes.MAX_CONCURRENT_STREAMS: 4})
    limits = trioclient.Limits(max_connections=1)
    async with trioclient.Client(**H2C, limits=limits, timeout=5) as client:

        async def storm() -> None:
            while len(conn.requests) < 40 and trio.current_time() < stop:
                # 20 ms, not 2: under coverage tracing building and sending one request
                # can take longer than 2 ms, and a request cancelled before it is sent
                # resets nothing (the storm then never happens).
                with trio.move_on_after(0.02):
                    await client.get(f"{url}/x")

        # Connected (then reset) before the storm: cancelled once the server has the
        # request, not after a fixed 0.1 s, which a loaded machine can spend connecting
        # (the storm then went to a second connection and this one saw no request).
        warm_up = trio.CancelScope()

        async def send_warm_up() -> None:
            with warm_up:
                await client.get(f"{url}/warm-up")

        async with trio.open_nursery() as inner:
            inner.start_soon(send_warm_up)
            await factory.wait_for(lambda: factory.connections and factory.connections[0].requests)
            warm_up.cancel()
        (conn,) = factory.connections
        stop = trio.current_time() + 30
        async with trio.open_nursery() as inner:
            for _ in range(20):
                inner.start_soon(storm)
        await conn.wait_for(lambda: len(conn.resets) == len(conn.requests))
        assert len(conn.requests) > 20  # a storm indeed
        assert conn.protocol_error is None
        open_streams: set[int] = set()
        reset_unconfirmed: set[int] = set()
        peak = 0
        for event in conn.events:
            if isinstance(event, h2.events.RequestReceived):
                open_streams.add(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                open_streams.discard(event.stream_id)
                reset_unconfirmed.add(event.stream_id)
            elif isinstance(event, h2.events.PingReceived):
                reset_unconfirmed.clear()
            peak = max(peak, len(open_streams) + len(reset_unconfirmed))
        assert peak <= 4
        assert_quiet(client)


# -- write timeout: it bounds silence, and a stalled stream fails alone -------------------------

WIDE = 2**24  # windows wide enough that h2 queues a whole upload for the writer at once


class SlowReader(H2Handler):
    """Wide windows (like nginx's), then reads slowly: ~2 MiB/s (64 KiB per 30 ms). Answers
    each request with the length of its body; ``pause`` stops reading for that long once
    the first request's headers arrived."""

    settings = {SettingCodes.INITIAL_WINDOW_SIZE: WIDE}

    def __init__(self, read_delay: float = 0.03, pause: float = 0.0) -> None:
        self.read_delay = read_delay
        self.pause = pause

    async def on_connect(self) -> None:
        self.conn.h2.increment_flow_control_window(WIDE - 65535)
        await self.conn.send_raw(b"")

    async def on_headers(self, request: Request) -> None:
        if self.pause and request.stream_id == 1:
            self.conn.pause_reading()
            await trio.sleep(self.pause)
            self.conn.resume_reading()

    async def on_request(self, request: Request) -> None:
        await self.conn.send_response(request.stream_id, 200, [], str(len(request.body)).encode())


async def test_upload_that_keeps_moving_is_not_a_write_timeout(nursery: trio.Nursery) -> None:
    """6 MiB at ~2 MiB/s under write=1.5: the socket accepts bytes all along, so neither the
    upload nor a GET started meanwhile on the same connection times out. (The write bound is
    generous enough that a loaded machine's stall of the server task is not a timeout; the
    upload still lasts twice as long as it.)"""
    factory = HandlerFactory(SlowReader)
    url = await serve_h2(nursery, factory)
    size = 6 * 1024 * 1024
    timeout = trioclient.Timeout(10, write=1.5)
    async with trioclient.Client(**H2C, timeout=timeout) as client:
        results: dict[str, bytes] = {}

        async def upload() -> None:
            results["upload"] = (await client.post(f"{url}/up", content=b"u" * size)).content

        async def sibling() -> None:
            await trio.sleep(0.2)
            results["get"] = (await client.get(f"{url}/get")).content

        start = trio.current_time()
        async with trio.open_nursery() as inner:
            inner.start_soon(upload)
            inner.start_soon(sibling)
        assert trio.current_time() - start > 2.0  # it really was slower than the write bound
        assert results == {"upload": str(size).encode(), "get": b"0"}
        assert len(factory.connections) == 1
        (conn,) = [entry.http for entry in client._transport._pool._books.entries()]
        assert conn._uploads == {}  # type: ignore[union-attr]
        assert_quiet(client)


async def test_socket_silence_is_bounded_by_the_requests_own_write_timeout(
    nursery: trio.Nursery,
) -> None:
    """The server stops reading for 0.8 s: a request whose own write timeout is 3 s
    survives it on a client whose write timeout is 0.3 s."""
    factory = HandlerFactory(lambda: SlowReader(read_delay=0.0, pause=0.8))
    url = await serve_h2(nursery, factory)
    size = 8 * 1024 * 1024  # more than the socket buffers hold
    async with trioclient.Client(**H2C, timeout=trioclient.Timeout(10, write=0.3)) as client:
        response = await client.post(
            f"{url}/up", content=b"u" * size, timeout=trioclient.Timeout(10, write=3)
        )
        assert response.content == str(size).encode()
        assert_quiet(client)


async def test_stream_stalled_by_flow_control_fails_alone(nursery: trio.Nursery) -> None:
    """The server never gives credit back for the upload: only the upload times out; a GET
    on the same connection is answered, and the connection stays in the pool."""

    class NoCredit(h2_handlers.Fixed):
        ack_data = False

    factory = HandlerFactory(NoCredit)
    url = await serve_h2(nursery, factory)
    timeout = trioclient.Timeout(5, write=0.3)
    async with trioclient.Client(**H2C, timeout=timeout) as client:
        outcome: dict[str, object] = {}

        async def upload() -> None:
            try:
                await client.post(f"{url}/up", content=b"u" * 200_000)
            except trioclient.WriteTimeout as exc:
                outcome["upload"] = exc

        async def sibling() -> None:
            await trio.sleep(0.1)
            outcome["get"] = (await client.get(f"{url}/get")).content

        async with trio.open_nursery() as inner:
            inner.start_soon(upload)
            inner.start_soon(sibling)
        assert "flow-control window" in str(outcome["upload"])
        assert outcome["get"] == b"ok"
        assert client.pool_statistics().connections == 1
        assert (await client.get(f"{url}/again")).content == b"ok"
        assert len(factory.connections) == 1
        assert_quiet(client)


async def test_whole_connection_stalled_fails_every_stream(nursery: trio.Nursery) -> None:
    """The server stops reading altogether: once no byte is accepted for `write` seconds,
    the connection is stalled, not one stream, and every request on it fails."""
    factory = HandlerFactory(lambda: SlowReader(read_delay=0.0, pause=30))
    url = await serve_h2(nursery, factory)
    size = 8 * 1024 * 1024
    async with trioclient.Client(**H2C, timeout=trioclient.Timeout(10, write=0.3)) as client:
        errors: list[BaseException] = []

        async def request(method: str) -> None:
            try:
                await client.request(method, f"{url}/x", content=b"u" * size)
            except trioclient.TransportError as exc:
                errors.append(exc)

        with trio.fail_after(5):
            async with trio.open_nursery() as inner:
                inner.start_soon(request, "POST")
                inner.start_soon(request, "PUT")
        assert len(errors) == 2
        assert all(isinstance(exc, trioclient.WriteTimeout) for exc in errors)
        assert client.pool_statistics().connections == 0
        assert_quiet(client)


# -- retry: a reused connection that dies before any response frame -----------------------------


class DieOnSecond(h2_handlers.Echo):
    """Answers the first request of each connection; when the second one's headers arrive,
    drops the connection (FIN, or RST with ``rst``), after response ``head`` if asked."""

    def __init__(self, *, rst: bool = False, head: bool = False, first: bool = False) -> None:
        self.rst = rst
        self.head = head
        self.first = first  # drop on the very first request of the first connection

    async def on_headers(self, request: Request) -> None:
        dying = len(self.conn.requests) >= 2 or self.first
        if not dying:
            return
        if self.head:
            await self.conn.send_response(request.stream_id, 200, [], end_stream=False)
            await trio.sleep(0.05)
        self.conn.abort(rst=self.rst)

    async def on_request(self, request: Request) -> None:
        if len(self.conn.requests) < 2 and not self.first:
            await super().on_request(request)


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
async def test_idempotent_request_on_a_dead_reused_connection_is_retried(
    nursery: trio.Nursery, rst: bool
) -> None:
    factory = HandlerFactory(lambda: DieOnSecond(rst=rst))
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, timeout=5) as client:
        assert (await client.get(f"{url}/one")).status_code == 200
        response = await client.get(f"{url}/two")  # dies on the first connection
        assert response.json()["path"] == "/two"
        assert len(factory.connections) == 2
        assert_quiet(client)


async def test_post_on_a_dead_reused_connection_is_not_retried(nursery: trio.Nursery) -> None:
    factory = HandlerFactory(DieOnSecond)
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, timeout=5) as client:
        assert (await client.get(f"{url}/one")).status_code == 200
        with pytest.raises((trioclient.RemoteProtocolError, trioclient.ReadError)):
            await client.post(f"{url}/two", content=b"once only")
        assert len(factory.connections) == 1
        assert_quiet(client)


async def test_a_fresh_connection_dying_is_not_retried(nursery: trio.Nursery) -> None:
    factory = HandlerFactory(lambda: DieOnSecond(first=True))
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, timeout=5) as client:
        with pytest.raises((trioclient.RemoteProtocolError, trioclient.ReadError)):
            await client.get(f"{url}/one")
        assert len(factory.connections) == 1
        assert_quiet(client)


async def test_no_retry_once_a_response_frame_arrived(nursery: trio.Nursery) -> None:
    factory = HandlerFactory(lambda: DieOnSecond(head=True))
    url = await serve_h2(nursery, factory)
    async with trioclient.Client(**H2C, timeout=5) as client:
        assert (await client.get(f"{url}/one")).status_code == 200
        with pytest.raises((trioclient.RemoteProtocolError, trioclient.ReadError)):
            response = await client.get(f"{url}/two")
            await response.aread()
        assert len(factory.connections) == 1
        assert_quiet(client)


class NoPingAck(h2_handlers.Stall):
    """Never answers, and never acknowledges a PING (h2 would ACK it by itself)."""

    async def on_connect(self) -> None:
        h2_conn = self.conn.h2
        receive = h2_conn._receive_ping_frame

        def swallow_ack(frame: PingFrame) -> tuple[list[object], list[object]]:
            _frames, events = receive(frame)
            return [], events

        h2_conn._frame_dispatch_table[PingFrame] = swallow_ack


async def test_unacknowledged_reset_ping_retires_the_connection(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that never ACKs the PING would keep our reset streams counted forever and
    the connection starved of slots: after RESET_ACK_PATIENCE the connection takes no new
    streams and the request goes to a new one."""
    from trioclient._transport import _http2

    monkeypatch.setattr(_http2, "RESET_ACK_PATIENCE", 0.2)
    factory = HandlerFactory(NoPingAck)
    url = await serve_h2(nursery, factory, settings={SettingCodes.MAX_CONCURRENT_STREAMS: 2})
    async with trioclient.Client(**H2C, timeout=trioclient.Timeout(5, pool=3)) as client:
        for index in range(2):
            with trio.move_on_after(0.1):
                await client.get(f"{url}/{index}")
        first = factory.connections[0]
        await first.wait_for(lambda: len(first.resets) == 2)
        with trio.move_on_after(1.5):
            await client.get(f"{url}/third")
        assert len(factory.connections) == 2
        second = factory.connections[1]
        assert [request.path for request in second.requests.values()] == ["/third"]
        assert_quiet(client)


# -- a flood of control frames the server never reads the answers to ----------------------


class PingFlood(h2_handlers.Stall):
    """Stops reading, then sends PINGs, each of which h2 answers with a PING ACK queued for
    a socket the server no longer drains: only the client's own bound stops that queue."""

    sent = 0

    async def on_headers(self, request: Request) -> None:
        self.conn.pause_reading()
        pings = PingFrame(0, opaque_data=b"flooding").serialize() * 4096  # 68 KiB
        while True:
            await self.conn.send_raw(pings)
            type(self).sent += len(pings)


async def test_ping_flood_does_not_grow_the_outbound_queue_without_bound(
    nursery: trio.Nursery,
) -> None:
    from trioclient._transport import _http2
    from trioclient._transport._connect import socket_of

    PingFlood.sent = 0
    factory = HandlerFactory(PingFlood)
    url = await serve_h2(nursery, factory)
    largest = 0
    async with (
        trioclient.Client(**H2C, timeout=trioclient.Timeout(30)) as client,
        trio.open_nursery() as inner,
    ):
        inner.start_soon(client.get, f"{url}/x")
        while not (entries := list(client._transport._pool._books.entries())) or (
            entries[0].http is None
        ):
            await trio.sleep(0.01)
        conn = entries[0].http
        assert isinstance(conn, _http2.HTTP2Connection)
        sock = socket_of(conn._stream)
        assert sock is not None
        # A small send buffer (no autotuning), so the kernel cannot hide the queue.
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_SNDBUF, 16 * 1024)
        # Until the server has sent 12 MiB, or has been unable to send for a while
        # (the client stopped reading: what the bound should make it do).
        last, still = -1, 0
        while PingFlood.sent < 12 * 1024 * 1024 and still < 40:
            largest = max(largest, len(conn._h2._data_to_send))
            still = still + 1 if PingFlood.sent == last else 0
            last = PingFlood.sent
            await trio.sleep(0.025)
        inner.cancel_scope.cancel()
    bound = _http2.OUTBOUND_LIMIT + _http2.READ_SIZE
    assert largest <= bound, f"{largest} bytes queued for the socket"
    assert PingFlood.sent < 12 * 1024 * 1024


class HugeWindowNoReading(h2_handlers.Stall):
    """Grants a 1 GiB window to the connection and the stream, then reads nothing."""

    async def on_headers(self, request: Request) -> None:
        self.conn.pause_reading()
        grow = 2**30 - 65535
        await self.conn.send_raw(window_update(0, grow) + window_update(request.stream_id, grow))


async def test_upload_into_a_huge_window_queues_a_bounded_amount(nursery: trio.Nursery) -> None:
    """The server's window is no bound on what the client holds for the socket: an upload
    waits for h2's queue to drain below OUTBOUND_LIMIT, and a server that never reads ends it
    with the write timeout, not with the whole body queued."""
    from trioclient._transport import _http2

    factory = HandlerFactory(HugeWindowNoReading)
    url = await serve_h2(nursery, factory)
    produced = 0
    largest = 0
    client = trioclient.Client(**H2C, timeout=trioclient.Timeout(30, write=1))

    async def body() -> AsyncIterator[bytes]:
        nonlocal produced, largest
        for entry in client._transport._pool._books.entries():
            if isinstance(entry.http, _http2.HTTP2Connection):
                largest = max(largest, entry.http._queued())
        chunk = b"u" * 65536
        while produced < 64 * 1024 * 1024:
            produced += len(chunk)
            yield chunk
            for entry in client._transport._pool._books.entries():
                if isinstance(entry.http, _http2.HTTP2Connection):
                    largest = max(largest, entry.http._queued())

    async with client:
        with pytest.raises(trioclient.WriteTimeout):
            await client.post(f"{url}/upload", content=body())
    assert largest <= _http2.OUTBOUND_LIMIT + 65536
    assert produced < 32 * 1024 * 1024  # the kernel's buffers take some; never the body


class FirstStallsWithoutPingAck(NoPingAck):
    """The first connection never answers nor ACKs a PING; later ones answer at once."""

    connected = 0

    async def on_connect(self) -> None:
        type(self).connected += 1
        self.index = type(self).connected
        if self.index == 1:
            await super().on_connect()

    async def on_request(self, request: Request) -> None:
        if self.index > 1:
            await self.conn.send_response(request.stream_id, 200, (), b"second")


async def test_goaway_moves_a_request_waiting_for_a_stream_slot_to_a_new_connection(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request parked for a stream slot (here: the reset of a cancelled stream still counts
    until a PING ACK the server never sends) is retried on a new connection as soon as a
    graceful GOAWAY says this one takes no new streams, not when the pool timeout ends."""
    from trioclient._transport import _http2

    monkeypatch.setattr(_http2, "RESET_ACK_PATIENCE", 60.0)
    monkeypatch.setattr(FirstStallsWithoutPingAck, "connected", 0)
    factory = HandlerFactory(FirstStallsWithoutPingAck)
    url = await serve_h2(nursery, factory, settings={SettingCodes.MAX_CONCURRENT_STREAMS: 1})
    timeout = trioclient.Timeout(30, pool=8)
    async with trioclient.Client(**H2C, timeout=timeout) as client:
        first_request = trio.CancelScope()

        async def cancelled_first() -> None:
            with first_request:
                await client.get(f"{url}/first")

        nursery.start_soon(cancelled_first)
        await factory.wait_for(lambda: factory.connections and factory.connections[0].requests)
        first = factory.connections[0]
        first_request.cancel()
        await first.wait_for(lambda: len(first.resets) == 1)
        (conn,) = [entry.http for entry in client._transport._pool._books.entries()]
        assert isinstance(conn, _http2.HTTP2Connection)

        async def goaway_once_parked() -> None:
            while not len(conn._slots):
                await trio.sleep(0.01)
            await first.send_goaway(1)

        nursery.start_soon(goaway_once_parked)
        with trio.fail_after(20):
            response = await client.get(f"{url}/second")
        assert response.content == b"second"
        assert len(factory.connections) == 2

"""Regressions found reading the HTTP/2 driver again (review of the transport-seam change):
a malformed `:status`, and the keepalive PING loop."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from h2.settings import SettingCodes
from helpers import assert_quiet
from servers import h2_handlers
from servers.h2_raw import H2Handler, HandlerFactory, Request, serve_h2
from servers.raw import BufferedStream, serve_raw

import trioclient

H2C = {"http1": False, "http2": True}


class BadStatus(H2Handler):
    """Answers with a `:status` that is not three digits (h2 does not check it)."""

    config = {"validate_outbound_headers": False, "normalize_outbound_headers": False}

    async def on_request(self, request: Request) -> None:
        await self.conn.send_headers(request.stream_id, [(b":status", b"abc")])
        await self.conn.send_data(request.stream_id, b"x", end_stream=True)


async def test_a_status_that_is_not_three_digits_is_a_remote_protocol_error(
    nursery: trio.Nursery,
) -> None:
    url = await serve_h2(nursery, HandlerFactory(BadStatus))
    async with trioclient.Client(**H2C, timeout=5) as client:
        with pytest.raises(trioclient.RemoteProtocolError, match=":status"):
            await client.get(f"{url}/x")
        assert_quiet(client)


async def test_an_unanswered_keepalive_ping_is_sent_once_not_in_a_loop(
    nursery: trio.Nursery,
) -> None:
    """A peer that never answers gets one keepalive PING per silence, then the connection is
    dropped at twice the interval; never a stream of PINGs in between."""
    received = bytearray()

    async def silent(stream: BufferedStream) -> None:
        with trio.move_on_after(3):
            while data := await stream.receive_some():
                received.extend(data)

    url = await serve_raw(nursery, silent)
    async with trioclient.Client(**H2C, http2_ping_interval=0.2, timeout=5) as client:
        with pytest.raises(trioclient.ReadError, match="PING"):
            await client.get(f"{url}/x")
    assert received.count(b"trioclnt") <= 2


async def test_no_stream_slot_within_the_pool_timeout_is_a_pool_timeout(
    nursery: trio.Nursery,
) -> None:
    """A server that allows no concurrent stream (MAX_CONCURRENT_STREAMS 0): waiting for a
    slot is bounded by the pool timeout once, and says so, instead of being resent on the
    same connection until the resend budget runs out (11 pool timeouts)."""
    url = await serve_h2(
        nursery, h2_handlers.fixed(), settings={SettingCodes.MAX_CONCURRENT_STREAMS: 0}
    )
    timeout = trioclient.Timeout(5, pool=0.2)
    async with trioclient.Client(**H2C, timeout=timeout) as client:
        # The first request goes out before the server's SETTINGS arrive; the second meets 0.
        assert (await client.get(f"{url}/first")).status_code == 200
        with trio.fail_after(1.5):  # a hang bound: 11 x 0.2 s would pass it
            with pytest.raises(trioclient.PoolTimeout):
                await client.get(f"{url}/x")
        assert_quiet(client)


class OneByteFrames(H2Handler):
    """A 4 KiB body sent as 4,096 DATA frames of one byte each."""

    sent = trio.Event()

    async def on_request(self, request: Request) -> None:
        await self.conn.send_headers(request.stream_id, [(b":status", b"200")])
        await self.conn.send_data(request.stream_id, b"x" * 4096, chunk_size=1)
        await self.conn.send_data(request.stream_id, b"", end_stream=True)
        OneByteFrames.sent.set()


async def test_tiny_data_frames_cost_memory_in_proportion_to_the_body(
    nursery: trio.Nursery,
) -> None:
    """Flow control bounds the body bytes a stream buffers, not the number of frames: a body
    nobody reads yet, sent one byte per frame, must not cost a hundred times its size."""
    OneByteFrames.sent = trio.Event()
    url = await serve_h2(nursery, HandlerFactory(OneByteFrames))
    async with (
        trioclient.Client(**H2C, timeout=10) as client,
        client.stream("GET", f"{url}/x") as response,
    ):
        with trio.fail_after(10):
            await OneByteFrames.sent.wait()
            await trio.testing.wait_all_tasks_blocked()
        # What the stream buffers: one entry per DATA frame cost ~120 bytes per body byte
        # here (a tuple and a bytes object each); small pieces must be merged instead.
        chunks = response._stream._body._stream.chunks  # type: ignore[union-attr]
        assert sum(len(data) for data, _ in chunks) == 4096
        assert len(chunks) <= 4, f"{len(chunks)} buffered pieces for a 4 KiB body"
        assert await response.aread() == b"x" * 4096

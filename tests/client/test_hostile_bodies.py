"""Hostile response bodies (issue 10): decompression bombs, stacked codings, endless bodies.

Served by raw Trio servers on 127.0.0.1. Nothing here times anything: bounded memory is
asserted through chunk sizes and tracemalloc peaks, and "a surrounding cancel scope can
fire" by cancelling after the server has sent the whole bomb and checking that the client
stopped with little memory used (before the fix, `gzip, gzip` made one blocking 2 GiB
allocation that no cancellation could interrupt).
"""

from __future__ import annotations

import functools
import gzip
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator

import pytest
import trio
from helpers import assert_quiet
from servers.raw import (
    BufferedStream,
    ConnectionCounter,
    Handler,
    read_request,
    read_request_head,
    respond,
    response_head,
    serve_raw,
)

import trioclient
from trioclient._decoders import STEP

MIB = 1024 * 1024


@functools.lru_cache(maxsize=4)
def gzip_of_zeros(mib: int) -> bytes:
    """gzip of `mib` MiB of zeros, built without ever holding the zeros (see
    tests/models/test_decoders.py): one full-flushed deflate segment per MiB, repeated."""
    block = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    segment = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    tail = compressor.flush(zlib.Z_FINISH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + segment * mib + tail + struct.pack("<II", crc, (mib * MIB) & 0xFFFFFFFF)


@functools.lru_cache(maxsize=1)
def double_bomb() -> bytes:
    """`Content-Encoding: gzip, gzip`: 2 GiB of zeros in a few KB."""
    return gzip.compress(gzip_of_zeros(2048))


def serve_body(body: bytes, encoding: str, sent: trio.Event | None = None) -> Handler:
    """A handler: one response with `body`, Content-Length and `Content-Encoding: encoding`."""
    head = response_head(200, [("Content-Encoding", encoding), ("Content-Length", str(len(body)))])

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(head + body)
        if sent is not None:
            sent.set()
        while await stream.receive_some(65536):
            pass

    return handler


@pytest.fixture
async def bomb_server(nursery: trio.Nursery) -> str:
    return await serve_raw(nursery, serve_body(gzip_of_zeros(1024), "gzip"))


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def traced_peak() -> int:
    return tracemalloc.get_traced_memory()[1]


# --- decompression: bounded steps ------------------------------------------------------------


@pytest.mark.slow
async def test_a_gzip_bomb_streams_in_bounded_chunks(bomb_server: str) -> None:
    # 1 MB on the wire, 1 GiB decoded: every chunk at most 64 KiB, and all of it arrives.
    total = 0
    largest = 0
    async with trioclient.Client() as client:
        async with client.stream("GET", bomb_server) as response:
            async for chunk in response.aiter_bytes():
                largest = max(largest, len(chunk))
                total += len(chunk)
        assert_quiet(client)
    assert total == 1024 * MIB
    assert largest == STEP


async def test_a_gzip_bomb_streamed_with_chunk_size_holds_one_chunk(
    bomb_server: str, traced: None
) -> None:
    # Before: each 64 KiB read became one 64 MiB piece, and chunk_size applied afterwards.
    sizes = []
    async with trioclient.Client() as client:
        async with client.stream("GET", bomb_server) as response:
            async for chunk in response.aiter_bytes(chunk_size=MIB):
                sizes.append(len(chunk))
                if len(sizes) == 32:
                    break
        assert_quiet(client)
    assert sizes == [MIB] * 32
    assert traced_peak() < 8 * MIB


async def test_a_double_gzip_bomb_full_read_can_be_cancelled(
    nursery: trio.Nursery, traced: None
) -> None:
    # Before: one blocking call inflated 3.5 KB to 2 GiB (4 GB RSS, 15 s), and a
    # surrounding cancel scope could not fire until it was over.
    sent = trio.Event()
    url = await serve_raw(nursery, serve_body(double_bomb(), "gzip, gzip", sent))
    async with trioclient.Client() as client:
        with trio.CancelScope() as scope:

            async def cancel_once_sent() -> None:
                await sent.wait()
                scope.cancel()

            nursery.start_soon(cancel_once_sent)
            await client.get(url)
        assert scope.cancelled_caught
        assert_quiet(client)
    assert traced_peak() < 16 * MIB


async def test_a_thousand_stacked_codings_are_refused(nursery: trio.Nursery) -> None:
    url = await serve_raw(nursery, serve_body(b"x", ", ".join(["gzip"] * 1000)))
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.DecodingError, match=r"^Content-Encoding lists 1000") as info:
            await client.get(url)
        assert info.value.request.url == trioclient.URL(url)
        assert_quiet(client)
        assert client.pool_statistics().connections == 0  # closed, never reused


# --- size limits at the Response level ------------------------------------------------------


async def _endless() -> AsyncIterator[bytes]:
    while True:
        yield bytes(STEP)


async def test_a_response_enforces_its_requests_max_response_size() -> None:
    extensions = {"max_response_size": MIB}
    request = trioclient.Request("GET", "http://example.com/", extensions=extensions)
    response = trioclient.Response(200, stream=_endless(), request=request)
    with pytest.raises(trioclient.ResponseTooLarge) as info:
        await response.aread()
    assert info.value.limit == MIB
    assert MIB < info.value.size <= MIB + STEP
    assert not info.value.declared
    assert info.value.response is response
    assert response.is_closed
    assert str(info.value) == (
        f"The response from example.com is larger than max_response_size={MIB} bytes "
        f"({info.value.size} bytes received so far)."
    )
    await response.aclose()


# --- Client(max_response_size=...) ----------------------------------------------------------


def endless_chunked(closed: trio.Event | None = None) -> Handler:
    """Chunked zeros, 64 KiB a chunk, until the client goes away (then set `closed`)."""
    chunk = b"%x\r\n" % STEP + bytes(STEP) + b"\r\n"

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        try:
            await stream.send_all(response_head(200, [("Transfer-Encoding", "chunked")]))
            while True:
                await stream.send_all(chunk)
        finally:
            if closed is not None:
                closed.set()

    return handler


def declares(length: int) -> Handler:
    """A head promising `length` bytes, then silence: reading the body would hang."""

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(response_head(200, [("Content-Length", str(length))]))
        while await stream.receive_some(65536):
            pass

    return handler


async def test_an_endless_body_is_cut_at_max_response_size_and_the_pool_balances(
    nursery: trio.Nursery,
) -> None:
    # Before: a buffered get() of an endless chunked body grew without bound (2 GB in 8 s).
    closed = trio.Event()
    url = await serve_raw(nursery, endless_chunked(closed))
    async with trioclient.Client(max_response_size=MIB) as client:
        with pytest.raises(trioclient.ResponseTooLarge) as info:
            await client.get(url)
        assert client.pool_statistics() == trioclient.PoolStatistics(0, 0, 0, 0, 0, 0)
        with trio.fail_after(5):
            await closed.wait()  # the connection was closed, not kept for reuse
    error = info.value
    assert (error.limit, error.declared) == (MIB, False)
    assert MIB < error.size <= MIB + STEP
    assert error.request.url == trioclient.URL(url)
    assert error.response is not None
    assert error.response.is_closed
    assert isinstance(error, trioclient.RequestError)
    assert f"is larger than max_response_size={MIB} bytes" in str(error)


@pytest.mark.parametrize("how", ["aiter_bytes", "aiter_raw", "aread"])
async def test_streaming_enforces_max_response_size(nursery: trio.Nursery, how: str) -> None:
    url = await serve_raw(nursery, endless_chunked())
    received = 0
    async with trioclient.Client() as client:
        async with client.stream("GET", url, max_response_size=MIB) as response:
            with pytest.raises(trioclient.ResponseTooLarge):
                if how == "aread":
                    await response.aread()
                else:
                    async for chunk in getattr(response, how)():
                        received += len(chunk)
            assert response.is_closed
        assert client.pool_statistics() == trioclient.PoolStatistics(0, 0, 0, 0, 0, 0)
    assert received <= MIB


async def test_a_gzip_bomb_is_cut_at_max_response_size(bomb_server: str, traced: None) -> None:
    async with trioclient.Client(max_response_size=4 * MIB) as client:
        with pytest.raises(trioclient.ResponseTooLarge) as info:
            await client.get(bomb_server)
        assert_quiet(client)
    assert 4 * MIB < info.value.size <= 4 * MIB + STEP
    assert traced_peak() < 16 * MIB


async def test_a_declared_length_over_the_cap_fails_before_reading(nursery: trio.Nursery) -> None:
    url = await serve_raw(nursery, declares(10 * MIB))
    async with trioclient.Client(max_response_size=MIB) as client:
        with trio.fail_after(5), pytest.raises(trioclient.ResponseTooLarge) as info:
            await client.get(url)  # the server never sends the body: reading would hang
        assert client.pool_statistics() == trioclient.PoolStatistics(0, 0, 0, 0, 0, 0)
        # HEAD: Content-Length describes the GET's body; there is nothing to read.
        response = await client.head(url)
        assert response.content == b""
        assert_quiet(client)
    assert (info.value.size, info.value.declared) == (10 * MIB, True)
    assert str(info.value).endswith(f"max_response_size={MIB} bytes (Content-Length: {10 * MIB}).")


async def test_per_request_overrides_and_the_client_default(nursery: trio.Nursery) -> None:
    counter = ConnectionCounter(respond(body=b"x" * 1000))
    url = await serve_raw(nursery, counter)
    async with trioclient.Client(max_response_size=1000) as client:
        assert client.max_response_size == 1000
        assert (await client.get(url)).content == b"x" * 1000  # exactly the cap is fine
        assert (await client.get(url)).content == b"x" * 1000
        assert counter.count == 1  # a body read to its end leaves the connection reusable
        with pytest.raises(trioclient.ResponseTooLarge):
            await client.get(url, max_response_size=999)
        assert (await client.get(url, max_response_size=None)).content == b"x" * 1000
        assert counter.count == 2  # the refused response's connection was closed
        request = client.build_request("GET", url)
        assert request.extensions["max_response_size"] == 1000
        with pytest.raises(trioclient.ResponseTooLarge):
            await client.send(request, max_response_size=10)
        # A request built by hand gets the client's setting when sent.
        client.max_response_size = 10
        with pytest.raises(trioclient.ResponseTooLarge):
            await client.send(trioclient.Request("GET", url))
        assert_quiet(client)


@pytest.mark.parametrize(
    ("value", "error"), [(-1, ValueError), (True, TypeError), ("1", TypeError), (1.5, TypeError)]
)
async def test_max_response_size_is_checked(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=r"^max_response_size must be None or an int >= 0"):
        trioclient.Client(max_response_size=value)  # type: ignore[arg-type]
    async with trioclient.Client() as client:
        with pytest.raises(error, match=r"^max_response_size must be None or an int >= 0"):
            client.build_request("GET", "http://example.com/", max_response_size=value)  # type: ignore[arg-type]


async def test_the_module_level_api_forwards_max_response_size(nursery: trio.Nursery) -> None:
    url = await serve_raw(nursery, respond(body=b"x" * 100))
    with pytest.raises(trioclient.ResponseTooLarge):
        await trioclient.get(url, max_response_size=99)
    assert (await trioclient.get(url, max_response_size=100)).content == b"x" * 100


async def test_a_followed_redirect_with_an_endless_body_is_not_read_whole(
    nursery: trio.Nursery,
) -> None:
    """Following a redirect reads at most a bounded prefix of its body (to reuse the
    connection): a 302 whose chunked body never ends must not be buffered until memory runs
    out (max_response_size is None by default)."""
    sent = [0]

    async def handler(stream: BufferedStream) -> None:
        head = await read_request_head(stream)
        if head.startswith(b"GET /ok "):
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return
        await stream.send_all(
            b"HTTP/1.1 302 Found\r\nLocation: /ok\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
        while sent[0] < 64 * 1024 * 1024:  # a hang bound for the test, not for the client
            await stream.send_all(chunk)
            sent[0] += 0x10000

    url = await serve_raw(nursery, handler)
    async with trioclient.Client(follow_redirects=True, timeout=10) as client:
        response = await client.get(f"{url}/start")
        assert response.content == b"ok"
        assert len(response.history) == 1
        assert_quiet(client)
    assert sent[0] < 8 * 1024 * 1024

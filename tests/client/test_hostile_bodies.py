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
from servers.raw import BufferedStream, Handler, read_request, response_head, serve_raw

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

"""br and zstd over the wire: what the client offers, what it decodes, and bombs of both.

Served by raw Trio servers on 127.0.0.1, as in test_hostile_bodies.py (whose limits these
bombs must hit too). The last test runs a subprocess with the packages blocked, proving that
the Accept-Encoding header is computed from what is importable and that a br response then
fails with a DecodingError naming the extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from bombs import br_of_zeros, zstd_of_zeros
from helpers import assert_quiet
from servers.raw import BufferedStream, Handler, read_request, response_bytes, serve_raw

import trioclient
import trioclient._decoders as decoders
from trioclient._decoders import STEP

MIB = 1024 * 1024
TESTS = Path(__file__).parent.parent

needs_brotli = pytest.mark.skipif(
    decoders._brotli is None, reason="brotli >= 1.2 not installed (pip install trioclient[brotli])"
)
needs_zstd = pytest.mark.skipif(
    decoders._zstd is None, reason="backports.zstd not installed (pip install trioclient[zstd])"
)


def compressed(coding: str, data: bytes) -> bytes:
    if coding == "br":
        return bytes(decoders._brotli.compress(data))
    return bytes(decoders._zstd.compress(data))


def bomb(coding: str, mib: int) -> bytes:
    return br_of_zeros(mib) if coding == "br" else zstd_of_zeros(mib)


codings = pytest.mark.parametrize(
    "coding", [pytest.param("br", marks=needs_brotli), pytest.param("zstd", marks=needs_zstd)]
)


def serve(body: bytes, coding: str, heads: list[bytes] | None = None) -> Handler:
    """Every request gets `body` with `Content-Encoding: coding`; heads are recorded."""
    response = response_bytes(200, [("Content-Encoding", coding)], body)

    async def handler(stream: BufferedStream) -> None:
        while True:
            try:
                head, _ = await read_request(stream)
            except trio.BrokenResourceError:
                return
            if heads is not None:
                heads.append(head)
            await stream.send_all(response)

    return handler


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


@codings
async def test_a_coded_response_is_decoded_and_the_coding_was_offered(
    nursery: trio.Nursery, coding: str
) -> None:
    heads: list[bytes] = []
    text = b"hello, " * 1000
    url = await serve_raw(nursery, serve(compressed(coding, text), coding, heads))
    async with trioclient.Client() as client:
        response = await client.get(url)
        assert response.content == text
        assert response.num_bytes_downloaded < len(text) // 10
        async with client.stream("GET", url) as streamed:
            raw = b"".join([chunk async for chunk in streamed.aiter_raw()])
        assert raw == compressed(coding, text)  # aiter_raw hands out the bytes as sent
        assert_quiet(client)
    assert f"accept-encoding: {decoders.ACCEPT_ENCODING.decode()}\r\n".encode() in heads[0].lower()
    assert f", {coding}".encode() in decoders.ACCEPT_ENCODING


@codings
async def test_a_bomb_streams_in_bounded_chunks(
    nursery: trio.Nursery, coding: str, traced: None
) -> None:
    url = await serve_raw(nursery, serve(bomb(coding, 256), coding))
    total = largest = 0
    async with trioclient.Client() as client:
        async with client.stream("GET", url) as response:
            async for chunk in response.aiter_bytes():
                largest = max(largest, len(chunk))
                total += len(chunk)
                if total >= 64 * MIB:
                    break
        assert_quiet(client)
    assert largest <= STEP
    assert tracemalloc.get_traced_memory()[1] < 8 * MIB


@codings
async def test_a_bomb_is_cut_at_max_response_size(
    nursery: trio.Nursery, coding: str, traced: None
) -> None:
    url = await serve_raw(nursery, serve(bomb(coding, 1024), coding))
    async with trioclient.Client(max_response_size=4 * MIB) as client:
        with pytest.raises(trioclient.ResponseTooLarge) as info:
            await client.get(url)
        assert_quiet(client)
    assert 4 * MIB < info.value.size <= 4 * MIB + STEP
    assert tracemalloc.get_traced_memory()[1] < 16 * MIB


@codings
async def test_a_full_read_of_a_bomb_can_be_cancelled(
    nursery: trio.Nursery, coding: str, traced: None
) -> None:
    # A checkpoint between decoding steps: a cancel scope fires part-way through 1 GiB.
    url = await serve_raw(nursery, serve(bomb(coding, 1024), coding))
    async with trioclient.Client() as client:
        with trio.CancelScope() as scope:

            async def cancel_soon() -> None:
                for _ in range(50):
                    await trio.lowlevel.checkpoint()
                scope.cancel()

            nursery.start_soon(cancel_soon)
            await client.get(url)
        assert scope.cancelled_caught
        assert_quiet(client)
    assert tracemalloc.get_traced_memory()[1] < 16 * MIB


@codings
async def test_corrupt_data_is_a_decoding_error_with_the_request(
    nursery: trio.Nursery, coding: str
) -> None:
    url = await serve_raw(nursery, serve(b"\xff" * 40, coding))
    async with trioclient.Client() as client:
        with pytest.raises(trioclient.DecodingError, match=rf"^{coding}: invalid data") as info:
            await client.get(url)
        assert info.value.request.url == trioclient.URL(url)
        assert_quiet(client)


_BLOCKED = """
import json, sys
for name in ("brotli", "brotlicffi", "backports.zstd", "compression.zstd"):
    sys.modules[name] = None  # an import of a name mapped to None fails
import trio
import trioclient
from servers.raw import read_request, response_bytes, serve_raw

BR_HELLO = bytes.fromhex("0b028068656c6c6f03")  # brotli of b"hello"
result = {}


async def handler(stream):
    head, _ = await read_request(stream)
    result["sent"] = [
        line.split(b":", 1)[1].strip().decode()
        for line in head.split(b"\\r\\n")
        if line.lower().startswith(b"accept-encoding:")
    ]
    await stream.send_all(response_bytes(200, [("Content-Encoding", "br")], BR_HELLO))


async def main():
    async with trio.open_nursery() as nursery:
        url = await serve_raw(nursery, handler)
        async with trioclient.Client() as client:
            result["default"] = client.headers["accept-encoding"]
            try:
                await client.get(url)
            except trioclient.DecodingError as exc:
                result["error"] = str(exc)
        nursery.cancel_scope.cancel()


trio.run(main)
print(json.dumps(result))
"""


def test_without_the_extras_nothing_is_offered_and_br_is_a_clear_error() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), str(TESTS)])
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["default"] == "gzip, deflate"
    assert result["sent"] == ["gzip, deflate"]
    assert result["error"] == (
        "The response has Content-Encoding: br, which needs brotli >= 1.2 (or brotlicffi "
        ">= 1.2); it is not installed. Install trioclient[brotli], or read the body as sent "
        "with aiter_raw()."
    )

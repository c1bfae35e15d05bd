"""HTTP/2 against hypercorn on Trio: ALPN over TLS, h2c prior knowledge, multiplexing."""

from __future__ import annotations

import hashlib
import ssl

import pytest
import trio
from helpers import assert_quiet
from servers.asgi_app import pattern_bytes

import trioclient
from trioclient import Limits


async def test_alpn_picks_h2(https_url: str, ssl_context: ssl.SSLContext) -> None:
    async with trioclient.Client(verify=ssl_context, http2=True) as client:
        response = await client.get(f"{https_url}/")
        assert response.http_version == "HTTP/2"
        assert response.text == "Hello, world!"
        assert response.reason_phrase == "OK"
        echo = (await client.post(f"{https_url}/echo", json={"a": 1})).json()
        assert echo["http_version"] == "2"
        assert echo["body"] == '{"a":1}'
        names = [name for name, _ in echo["headers"]]
        assert "connection" not in names
        assert "host" in names  # hypercorn maps :authority back to host
        assert_quiet(client)


async def test_http1_only_client_gets_http1_from_the_same_server(
    https_url: str, ssl_context: ssl.SSLContext
) -> None:
    async with trioclient.Client(verify=ssl_context) as client:
        assert (await client.get(f"{https_url}/")).http_version == "HTTP/1.1"


async def test_h2c_prior_knowledge(http_url: str) -> None:
    async with trioclient.Client(http1=False, http2=True) as client:
        response = await client.get(f"{http_url}/echo")
        assert response.http_version == "HTTP/2"
        assert response.json()["http_version"] == "2"


async def test_plain_http_with_http2_enabled_stays_http1(http_url: str) -> None:
    async with trioclient.Client(http2=True) as client:
        assert (await client.get(f"{http_url}/")).http_version == "HTTP/1.1"


async def test_many_concurrent_requests_share_one_connection(
    https_url: str, ssl_context: ssl.SSLContext, socket_leak_checker
) -> None:
    sizes: dict[int, str] = {}
    async with trioclient.Client(verify=ssl_context, http2=True) as client:

        async def fetch(n: int) -> None:
            response = await client.get(f"{https_url}/bytes/{n}")
            sizes[n] = hashlib.sha256(response.content).hexdigest()

        async with trio.open_nursery() as nursery:
            for n in range(1000, 1060):
                nursery.start_soon(fetch, n)
        for n, digest in sizes.items():
            assert digest == hashlib.sha256(pattern_bytes(n)).hexdigest()
        assert client.pool_statistics().connections == 1
        assert_quiet(client)
    assert socket_leak_checker.created == 1


async def test_large_download_and_upload(https_url: str, ssl_context: ssl.SSLContext) -> None:
    async with trioclient.Client(verify=ssl_context, http2=True) as client:
        async with client.stream("GET", f"{https_url}/bytes/3000000") as response:
            digest = hashlib.sha256()
            async for chunk in response.aiter_bytes():
                digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(pattern_bytes(3_000_000)).hexdigest()
        body = b"x" * 5_000_000
        echo = (await client.post(f"{https_url}/echo", content=body)).json()
        assert len(echo["body"]) == len(body)

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(20):
                yield b"y" * 100_000

        echo = (await client.post(f"{https_url}/echo", content=chunks())).json()
        assert echo["body"] == "y" * 2_000_000
        assert_quiet(client)


async def test_abandoned_stream_leaves_connection_usable(
    https_url: str, ssl_context: ssl.SSLContext
) -> None:
    async with trioclient.Client(verify=ssl_context, http2=True) as client:
        async with client.stream("GET", f"{https_url}/bytes/5000000") as response:
            async for _chunk in response.aiter_bytes():
                break
        assert client.pool_statistics().connections == 1
        assert (await client.get(f"{https_url}/")).text == "Hello, world!"
        assert_quiet(client)


async def test_cancelled_requests_do_not_hurt_siblings(
    https_url: str, ssl_context: ssl.SSLContext
) -> None:
    async with trioclient.Client(verify=ssl_context, http2=True) as client:
        done: list[int] = []

        async def slow(index: int) -> None:
            with trio.move_on_after(0.1):
                await client.get(f"{https_url}/drip?chunks=20&delay=0.05&size=10")
                done.append(index)

        async def fast(index: int) -> None:
            response = await client.get(f"{https_url}/bytes/20000")
            assert len(response.content) == 20000
            done.append(index)

        async with trio.open_nursery() as nursery:
            for index in range(10):
                nursery.start_soon(slow if index % 2 else fast, index)
        assert sorted(done) == [0, 2, 4, 6, 8]
        assert client.pool_statistics().connections == 1
        assert_quiet(client)


async def test_streams_beyond_max_connections_wait(
    https_url: str, ssl_context: ssl.SSLContext
) -> None:
    limits = Limits(max_connections=1)
    async with trioclient.Client(verify=ssl_context, http2=True, limits=limits) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(30):
                nursery.start_soon(client.get, f"{https_url}/drip?chunks=2&delay=0.01&size=5")
        assert client.pool_statistics().connections == 1


async def test_client_exit_with_open_h2_stream(https_url: str, ssl_context: ssl.SSLContext) -> None:
    async with trioclient.Client(verify=ssl_context, http2=True) as client:
        response = await client.send(
            client.build_request("GET", f"{https_url}/bytes/5000000"), stream=True
        )
    assert response.is_closed
    with pytest.raises(trioclient.StreamClosed, match="client was closed"):
        await response.aread()


async def test_http2_only_client_refuses_http1_server(
    nursery: trio.Nursery, server_ssl_context: ssl.SSLContext, ssl_context: ssl.SSLContext
) -> None:
    from servers.raw import respond, serve_raw

    server_ssl_context.set_alpn_protocols(["http/1.1"])
    url = await serve_raw(nursery, respond(), tls=server_ssl_context)
    async with trioclient.Client(verify=ssl_context, http1=False, http2=True) as client:
        with pytest.raises(trioclient.UnsupportedProtocol, match="does not offer HTTP/2"):
            await client.get(url)
        assert_quiet(client)

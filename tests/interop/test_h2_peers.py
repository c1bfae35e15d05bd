"""HTTP/2 and HTTP/1.1 interoperability with real third-party servers: nginx and nghttpd.

The peers are Debian's nginx-light and nghttp2-server; `.ci/run` installs them. Locally a
missing binary skips these tests; in CI (CI=true) it fails them.
"""

from __future__ import annotations

import hashlib
import ssl

import trio
from servers.asgi_app import pattern_bytes
from servers.peers import NghttpdServer, NginxServer

import trioclient


async def test_nginx_h2_over_tls(nginx_server: NginxServer, ssl_context: ssl.SSLContext) -> None:
    async with trioclient.Client(verify=ssl_context, http2=True) as client:
        response = await client.get(f"{nginx_server.https_url}/index.txt")
        assert response.http_version == "HTTP/2"
        assert response.text == "hello from nginx\n"
        big = await client.get(f"{nginx_server.https_url}/big.bin")
        assert (
            hashlib.sha256(big.content).digest() == hashlib.sha256(pattern_bytes(1 << 20)).digest()
        )
        missing = await client.get(f"{nginx_server.https_url}/status/404")
        assert missing.status_code == 404


async def test_nginx_http1_keepalive(nginx_server: NginxServer, socket_leak_checker) -> None:
    async with trioclient.Client() as client:
        for _ in range(5):
            response = await client.get(f"{nginx_server.http_url}/index.txt")
            assert response.http_version == "HTTP/1.1"
            assert response.text == "hello from nginx\n"
    assert socket_leak_checker.created == 1


async def test_nginx_h2c_prior_knowledge(nginx_server: NginxServer) -> None:
    async with trioclient.Client(http1=False, http2=True) as client:
        response = await client.get(f"{nginx_server.h2c_url}/index.txt")
        assert response.http_version == "HTTP/2"


async def test_nginx_multiplexing_and_upload(
    nginx_server: NginxServer, ssl_context: ssl.SSLContext
) -> None:
    async with trioclient.Client(verify=ssl_context, http2=True) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(150):  # more than nginx's 128 concurrent streams
                nursery.start_soon(client.get, f"{nginx_server.https_url}/index.txt")
        if nginx_server.has_echo:
            body = b"u" * 3_000_000
            echoed = await client.post(f"{nginx_server.https_url}/echo", content=body)
            assert echoed.status_code == 200
        stats = client.pool_statistics()
        assert stats.requests_active == 0
        assert stats.in_use == 0


async def test_nginx_goaway_after_keepalive_requests(tls_ca, ssl_context: ssl.SSLContext) -> None:
    """nginx sends GOAWAY together with the last response it will serve on a connection."""
    with NginxServer(tls_ca, keepalive_requests=3) as server:
        async with trioclient.Client(verify=ssl_context, http2=True) as client:
            for _ in range(10):
                response = await client.get(f"{server.https_url}/index.txt")
                assert response.status_code == 200

            async def fetch() -> None:
                assert (await client.get(f"{server.https_url}/index.txt")).status_code == 200

            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(fetch)


async def test_nghttpd_h2_over_tls(
    nghttpd_server: NghttpdServer, ssl_context: ssl.SSLContext
) -> None:
    async with trioclient.Client(verify=ssl_context, http2=True) as client:
        response = await client.get(f"{nghttpd_server.url}/index.txt")
        assert response.http_version == "HTTP/2"
        assert response.text == "hello from nghttpd\n"
        async with client.stream("GET", f"{nghttpd_server.url}/big.bin") as stream:
            digest = hashlib.sha256()
            async for chunk in stream.aiter_bytes():
                digest.update(chunk)
        assert digest.digest() == hashlib.sha256(pattern_bytes(1 << 20)).digest()
        upload = b"n" * 500_000
        echoed = await client.post(f"{nghttpd_server.url}/upload", content=upload)
        assert echoed.content == upload


async def test_nghttpd_h2c(nghttpd_h2c_server: NghttpdServer) -> None:
    async with trioclient.Client(http1=False, http2=True) as client:
        response = await client.get(f"{nghttpd_h2c_server.url}/index.txt")
        assert response.http_version == "HTTP/2"
        assert response.status_code == 200


async def test_nginx_cancellation_storm_trips_no_stream_limit(tls_ca) -> None:
    """Issue 10: 100 tasks streaming over one HTTP/2 connection, each under a 0-5 ms
    deadline, for 2 s. A stream the client has reset still counts against nginx's 128
    concurrent streams until nginx has processed the RST_STREAM (and flushed what it had
    queued for it); opening a new stream the moment ours is reset made nginx log "concurrent
    streams exceeded", refuse streams, then drop the connection ("client sent too many
    refused streams") and the next plain GET failed. nginx logs these at level info."""
    import random

    rng = random.Random(10)
    # keepalive_requests: nginx retires a connection (GOAWAY) after that many streams, 1000
    # by default, which a fast enough client passes within the storm; this test is about
    # the concurrent-stream limit on one connection, so that one must stay.
    with NginxServer(tls_ca, log_level="info", keepalive_requests=1_000_000) as server:
        url = server.h2c_url
        limits = trioclient.Limits(max_connections=1)
        async with trioclient.Client(http1=False, http2=True, limits=limits, timeout=5) as client:
            assert (await client.get(f"{url}/index.txt")).status_code == 200
            errors: list[trioclient.TransportError] = []

            async def storm(path: str) -> None:
                while trio.current_time() < end:
                    with trio.move_on_after(rng.uniform(0, 0.005)):
                        try:
                            async with client.stream("GET", f"{url}{path}") as response:
                                async for _chunk in response.aiter_raw():
                                    pass
                        except trioclient.TransportError as exc:
                            errors.append(exc)

            end = trio.current_time() + 2.0
            with trio.fail_after(20):
                async with trio.open_nursery() as nursery:
                    for index in range(100):
                        nursery.start_soon(storm, "/big.bin" if index % 2 else "/index.txt")
            (conn,) = [entry.http for entry in client._transport._pool._books.entries()]
            opened = conn._h2.highest_outbound_stream_id // 2  # type: ignore[union-attr]
            assert opened > 100  # a storm indeed (the reader parses ~1 MiB per big.bin stream)
            log = server.log()
            assert "concurrent streams exceeded" not in log
            assert "too many refused streams" not in log
            assert "too many streams at once" not in log
            assert errors == []
            response = await client.get(f"{url}/index.txt")
            assert response.text == "hello from nginx\n"
            stats = client.pool_statistics()
            assert stats.in_use == 0
            assert stats.connections == 1

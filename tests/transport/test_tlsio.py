"""HTTPS over HTTP/1.1 drives the TLS object directly (`TLSIO`), with trio's meaning kept."""

from __future__ import annotations

import ssl

import trio
from servers.asgi_app import pattern_bytes
from servers.raw import BufferedStream, read_request, serve_raw

import trioclient
from trioclient import Timeout
from trioclient._transport._sockio import TLSIO, SocketIO


async def test_tls_streams_take_the_shortcut(nursery: trio.Nursery, https_url: str) -> None:
    """With the trio we test against, its SSL object is reachable (else we would fall back)."""
    port = int(https_url.rsplit(":", 1)[1])
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    stream = trio.SSLStream(tcp, context, server_hostname="127.0.0.1", https_compatible=True)
    try:
        await stream.do_handshake()
        io = SocketIO.for_stream(stream)
        assert type(io) is TLSIO
        assert await io.send_all(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n", _NoDeadlines())
        data = b""
        while b'"n": 1}' not in data and b'"n":1}' not in data:
            chunk = await io.receive_some(65536, trio.current_time() + 5)
            assert chunk
            data += chunk
        assert data.startswith(b"HTTP/1.1 200")
    finally:
        await trio.aclose_forcefully(stream)


class _NoDeadlines:
    def write(self) -> float:
        return float("inf")


async def test_large_bodies_both_ways(https_url: str, ca_pem_path: str) -> None:
    """Many records each way, with and without timeouts (the deadline paths)."""
    body = pattern_bytes(3_000_000)
    for timeout in (Timeout(None), Timeout(10)):
        async with trioclient.Client(verify=ca_pem_path, timeout=timeout) as client:
            response = await client.get(f"{https_url}/bytes/{len(body)}?chunk=100000")
            assert response.content == body
            echoed = await client.post(f"{https_url}/echo", content=body[:1_000_000])
            assert echoed.json()["body"].encode("latin-1") == body[:1_000_000]


async def test_eof_without_close_notify_ends_a_body(
    nursery: trio.Nursery, server_ssl_context: ssl.SSLContext, ca_pem_path: str
) -> None:
    """A body read until the server closes, closed without close_notify (https_compatible)."""

    async def handler(stream: BufferedStream) -> None:
        await read_request(stream)
        await stream.send_all(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
        tls = stream.stream
        assert isinstance(tls, trio.SSLStream)
        tls.transport_stream.socket.close()  # TCP FIN, no TLS close_notify

    url = await serve_raw(nursery, handler, tls=server_ssl_context)
    async with trioclient.Client(verify=ca_pem_path) as client:
        response = await client.get(url)
        assert response.content == b"until the end"

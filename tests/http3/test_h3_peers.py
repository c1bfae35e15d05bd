"""The HTTP/3 test peer (servers.h3_peer) works, checked without trioclient's HTTP/3 code:
QUIC through aioquic's client driven by hand (servers.h3_client), TCP through httpx."""

from __future__ import annotations

import hashlib
import json
import ssl

import httpx
import pytest
import trio
from servers.h3_app import h3_bytes
from servers.h3_peer import H3Peer

pytest.importorskip("aioquic", reason="the http3 extra (aioquic) is not installed")

from servers.h3_client import connect

OUTER = 30  # seconds: a generous bound so a hang fails instead of blocking the suite


async def test_get_bytes_over_quic(h3_server: H3Peer) -> None:
    with trio.fail_after(OUTER):
        async with connect(h3_server.port, cafile=h3_server.ca_path) as client:
            assert client.handshake is not None
            assert client.handshake.alpn_protocol == "h3"
            response = await client.request("GET", "/bytes/3000?seed=7")
    expected = h3_bytes(3000, 7)
    assert response.status == 200
    assert bytes(response.body) == expected
    assert response.header(b"x-sha256") == hashlib.sha256(expected).hexdigest().encode()
    assert response.header(b"x-http-version") == b"3"
    assert response.header(b"alt-svc") == f'h3=":{h3_server.port}"; ma=3600'.encode()


async def test_echo_headers_drip_and_status_over_quic(h3_server: H3Peer) -> None:
    body = bytes(range(256)) * 40
    with trio.fail_after(OUTER):
        async with connect(h3_server.port, cafile=h3_server.ca_path) as client:
            echo = await client.request("POST", "/echo", body)
            headers = await client.request("GET", "/headers", headers=[(b"x-probe", b"1")])
            drip = await client.request("GET", "/drip/5?delay=0.01")
            status = await client.request("GET", "/status/418")
            missing = await client.request("GET", "/nowhere")
    assert echo.status == 200
    assert bytes(echo.body) == body
    assert echo.header(b"x-length") == str(len(body)).encode()
    assert echo.header(b"x-sha256") == hashlib.sha256(body).hexdigest().encode()
    seen = json.loads(headers.body)
    assert seen["http_version"] == "3"
    assert seen["headers"]["x-probe"] == "1"
    assert bytes(drip.body) == b"*****"
    assert status.status == 418
    assert missing.status == 404


async def test_many_streams_on_one_connection(h3_server: H3Peer) -> None:
    with trio.fail_after(OUTER):
        async with connect(h3_server.port, cafile=h3_server.ca_path) as client:
            ids = [await client.start_request("GET", f"/bytes/{n}?seed={n}") for n in range(20)]
            await client.until(lambda: all(client.responses[i].done for i in ids))
    for n, stream_id in enumerate(ids):
        assert bytes(client.responses[stream_id].body) == h3_bytes(n, n)


async def test_untrusted_and_wrong_host_certificates_fail_the_handshake(
    h3_server_wrong_host: H3Peer, h3_server_untrusted: H3Peer, ca_pem_path: str
) -> None:
    for server in (h3_server_wrong_host, h3_server_untrusted):
        with trio.fail_after(OUTER):
            async with connect(server.port, cafile=ca_pem_path, handshake=False) as client:
                while client.terminated is None:
                    await client.pump()
        assert client.handshake is None
        assert client.terminated.error_code != 0


def test_tcp_side_speaks_h2_and_advertises_h3_on_the_same_port(h3_server: H3Peer) -> None:
    context = ssl.create_default_context(cafile=h3_server.ca_path)
    with httpx.Client(http2=True, verify=context, timeout=OUTER) as client:
        response = client.get(f"{h3_server.url}/bytes/100?seed=1")
        headers = client.get(f"{h3_server.url}/headers").json()
    assert response.http_version == "HTTP/2"
    assert response.content == h3_bytes(100, 1)
    assert response.headers["alt-svc"] == f'h3=":{h3_server.port}"; ma=3600'
    assert headers["http_version"] == "2"

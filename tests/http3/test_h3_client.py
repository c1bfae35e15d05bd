"""trioclient's HTTP/3 against a real peer: hypercorn with QUIC (servers.h3_peer), the Trio
hypercorn (for Alt-Svc pointing at a UDP blackhole), and a blackhole (servers.quic_raw)."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import ssl
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
import trio
from servers.h3_app import h3_bytes
from servers.h3_peer import H3Peer

import trioclient

pytest.importorskip("aioquic", reason="the http3 extra (aioquic) is not installed")

from servers.quic_raw import serve_udp_blackhole

from trioclient._transport import _quic
from trioclient._transport._h2_stream import StreamBody
from trioclient._transport._http3 import STREAM_WINDOW, H3Stream

OUTER = 60  # seconds: a generous bound so that a hang fails instead of blocking the suite


def h3_only(verify: str, **kwargs: object) -> trioclient.Client:
    return trioclient.Client(http3=True, http1=False, http2=False, verify=verify, **kwargs)  # type: ignore[arg-type]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_get(h3_server: H3Peer) -> None:
    with trio.fail_after(OUTER):
        async with h3_only(h3_server.verify) as client:
            response = await client.get(f"{h3_server.url}/bytes/100000?seed=3")
            headers = await client.get(f"{h3_server.url}/headers", headers={"x-probe": "yes"})
            stats = client._transport.connection_statistics()  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert response.http_version == "HTTP/3"
    assert response.content == h3_bytes(100000, 3)
    assert response.headers["x-sha256"] == sha(response.content)
    seen = json.loads(headers.content)
    assert seen["http_version"] == "3"
    assert seen["headers"]["x-probe"] == "yes"
    assert [s.http_version for s in stats] == ["HTTP/3"]


async def test_post_with_a_streamed_body(h3_server: H3Peer) -> None:
    pieces = [bytes([i]) * (50_000 + i) for i in range(40)]  # ~2 MB in uneven chunks

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece
            await trio.lowlevel.checkpoint()

    sent = b"".join(pieces)
    with trio.fail_after(OUTER):
        async with h3_only(h3_server.verify) as client:
            response = await client.post(f"{h3_server.url}/echo", content=body())
            small = await client.post(f"{h3_server.url}/echo", content=b"hello")
    assert response.http_version == "HTTP/3"
    assert response.headers["x-length"] == str(len(sent))
    assert response.headers["x-sha256"] == sha(sent)
    assert response.content == sent
    assert small.content == b"hello"


async def test_200_concurrent_requests_with_random_cancellations(h3_server: H3Peer) -> None:
    rng = random.Random(16)
    sizes = [rng.choice([0, 1, 1000, 20_000, 150_000]) for _ in range(200)]
    # 0: keep; 1: cancel before the head; 2: cancel after the first chunk of the body
    fates = [rng.choice([0, 0, 0, 1, 2]) for _ in range(200)]
    done: dict[int, str] = {}
    cancelled: list[int] = []
    limits = trioclient.Limits(max_connections=1)

    async def one(client: trioclient.Client, i: int) -> None:
        url = f"{h3_server.url}/bytes/{sizes[i]}?seed={i}"
        with trio.CancelScope() as scope:
            if fates[i] == 1:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(client.get, url)
                    for _ in range(rng.randint(0, 5)):
                        await trio.lowlevel.checkpoint()
                    nursery.cancel_scope.cancel()
                cancelled.append(i)
                return
            async with client.stream("GET", url) as response:
                assert response.http_version == "HTTP/3"
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if fates[i] == 2:
                        scope.cancel()
                        await trio.lowlevel.checkpoint()
                assert response.headers["x-sha256"] == sha(bytes(body))
                done[i] = sha(bytes(body))
        if scope.cancelled_caught:
            cancelled.append(i)

    with trio.fail_after(OUTER):
        async with h3_only(h3_server.verify, limits=limits, timeout=30.0) as client:
            async with trio.open_nursery() as nursery:
                for i in range(200):
                    nursery.start_soon(one, client, i)
            after = await client.get(f"{h3_server.url}/bytes/5000?seed=1")
            stats = client._transport.connection_statistics()  # type: ignore[attr-defined]
            pool = client._transport.statistics()  # type: ignore[attr-defined]
    for i, digest in done.items():
        assert digest == sha(h3_bytes(sizes[i], i))
    assert len(done) + len(cancelled) == 200
    assert len(done) >= fates.count(0)
    assert after.content == h3_bytes(5000, 1)
    assert [s.http_version for s in stats] == ["HTTP/3"]  # one connection carried them all
    assert stats[0].capacity >= 100  # the server's MAX_STREAMS (aioquic's default: 128)
    assert pool.requests_active == 0


async def test_alt_svc_upgrade(
    h3_server: H3Peer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger="trioclient.pool")
    # A loaded machine may take over a second for a handshake: no fallback here.
    monkeypatch.setattr("trioclient._transport._pool.H3_FALLBACK_AFTER", 30.0)
    with trio.fail_after(OUTER):
        async with trioclient.Client(http3=True, http2=True, verify=h3_server.verify) as client:
            first = await client.get(f"{h3_server.url}/headers")
            second = await client.get(f"{h3_server.url}/headers")
            third = await client.get(f"{h3_server.url}/bytes/10?seed=2")
            transport = client._transport
            assert isinstance(transport, trioclient.HTTPTransport)
            versions = sorted(s.http_version or "" for s in transport.connection_statistics())
            transport.forget_alternative_services()
            fourth = await client.get(f"{h3_server.url}/headers")  # the idle HTTP/2 one
    assert first.http_version == "HTTP/2"
    assert first.headers["alt-svc"] == f'h3=":{h3_server.port}"; ma=3600'
    assert second.http_version == "HTTP/3"
    assert json.loads(second.content)["http_version"] == "3"
    assert third.http_version == "HTTP/3"
    assert versions == ["HTTP/2", "HTTP/3"]  # the idle TCP connection is no longer used
    assert fourth.http_version == "HTTP/2"
    messages = [r.getMessage() for r in caplog.records if r.name == "trioclient.pool"]
    assert f"trying HTTP/3 with 127.0.0.1:{h3_server.port} (Alt-Svc)" in messages
    assert f"speaking HTTP/3 with 127.0.0.1:{h3_server.port}" in messages


async def test_no_alt_svc_learning_without_http3(h3_server: H3Peer) -> None:
    with trio.fail_after(OUTER):
        async with trioclient.Client(http2=True, verify=h3_server.verify) as client:
            await client.get(f"{h3_server.url}/headers")
            second = await client.get(f"{h3_server.url}/headers")
    assert second.http_version == "HTTP/2"


async def test_fallback_to_tcp_when_udp_is_a_blackhole(
    https_url: str,
    ca_pem_path: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trioclient.pool")
    opened: list[_quic.DatagramSocket] = []
    real = _quic.open_udp

    async def recording(host: str, port: int, local_address: str | None) -> _quic.DatagramSocket:
        opened.append(await real(host, port, local_address))
        return opened[-1]

    monkeypatch.setattr("trioclient._transport._http3.open_udp", recording)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            blackhole = await serve_udp_blackhole(nursery)
            advert = quote(f'h3=":{blackhole.port}"; ma=600')
            url = f"{https_url}/response-headers?alt-svc={advert}"
            async with trioclient.Client(http3=True, verify=ca_pem_path) as client:
                first = await client.get(url)
                second = await client.get(url)  # QUIC into the blackhole, then TCP
                await blackhole.wait_received(1)
                third = await client.get(url)  # the alternative is marked broken
                fourth = await client.get(url)
            nursery.cancel_scope.cancel()
    assert first.http_version == second.http_version == third.http_version == "HTTP/1.1"
    assert fourth.status_code == 200
    assert len(opened) == 1  # no second QUIC attempt
    assert opened[0].fileno() == -1  # the failed attempt's socket is closed
    messages = [r.getMessage() for r in caplog.records if r.name == "trioclient.pool"]
    fell_back = [m for m in messages if "falling back to TCP" in m]
    assert fell_back == [
        f"HTTP/3 with 127.0.0.1:{blackhole.port} failed (Timed out during the QUIC handshake"
        f" with 127.0.0.1:{blackhole.port} (1 s before falling back to TCP)); falling back"
        " to TCP"
    ]
    assert sum("trying HTTP/3" in m for m in messages) == 1


async def test_fallback_when_the_udp_port_is_closed(h3_server: H3Peer) -> None:
    # Nothing listens on that UDP port: ICMP port unreachable ends the attempt at once.
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            blackhole = await serve_udp_blackhole(nursery)
            port = blackhole.port
            nursery.cancel_scope.cancel()
        peer = H3Peer(h3_server.ca, alt_svc=[f'h3=":{port}"'])
        with peer:
            async with trioclient.Client(http3=True, verify=peer.verify) as client:
                await client.get(f"{peer.url}/headers")
                second = await client.get(f"{peer.url}/headers")
                pool = client._transport._pool  # type: ignore[attr-defined]
                broken = pool._altsvc.is_broken(
                    ("https", b"127.0.0.1", peer.port, None), trio.current_time()
                )
    assert second.http_version == "HTTP/1.1"
    assert broken


async def test_http3_only_has_no_fallback() -> None:
    timeout = trioclient.Timeout(5.0, connect=0.5)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            blackhole = await serve_udp_blackhole(nursery)
            async with h3_only(True, timeout=timeout) as client:  # type: ignore[arg-type]
                with pytest.raises(trioclient.ConnectTimeout) as caught:
                    await client.get(f"https://127.0.0.1:{blackhole.port}/")
                with pytest.raises(trioclient.UnsupportedProtocol, match="HTTP/3 needs https"):
                    await client.get(f"http://127.0.0.1:{blackhole.port}/")
            nursery.cancel_scope.cancel()
    assert str(caught.value) == (
        f"Timed out during the QUIC handshake with 127.0.0.1:{blackhole.port}"
        " (connect timeout 0.5 s)"
    )


async def test_untrusted_certificate(h3_server_untrusted: H3Peer, ca_pem_path: str) -> None:
    with trio.fail_after(OUTER):
        async with h3_only(ca_pem_path) as client:
            with pytest.raises(trioclient.ConnectError) as caught:
                await client.get(h3_server_untrusted.url)
    message = str(caught.value)
    assert f"QUIC handshake with 127.0.0.1:{h3_server_untrusted.port}" in message
    assert "certificate" in message


async def test_wrong_host_certificate(h3_server_wrong_host: H3Peer) -> None:
    with trio.fail_after(OUTER):
        async with h3_only(h3_server_wrong_host.verify) as client:
            with pytest.raises(trioclient.ConnectError) as caught:
                await client.get(h3_server_wrong_host.url)
        # verify=False accepts it, as over TCP
        async with trioclient.Client(
            http3=True, http1=False, http2=False, verify=False
        ) as insecure:
            response = await insecure.get(f"{h3_server_wrong_host.url}/status/204")
    message = str(caught.value)
    assert f"QUIC handshake with 127.0.0.1:{h3_server_wrong_host.port}" in message
    assert "certificate" in message
    assert "wrong.example" in message
    assert response.status_code == 204


async def test_ssl_context_as_verify(h3_server: H3Peer) -> None:
    context = ssl.create_default_context(cafile=h3_server.ca_path)
    with trio.fail_after(OUTER):
        async with h3_only(context) as client:  # type: ignore[arg-type]
            response = await client.get(f"{h3_server.url}/status/200")
    assert response.http_version == "HTTP/3"


async def test_ssl_cert_file_is_honoured(
    h3_server: H3Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", h3_server.ca_path)
    with trio.fail_after(OUTER):
        async with h3_only(True) as client:  # type: ignore[arg-type]
            response = await client.get(f"{h3_server.url}/status/200")
        async with trioclient.Client(
            http3=True, http1=False, http2=False, trust_env=False
        ) as strict:
            with pytest.raises(trioclient.ConnectError, match="certificate"):
                await strict.get(f"{h3_server.url}/status/200")
    assert response.status_code == 200


async def test_slow_reader_holds_the_server_back(h3_server: H3Peer) -> None:
    size = 12 * STREAM_WINDOW
    with trio.fail_after(OUTER):
        async with (
            h3_only(h3_server.verify) as client,
            client.stream("GET", f"{h3_server.url}/bytes/{size}?seed=5") as response,
        ):
            raw = response.aiter_raw()
            first = await raw.__anext__()
            body = response._stream._body  # type: ignore[union-attr]
            assert isinstance(body, StreamBody)
            stream = body._stream
            assert isinstance(stream, H3Stream)
            # Wait until the server stops sending (nothing new arrives for a while).
            last, still = -1, 0
            while still < 20:
                await trio.sleep(0.02)
                still = still + 1 if stream.received == last else 0
                last = stream.received
            assert stream.unread <= STREAM_WINDOW
            assert stream.received < 2 * STREAM_WINDOW + 64 * 1024
            rest = bytearray(first)
            async for chunk in raw:
                rest += chunk
    assert bytes(rest) == h3_bytes(size, 5)


async def test_closing_the_client_closes_the_udp_socket(
    h3_server: H3Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[_quic.DatagramSocket] = []
    real = _quic.open_udp

    async def recording(host: str, port: int, local_address: str | None) -> _quic.DatagramSocket:
        sock = await real(host, port, local_address)
        opened.append(sock)
        return sock

    monkeypatch.setattr(_quic, "open_udp", recording)
    monkeypatch.setattr("trioclient._transport._http3.open_udp", recording)
    with trio.fail_after(OUTER):
        async with (
            h3_only(h3_server.verify) as client,
            client.stream("GET", f"{h3_server.url}/drip/100?delay=0.05") as response,
        ):
            await response.aiter_raw().__anext__()
            assert opened[0].fileno() != -1
    assert len(opened) == 1
    assert opened[0].fileno() == -1

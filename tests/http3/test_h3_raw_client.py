"""trioclient's HTTP/3 paths that need a server doing something unusual but legal (or just
over our bounds), from servers.quic_raw: PINGs through a silence longer than the idle
timeout, interim responses, trailers, oversized header sections, rejected streams, a server
that stops reading an upload."""

from __future__ import annotations

import pytest
import trio
import trustme

pytest.importorskip("aioquic", reason="the http3 extra (aioquic) is not installed")

from servers.quic_raw import ErrorCode, H3Request, QuicFactory, QuicHandler, serve_quic

import trioclient

OUTER = 30
GENEROUS = trioclient.Timeout(10.0)


def h3_only(verify: str, **kwargs: object) -> trioclient.Client:
    return trioclient.Client(http3=True, http1=False, http2=False, verify=verify, **kwargs)  # type: ignore[arg-type]


class Answer(QuicHandler):
    async def on_request(self, request: H3Request) -> None:
        body = request.path.encode() + b":" + bytes(request.body)
        self.conn.send_response(request.stream_id, 200, [("content-type", "text/plain")], body)


async def test_pings_keep_a_slow_response_alive(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    class Slow(Answer):
        async def on_request(self, request: H3Request) -> None:
            await trio.sleep(3.5)  # several idle timeouts of silence: only PINGs bridge it
            await super().on_request(request)

    factory = QuicFactory[QuicHandler](Slow)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await serve_quic(
                nursery, factory, certificate=quic_certificate, idle_timeout=1.0
            )
            async with h3_only(ca_pem_path, timeout=GENEROUS) as client:
                response = await client.get(f"{server.url}/slow")
            nursery.cancel_scope.cancel()
    assert response.text == "/slow:"
    assert len(factory.connections) == 1


async def test_interim_responses_and_trailers(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    class Interim(QuicHandler):
        async def on_request(self, request: H3Request) -> None:
            conn = self.conn
            conn.send_headers(request.stream_id, [(":status", "103"), ("link", "</a>")], end=False)
            conn.send_response(request.stream_id, 200, [("x-final", "1")])
            conn.send_data(request.stream_id, b"body")
            conn.send_headers(request.stream_id, [("x-checksum", "abc")], end=True)

    factory = QuicFactory[QuicHandler](Interim)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await serve_quic(nursery, factory, certificate=quic_certificate)
            async with (
                h3_only(ca_pem_path, timeout=GENEROUS) as client,
                client.stream("GET", f"{server.url}/") as response,
            ):
                body = await response.aread()
                stream = response._stream  # the pool's wrapper keeps the trailers
                trailers = stream.trailers  # type: ignore[union-attr]
            nursery.cancel_scope.cancel()
    assert response.status_code == 200
    assert response.headers["x-final"] == "1"
    assert body == b"body"
    assert trailers == [(b"x-checksum", b"abc")]


async def test_an_oversized_header_section_fails_only_its_request(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    class Huge(Answer):
        async def on_request(self, request: H3Request) -> None:
            if request.path == "/huge":
                headers = [(f"x-h{i}", "v" * 1000) for i in range(120)]
                self.conn.send_response(request.stream_id, 200, headers, b"never")
            else:
                await super().on_request(request)

    factory = QuicFactory[QuicHandler](Huge)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await serve_quic(nursery, factory, certificate=quic_certificate)
            async with h3_only(ca_pem_path, timeout=GENEROUS) as client:
                with pytest.raises(trioclient.RemoteProtocolError) as caught:
                    await client.get(f"{server.url}/huge")
                after = await client.get(f"{server.url}/after")
            nursery.cancel_scope.cancel()
    assert "header section over 100 KiB" in str(caught.value)
    assert after.text == "/after:"
    assert len(factory.connections) == 1


async def test_a_rejected_stream_is_sent_again(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    rejected: list[str] = []

    class RejectFirst(Answer):
        async def on_request(self, request: H3Request) -> None:
            if not rejected:
                rejected.append(request.path)
                self.conn.reset_stream(request.stream_id, ErrorCode.H3_REQUEST_REJECTED)
                return
            await super().on_request(request)

    factory = QuicFactory[QuicHandler](RejectFirst)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await serve_quic(nursery, factory, certificate=quic_certificate)
            async with h3_only(ca_pem_path, timeout=GENEROUS) as client:
                response = await client.get(f"{server.url}/again")
            nursery.cancel_scope.cancel()
    assert rejected == ["/again"]
    assert response.text == "/again:"


async def test_an_early_response_ends_the_upload(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    class Early(QuicHandler):
        async def on_headers(self, request: H3Request) -> None:
            # Answer at once and tell the client to stop sending (RFC 9114 4.1).
            self.conn.send_response(request.stream_id, 413, [], b"too big")
            self.conn.quic.stop_stream(request.stream_id, ErrorCode.H3_NO_ERROR)
            self.conn.wake()

    sent = 0

    async def endless():  # type: ignore[no-untyped-def]
        nonlocal sent
        while sent < 64 * 1024 * 1024:
            sent += 65536
            yield b"x" * 65536

    factory = QuicFactory[QuicHandler](Early)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await serve_quic(nursery, factory, certificate=quic_certificate)
            async with h3_only(ca_pem_path, timeout=GENEROUS) as client:
                response = await client.post(f"{server.url}/up", content=endless())
            nursery.cancel_scope.cancel()
    assert response.status_code == 413
    assert response.content == b"too big"
    assert sent < 64 * 1024 * 1024

"""The raw QUIC peer (servers.quic_raw) misbehaves as asked, and the UDP blackhole drops
everything: checked with aioquic's client driven by hand (servers.h3_client), no trioclient."""

from __future__ import annotations

import pytest
import trio
import trustme

pytest.importorskip("aioquic", reason="the http3 extra (aioquic) is not installed")

from aioquic.h3.connection import FrameType, encode_frame
from aioquic.quic.events import PingAcknowledged
from servers.h3_client import MiniH3Client, connect
from servers.quic_raw import (
    ErrorCode,
    H3Request,
    QuicFactory,
    QuicHandler,
    serve_quic,
    serve_udp_blackhole,
)

OUTER = 30  # seconds: a generous bound so a hang fails instead of blocking the suite


class Answer(QuicHandler):
    """200 with the path as the body; /reset is reset, /close closes the connection."""

    async def on_request(self, request: H3Request) -> None:
        if request.path == "/reset":
            self.conn.reset_stream(request.stream_id, ErrorCode.H3_INTERNAL_ERROR)
        elif request.path == "/close":
            self.conn.close(ErrorCode.H3_EXCESSIVE_LOAD, "too much")
        elif request.path == "/malformed":
            # DATA before HEADERS on a request stream: H3_FRAME_UNEXPECTED (RFC 9114, 4.1).
            self.conn.send_raw(request.stream_id, encode_frame(FrameType.DATA, b"x"), end=True)
        else:
            body = request.path.encode() + b":" + bytes(request.body)
            self.conn.send_response(request.stream_id, 200, [("x-n", "1")], body)


async def _round_trips(client: MiniH3Client, count: int) -> None:
    """`count` PING round trips: everything sent before has reached the server, and its
    answers have been handled."""
    for uid in range(count):
        client.quic.send_ping(uid)
        await client.transmit()
        await client.until(
            lambda uid=uid: any(  # type: ignore[misc]
                isinstance(e, PingAcknowledged) and e.uid == uid for e in client.quic_events
            )
        )


async def test_answers_resets_one_stream_and_keeps_the_others(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    factory = QuicFactory(Answer)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await serve_quic(nursery, factory, certificate=quic_certificate)
            async with connect(server.port, cafile=ca_pem_path) as client:
                ids = [
                    await client.start_request("POST", path, b"hi")
                    for path in ("/a", "/reset", "/b")
                ]
                await client.until(lambda: all(client.responses[i].done for i in ids))
            await factory.wait_closed()
            nursery.cancel_scope.cancel()
    first, reset, second = (client.responses[i] for i in ids)
    assert (first.status, bytes(first.body)) == (200, b"/a:hi")
    assert reset.reset_code == ErrorCode.H3_INTERNAL_ERROR
    assert not reset.ended
    assert bytes(second.body) == b"/b:hi"
    (connection,) = factory.connections
    assert [r.path for r in connection.handled_requests()] == ["/a", "/reset", "/b"]
    assert connection.terminated is not None


async def test_goaway_rejects_the_streams_at_and_above_its_id(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    class GoAwayAfterTwo(QuicHandler):
        async def on_connect(self) -> None:
            first, second, *_ = await self.conn.wait_requests(2)
            self.conn.send_goaway(second.stream_id + 4)
            for request in (first, second):
                self.conn.send_response(request.stream_id, 200, body=b"done")

    factory = QuicFactory(GoAwayAfterTwo)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await serve_quic(nursery, factory, certificate=quic_certificate)
            async with connect(server.port, cafile=ca_pem_path) as client:
                ids = [await client.start_request("GET", f"/{n}") for n in range(4)]
                await client.until(lambda: all(client.responses[i].done for i in ids))
                await client.until(lambda: client.goaway_id() is not None)
            nursery.cancel_scope.cancel()
    assert client.goaway_id() == ids[2]
    assert [bytes(client.responses[i].body) for i in ids[:2]] == [b"done", b"done"]
    assert [client.responses[i].reset_code for i in ids[2:]] == [ErrorCode.H3_REQUEST_REJECTED] * 2
    (connection,) = factory.connections
    assert [r.stream_id for r in connection.requests.values() if r.ignored] == ids[2:]


async def test_close_with_an_error_code_and_malformed_frames(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    factory = QuicFactory(Answer)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await serve_quic(nursery, factory, certificate=quic_certificate)
            async with connect(server.port, cafile=ca_pem_path) as closed:
                await closed.start_request("GET", "/close")
                while closed.terminated is None:
                    await closed.pump()
            async with connect(server.port, cafile=ca_pem_path) as malformed:
                await malformed.start_request("GET", "/malformed")
                while malformed.terminated is None:
                    await malformed.pump()
            await factory.wait_closed()
            nursery.cancel_scope.cancel()
    assert closed.terminated.error_code == ErrorCode.H3_EXCESSIVE_LOAD
    assert closed.terminated.reason_phrase == "too much"
    # The client's H3 layer refuses the frame and closes the connection, which the server sees.
    assert malformed.terminated.error_code == ErrorCode.H3_FRAME_UNEXPECTED
    second = factory.connections[1]
    assert second.terminated is not None
    assert second.terminated.error_code == ErrorCode.H3_FRAME_UNEXPECTED


async def test_held_credit_stalls_an_upload_at_the_initial_window(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    window = 4096

    class Hold(QuicHandler):
        hold_credit = True

    factory = QuicFactory(Hold)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await serve_quic(
                nursery, factory, certificate=quic_certificate, max_stream_data=window
            )
            async with connect(server.port, cafile=ca_pem_path) as client:
                stream_id = await client.start_request("POST", "/upload", b"u" * 100_000)
                (request,) = await factory.connections[0].wait_requests(1)
                await _round_trips(client, 3)
                # What the client may send, and what it still holds back.
                assert client.quic._streams[stream_id].max_stream_data_remote == window
                assert 0 < len(request.body) < window
                assert not request.ended
                # The server's view of the client's backpressure: aioquic's 1 MiB default.
                assert factory.connections[0].peer_credit(stream_id) == 1048576
                assert factory.connections[0].sent_offset(stream_id) == 0
            nursery.cancel_scope.cancel()


async def test_paused_reading_drops_everything(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    factory = QuicFactory(Answer)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await serve_quic(nursery, factory, certificate=quic_certificate)
            async with connect(server.port, cafile=ca_pem_path) as client:
                connection = factory.connections[0]
                connection.pause_reading()
                stream_id = await client.start_request("GET", "/lost")
                while connection.datagrams_dropped < 2:  # the request and a retransmission
                    await client.pump()
                assert not client.responses[stream_id].done
                assert connection.handled_requests() == []
            nursery.cancel_scope.cancel()


async def test_version_negotiation_and_the_blackhole(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    factory = QuicFactory(Answer)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await serve_quic(
                nursery, factory, certificate=quic_certificate, versions=[0x0A0A0A0A]
            )
            async with connect(server.port, cafile=ca_pem_path, handshake=False) as client:
                while client.terminated is None:
                    await client.pump()
            assert server.version_negotiations == 1
            assert factory.connections == []
            assert client.handshake is None

            blackhole = await serve_udp_blackhole(nursery)
            async with connect(blackhole.port, cafile=ca_pem_path, handshake=False) as lost:
                await lost.transmit()
                await blackhole.wait_received(1)
                assert lost.handshake is None
            nursery.cancel_scope.cancel()

"""trioclient's HTTP/3 against a server that misbehaves on purpose (servers.quic_raw, in the
test's own run): stream resets, GOAWAY, flow-control stalls, connection closes with an error
code, malformed frames, idle timeouts. Each failure is the precise exception, only where it
belongs (a reset fails its own stream, not its siblings), bounded in memory, and the client
works afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trustme

pytest.importorskip("aioquic", reason="the http3 extra (aioquic) is not installed")

from aioquic.buffer import encode_uint_var  # type: ignore[attr-defined]
from aioquic.h3.connection import FrameType, encode_frame
from servers.quic_raw import (
    ErrorCode,
    H3Request,
    QuicFactory,
    QuicHandler,
    QuicRawServer,
    serve_quic,
)

import trioclient

OUTER = 30  # seconds: a generous bound so a hang fails instead of blocking the suite
GENEROUS = trioclient.Timeout(10.0)  # nothing here should time out unless a test says so


def h3_only(verify: str, **kwargs: object) -> trioclient.Client:
    """A client that speaks HTTP/3 to every https URL (no Alt-Svc, no fallback)."""
    return trioclient.Client(
        http3=True,
        http1=False,
        http2=False,
        verify=verify,
        **kwargs,  # type: ignore[arg-type]
    )


class Answer(QuicHandler):
    """200 with ``<path>:<body>`` as the body."""

    async def on_request(self, request: H3Request) -> None:
        body = request.path.encode() + b":" + bytes(request.body)
        self.conn.send_response(request.stream_id, 200, [("content-type", "text/plain")], body)


async def _start(
    nursery: trio.Nursery,
    factory: QuicFactory[QuicHandler],
    certificate: trustme.LeafCert,
    **options: object,
) -> QuicRawServer:
    return await serve_quic(nursery, factory, certificate=certificate, **options)  # type: ignore[arg-type]


# --- stream reset ------------------------------------------------------------------------------


async def test_a_stream_reset_fails_only_that_request(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    class ResetOne(Answer):
        async def on_request(self, request: H3Request) -> None:
            if request.path == "/reset":
                self.conn.reset_stream(request.stream_id, ErrorCode.H3_INTERNAL_ERROR)
            else:
                await super().on_request(request)

    factory = QuicFactory[QuicHandler](ResetOne)
    results: dict[str, object] = {}
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery, factory, quic_certificate)
            async with h3_only(ca_pem_path, timeout=GENEROUS) as client:

                async def one(path: str) -> None:
                    try:
                        results[path] = (await client.get(f"{server.url}{path}")).text
                    except trioclient.TransportError as exc:
                        results[path] = exc

                async with trio.open_nursery() as requests:
                    for path in ("/a", "/reset", "/b"):
                        requests.start_soon(one, path)
                after = await client.get(f"{server.url}/after")
            nursery.cancel_scope.cancel()
    assert results["/a"] == "/a:"
    assert results["/b"] == "/b:"
    error = results["/reset"]
    assert isinstance(error, trioclient.RemoteProtocolError), error
    assert "H3_INTERNAL_ERROR" in str(error)
    assert f"127.0.0.1:{server.port}" in str(error)
    # The connection survived the reset: the next request went over it.
    assert after.text == "/after:"
    assert after.http_version == "HTTP/3"
    assert len(factory.connections) == 1


# --- GOAWAY ------------------------------------------------------------------------------------


async def test_goaway_retries_the_unprocessed_requests_on_a_new_connection(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    class GoAwayAfterTwo(Answer):
        """The first connection takes four requests, processes the first two (by stream id)
        and sends GOAWAY for the rest; later connections answer everything."""

        async def on_connect(self) -> None:
            if self.conn is not factory.connections[0]:
                return
            requests = sorted(await self.conn.wait_requests(4), key=lambda r: r.stream_id)
            self.conn.send_goaway(requests[2].stream_id)
            for request in requests[:2]:
                await request.complete.wait()
                await super().on_request(request)

        async def on_request(self, request: H3Request) -> None:
            if self.conn is not factory.connections[0]:
                await super().on_request(request)

    factory = QuicFactory[QuicHandler](GoAwayAfterTwo)
    texts: dict[str, str] = {}
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery, factory, quic_certificate)
            async with h3_only(ca_pem_path, timeout=GENEROUS) as client:

                async def one(path: str) -> None:
                    texts[path] = (await client.get(f"{server.url}{path}")).text

                async with trio.open_nursery() as requests:
                    for n in range(4):
                        requests.start_soon(one, f"/{n}")
            nursery.cancel_scope.cancel()
    assert texts == {f"/{n}": f"/{n}:" for n in range(4)}
    first, second = factory.connections
    rejected = sorted(r.path for r in first.requests.values() if r.ignored)
    assert len(rejected) == 2
    # Exactly the requests the first connection did not process went over the second.
    assert sorted(r.path for r in second.handled_requests()) == rejected


# --- flow-control stalls -----------------------------------------------------------------------


async def test_an_upload_the_server_gives_no_credit_for_is_a_write_timeout_in_bounded_memory(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    window = 16 * 1024
    chunk = 64 * 1024
    total_chunks = 256  # 16 MiB offered; only a bounded prefix may ever be pulled

    class Hold(QuicHandler):
        hold_credit = True

    factory = QuicFactory[QuicHandler](Hold)
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(total_chunks):
            pulled += 1
            yield b"u" * chunk

    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery, factory, quic_certificate, max_stream_data=window)
            timeout = trioclient.Timeout(10.0, write=0.5)
            async with h3_only(ca_pem_path, timeout=timeout) as client:
                with pytest.raises(trioclient.WriteTimeout) as caught:
                    await client.post(f"{server.url}/upload", content=body())
            nursery.cancel_scope.cancel()
    assert f"127.0.0.1:{server.port}" in str(caught.value)
    (request,) = factory.connections[0].requests.values()
    assert len(request.body) <= window
    # Memory: the client took a bounded prefix of the body (what fits its upload buffer
    # and the stream window), not all 16 MiB.
    assert pulled <= 8, pulled


async def test_a_response_that_stops_is_a_read_timeout_and_the_connection_lives_on(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    class StallBody(Answer):
        async def on_request(self, request: H3Request) -> None:
            if request.path == "/stall":
                self.conn.send_response(request.stream_id, 200)
                self.conn.send_data(request.stream_id, b"first piece")
            else:
                await super().on_request(request)

    factory = QuicFactory[QuicHandler](StallBody)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery, factory, quic_certificate)
            timeout = trioclient.Timeout(10.0, read=0.5)
            async with h3_only(ca_pem_path, timeout=timeout) as client:
                with pytest.raises(trioclient.ReadTimeout):
                    await client.get(f"{server.url}/stall")
                after = await client.get(f"{server.url}/after")
                stalled = next(
                    r for r in factory.connections[0].requests.values() if r.path == "/stall"
                )
                # The abandoned stream was stopped (H3_REQUEST_CANCELLED), not the connection.
                while stalled.stop_sending_code is None:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert after.text == "/after:"
    assert stalled.stop_sending_code == ErrorCode.H3_REQUEST_CANCELLED
    assert len(factory.connections) == 1


async def test_a_reader_that_does_not_read_holds_the_server_at_a_bounded_window(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    size = 8 * 1024 * 1024
    payload = bytes(range(256)) * (size // 256)

    class Big(Answer):
        async def on_request(self, request: H3Request) -> None:
            self.conn.send_response(request.stream_id, 200, [("content-length", str(size))])
            self.conn.send_data(request.stream_id, payload, end=True)

    factory = QuicFactory[QuicHandler](Big)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery, factory, quic_certificate)
            async with (
                h3_only(ca_pem_path, timeout=GENEROUS) as client,
                client.stream("GET", f"{server.url}/big") as response,
            ):
                connection = factory.connections[0]
                (request,) = connection.requests.values()
                # The server sends until it has used all the credit the client gave.
                while connection.sent_offset(request.stream_id) < connection.peer_credit(
                    request.stream_id
                ):
                    await trio.sleep(0.01)
                credit = connection.peer_credit(request.stream_id)
                received = await response.aread()
            nursery.cancel_scope.cancel()
    # Nothing was read while the server sent: the client let it send a bounded window
    # (aioquic alone would have doubled it as data arrived, up to the whole body).
    assert credit <= 3 * 1024 * 1024, credit
    assert received == payload


# --- connection close and malformed frames -----------------------------------------------------


async def test_a_connection_closed_with_an_error_code_fails_its_requests_naming_it(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    class CloseOnSecond(Answer):
        async def on_connect(self) -> None:
            if self.conn is factory.connections[0]:
                await self.conn.wait_requests(2)
                self.conn.close(ErrorCode.H3_EXCESSIVE_LOAD, "too much")

        async def on_request(self, request: H3Request) -> None:
            if self.conn is not factory.connections[0]:
                await super().on_request(request)

    factory = QuicFactory[QuicHandler](CloseOnSecond)
    errors: list[BaseException] = []
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery, factory, quic_certificate)
            async with h3_only(ca_pem_path, timeout=GENEROUS) as client:

                async def one(path: str) -> None:
                    # POST: never retried, so each request shows what its connection did.
                    try:
                        await client.post(f"{server.url}{path}", content=b"body")
                    except trioclient.TransportError as exc:
                        errors.append(exc)

                async with trio.open_nursery() as requests:
                    requests.start_soon(one, "/1")
                    requests.start_soon(one, "/2")
                after = await client.get(f"{server.url}/after")
            nursery.cancel_scope.cancel()
    assert len(errors) == 2
    for error in errors:
        assert isinstance(error, trioclient.RemoteProtocolError), error
        assert "H3_EXCESSIVE_LOAD" in str(error)
        assert "too much" in str(error)
    assert after.text == "/after:"
    assert len(factory.connections) == 2


def _data_before_headers(conn: object, stream_id: int) -> None:
    assert hasattr(conn, "send_raw")
    conn.send_raw(stream_id, encode_frame(FrameType.DATA, b"x"), end=True)


def _undecodable_headers(conn: object, stream_id: int) -> None:
    # A field section prefix that refers to a dynamic table the server never filled.
    assert hasattr(conn, "send_raw")
    conn.send_raw(stream_id, encode_frame(FrameType.HEADERS, b"\xff\xff\xff\x01"), end=True)


def _second_settings(conn: object, stream_id: int) -> None:
    assert hasattr(conn, "send_control_raw")
    conn.send_control_raw(encode_frame(FrameType.SETTINGS, b""))


def _truncated_frame(conn: object, stream_id: int) -> None:
    # A DATA frame announcing 100 bytes, then the end of the stream after 3 of them.
    assert hasattr(conn, "send_raw")
    conn.send_raw(stream_id, encode_uint_var(FrameType.DATA) + encode_uint_var(100) + b"abc")
    conn.send_raw(stream_id, b"", end=True)


@pytest.mark.parametrize(
    ("misbehave", "code"),
    [
        (_data_before_headers, "H3_FRAME_UNEXPECTED"),
        (_undecodable_headers, "QPACK_DECOMPRESSION_FAILED"),
        (_second_settings, "H3_FRAME_UNEXPECTED"),
        (_truncated_frame, None),
    ],
    ids=["data-before-headers", "undecodable-headers", "second-settings", "truncated-frame"],
)
async def test_malformed_frames_are_a_remote_protocol_error(
    quic_certificate: trustme.LeafCert,
    ca_pem_path: str,
    misbehave: object,
    code: str | None,
) -> None:
    class Malformed(Answer):
        async def on_request(self, request: H3Request) -> None:
            if self.conn is factory.connections[0]:
                assert callable(misbehave)
                misbehave(self.conn, request.stream_id)
            else:
                await super().on_request(request)

    factory = QuicFactory[QuicHandler](Malformed)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery, factory, quic_certificate)
            async with h3_only(ca_pem_path, timeout=GENEROUS) as client:
                with pytest.raises(trioclient.RemoteProtocolError) as caught:
                    await client.get(f"{server.url}/bad")
                after = await client.get(f"{server.url}/after")
            await factory.wait_closed()
            nursery.cancel_scope.cancel()
    assert after.text == "/after:"
    first = factory.connections[0]
    assert first.terminated is not None
    if code is not None:
        assert code in str(caught.value)
        # The client told the server why, with the same code.
        assert first.terminated.error_code == ErrorCode[code]


# --- idle timeout and keep-alive ---------------------------------------------------------------


async def test_an_idle_connection_that_timed_out_is_replaced(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    factory = QuicFactory[QuicHandler](Answer)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            # The connection's idle timeout is the smaller of both ends': 1 s here.
            server = await _start(nursery, factory, quic_certificate, idle_timeout=1.0)
            async with h3_only(ca_pem_path, timeout=GENEROUS) as client:
                first = await client.get(f"{server.url}/first")
                await factory.wait_closed()  # the server's idle timer fired
                transport = client._transport
                assert isinstance(transport, trioclient.HTTPTransport)
                # And so did the client's: the connection leaves the pool by itself.
                while any(not s.is_closed for s in transport.connection_statistics()):
                    await trio.sleep(0.01)
                second = await client.get(f"{server.url}/second")
            nursery.cancel_scope.cancel()
    assert (first.text, second.text) == ("/first:", "/second:")
    assert len(factory.connections) == 2


async def test_a_slow_response_outlives_the_idle_timeout_thanks_to_pings(
    quic_certificate: trustme.LeafCert, ca_pem_path: str
) -> None:
    class Slow(Answer):
        async def on_request(self, request: H3Request) -> None:
            # Silence for several idle timeouts: only the client's PINGs keep it alive.
            await trio.sleep(3.5)
            await super().on_request(request)

    factory = QuicFactory[QuicHandler](Slow)
    with trio.fail_after(OUTER):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery, factory, quic_certificate, idle_timeout=1.0)
            async with h3_only(ca_pem_path, timeout=GENEROUS) as client:
                response = await client.get(f"{server.url}/slow")
            nursery.cancel_scope.cancel()
    assert response.text == "/slow:"
    assert len(factory.connections) == 1

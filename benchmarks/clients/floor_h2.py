"""The HTTP/2 floor: bare Trio + h2 over one TLS connection (ALPN h2).

One reader task feeds received bytes to h2 and wakes the stream that an event belongs to;
each request task opens a stream, sends its headers with END_STREAM, and waits for its
stream to end. Data is acknowledged as it arrives so the flow-control windows stay open.
No pool, no stream limit handling beyond h2's own, no priorities, no error recovery.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import trio

from ._common import Args, Recorder, Unsupported, main, ssl_context

RECEIVE_SIZE = 65536


class _Stream:
    __slots__ = ("done", "error", "nbytes", "status")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.nbytes = 0
        self.status = b""
        self.error: str | None = None


class Connection:
    """One HTTP/2 connection with its reader task."""

    def __init__(self, stream: trio.SSLStream[Any], args: Args) -> None:
        parts = urlsplit(args.url)
        self.stream = stream
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.headers = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", parts.netloc.encode()),
            (b":path", (parts.path or "/").encode()),
            (b"accept", b"*/*"),
        ]
        self.streams: dict[int, _Stream] = {}
        self.send_lock = trio.StrictFIFOLock()

    async def flush(self) -> None:
        """Send whatever h2 has queued (frames, acks, window updates)."""
        async with self.send_lock:
            data = self.h2.data_to_send()
            if data:
                await self.stream.send_all(data)

    async def reader(self) -> None:
        """Feed the socket to h2 until EOF; wake each stream when it ends."""
        conn = self.h2
        while True:
            data = await self.stream.receive_some(RECEIVE_SIZE)
            if not data:
                raise RuntimeError("server closed the connection")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    self.streams[event.stream_id].nbytes += len(event.data)
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.ResponseReceived):
                    self.streams[event.stream_id].status = dict(event.headers)[b":status"]
                elif isinstance(event, h2.events.StreamEnded):
                    self.streams[event.stream_id].done.set()
                elif isinstance(event, h2.events.StreamReset):
                    state = self.streams[event.stream_id]
                    state.error = f"stream reset, code {event.error_code}"
                    state.done.set()
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise RuntimeError(f"GOAWAY {event.error_code}")
            await self.flush()

    async def get(self) -> int:
        """One GET on a new stream; returns the body length."""
        stream_id = self.h2.get_next_available_stream_id()
        state = self.streams[stream_id] = _Stream()
        self.h2.send_headers(stream_id, self.headers, end_stream=True)
        await self.flush()
        await state.done.wait()
        del self.streams[stream_id]
        if state.error is not None or state.status != b"200":
            raise RuntimeError(state.error or f"status {state.status!r}")
        return state.nbytes


async def _run(args: Args) -> dict[str, Any]:
    if not args.http2:
        raise Unsupported("an HTTP/1.1 workload: floor-h11 is its floor")
    if args.shape != "requests":
        raise Unsupported("the h2 floor runs request workloads only")
    parts = urlsplit(args.url)
    host = parts.hostname or "127.0.0.1"
    context = ssl_context(args, ["h2"])
    assert context is not None, "HTTP/2 workloads are https"
    tcp = await trio.open_tcp_stream(host, parts.port or 443)
    stream = trio.SSLStream(tcp, context, server_hostname=host)
    await stream.do_handshake()
    if stream.selected_alpn_protocol() != "h2":
        raise RuntimeError(f"server chose ALPN {stream.selected_alpn_protocol()!r}, not h2")
    conn = Connection(stream, args)
    conn.h2.initiate_connection()
    await conn.flush()
    rec = Recorder(args)
    remaining = args.n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            rec.begin()
            rec.done(await conn.get())

    try:
        async with trio.open_nursery() as outer:
            outer.start_soon(conn.reader)
            await conn.get()  # warm-up
            rec.start()
            async with trio.open_nursery() as nursery:
                for _ in range(min(args.concurrency, args.n)):
                    nursery.start_soon(worker)
            rec.stop()
            outer.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(stream)
    return rec.result()


def run(args: Args) -> dict[str, Any]:
    """Run one workload with the bare Trio + h2 loop."""
    return trio.run(_run, args)


if __name__ == "__main__":
    main(run)

"""The HTTP/1.1 floor: bare Trio + h11, no pool and no features.

One task per connection (as many as the pool limit), each looping over a shared counter of
requests: send the request, feed the socket's bytes to h11 until the end of the message,
start the next cycle. No headers beyond Host, no decoding, no redirects, no timeouts, no
pool bookkeeping. This is roughly the least any Trio + h11 client can do per request, so
a client's ratio to it is the cost of its features.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import h11
import trio

from ._common import Args, Recorder, Unsupported, main, ssl_context

RECEIVE_SIZE = 65536


class Connection:
    """One HTTP/1.1 connection: a Trio stream and an h11 state machine."""

    def __init__(self, stream: trio.abc.Stream, request: h11.Request) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.request = request

    @classmethod
    async def open(cls, args: Args) -> Connection:
        """Connect (and TLS-handshake for https) to the URL's origin."""
        parts = urlsplit(args.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
        context = ssl_context(args, ["http/1.1"])
        if context is not None:
            stream = trio.SSLStream(stream, context, server_hostname=host)
            await stream.do_handshake()
        request = h11.Request(
            method="GET",
            target=parts.path or "/",
            headers=[("Host", parts.netloc), ("Accept", "*/*")],
        )
        return cls(stream, request)

    async def get(self) -> int:
        """One GET; returns the body length (the body itself is dropped)."""
        conn = self.h11
        await self.stream.send_all(conn.send(self.request) + conn.send(h11.EndOfMessage()))
        total = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await self.stream.receive_some(RECEIVE_SIZE))  # type: ignore[arg-type]
            elif type(event) is h11.Data:
                total += len(event.data)
            elif type(event) is h11.Response:
                if event.status_code != 200:
                    raise RuntimeError(f"status {event.status_code}")
            elif type(event) is h11.EndOfMessage:
                break
            else:
                raise RuntimeError(f"unexpected {event!r}")
        conn.start_next_cycle()
        return total


async def _run(args: Args) -> dict[str, Any]:
    if args.http2:
        raise Unsupported("an HTTP/2 workload: floor-h2 is its floor")
    rec = Recorder(args)
    first = await Connection.open(args)
    connections: list[Connection] = [first]
    await first.get()  # warm-up, as every client does
    remaining = args.n

    async def worker(conn: Connection | None) -> None:
        nonlocal remaining
        if conn is None:
            if remaining <= 0:
                return
            conn = await Connection.open(args)
            connections.append(conn)
        while remaining > 0:
            remaining -= 1
            rec.begin()
            rec.done(await conn.get())

    try:
        rec.start()
        count = 1 if args.shape == "stream" else min(args.connections, args.n)
        async with trio.open_nursery() as nursery:
            for i in range(count):
                nursery.start_soon(worker, first if i == 0 else None)
        rec.stop()
    finally:
        for conn in connections:
            await trio.aclose_forcefully(conn.stream)
    return rec.result()


def run(args: Args) -> dict[str, Any]:
    """Run one workload with the bare Trio + h11 loop."""
    return trio.run(_run, args)


if __name__ == "__main__":
    main(run)

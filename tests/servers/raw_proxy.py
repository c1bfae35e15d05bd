"""Raw Trio proxies for tests: a working HTTP proxy that records what it saw, and misbehaving
HTTP and SOCKS5 proxies (refusals, garbage, stalls), all served with `serve_raw`.

The working proxy (`RelayProxy`) understands CONNECT (then relays bytes both ways) and
absolute-form requests (it opens a connection to the target, sends the request on in origin
form, relays the response back and closes). It keeps every request head it received
(`heads`), so tests can check the target form and the proxy headers; with
`serve_raw(..., tls=...)` it is an `https://` proxy.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import trio

from .raw import BufferedStream, Handler, read_request_head, response_bytes

__all__ = [
    "RelayProxy",
    "connect_reply",
    "refuse",
    "relay",
    "socks_relay",
    "socks_reply",
    "socks_server",
]


async def _pump(source: trio.abc.ReceiveStream, sink: trio.abc.SendStream) -> None:
    try:
        while data := await source.receive_some(65536):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    if isinstance(sink, trio.abc.HalfCloseableStream):
        try:
            await sink.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


async def _open_upstream(host: str, port: int) -> trio.SocketStream:
    """A TCP connection that bypasses any custom socket factory: the cancellation harness
    counts and breaks the *client's* sockets only, never the proxy's own."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = trio.socket.from_stdlib_socket(socket.socket(family, kind, proto))
    try:
        await sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def relay(client: BufferedStream, host: str, port: int, first: bytes = b"") -> None:
    """Connect to host:port, send `first`, then relay both ways until both sides are done."""
    upstream = await _open_upstream(host, port)
    async with upstream:
        if first:
            await upstream.send_all(first)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump, client, upstream)
            nursery.start_soon(_pump, upstream, client)


def _split_target(authority: str) -> tuple[str, int]:
    host, _, port = authority.rpartition(":")
    return host.strip("[]"), int(port)


class RelayProxy:
    """A working HTTP proxy (CONNECT and forwarding) recording each request head."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.connections = 0

    async def __call__(self, stream: BufferedStream) -> None:
        self.connections += 1
        while True:
            try:
                head = await read_request_head(stream)
            except trio.BrokenResourceError:
                return
            self.heads.append(head)
            method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
            if method == b"CONNECT":
                await stream.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                host, port = _split_target(target.decode())
                await relay(stream, host, port)
                return
            # Forwarding: rewrite to origin form, one request per upstream connection.
            url = target.decode()
            rest = url.split("://", 1)[1]
            authority, _, path = rest.partition("/")
            host, port = _split_target(authority if ":" in authority else authority + ":80")
            lines = head.split(b"\r\n")
            lines[0] = b" ".join([method, b"/" + path.encode(), b"HTTP/1.1"])
            kept = [
                line
                for line in lines
                if not line.lower().startswith((b"proxy-authorization:", b"connection:"))
            ]
            upstream_head = b"\r\n".join(kept[:-2]) + b"\r\nConnection: close\r\n\r\n"
            async with await _open_upstream(host, port) as upstream_stream:
                upstream = BufferedStream(upstream_stream)
                await upstream.send_all(upstream_head)
                await stream.send_all(await _read_response(upstream))


async def _read_response(upstream: BufferedStream) -> bytes:
    """One response: its head, then a Content-Length body, a chunked one, or until EOF."""
    head = await upstream.receive_until(b"\r\n\r\n")
    fields = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
    }
    if b"content-length" in fields:
        return head + await upstream.receive_exactly(int(fields[b"content-length"]))
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        return head + await upstream.receive_until(b"\r\n0\r\n\r\n")
    body = b""
    try:
        while data := await upstream.receive_some(65536):
            body += data
    except trio.BrokenResourceError:
        pass
    return head + body


def connect_reply(
    reply: bytes, *, then: Callable[[BufferedStream], Awaitable[None]] | None = None
) -> Handler:
    """A proxy that reads one request head and answers `reply` (bytes as given), then runs
    `then` (default: wait until the client closes)."""

    async def handler(stream: BufferedStream) -> None:
        await read_request_head(stream)
        if reply:
            await stream.send_all(reply)
        if then is not None:
            await then(stream)
        else:
            await _drain(stream)

    return handler


async def _drain(stream: BufferedStream) -> None:
    try:
        while await stream.receive_some(65536):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


def refuse(status: int, reason: str = "") -> Handler:
    """An HTTP proxy that answers every CONNECT with `status`."""
    head = response_bytes(status, [("Connection", "close")], b"no")
    if reason:
        head = head.replace(head.split(b"\r\n", 1)[0], f"HTTP/1.1 {status} {reason}".encode())
    return connect_reply(head)


def socks_reply(code: int) -> bytes:
    """A SOCKS5 reply with `code` and an IPv4 bound address."""
    return bytes([5, code, 0, 1, 127, 0, 0, 1, 0, 80])


def socks_server(
    *,
    method: int = 0,
    auth_ok: bool = True,
    reply: bytes = socks_reply(0),
    seen: list[bytes] | None = None,
    byte_by_byte: bool = False,
    then: Callable[[BufferedStream], Awaitable[None]] | None = None,
) -> Handler:
    """A scripted SOCKS5 proxy: chooses `method`, accepts or rejects the credentials, answers
    the CONNECT with `reply`, then runs `then` (default: wait until the client closes).
    `seen` collects the client's messages; `byte_by_byte` sends each reply one byte at a time.
    """

    async def send(stream: BufferedStream, data: bytes) -> None:
        if byte_by_byte:
            for index in range(len(data)):
                await stream.send_all(data[index : index + 1])
                await trio.sleep(0.001)  # separate segments, most likely
        else:
            await stream.send_all(data)

    async def handler(stream: BufferedStream) -> None:
        greeting = await stream.receive_exactly(2)
        greeting += await stream.receive_exactly(greeting[1])
        if seen is not None:
            seen.append(greeting)
        await send(stream, bytes([5, method]))
        if method == 0xFF:
            return await _drain(stream)
        if method == 2:
            head = await stream.receive_exactly(2)
            user = await stream.receive_exactly(head[1])
            size = await stream.receive_exactly(1)
            password = await stream.receive_exactly(size[0])
            if seen is not None:
                seen.append(head + user + size + password)
            await send(stream, bytes([1, 0 if auth_ok else 1]))
            if not auth_ok:
                return await _drain(stream)
        request = await stream.receive_exactly(4)
        atype = request[3]
        if atype == 1:
            request += await stream.receive_exactly(4 + 2)
        elif atype == 4:
            request += await stream.receive_exactly(16 + 2)
        else:
            size = await stream.receive_exactly(1)
            request += size + await stream.receive_exactly(size[0] + 2)
        if seen is not None:
            seen.append(request)
        if reply:
            await send(stream, reply)
        if then is not None:
            await then(stream)
        else:
            await _drain(stream)

    return handler


def socks_relay() -> Handler:
    """A working SOCKS5 proxy (no authentication) relaying to the address it is asked for."""

    async def handler(stream: BufferedStream) -> None:
        greeting = await stream.receive_exactly(2)
        await stream.receive_exactly(greeting[1])
        await stream.send_all(b"\x05\x00")
        request = await stream.receive_exactly(4)
        if request[3] == 1:
            host = ".".join(str(b) for b in await stream.receive_exactly(4))
        elif request[3] == 3:
            size = await stream.receive_exactly(1)
            host = (await stream.receive_exactly(size[0])).decode("ascii")
        else:
            await stream.send_all(socks_reply(8))
            return
        port = int.from_bytes(await stream.receive_exactly(2), "big")
        await stream.send_all(socks_reply(0))
        await relay(stream, host, port)

    return handler

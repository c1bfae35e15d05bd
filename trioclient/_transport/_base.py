"""`Transport`: the one seam between the client and whatever answers its requests.

Theory of operation
-------------------
The client builds requests, applies auth, redirects and (later) cookies and hooks, and hands
each single request to a transport: `await transport.handle_request(request)` returns a
`Response` whose body may still be on the wire. The client owns the response from then on:
it reads it (`client.get`) or hands it to the caller (`client.stream`), and closing the
response (`Response.aclose`, or the client closing) ends the transport's hold on it.

A transport that needs background work (HTTP/2 readers, idle-connection expiry, an ASGI app
task) gets the client's nursery through `bind()`, once, when the client is entered; a
transport that needs none (`MockTransport`) ignores it. So every task a transport starts is
owned by the nursery of the `async with Client()` block, and leaving that block cancels it.

Closing follows Trio's `AsyncResource.aclose` contract: `aclose()` must have closed
everything (connections, in-flight responses) by the time it first blocks, because the
client calls it in an already cancelled scope (`trio.aclose_forcefully`). Cleanup therefore
never waits on the network and cannot be interrupted half-way.

Rejected alternative: httpx's `handle_async_request` name. trioclient has one kind of
transport (Trio's), so there is no sync twin to tell apart from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .._request import Request
    from .._response import Response

__all__ = ["ResponseHead", "Transport"]


class ResponseHead:
    """Status line and headers of a response, as a protocol driver received them."""

    __slots__ = ("headers", "http_version", "reason", "status")

    def __init__(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes, bytes]],
        http_version: str,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers  # (raw name, lowercased name, value), as Headers keeps them
        self.http_version = http_version


class Transport(trio.abc.AsyncResource):
    """What a client sends requests through. Subclass it and implement `handle_request`.

    Contract:

    - `handle_request(request)` sends one request and returns its `Response` (the body may be
      unread). It runs in the caller's task, is a Trio checkpoint, and lets `Cancelled`,
      `KeyboardInterrupt` and every other exception out unchanged. Timeouts are in
      `request.extensions["timeout"]` (a `Timeout`); when a client sends the request, the
      absolute deadlines of the whole send are in `request.extensions["deadlines"]`.
    - `bind(nursery)` is called once by the client on entering `async with`: start any
      background task there. It must not block.
    - `aclose()` closes everything the transport holds, including responses not yet read.
      It must finish closing before its first checkpoint (it is called cancelled).
    """

    def bind(self, nursery: trio.Nursery) -> None:
        """Receive the client's nursery, for background tasks. The default needs none."""

    async def handle_request(self, request: Request) -> Response:
        """Send `request` and return its response, whose body may still be unread."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the transport and everything it holds. The default holds nothing."""
        await trio.lowlevel.checkpoint()

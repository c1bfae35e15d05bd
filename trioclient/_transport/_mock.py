"""`MockTransport`: answers requests with a function of yours instead of the network.

Theory of operation
-------------------
`MockTransport(handler)` calls `handler(request)` for every request and returns the
`Response` it gives back; nothing is opened, so tests need no server and no sockets. The
handler may be a plain function or a coroutine function (`async def`, or an object whose
`__call__` is one). A plain function may also return an awaitable, which is awaited.

Request bodies: an async handler receives the request as the client built it, so it can
stream the body (`async for chunk in request.stream`) or `await request.aread()`. A plain
function cannot await, so a streamed body is read into memory before the call, which makes
`request.content` work there.

Response bodies: `Response(content=...)`, `text=`, `json=`, or `stream=` (any async iterable
of bytes, read as the caller iterates). Responses whose stream is still unread are held,
like a real transport holds its connections, and `aclose()` closes them: a later read raises
`StreamClosed`.

Every `handle_request` is a Trio checkpoint, taken before the handler runs, so a cancelled
caller never reaches the handler, and a handler that never awaits still lets other tasks
run. Whatever the handler raises (a `trioclient.ConnectError` to simulate a refused
connection, an `AssertionError` from a test, `Cancelled`) propagates unchanged; only a
return value that is not a `Response` becomes a TypeError.

Rejected alternative: a transport shared between clients, as httpx's MockTransport is. The
`Transport` contract says `aclose()` closes it, so once its client closed it, the transport
refuses further requests (`ClientStateError`) instead of silently answering. Build one per
client, or use the pytest fixture's `trioclient_mock.transport`, which is fresh each time.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from .._exceptions import ClientStateError
from .._response import Response
from ._base import Transport

if TYPE_CHECKING:
    from .._request import Request

__all__ = ["MockHandler", "MockTransport"]

MockHandler = Callable[["Request"], Response | Awaitable[Response]]
"""What `MockTransport` calls: `handler(request)` returns a Response, or an awaitable of one."""


class MockTransport(Transport):
    """A transport that answers each request by calling `handler(request)`.

    `handler` is a function or a coroutine function taking the `Request` and returning a
    `Response`. A plain function gets streamed request bodies already read into memory
    (`request.content` works); an async one gets them unread (`await request.aread()`).
    """

    def __init__(self, handler: MockHandler) -> None:
        if not callable(handler):
            raise TypeError(
                f"MockTransport needs a callable handler, not {type(handler).__name__}."
            )
        self.handler = handler
        self._is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            type(handler).__call__  # an object with `async def __call__`
        )
        self._open_responses: weakref.WeakSet[Response] = weakref.WeakSet()
        self._closed = False

    async def handle_request(self, request: Request) -> Response:
        """Call the handler with `request` and return its response (always a checkpoint)."""
        await trio.lowlevel.checkpoint()
        self._check_open()
        if not self._is_async and not isinstance(request.stream, bytes):
            await request.aread()
        result: object = self.handler(request)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, Response):
            raise TypeError(
                f"The MockTransport handler must return a trioclient.Response, not"
                f" {type(result).__name__} (for {request!r})."
            )
        if self._closed:  # closed by another task while the handler ran
            await result._finalize()
            self._check_open()
        if result._request is None:
            result.request = request
        if not result.is_closed:
            self._open_responses.add(result)
        return result

    async def aclose(self) -> None:
        """Close the transport and every response whose body was not read yet."""
        self._closed = True
        responses = list(self._open_responses)
        self._open_responses.clear()
        for response in responses:
            response._close()  # all closed before the first await (the Transport contract)
        for response in responses:
            await response._finalize()
        await trio.lowlevel.checkpoint()

    @property
    def is_closed(self) -> bool:
        """True once the transport was closed (by `aclose()` or by its client)."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClientStateError(
                "Cannot send a request: the MockTransport is closed (its client closed it,"
                " or aclose() was called). Give each client its own MockTransport."
            )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<MockTransport [{state}] handler={self.handler!r}>"

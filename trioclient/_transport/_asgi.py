"""`ASGITransport`: answer requests with an ASGI 3 application, in-process, on Trio.

Theory of operation
-------------------
Each request is one `_Exchange`. `handle_request` starts the app as a task in the nursery the
client bound (`bind`) and waits, in the caller's task, until the app sends
`http.response.start` (or finishes or fails without it). The response body then flows from
the app's `send()` to the caller's reads through a bounded memory channel of `_BODY_BUFFER`
chunks: a fast app waits for a slow reader, memory stays bounded, and a streaming endpoint
is read chunk by chunk as it produces them. The request body is pulled from `request.stream`
only when the app calls `receive()` (in the app's task), one `http.request` message a chunk.

The body ends (b"") when the app *returns*, not when it sends its last chunk, so background
work after the response (Starlette's `BackgroundTask`) has finished, and its errors have
surfaced, by the time `client.get()` returns, as with httpx (which runs the app to the end).

Errors. The app task never lets an exception into the client's nursery, which would tear the
client down and wrap it in an ExceptionGroup: `_run_app` catches everything but `Cancelled`
and hands it to the caller. With `raise_app_exceptions=True` it is re-raised from
`handle_request` if the app failed before starting its response, else from the body read
once the chunks sent before the failure were read. With False (httpx's rules), an `Exception`
becomes an empty 500 response before the start, or ends the body early after it; a
`BaseException` that is not an `Exception` (KeyboardInterrupt, SystemExit) is always
re-raised. An app that returns without a complete response fails with RuntimeError, as does
one that breaks the ASGI message order. An error from the request body's iterable is the
caller's, not the app's: it is always raised, and the app sees `http.disconnect`.

Disconnect rule. When the caller closes the response before the app has sent all of it, or
is cancelled (or fails) while waiting for the head, the app's `receive()` returns
`http.disconnect` from then on (waking a pending call) and its `send()` becomes a no-op. The
app then has `disconnect_grace` seconds (0.25 by default) to return; after that its task is
cancelled. The grace is a deadline on the task's cancel scope, so no task or timer enforces
it. An app that has sent its whole response is left to finish its background work (its
`receive()` returns `http.disconnect`, as ASGI says). `aclose()` cancels every app task at
once and closes every response: reads then raise StreamClosed or ClientStateError naming
"the client was closed", and later requests are refused.

Timeouts are not applied (httpx's ASGITransport ignores them too): use `trio.fail_after`.

Rejected alternatives:

- Buffering the whole response, as httpx does: a streaming endpoint (server-sent events, an
  endless feed) would never return, and a large body would sit in memory.
- A nursery per request inside `handle_request`: the response outlives the call, so the app
  task needs a nursery that lives longer; the client's is that nursery.
- Cancelling the app as soon as the caller leaves: it would see `http.disconnect` but could
  not await anything in its cleanup. A bounded grace allows that and still ends the task.
- anyio or asyncio in the library: trioclient is Trio-only. anyio-based frameworks
  (Starlette) run on Trio through anyio's own Trio backend.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import trio

from .._content import checked_chunk, close_abandoned
from .._exceptions import ClientStateError
from .._headers import Headers
from .._response import Response
from .._urlparse import DEFAULT_PORTS
from ._base import Transport
from ._errors import CLIENT_CLOSED

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from .._request import Request

__all__ = ["ASGITransport"]

logger = logging.getLogger("trioclient")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

_BODY_BUFFER = 2  # response chunks the app may send ahead of the reader


class ASGITransport(Transport):
    """Send requests to an ASGI 3 application running in-process, in the client's nursery.

    Use it through a client: `Client(transport=ASGITransport(app))`, or `mounts=` for some
    URLs only. `root_path` and `client` (the peer's (host, port)) go into the ASGI scope;
    `raise_app_exceptions` re-raises the app's errors in the caller (else: a 500 response);
    `disconnect_grace` is how long an app whose caller left may take to return before its
    task is cancelled.
    """

    def __init__(
        self,
        app: ASGIApp,
        root_path: str = "",
        client: tuple[str, int] = ("127.0.0.1", 123),
        raise_app_exceptions: bool = True,
        *,
        disconnect_grace: float = 0.25,
    ) -> None:
        if disconnect_grace < 0:
            raise ValueError(f"disconnect_grace must be >= 0, not {disconnect_grace!r}.")
        self.app = app
        self.root_path = root_path
        self.client = client
        self.raise_app_exceptions = raise_app_exceptions
        self.disconnect_grace = disconnect_grace
        self._nursery: trio.Nursery | None = None
        self._closed_reason: str | None = None
        self._exchanges: set[_Exchange] = set()

    def bind(self, nursery: trio.Nursery) -> None:
        """Run app tasks in the client's `nursery`."""
        if self._nursery is not None:
            raise ClientStateError(
                "This ASGITransport already belongs to a client; give each client its own."
            )
        self._nursery = nursery

    async def handle_request(self, request: Request) -> Response:
        """Start the app on `request`; return once it started its response (body unread)."""
        if self._closed_reason is not None:
            raise ClientStateError(f"Cannot send a request: {self._closed_reason}.")
        nursery = self._nursery
        if nursery is None:
            raise ClientStateError(
                "An ASGITransport runs its app in a client's nursery: use it through"
                " `async with trioclient.Client(transport=ASGITransport(app)) as client:`"
                " (or mounts=)."
            )
        await trio.lowlevel.checkpoint_if_cancelled()  # a cancelled caller starts no app
        exchange = _Exchange(self, request)
        self._exchanges.add(exchange)
        name = f"trioclient ASGI app: {request.method} {request.url}"
        nursery.start_soon(self._run_app, exchange, name=name)
        try:
            await exchange.head_ready.wait()
            return exchange.response()
        except BaseException:
            exchange.close()
            raise

    async def aclose(self) -> None:
        """Cancel every app task and close every response; refuse later requests."""
        if self._closed_reason is None:
            self._closed_reason = CLIENT_CLOSED
            for exchange in list(self._exchanges):
                exchange.close_by_transport(CLIENT_CLOSED)
        await trio.lowlevel.checkpoint()

    @property
    def is_closed(self) -> bool:
        """True once the transport was closed."""
        return self._closed_reason is not None

    def _forget(self, exchange: _Exchange) -> None:
        self._exchanges.discard(exchange)

    # KeyboardInterrupt must reach the user's code, not land in this background task, where
    # the nursery would hand it back wrapped in an ExceptionGroup.
    @trio.lowlevel.enable_ki_protection
    async def _run_app(self, exchange: _Exchange) -> None:
        error: BaseException | None = None
        returned = False
        try:
            # Abandoned (aclose, or the caller cancelled) before this task first ran: the app
            # never sees the request. A scheduling race, so tests cannot aim at it.
            if exchange.caller_gone:  # pragma: no cover
                return
            with exchange.cancel_scope:
                try:
                    await self.app(exchange.scope, exchange.receive, exchange.send)
                    returned = True
                except trio.Cancelled:
                    raise
                except BaseException as exc:
                    error, cancelled = _split_cancelled(exc)
                    if cancelled is not None:
                        raise cancelled from None
        finally:
            # A streamed request body the app did not read to its end is closed here, by
            # the task that iterates it (never while its __anext__ runs elsewhere).
            await exchange.close_request_body()
            exchange.app_finished(error, returned=returned)


class _Exchange:
    """One request and its response between a caller and an app task.

    App side: `receive` and `send` (the ASGI callables). Caller side: `response()` and the
    raw-stream protocol the Response reads through (`receive_some`, `close`,
    `closed_reason`, `trailers`).
    """

    __slots__ = (
        "_body_in",
        "_body_out",
        "_caller_done",
        "_chunks",
        "_error_is_app",
        "_request_body",
        "_request_done",
        "app_done",
        "body_done",
        "caller_gone",
        "cancel_scope",
        "closed_reason",
        "disconnected",
        "error",
        "head_ready",
        "headers",
        "request",
        "scope",
        "status",
        "transport",
    )

    def __init__(self, transport: ASGITransport, request: Request) -> None:
        self.transport = transport
        self.request = request
        self.scope = _build_scope(transport, request)
        self.cancel_scope = trio.CancelScope()
        self.head_ready = trio.Event()  # the head arrived, or the app or the transport ended
        self.disconnected = trio.Event()  # the response completed, or the caller left
        self._body_out, self._body_in = trio.open_memory_channel[bytes](_BODY_BUFFER)
        body = request.stream
        self._request_body = body if isinstance(body, bytes) else b""
        self._chunks: AsyncIterator[bytes] | None = (
            None if isinstance(body, bytes) else body.__aiter__()
        )
        self._request_done = False
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes, bytes]] = []
        self.body_done = False  # the app sent its last body chunk
        self.app_done = False  # the app task ended
        self.caller_gone = False  # the caller left before the response completed
        self._caller_done = False  # the caller has closed its side
        self.error: BaseException | None = None
        self._error_is_app = True
        self.closed_reason: str | None = None

    # -- app side -------------------------------------------------------------------------

    async def close_request_body(self) -> None:
        """Close the request body's iterator if the app left it part-way (bounded)."""
        chunks, self._chunks = self._chunks, None
        if chunks is not None and not self._request_done:
            await close_abandoned(chunks)

    async def receive(self) -> Message:
        """The app's `receive()`: the request body, then `http.disconnect`."""
        if not self._request_done and not self.caller_gone:
            chunks = self._chunks
            if chunks is None:
                self._request_done = True
                await trio.lowlevel.checkpoint()
                return {"type": "http.request", "body": self._request_body, "more_body": False}
            try:
                chunk = bytes(checked_chunk(await chunks.__anext__()))
            except StopAsyncIteration:
                self._request_done = True
                await trio.lowlevel.checkpoint()
                return {"type": "http.request", "body": b"", "more_body": False}
            except Exception as exc:
                self._request_done = True
                self._request_failed(exc)
            else:
                return {"type": "http.request", "body": chunk, "more_body": True}
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        """The app's `send()`: the response head, then body chunks (backpressured)."""
        if self.caller_gone:
            await trio.lowlevel.checkpoint()  # the client went away: a no-op, as ASGI says
            return
        kind = message["type"]
        if kind == "http.response.start":
            if self.status is not None:
                raise RuntimeError("The ASGI app sent 'http.response.start' twice.")
            self.headers = [
                (bytes(name), bytes(name).lower(), bytes(value))
                for name, value in message.get("headers", ())
            ]
            self.status = int(message["status"])
            self.head_ready.set()
            await trio.lowlevel.checkpoint()
        elif kind == "http.response.body":
            if self.status is None or self.body_done:
                where = "before 'http.response.start'" if self.status is None else "after its end"
                raise RuntimeError(f"The ASGI app sent 'http.response.body' {where}.")
            body = message.get("body", b"")
            if body:
                try:
                    await self._body_out.send(bytes(body))
                except trio.BrokenResourceError:
                    return  # the caller closed the response meanwhile: a no-op
            else:
                await trio.lowlevel.checkpoint()
            if not message.get("more_body", False):
                self.body_done = True
                self.disconnected.set()
        else:
            raise RuntimeError(f"The ASGI app sent an unexpected message type {kind!r}.")

    def _request_failed(self, error: Exception) -> None:
        """The request body's iterable raised: the caller gets the error, the app a
        disconnect (and the grace)."""
        self.error, self._error_is_app = error, False
        self._body_out.close()  # the reader gets the chunks sent so far, then the error
        self.head_ready.set()
        self._disconnect()

    def app_finished(self, error: BaseException | None, *, returned: bool) -> None:
        """The app task ended: record why, end the body, wake the caller."""
        self.app_done = True
        if error is None and returned and not self.caller_gone:
            if self.status is None:
                error = RuntimeError("The ASGI app returned without starting a response.")
            elif not self.body_done:
                error = RuntimeError("The ASGI app returned before finishing its response body.")
        if error is not None:
            if self.caller_gone or self.error is not None:
                logger.debug("ASGI app failed after its caller left", exc_info=error)
            else:
                self.error = error
        self._body_out.close()
        self.head_ready.set()
        if self._caller_done:
            self.transport._forget(self)

    def _disconnect(self) -> None:
        """Deliver `http.disconnect`; cancel the app if it has not returned in the grace."""
        if self.app_done:
            return
        self.caller_gone = True
        self.disconnected.set()
        if not self.body_done:
            scope = self.cancel_scope
            scope.deadline = min(
                scope.deadline, trio.current_time() + self.transport.disconnect_grace
            )

    def close_by_transport(self, reason: str) -> None:
        """The transport closed: cancel the app now, fail the caller's waits and reads."""
        self.closed_reason = reason
        self.caller_gone = True
        self.cancel_scope.cancel()
        self.disconnected.set()
        self.head_ready.set()
        self._body_in.close()  # a blocked reader wakes with ClosedResourceError

    # -- caller side ----------------------------------------------------------------------

    def _raises(self, error: BaseException) -> bool:
        return (
            not self._error_is_app
            or self.transport.raise_app_exceptions
            or not isinstance(error, Exception)
        )

    def response(self) -> Response:
        """The Response once `head_ready` is set; raises the error that ended the exchange."""
        if self.closed_reason is not None:
            raise ClientStateError(
                f"Failed while waiting for the ASGI app's response: {self.closed_reason}."
            )
        status, headers = self.status, self.headers
        if status is None or not self._error_is_app:
            error = self.error
            if error is None:  # pragma: no cover - head_ready is only set with one of these
                raise RuntimeError("The ASGI app ended without a response.")
            if self._raises(error):
                raise error
            status, headers = 500, []
        return Response._from_transport(
            status, b"", "HTTP/1.1", Headers._from_raw(headers), self, self.request
        )

    @property
    def trailers(self) -> list[tuple[bytes, bytes]]:
        """No trailers: the scope does not offer the http.response.trailers extension."""
        return []

    async def receive_some(self) -> bytes:
        """The next body chunk; b"" once the app returned; the app's error if it failed."""
        try:
            return await self._body_in.receive()
        except trio.EndOfChannel:
            pass
        except trio.ClosedResourceError:
            reason = self.closed_reason or "the response was closed"
            raise ClientStateError(f"Failed while reading the response: {reason}.") from None
        self.close()
        error = self.error
        if error is not None and self._raises(error):
            raise error
        return b""

    def close(self) -> None:
        """The caller is done: a disconnect for an app that has not finished its response."""
        if self._caller_done:
            return
        self._caller_done = True
        self._body_in.close()
        self._disconnect()
        if self.app_done:
            self.transport._forget(self)


def _build_scope(transport: ASGITransport, request: Request) -> dict[str, Any]:
    url = request.url
    port = url.port
    if port is None:
        port = DEFAULT_PORTS.get(url.scheme, 80)
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.partition(b"?")[0],
        "query_string": url.query,
        "root_path": transport.root_path,
        "headers": [(name.lower(), value) for name, value in request.headers.raw],
        "client": transport.client,
        "server": (url.host, port),
        "extensions": {},
    }


def _split_cancelled(exc: BaseException) -> tuple[BaseException | None, BaseException | None]:
    """(the error for the caller, the Cancelled part to re-raise in the app task)."""
    if isinstance(exc, BaseExceptionGroup):
        cancelled, rest = exc.split(trio.Cancelled)
        return rest, cancelled
    return exc, None

"""The connection pool: the I/O half of the books kept in `_pool_state.py`.

Theory of operation
-------------------
A request runs entirely in the caller's task: no per-request nursery or task. It checks an
entry out of the books (waiting in a FIFO if none is free), connects it if it is new, sends
the request and reads the response head. From then on the `ResponseStream` owns the entry
until the body is complete (entry checked back in, reusable) or the stream is closed early
or fails (entry discarded and its socket closed).

Every cleanup path is synchronous: bookkeeping is plain Python and closing a socket does not
await. So a `Cancelled`, `KeyboardInterrupt` or any other exception landing at any
checkpoint runs the same `except BaseException` branch, which cannot itself be interrupted,
and then re-raises the exception untouched. Waiters park with `wait_task_rescheduled`: a
waiter is either withdrawn by its abort callback (cancelled first) or handed an entry by
`reschedule` (granted first), never both, so no wake-up is lost.

The pool's own background work (closing idle connections at their keep-alive expiry) runs in
the client's nursery through `run_housekeeping`. Closing the pool closes every connection,
in use or idle, and wakes every waiter with `ClientStateError`; streams still held by
callers find their entry closed and raise `StreamClosed` on the next read.
"""

from __future__ import annotations

import math
import ssl
from typing import TYPE_CHECKING

import outcome
import trio

from .._exceptions import ClientStateError, ConnectTimeout, PoolTimeout, TransportError
from ._connect import (
    ConnectProgress,
    close_stream_now,
    format_address,
    is_readable,
    open_stream,
)
from ._errors import CLIENT_CLOSED
from ._http11 import HTTP11Connection, ResponseHead, StaleConnection, request_event
from ._pool_state import Origin, Plan, PoolEntry, PoolState, PoolStatistics
from ._stream import ResponseStream

if TYPE_CHECKING:
    from .._config import Limits, Timeout
    from .._request import Request

__all__ = ["Connection", "ConnectionPool"]

_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


class Connection(PoolEntry):
    """A pooled connection: counted from the moment a request reserves it."""

    __slots__ = ("connecting", "http")

    def __init__(self, origin: Origin) -> None:
        super().__init__(origin)
        self.http: HTTP11Connection | None = None
        self.connecting: trio.CancelScope | None = None  # cancelled if closed mid-connect

    def close_now(self, reason: str | None = None) -> None:
        """Close the socket at once (wakes blocked readers); never raises, never awaits."""
        self.is_closed = True
        if self.connecting is not None:
            self.connecting.cancel()
        http = self.http
        if http is not None:
            if reason is not None and http.closed_reason is None:
                http.closed_reason = reason
            close_stream_now(http._stream)


class ConnectionPool:
    """Connections shared by one client, keyed by origin."""

    def __init__(
        self,
        *,
        limits: Limits,
        ssl_context: ssl.SSLContext | None,
        uds: str | None = None,
        local_address: str | None = None,
    ) -> None:
        self._books: PoolState[Connection] = PoolState(
            Connection,
            max_connections=limits.max_connections,
            max_keepalive=limits.max_keepalive_connections,
            max_per_host=limits.max_connections_per_host,
            keepalive_expiry=limits.keepalive_expiry,
        )
        self._ssl_context = ssl_context
        self._uds = uds
        self._local_address = local_address
        self._closed_reason: str | None = None
        self._wake_housekeeping: trio.CancelScope | None = None
        self._housekeeping_idle = True

    # -- public to the client layer -------------------------------------------------------

    async def handle_request(
        self, request: Request, timeout: Timeout, total_deadline: float
    ) -> tuple[ResponseHead, ResponseStream]:
        """Send `request` and return its response head and a body stream owning the entry."""
        origin = request.url._origin_key
        can_retry = request._method_bytes in _IDEMPOTENT and isinstance(request._body, bytes)
        event = request_event(request)  # an invalid request must not cost a connection
        while True:
            conn = await self._acquire(origin, request, timeout.pool, total_deadline)
            try:
                if conn.http is None:
                    await self._connect(conn, request, timeout.connect, total_deadline)
                http = conn.http
                assert http is not None
                write_error = await http.send_request(request, event, timeout.write, total_deadline)
                try:
                    head = await http.receive_response_head(request, timeout.read, total_deadline)
                except TransportError:
                    if write_error is not None:
                        raise write_error from None
                    raise
            except StaleConnection as stale:
                self.release(conn, reusable=False)
                if can_retry:
                    can_retry = False
                    continue
                raise stale.error from stale.__cause__
            except BaseException:
                self.release(conn, reusable=False)
                raise
            return head, ResponseStream(self, conn, http, request, timeout.read, total_deadline)

    def release(self, conn: Connection, *, reusable: bool) -> None:
        """A request is done with `conn`: keep it for reuse or close it. Synchronous."""
        if self._closed_reason is not None:
            conn.close_now()
            return
        http = conn.http
        if http is None:  # it never finished connecting
            self._execute(self._books.abandon_connect(conn))
            return
        reusable = reusable and http.finish_cycle()
        plan = self._books.checkin(conn, reusable=reusable, now=trio.current_time())
        self._execute(plan)
        if reusable and self._housekeeping_idle and self._wake_housekeeping is not None:
            self._wake_housekeeping.cancel()

    def statistics(self) -> PoolStatistics:
        """A frozen snapshot of the pool's books."""
        return self._books.statistics()

    @property
    def is_closed(self) -> bool:
        """True once `close` ran."""
        return self._closed_reason is not None

    def close(self, reason: str = CLIENT_CLOSED) -> None:
        """Close every connection and fail every waiter. Synchronous and idempotent."""
        if self._closed_reason is not None:
            return
        self._closed_reason = reason
        entries, waiters = self._books.close_all()
        for conn in entries:
            conn.close_now(reason)
        for waiter in waiters:
            error = ClientStateError(f"Stopped waiting for a connection: {reason}.")
            trio.lowlevel.reschedule(waiter.token, outcome.Error(error))  # type: ignore[arg-type]

    async def run_housekeeping(self) -> None:
        """Close idle connections when their keep-alive expires. Runs until cancelled."""
        while True:
            deadline = self._books.next_expiry()
            self._housekeeping_idle = deadline is None
            with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                self._wake_housekeeping = scope
                await trio.sleep_forever()
            self._wake_housekeeping = None
            self._execute(self._books.expire(trio.current_time()))

    # -- internals ------------------------------------------------------------------------

    async def _acquire(
        self, origin: Origin, request: Request, pool_timeout: float | None, total_deadline: float
    ) -> Connection:
        if self._closed_reason is not None:
            raise ClientStateError(f"Cannot send a request: {self._closed_reason}.")
        books = self._books
        while True:
            conn, to_close = books.checkout(origin, trio.current_time())
            for stale in to_close:
                stale.close_now()
            if conn is None:
                return await self._wait(origin, request, pool_timeout, total_deadline)
            http = conn.http
            if http is None or not is_readable(http._stream):
                return conn
            # The server closed it while idle (or sent junk): drop it and look again.
            self._execute(books.checkin(conn, reusable=False, now=trio.current_time()))

    async def _wait(
        self, origin: Origin, request: Request, pool_timeout: float | None, total_deadline: float
    ) -> Connection:
        books = self._books
        waiter = books.enqueue(origin)
        waiter.token = trio.lowlevel.current_task()

        def abort(raise_cancel: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            books.withdraw(waiter)
            return trio.lowlevel.Abort.SUCCEEDED

        deadline = total_deadline
        if pool_timeout is not None:
            deadline = min(trio.current_time() + pool_timeout, total_deadline)
        with trio.CancelScope(deadline=deadline) as scope:
            conn: Connection = await trio.lowlevel.wait_task_rescheduled(abort)
            return conn
        assert scope.cancelled_caught
        label = "total timeout" if deadline == total_deadline else f"{pool_timeout:g} s"
        raise PoolTimeout(
            f"Timed out waiting for a connection to {_where(origin)} from the pool ({label})",
            request=request,
        )

    async def _connect(
        self, conn: Connection, request: Request, connect_timeout: float | None, total: float
    ) -> None:
        deadline = total
        if connect_timeout is not None:
            deadline = min(trio.current_time() + connect_timeout, total)
        stream: trio.abc.Stream | None = None
        progress = ConnectProgress()
        try:
            with trio.CancelScope(deadline=deadline) as scope:
                conn.connecting = scope
                stream = await open_stream(
                    conn.origin,
                    ssl_context=self._ssl_context if conn.origin[0] == "https" else None,
                    server_hostname=request.url._tls_server_name,
                    uds=self._uds,
                    local_address=self._local_address,
                    request=request,
                    progress=progress,
                )
            if self._closed_reason is not None:
                close_stream_now(stream)
                raise ClientStateError(f"Cannot send a request: {self._closed_reason}.")
            if stream is None:
                label = "total timeout" if deadline == total else f"{connect_timeout:g} s"
                raise ConnectTimeout(
                    f"Timed out {progress.stage} {_where(conn.origin)} ({label})",
                    request=request,
                )
        finally:
            conn.connecting = None
        conn.http = HTTP11Connection(stream, _where(conn.origin))
        self._execute(self._books.connected(conn))

    def _execute(self, plan: Plan[Connection]) -> None:
        for conn in plan.to_close:
            conn.close_now()
        for waiter in plan.granted:
            trio.lowlevel.reschedule(waiter.token, outcome.Value(waiter.entry))  # type: ignore[arg-type]


def _where(origin: Origin) -> str:
    host = origin[1].decode("ascii").replace("%25", "%", 1)
    return format_address(host, origin[2])

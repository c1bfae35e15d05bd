"""The connection pool: the I/O half of the books kept in `_pool_state.py`.

Theory of operation
-------------------
A request runs entirely in the caller's task: no per-request nursery or task. It checks an
entry out of the books (waiting in a FIFO if none is free), connects it if it is new, sends
the request and reads the response head. From then on the `PooledStream` owns the entry
until the body is complete (entry checked back in, reusable) or the stream is closed early
or fails (entry discarded and its socket closed).

Every cleanup path is synchronous: bookkeeping is plain Python and closing a socket does not
await. So a `Cancelled`, `KeyboardInterrupt` or any other exception landing at any
checkpoint runs the same `except BaseException` branch, which cannot itself be interrupted,
and then re-raises the exception untouched. Waiters park with `wait_task_rescheduled`: a
waiter is either withdrawn by its abort callback (cancelled first) or handed an entry by
`reschedule` (granted first), never both, so no wake-up is lost.

HTTP/2 connections are shared: the books count their streams, not only the connection,
and their reader and writer tasks run in the client's nursery. A stream the server never
processed (GOAWAY, REFUSED_STREAM) is resent, a few times at most (after GOAWAY on a new
connection; after REFUSED_STREAM on whichever the pool picks, possibly the same one). A
reused connection, HTTP/1.1 or HTTP/2, that dies before any response byte or frame raises
`StaleConnection`: an idempotent request with a replayable body is resent once.

The pool's own background work (closing idle connections at their keep-alive expiry) runs in
the client's nursery through `run_housekeeping`. Closing the pool closes every connection,
in use or idle, and wakes every waiter with `ClientStateError`; streams still held by
callers find their entry closed and raise `StreamClosed` on the next read.
"""

from __future__ import annotations

import math
import ssl
from typing import TYPE_CHECKING, NoReturn, cast

import h11
import outcome
import trio

from .._content import is_replayable
from .._exceptions import (
    ClientStateError,
    ConnectError,
    ConnectTimeout,
    PoolTimeout,
    UnsupportedProtocol,
)
from .._headers import Headers
from .._logs import DEBUG, pool_logger
from .._origin import Origin
from .._response import Response
from ._altsvc import AltSvcCache
from ._connection import (
    H3,
    Connection,
    ConnectionSettings,
    ConnectionStatistics,
    where,
    where_h3,
)
from ._errors import CLIENT_CLOSED
from ._http2 import RetryOnNewConnection
from ._http11 import RequestEvents, StaleConnection
from ._pool_state import Plan, PoolState, PoolStatistics, Waiter
from ._stream import PooledStream
from ._tunnel import ProxyRoute

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration

    from .._config import Deadlines, Limits
    from .._request import Request

__all__ = ["ConnectionPool"]

_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
_H2_RETRIES = 10  # resends of a stream the server never processed (GOAWAY, REFUSED)
# The most a QUIC handshake may take before the request falls back to TCP (seconds).
H3_FALLBACK_AFTER = 1.0


class H3Fallback(Exception):
    """Internal: HTTP/3 to this origin failed (or is marked broken); use TCP instead."""

    def __init__(self, connect_deadline: float) -> None:
        super().__init__()
        self.connect_deadline = connect_deadline  # what the TCP connect may still use


class _Waiter(Waiter[Connection]):
    """A queued request, and its own abort callback for `wait_task_rescheduled`: a
    cancelled waiter withdraws from the books. (A closure would be three more objects per
    parked request, a function and the cells it closes over, for the collector to walk.)"""

    __slots__ = ()

    def __call__(self, raise_cancel: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
        self.books.withdraw(self)
        return trio.lowlevel.Abort.SUCCEEDED


class ConnectionPool:
    """Connections shared by one client, keyed by origin."""

    def __init__(
        self,
        *,
        limits: Limits,
        ssl_context: ssl.SSLContext | None,
        http1: bool = True,
        http2: bool = False,
        uds: str | None = None,
        local_address: str | None = None,
        write_timeout: float | None = None,
        http2_ping_interval: float | None = None,
        proxy: ProxyRoute | None = None,
        quic: QuicConfiguration | None = None,
    ) -> None:
        self._books: PoolState[Connection] = PoolState(
            Connection,
            max_connections=limits.max_connections,
            max_keepalive=limits.max_keepalive_connections,
            max_per_host=limits.max_connections_per_host,
            keepalive_expiry=limits.keepalive_expiry,
            waiter_type=_Waiter,
        )
        self._settings = ConnectionSettings(
            ssl_context=ssl_context,
            http1=http1,
            http2=http2,
            uds=uds,
            local_address=local_address,
            write_timeout=write_timeout,
            ping_interval=http2_ping_interval,
            proxy=proxy,
            quic=quic,
        )
        self._proxy = proxy
        # HTTP/3: what Alt-Svc taught us (None: http3 off). See _altsvc.py and route_h3.
        self._altsvc = AltSvcCache() if quic is not None else None
        self._nursery: trio.Nursery | None = None
        self._closed_reason: str | None = None
        self._housekeeping_sleep: trio.CancelScope | None = None  # its deadline: next expiry
        self._events = RequestEvents()  # h11's request events, remembered per client

    def attach(self, nursery: trio.Nursery) -> None:
        """The client's nursery, where HTTP/2 connections run their reader and writer."""
        self._nursery = nursery

    # -- public to the client layer -------------------------------------------------------

    # KI-protected, like release(): a KeyboardInterrupt is raised at a checkpoint (where
    # every path cleans up) instead of between two lines of bookkeeping, e.g. after a
    # connection was checked out but before the `try` that gives it back.
    @trio.lowlevel.enable_ki_protection
    async def handle_request(self, request: Request, deadlines: Deadlines) -> Response:
        """Send `request`; the Response's body stream holds the connection until it ends."""
        origin = request.url._origin_key
        replayable = is_replayable(request._body)
        can_retry = request._method_bytes in _IDEMPOTENT and replayable
        h2_retries = _H2_RETRIES if replayable else 0
        proxy = self._proxy
        if proxy is None:
            event = self._events.event_for(request)  # an invalid request costs no connection
        else:
            origin = Origin(origin.scheme, origin.host, origin.port, proxy.label)
            event = self._proxied_event(request, proxy)
        refused_on: list[Connection] | None = None  # for the message when retries run out
        tcp_origin = origin
        connect_deadline: float | None = None  # set when a QUIC attempt fell back to TCP
        while True:
            h3_port = None
            if self._altsvc is not None:
                origin, h3_port = self._route_h3(tcp_origin, request)
            pool_deadline = deadlines.pool()
            may_multiplex = self._may_multiplex(origin)
            conn = self._checkout(origin, may_multiplex)
            if conn is None:
                # Queue and park. Inline, not a helper coroutine: with thousands of requests
                # parked here (W6) every frame of each one's await chain is something the
                # garbage collector walks on each full collection.
                waiter = cast(_Waiter, self._books.enqueue(origin, may_multiplex=may_multiplex))
                waiter.token = trio.lowlevel.current_task()
                granted: Connection
                if pool_deadline == math.inf:
                    # No pool timeout: skip the cancel scope (its allocation and bookkeeping
                    # are a visible share of a queued request's cost).
                    granted = await trio.lowlevel.wait_task_rescheduled(waiter)
                else:
                    with trio.CancelScope(deadline=pool_deadline) as scope:
                        granted = await trio.lowlevel.wait_task_rescheduled(waiter)
                    if scope.cancelled_caught:  # the deadline passed before a grant
                        self._raise_pool_timeout(origin, request, pool_deadline, deadlines)
                try:
                    # Granted, but cancelled meanwhile? Hand the connection on unused (still
                    # reusable) instead of letting the cancellation close it later.
                    await trio.lowlevel.checkpoint_if_cancelled()
                except BaseException:
                    self._give_back_unused(granted)
                    raise
                conn = granted
            try:
                reused = conn.http is not None
                if not reused:
                    if h3_port is not None:
                        await self._connect_h3(conn, request, deadlines, tcp_origin, h3_port)
                    else:
                        await self._connect(conn, request, deadlines, connect_deadline)
                elif pool_logger.isEnabledFor(DEBUG):
                    pool_logger.debug("reusing the connection to %s", where(origin))
                head, body = await conn.exchange(
                    request, event, pool_deadline, deadlines, reused=reused
                )
            except H3Fallback as fallback:
                self.release(conn, reusable=False)
                connect_deadline = fallback.connect_deadline
                continue
            except StaleConnection as stale:
                self.release(conn, reusable=False)
                if can_retry:
                    can_retry = False
                    continue
                raise stale.error from stale.__cause__
            except RetryOnNewConnection as refused:
                self.release(conn, reusable=True)
                refused_on = [conn] if refused_on is None else [*refused_on, conn]
                if h2_retries:
                    h2_retries -= 1
                    continue
                distinct = len({id(tried) for tried in refused_on})  # all alive: ids unique
                raise refused.as_remote_error(request, len(refused_on), distinct) from None
            except BaseException:
                self.release(conn, reusable=False)
                raise
            if self._altsvc is not None and tcp_origin.scheme == "https" and proxy is None:
                self._learn_alt_svc(tcp_origin, head.headers)
            return Response._from_transport(
                head.status,
                head.reason,
                head.http_version,
                Headers._from_raw(head.headers),
                PooledStream(body, self, conn),  # gives `conn` back exactly once
                request,
            )

    @trio.lowlevel.enable_ki_protection
    def release(self, conn: Connection, *, reusable: bool) -> None:
        """A request is done with `conn`: keep it for reuse or close it. Synchronous."""
        if self._closed_reason is not None:
            conn.close_now()
            return
        if not conn.is_connected:
            self._execute(self._books.abandon_connect(conn))
            return
        reusable = conn.finish(reusable)
        now = trio.current_time()
        self._execute(self._books.checkin(conn, reusable=reusable, now=now))
        sleeper = self._housekeeping_sleep
        if reusable and sleeper is not None and sleeper.deadline == math.inf:
            # The housekeeper sleeps with nothing to expire: give it a deadline. Not a
            # wake-up: on a busy connection that would cost a task switch per request.
            expiry = self._books.next_expiry()
            if expiry is not None:
                sleeper.deadline = expiry

    def statistics(self) -> PoolStatistics:
        """A frozen snapshot of the pool's books."""
        return self._books.statistics()

    def connection_statistics(self) -> list[ConnectionStatistics]:
        """A snapshot of every connection the pool holds (open or connecting)."""
        return [conn.statistics() for conn in self._books.entries()]

    @property
    def is_closed(self) -> bool:
        """True once `close` ran."""
        return self._closed_reason is not None

    def close(self, reason: str = CLIENT_CLOSED) -> None:
        """Close every connection and fail every waiter. Synchronous and idempotent."""
        if self._closed_reason is not None:
            return
        self._closed_reason = reason
        self._events.clear()
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
            with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                self._housekeeping_sleep = scope
                await trio.sleep_forever()
            self._housekeeping_sleep = None
            self._execute(self._books.expire(trio.current_time()))

    # -- internals ------------------------------------------------------------------------

    def _proxied_event(self, request: Request, proxy: ProxyRoute) -> h11.Request:
        """The h11 event through a proxy: a forwarded request has the absolute-form target
        and the proxy's headers; a tunnelled one is sent as it would be directly."""
        if not proxy.forwards(request.url._origin_key):
            return self._events.event_for(request)
        url = request.url
        target = b"http://" + url.netloc + url._target
        return self._events.event_for(request, target, proxy.headers)

    def _may_multiplex(self, origin: Origin) -> bool:
        """Could a new connection to `origin` turn out to be HTTP/2 (or is it HTTP/3)?"""
        if origin.via == H3:
            return True
        settings = self._settings
        if not settings.http2:
            return False
        return origin.scheme == "https" or not settings.http1

    def _checkout(self, origin: Origin, may_multiplex: bool) -> Connection | None:
        """A connection at once, or None (then the caller waits). Synchronous on purpose."""
        if self._closed_reason is not None:
            raise ClientStateError(f"Cannot send a request: {self._closed_reason}.")
        books = self._books
        while True:
            now = trio.current_time()
            conn, to_close = books.checkout(origin, now, may_multiplex=may_multiplex)
            for stale in to_close:
                stale.close_now()
            if conn is None or conn.may_reuse(now):
                return conn
            # Closed by the server while idle (or sent junk, or going away): look again.
            self._execute(books.checkin(conn, reusable=False, now=now))

    @staticmethod
    def _raise_pool_timeout(
        origin: Origin, request: Request, deadline: float, deadlines: Deadlines
    ) -> NoReturn:
        label = deadlines.why(deadline, deadlines.timeout.pool)
        raise PoolTimeout(
            f"Timed out waiting for a connection to {where(origin)} from the pool ({label})",
            request=request,
        )

    async def _connect(
        self,
        conn: Connection,
        request: Request,
        deadlines: Deadlines,
        deadline: float | None = None,
    ) -> None:
        await conn.connect(
            self._settings,
            self._nursery,
            request,
            deadlines,
            closed_reason=lambda: self._closed_reason,
            on_capacity=lambda capacity: self._set_capacity(conn, capacity),
            on_unusable=lambda: self._retire(conn),
            deadline=deadline,
        )
        if conn.is_multiplexed:
            self._execute(self._books.connected(conn, 1, multiplexed=True))  # SETTINGS decide
        else:
            self._execute(self._books.connected(conn))

    # -- HTTP/3 ---------------------------------------------------------------------------

    def forget_alternative_services(self) -> None:
        """Forget every Alt-Svc alternative (and every one marked broken)."""
        if self._altsvc is not None:
            self._altsvc.clear()

    def _route_h3(self, origin: Origin, request: Request) -> tuple[Origin, int | None]:
        """The pool key and UDP port for `origin`: HTTP/3 (HTTP/3-only, or a live Alt-Svc
        alternative) or TCP (port None)."""
        settings = self._settings
        h3_only = not (settings.http1 or settings.http2)
        if origin.scheme != "https":
            if h3_only:
                raise UnsupportedProtocol(
                    f"HTTP/3 needs https, and http1=False, http2=False leave no protocol for"
                    f" {origin.scheme}:// URLs.",
                    request=request,
                )
            return origin, None
        if h3_only:
            port: int | None = origin.port
        else:
            assert self._altsvc is not None
            port = self._altsvc.lookup(origin, trio.current_time())
            if port is None:
                return origin, None
        return Origin(origin.scheme, origin.host, origin.port, H3), port

    def _learn_alt_svc(self, origin: Origin, headers: list[tuple[bytes, bytes, bytes]]) -> None:
        values = [value.decode("latin-1") for _, name, value in headers if name == b"alt-svc"]
        if values:
            assert self._altsvc is not None
            host = origin.host.decode("ascii")
            self._altsvc.learn(origin, host, values, trio.current_time())

    async def _connect_h3(
        self,
        conn: Connection,
        request: Request,
        deadlines: Deadlines,
        origin: Origin,
        port: int,
    ) -> None:
        """Open an HTTP/3 connection; when TCP may take over, a failure is `H3Fallback`.

        The QUIC attempt in front of a fallback gets at most H3_FALLBACK_AFTER of the
        connect timeout, and the TCP connection that follows the rest of it.
        """
        settings = self._settings
        fallback = settings.http1 or settings.http2
        connect_deadline = deadlines.connect()
        deadline = connect_deadline
        budget = None
        altsvc = self._altsvc
        assert altsvc is not None
        if fallback:
            if altsvc.lookup(origin, trio.current_time()) is None:
                # Marked broken (or expired) while this request waited for the connection.
                raise H3Fallback(connect_deadline)
            if trio.current_time() + H3_FALLBACK_AFTER < deadline:
                deadline = trio.current_time() + H3_FALLBACK_AFTER
                budget = H3_FALLBACK_AFTER
            if pool_logger.isEnabledFor(DEBUG):
                pool_logger.debug("trying HTTP/3 with %s (Alt-Svc)", where_h3(origin, port))
        try:
            capacity = await conn.connect_h3(
                settings,
                self._nursery,
                request,
                deadlines,
                port,
                deadline=deadline,
                budget=budget,
                closed_reason=lambda: self._closed_reason,
                on_unusable=lambda: self._retire(conn),
            )
        except (ConnectError, ConnectTimeout) as exc:
            if not fallback:
                raise
            altsvc.mark_broken(origin, trio.current_time())
            if pool_logger.isEnabledFor(DEBUG):
                pool_logger.debug(
                    "HTTP/3 with %s failed (%s); falling back to TCP",
                    where_h3(origin, port),
                    exc,
                )
            raise H3Fallback(connect_deadline) from None
        self._execute(self._books.connected(conn, 1, multiplexed=True))
        self._set_capacity(conn, capacity)

    def _give_back_unused(self, conn: Connection) -> None:
        """A granted connection that was never used goes back as it was."""
        if self._closed_reason is not None:
            conn.close_now()
        elif not conn.is_connected:
            self._execute(self._books.abandon_connect(conn))
        else:
            now = trio.current_time()
            self._execute(self._books.checkin(conn, reusable=not conn.is_closed, now=now))

    def _set_capacity(self, conn: Connection, capacity: int) -> None:
        if self._closed_reason is None and not conn.is_closed:
            self._execute(self._books.set_capacity(conn, capacity))

    def _retire(self, conn: Connection) -> None:
        """An HTTP/2 connection takes no new streams (GOAWAY, error): drain, then close."""
        if self._closed_reason is None:
            self._execute(self._books.discard(conn))

    def _execute(self, plan: Plan[Connection]) -> None:
        # Wake first: closing never raises, but the books must not depend on it.
        for waiter in plan.granted:
            trio.lowlevel.reschedule(waiter.token, outcome.Value(waiter.entry))  # type: ignore[arg-type]
        for conn in plan.to_close:
            conn.close_now()

"""The body of a response still on the wire, and the pool entry it holds until it ends.

A `ResponseStream` gives the connection back exactly once: reusable when the body was read to
its end, closed in every other case (closed early, read error, timeout, cancellation). The
pool may close the connection under it (the client closed); the next read then raises
`StreamClosed` naming that reason instead of a network error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import StreamClosed

if TYPE_CHECKING:
    from .._request import Request
    from ._http11 import HTTP11Connection
    from ._pool import Connection, ConnectionPool

__all__ = ["BodyStream", "ResponseStream"]


class BodyStream:
    """What the HTTP/1.1 and HTTP/2 body streams share: the connection they hold until the
    body ends or they are closed, and give back exactly once."""

    __slots__ = ("_conn", "_done", "_pool", "_read_timeout", "_request", "_total")

    def __init__(
        self,
        pool: ConnectionPool,
        conn: Connection,
        request: Request,
        read_timeout: float | None,
        total_deadline: float,
    ) -> None:
        self._pool = pool
        self._conn = conn
        self._request = request
        self._read_timeout = read_timeout
        self._total = total_deadline
        self._done = False

    def close(self) -> None:
        """Give the connection back: reusable only if the body was read to its end."""
        if not self._done:
            self._give_back(reusable=False)

    def _give_back(self, *, reusable: bool) -> None:
        raise NotImplementedError


class ResponseStream(BodyStream):
    """Raw (still content-encoded) body bytes of one HTTP/1.1 response, read on demand."""

    __slots__ = ("_http",)

    def __init__(
        self,
        pool: ConnectionPool,
        conn: Connection,
        http: HTTP11Connection,
        request: Request,
        read_timeout: float | None,
        total_deadline: float,
    ) -> None:
        super().__init__(pool, conn, request, read_timeout, total_deadline)
        self._http = http

    @property
    def closed_reason(self) -> str | None:
        """Why the pool closed the connection under this stream (the client closed), if so."""
        return None if self._done else self._http.closed_reason

    @property
    def trailers(self) -> list[tuple[bytes, bytes]]:
        """Trailing headers of a chunked response, once its body has been read."""
        return self._http.trailers if self._done else []

    async def receive_some(self) -> bytes:
        """The next raw body chunk; b"" at the end of the body."""
        if self._done:
            raise StreamClosed()
        reason = self._http.closed_reason
        if reason is not None:
            self._give_back(reusable=False)
            raise StreamClosed(f"The response stream was closed because {reason}.")
        try:
            chunk = await self._http.receive_body_chunk(
                self._request, self._read_timeout, self._total
            )
        except BaseException:
            self._give_back(reusable=False)
            raise
        if not chunk:
            self._give_back(reusable=True)
        return chunk

    def _give_back(self, *, reusable: bool) -> None:
        if not self._done:
            self._done = True
            self._pool.release(self._conn, reusable=reusable)

"""`PooledStream`: a response body on the wire, and the pooled connection it holds until it ends.

The protocol drivers hand the pool a raw body (`H11Body`, `StreamBody`) that only moves bytes.
The pool wraps it here, so the drivers never see the pool: the wrapper gives the connection
back exactly once, reusable when the body was read to its end, closed in every other case
(closed early, read error, timeout, cancellation). The pool may close the connection under
it (the client closed); the next read then raises `StreamClosed` naming that reason instead
of a network error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import trio

from .._exceptions import StreamClosed

if TYPE_CHECKING:
    from ._h2_stream import StreamBody
    from ._http11 import H11Body

__all__ = ["PooledStream", "Releaser"]


class Releaser(Protocol):
    """The pool, as this wrapper sees it: one call, once per body."""

    def release(self, conn: Any, *, reusable: bool) -> None: ...


class PooledStream:
    """A driver's body plus the pool's release: the Response reads through this."""

    __slots__ = ("_body", "_conn", "_done", "_driver", "_pool", "_trailers")

    def __init__(self, body: H11Body | StreamBody, pool: Releaser, conn: object) -> None:
        self._body = body
        # The driver's own attribute, read directly: checked on every chunk (hot path).
        self._driver = body.driver
        self._pool = pool
        self._conn = conn  # given back once, reusable only if the body was read to its end
        self._done = False
        # Taken at the body's end: an HTTP/1.1 connection holds only its current exchange's
        # trailers, and it may serve the next request before the caller looks at these.
        self._trailers: list[tuple[bytes, bytes]] = []

    @property
    def closed_reason(self) -> str | None:
        """Why the pool closed the connection under this body (the client closed), if so."""
        return None if self._done else self._driver.closed_reason

    @property
    def trailers(self) -> list[tuple[bytes, bytes]]:
        """Trailing headers, once the body was read to its end."""
        return self._trailers

    async def receive_some(self) -> bytes:
        """The next raw body chunk; b"" at the end of the body."""
        if self._done:
            raise StreamClosed()
        reason = self._driver.closed_reason
        if reason is not None:
            self._give_back(reusable=False)
            raise StreamClosed(f"The response stream was closed because {reason}.")
        try:
            chunk = await self._body.receive_some()
        except BaseException:
            self._give_back(reusable=False)
            raise
        if not chunk:
            self._trailers = self._body.trailers
            self._give_back(reusable=True)
        return chunk

    def close(self) -> None:
        """Give the connection back: reusable only if the body was read to its end."""
        if not self._done:
            self._give_back(reusable=False)

    @trio.lowlevel.enable_ki_protection
    def _give_back(self, *, reusable: bool) -> None:
        if not self._done:
            self._done = True
            self._body.close()
            self._pool.release(self._conn, reusable=reusable)

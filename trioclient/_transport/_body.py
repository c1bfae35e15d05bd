"""Request bodies given as async iterables: each chunk checked, the iterator closed if abandoned.

Shared by the HTTP/1.1 and HTTP/2 senders. An async generator abandoned part-way (an early
response, an error, a cancellation) is finalized at once rather than left to the garbage
collector, which would run its `finally` later, outside any cancel scope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from .._content import checked_chunk, close_abandoned

__all__ = ["checked_chunk", "close_abandoned", "next_chunk"]


@trio.lowlevel.disable_ki_protection
async def next_chunk(iterator: AsyncIterator[bytes]) -> bytes:
    """The body's next chunk; StopAsyncIteration at its end.

    The pool's request path is KI-protected (a KeyboardInterrupt waits for its next
    checkpoint rather than landing mid-bookkeeping); the body is the caller's code, so it is
    pulled through this unprotected frame and stays interruptible like any other.
    """
    return await iterator.__anext__()

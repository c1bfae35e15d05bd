"""The two workload shapes, driven the same way for every client on Trio and on asyncio.

A client script supplies ``fetch()`` (one GET, whole body read, returns its length) and
``download()`` (one streamed GET, chunks thrown away, returns the byte count); the drivers
do the rest. Both shapes run inside the timed section only; the warm-up request (which
opens the first connection and settles lazy imports) happens before it.

``requests``: ``concurrency`` tasks share one counter, so the last requests are not stuck
behind a slow task; with ``concurrency == n`` every request gets its own task at once.
``stream``: ``n`` downloads one after another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ._common import Args, Recorder

Fetch = Callable[[], Awaitable[int]]

__all__ = ["run_asyncio", "run_trio"]


async def run_trio(args: Args, fetch: Fetch, download: Fetch) -> Recorder:
    """Run the workload on Trio; returns the stopped recorder."""
    import trio

    rec = Recorder(args)
    if args.shape == "stream":
        await download()  # warm-up
        rec.start()
        for _ in range(args.n):
            rec.begin()
            rec.done(await download())
        rec.stop()
        return rec

    remaining = args.n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            rec.begin()
            rec.done(await fetch())

    await fetch()  # warm-up
    rec.start()
    async with trio.open_nursery() as nursery:
        for _ in range(min(args.concurrency, args.n)):
            nursery.start_soon(worker)
    rec.stop()
    return rec


async def run_asyncio(args: Args, fetch: Fetch, download: Fetch) -> Recorder:
    """Run the workload on asyncio; returns the stopped recorder."""
    rec = Recorder(args)
    if args.shape == "stream":
        await download()  # warm-up
        rec.start()
        for _ in range(args.n):
            rec.begin()
            rec.done(await download())
        rec.stop()
        return rec

    remaining = args.n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            rec.begin()
            rec.done(await fetch())

    await fetch()  # warm-up
    rec.start()
    # gather rather than TaskGroup: the suite still runs on Python 3.10.
    await asyncio.gather(*(worker() for _ in range(min(args.concurrency, args.n))))
    rec.stop()
    return rec

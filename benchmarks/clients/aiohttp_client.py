"""aiohttp: one ``ClientSession`` over a ``TCPConnector(limit=connections)``.

aiohttp speaks HTTP/1.1 only, so the HTTP/2 workload is reported as n/a.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from ._common import Args, Unsupported, main, ssl_context
from ._drivers import run_asyncio


async def _run(args: Args) -> dict[str, Any]:
    if args.http2:
        raise Unsupported("aiohttp has no HTTP/2 client")
    connector = aiohttp.TCPConnector(
        limit=args.connections, ssl=ssl_context(args, ["http/1.1"]) or True
    )
    timeout = aiohttp.ClientTimeout(total=None)
    url = args.url
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def fetch() -> int:
            async with session.get(url) as response:
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
                return len(await response.read())

        async def download() -> int:
            total = 0
            async with session.get(url) as response:
                async for chunk in response.content.iter_any():
                    total += len(chunk)
            return total

        rec = await run_asyncio(args, fetch, download)
    return rec.result()


def run(args: Args) -> dict[str, Any]:
    """Run one workload with aiohttp."""
    return asyncio.run(_run(args))


if __name__ == "__main__":
    main(run)

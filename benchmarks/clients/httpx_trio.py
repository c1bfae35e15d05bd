"""httpx.AsyncClient on Trio (through anyio): the baseline every client is compared with."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from ._common import Args, main, ssl_context
from ._drivers import run_trio


def make_client(args: Args) -> httpx.AsyncClient:
    """An AsyncClient with a pool of ``--connections``, no timeouts, trusting ``--ca``."""
    limits = httpx.Limits(
        max_connections=args.connections, max_keepalive_connections=args.connections
    )
    alpn = ["h2", "http/1.1"] if args.http2 else ["http/1.1"]
    verify = ssl_context(args, alpn) or True
    return httpx.AsyncClient(limits=limits, timeout=None, verify=verify, http2=args.http2)


def fetch_and_download(client: httpx.AsyncClient, args: Args) -> tuple[Any, Any]:
    """The two request functions the drivers need, for any httpx.AsyncClient."""
    url = args.url
    expected = "HTTP/2" if args.http2 else "HTTP/1.1"

    async def fetch() -> int:
        response = await client.get(url)
        if response.status_code != 200 or response.http_version != expected:
            raise RuntimeError(f"{response.http_version} {response.status_code}")
        return len(response.content)

    async def download() -> int:
        total = 0
        async with client.stream("GET", url) as response:
            async for chunk in response.aiter_bytes():
                total += len(chunk)
        return total

    return fetch, download


async def _run(args: Args) -> dict[str, Any]:
    async with make_client(args) as client:
        fetch, download = fetch_and_download(client, args)
        rec = await run_trio(args, fetch, download)
    return rec.result()


def run(args: Args) -> dict[str, Any]:
    """Run one workload with httpx on Trio."""
    return trio.run(_run, args)


if __name__ == "__main__":
    main(run)

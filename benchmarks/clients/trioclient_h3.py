"""trioclient over HTTP/3 (``--http3``: ``Client(http3=True, http1=False, http2=False)``) or,
for comparison, over HTTP/2 (``--http2``) against the same server (benchmarks/http3.py)."""

from __future__ import annotations

import sys
from typing import Any

import trio

import trioclient

from ._common import Args, main
from ._drivers import run_trio

HTTP3 = "--http3" in sys.argv


async def _run(args: Args) -> dict[str, Any]:
    limits = trioclient.Limits(
        max_connections=args.connections, max_keepalive_connections=args.connections
    )
    verify = args.ca or True
    if HTTP3:
        client = trioclient.Client(
            limits=limits, timeout=None, verify=verify, http3=True, http1=False, http2=False
        )
        expected = "HTTP/3"
    else:
        client = trioclient.Client(limits=limits, timeout=None, verify=verify, http2=args.http2)
        expected = "HTTP/2" if args.http2 else "HTTP/1.1"
    url = args.url

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

    async with client:
        rec = await run_trio(args, fetch, download)
    return rec.result()


def run(args: Args) -> dict[str, Any]:
    """Run one workload with trioclient over HTTP/3 or HTTP/2."""
    return trio.run(_run, args)


if __name__ == "__main__":
    main(run, [arg for arg in sys.argv[1:] if arg != "--http3"])

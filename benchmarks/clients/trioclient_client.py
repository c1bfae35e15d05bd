"""trioclient, used the way its README shows: one ``Client``, ``get`` and ``stream``."""

from __future__ import annotations

from typing import Any

import trio

import trioclient

from ._common import Args, Unsupported, main
from ._drivers import run_trio


async def _run(args: Args) -> dict[str, Any]:
    limits = trioclient.Limits(
        max_connections=args.connections, max_keepalive_connections=args.connections
    )
    try:
        client = trioclient.Client(
            limits=limits, timeout=None, verify=args.ca or True, http2=args.http2
        )
    except trioclient.UnsupportedProtocol as exc:
        raise Unsupported(f"trioclient: {exc}") from exc
    return await run_workload(args, client, "HTTP/2" if args.http2 else "HTTP/1.1")


async def run_workload(args: Args, client: trioclient.Client, expected: str) -> dict[str, Any]:
    """The workload `args` names, through `client`, whose responses must be `expected`'s."""
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
    """Run one workload with trioclient."""
    return trio.run(_run, args)


if __name__ == "__main__":
    main(run)

"""trioclient over HTTP/3 (``--http3``: ``Client(http3=True, http1=False, http2=False)``) or,
for comparison, over HTTP/2 (``--http2``) against the same server (benchmarks/http3.py)."""

from __future__ import annotations

import sys
from typing import Any

import trio

import trioclient

from ._common import Args, main
from .trioclient_client import run_workload

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
        return await run_workload(args, client, "HTTP/3")
    client = trioclient.Client(limits=limits, timeout=None, verify=verify, http2=args.http2)
    return await run_workload(args, client, "HTTP/2" if args.http2 else "HTTP/1.1")


def run(args: Args) -> dict[str, Any]:
    """Run one workload with trioclient over HTTP/3 or HTTP/2."""
    return trio.run(_run, args)


if __name__ == "__main__":
    main(run, [arg for arg in sys.argv[1:] if arg != "--http3"])

"""httpx.AsyncClient on asyncio: the same client as httpx-trio, on its home event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from ._common import Args, main
from ._drivers import run_asyncio
from .httpx_trio import fetch_and_download, make_client


async def _run(args: Args) -> dict[str, Any]:
    async with make_client(args) as client:
        fetch, download = fetch_and_download(client, args)
        rec = await run_asyncio(args, fetch, download)
    return rec.result()


def run(args: Args) -> dict[str, Any]:
    """Run one workload with httpx on asyncio."""
    return asyncio.run(_run(args))


if __name__ == "__main__":
    main(run)

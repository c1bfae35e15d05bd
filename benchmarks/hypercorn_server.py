"""The fallback server: hypercorn on Trio, serving the data files, plain and TLS with h2.

Used only when nginx is missing (or with ``--server hypercorn``). Hypercorn is a Python
server and will often be slower than the clients it serves, so numbers measured against it
say little about the clients; the runner records that in every report.

Run as ``python -m benchmarks.hypercorn_server --data DIR --cert PEM --key PEM``; once both
listeners are bound it prints ``{"http": URL, "https": URL}`` on one line, then serves until
it is terminated.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from functools import partial
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

CHUNK = 256 * 1024
_small_cache: dict[str, bytes] = {}


def make_app(data_dir: Path) -> Any:
    """An ASGI app that GETs files from ``data_dir`` (small ones cached, large ones streamed)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        name = scope["path"].lstrip("/")
        path = data_dir / name
        if "/" in name or not path.is_file():
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not found"})
            return
        size = path.stat().st_size
        headers = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(size).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if size <= CHUNK:
            body = _small_cache.get(name)
            if body is None:
                body = _small_cache[name] = path.read_bytes()
            await send({"type": "http.response.body", "body": body})
            return
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


async def _main(data_dir: Path, cert: str, key: str) -> None:
    config = Config()
    config.bind = ["127.0.0.1:0"]  # TLS: certfile and keyfile are set
    config.insecure_bind = ["127.0.0.1:0"]
    config.certfile = cert
    config.keyfile = key
    config.alpn_protocols = ["h2", "http/1.1"]
    config.keep_alive_timeout = 75.0
    config.keep_alive_max_requests = 1_000_000
    config.h2_max_concurrent_streams = 128
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, make_app(data_dir), config, mode="asgi"))
        urls = {"http": "", "https": ""}
        for bind in binds:
            scheme = "https" if bind.startswith("https://") else "http"
            urls[scheme] = bind
        sys.stdout.write(json.dumps(urls) + "\n")
        sys.stdout.flush()


def main() -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    trio.run(_main, a.data, a.cert, a.key)


if __name__ == "__main__":
    main()

"""The HTTP/3 benchmark's server: hypercorn on asyncio, HTTP/2 over TLS and HTTP/3 over QUIC
on one port number (TCP and UDP), serving ``GET /bytes/N`` (N bytes of ``x``).

hypercorn serves HTTP/3 (through aioquic) only on its asyncio worker, so this is not the
suite's Trio fallback server (benchmarks/hypercorn_server.py). Both protocols are served by
the same process, app and TLS certificate, so the HTTP/3 figures compare with the HTTP/2
ones of the same server. Run as ``python -m benchmarks.h3_server --cert PEM --key PEM``; it
binds both sockets on one free port number, prints ``{"port": PORT}`` on one line, and
serves until it is terminated (the parent then waits until a TCP connect succeeds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import socket
import sys
from typing import Any

LIMIT = 16 * 2**20  # the largest body served
_bodies: dict[int, bytes] = {}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``GET /bytes/N``: N bytes (cached), with content-length; anything else 404."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    parts = scope["path"].strip("/").split("/")
    if len(parts) != 2 or parts[0] != "bytes" or not parts[1].isdigit() or int(parts[1]) > LIMIT:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not found"})
        return
    size = int(parts[1])
    body = _bodies.get(size)
    if body is None:
        body = _bodies[size] = b"x" * size
    headers = [(b"content-length", str(size).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bind_pair() -> tuple[socket.socket, socket.socket]:
    """A TCP and a UDP socket bound on 127.0.0.1 with the same (free) port number."""
    for _attempt in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", tcp.getsockname()[1]))
        except OSError:
            tcp.close()
            udp.close()
            continue
        return tcp, udp
    raise RuntimeError("no port number free for both TCP and UDP on 127.0.0.1")


async def serve(cert: str, key: str) -> None:
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    tcp, udp = bind_pair()
    port = tcp.getsockname()[1]
    config = Config()
    # hypercorn makes its own socket objects from the descriptors, which it then owns.
    config.bind = [f"fd://{tcp.detach()}"]  # TLS: certfile and keyfile are set
    config.quic_bind = [f"fd://{udp.detach()}"]
    config.certfile = cert
    config.keyfile = key
    config.alpn_protocols = ["h2", "http/1.1"]
    config.keep_alive_timeout = 75.0
    config.keep_alive_max_requests = 1_000_000
    config.h2_max_concurrent_streams = 128
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    sys.stdout.write(json.dumps({"port": port}) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await hypercorn_serve(app, config, shutdown_trigger=stop.wait, mode="asgi")


def main() -> None:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(a.cert, a.key))


if __name__ == "__main__":
    main()

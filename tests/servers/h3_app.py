"""The ASGI app the HTTP/3 peer serves (tests/servers/h3_peer.py), over QUIC and TCP alike.

Routes (everything else is a 404):

* ``GET /bytes/{n}?seed=S``: ``n`` deterministic bytes (:func:`h3_bytes`), with
  ``x-sha256`` (hex) and ``content-length``. ``seed`` defaults to 0.
* ``POST /echo``: the request body back, with ``x-sha256`` and ``x-length`` of what arrived
  (read whole first, since they are headers; at most :data:`ECHO_LIMIT` bytes, else 413).
* ``GET /drip/{n}?delay=D&chunk=C``: ``n`` bytes of ``*`` in chunks of ``C`` bytes (default
  1), ``D`` seconds apart (default 0.1); no ``content-length``.
* ``GET /headers``: JSON ``{"headers": {name: value}, "http_version": "3"}``: the request's
  headers (lower-case names; repeated names joined with ``", "``) and the ASGI scope's
  ``http_version`` (``"1.1"``, ``"2"`` or ``"3"``).
* ``GET /status/{code}``: an empty response with that status.

Every response carries ``x-http-version`` (the scope's), so a test can tell the protocol
from the headers of any route. The app runs in the peer's own process on asyncio (hypercorn's
HTTP/3 needs its asyncio worker), so it uses nothing but the standard library.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

__all__ = ["DRIP_DEFAULT_DELAY", "ECHO_LIMIT", "app", "h3_bytes"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ECHO_LIMIT = 64 * 2**20  # bytes /echo buffers before it answers 413
BYTES_LIMIT = 256 * 2**20  # the largest /bytes/{n}
DRIP_DEFAULT_DELAY = 0.1


def h3_bytes(n: int, seed: int = 0) -> bytes:
    """The body ``GET /bytes/{n}?seed={seed}`` returns (tests compute what to expect)."""
    return random.Random(seed).randbytes(n)


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return {name: values[-1] for name, values in parse_qs(raw).items()}


async def _respond(
    send: Send,
    status: int,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    version: str,
) -> None:
    all_headers = [
        (b"content-length", str(len(body)).encode()),
        (b"x-http-version", version.encode()),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None once it exceeds `limit` bytes."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point (see the module docstring for the routes)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    version = str(scope.get("http_version", ""))
    method = scope["method"]
    parts = scope["path"].strip("/").split("/")
    query = _query(scope)
    try:
        if method == "GET" and len(parts) == 2 and parts[0] == "bytes":
            n = int(parts[1])
            if not 0 <= n <= BYTES_LIMIT:
                await _respond(send, 400, b"size out of range", version=version)
                return
            body = h3_bytes(n, int(query.get("seed", "0")))
            digest = hashlib.sha256(body).hexdigest().encode()
            await _respond(send, 200, body, [(b"x-sha256", digest)], version=version)
        elif method == "POST" and parts == ["echo"]:
            received = await _read_body(receive, ECHO_LIMIT)
            if received is None:
                await _respond(send, 413, b"too large", version=version)
                return
            headers = [
                (b"x-sha256", hashlib.sha256(received).hexdigest().encode()),
                (b"x-length", str(len(received)).encode()),
            ]
            await _respond(send, 200, received, headers, version=version)
        elif method == "GET" and len(parts) == 2 and parts[0] == "drip":
            await _drip(
                send,
                int(parts[1]),
                float(query.get("delay", DRIP_DEFAULT_DELAY)),
                max(1, int(query.get("chunk", "1"))),
                version,
            )
        elif method == "GET" and parts == ["headers"]:
            seen: dict[str, str] = {}
            for raw_name, raw_value in scope["headers"]:
                name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
                seen[name] = f"{seen[name]}, {value}" if name in seen else value
            body = json.dumps({"headers": seen, "http_version": version}).encode()
            headers = [(b"content-type", b"application/json")]
            await _respond(send, 200, body, headers, version=version)
        elif method == "GET" and len(parts) == 2 and parts[0] == "status":
            await _respond(send, int(parts[1]), version=version)
        else:
            await _respond(send, 404, b"not found", version=version)
    except ValueError:
        await _respond(send, 400, b"bad number", version=version)


async def _drip(send: Send, n: int, delay: float, chunk: int, version: str) -> None:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"x-http-version", version.encode())],
    }
    await send(start)
    left = n
    while left > 0:
        size = min(chunk, left)
        left -= size
        await send({"type": "http.response.body", "body": b"*" * size, "more_body": left > 0})
        if left > 0:
            await asyncio.sleep(delay)
    if n == 0:
        await send({"type": "http.response.body", "body": b""})

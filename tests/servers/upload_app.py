"""An ASGI app that parses multipart/form-data uploads as they stream in (python-multipart).

Theory of operation: the body is fed to ``python_multipart.MultipartParser`` one ASGI
``http.request`` message at a time, and each part's data goes straight into a SHA-256, so the
server never holds a part (or the body) in memory and a 50 MB upload costs it a few KB. The
JSON answer describes what arrived, part by part, for tests to compare with what was sent.

Routes:

==========================  ===============================================================
``/upload``                 200 JSON ``{"framing", "length", "parts": [{"name", "filename",
                            "headers", "size", "sha256", "data" (the first 200 bytes,
                            latin-1)}]}``; 400 with the parser's error if the body is not
                            valid multipart
``/redirect?status=S``      drains the body, answers S (default 307) with
                            ``Location: /upload``
``/reject``                 413 at once, without reading the body
``/unavailable-once?key=K``  the first request with key K: drains the body, answers 503 with
                            ``Retry-After: 0``; later ones: as ``/upload``
==========================  ===============================================================
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header

from .asgi_app import answer_lifespan

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

__all__ = ["app"]

_SEEN_KEYS: set[str] = set()


class _Parts:
    """Collects parts from MultipartParser's callbacks."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []
        self._field = b""
        self._value = b""
        self._headers: list[tuple[str, str]] = []
        self._hash = hashlib.sha256()
        self._size = 0
        self._head = b""

    def callbacks(self) -> dict[str, Callable[..., None]]:
        def on_part_begin() -> None:
            self._headers, self._hash, self._size, self._head = [], hashlib.sha256(), 0, b""

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self._field += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self._value += data[start:end]

        def on_header_end() -> None:
            self._headers.append((self._field.decode("latin-1"), self._value.decode("latin-1")))
            self._field = self._value = b""

        def on_part_data(data: bytes, start: int, end: int) -> None:
            piece = data[start:end]
            self._hash.update(piece)
            self._size += len(piece)
            if len(self._head) < 200:
                self._head += piece[: 200 - len(self._head)]

        def on_part_end() -> None:
            disposition = next(
                (v for k, v in self._headers if k.lower() == "content-disposition"), ""
            )
            _, options = parse_options_header(disposition)
            filename = options.get(b"filename")
            self.parts.append(
                {
                    "name": options.get(b"name", b"").decode("latin-1"),
                    "filename": None if filename is None else filename.decode("latin-1"),
                    "headers": self._headers,
                    "size": self._size,
                    "sha256": self._hash.hexdigest(),
                    "data": self._head.decode("latin-1"),
                }
            )

        return {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        }


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _upload(scope: Scope, receive: Receive, send: Send) -> None:
    headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
    content_type, options = parse_options_header(headers.get("content-type", b""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        await _drain(receive)
        await _respond(send, 400, b"not multipart/form-data", [])
        return
    parts = _Parts()
    parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
    error = None
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        if error is None:
            try:
                parser.write(message.get("body", b""))
            except Exception as exc:
                error = str(exc)
        if not message.get("more_body", False):
            break
    if error is None:
        try:
            parser.finalize()
        except Exception as exc:
            error = str(exc)
    if error is not None:
        await _respond(send, 400, error.encode(), [])
        return
    length = headers.get("content-length")
    answer = {
        "framing": "content-length" if length is not None else "chunked",
        "length": None if length is None else int(length),
        "parts": parts.parts,
    }
    await _respond(send, 200, json.dumps(answer).encode(), [(b"content-type", b"application/json")])


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI 3 entry point."""
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/upload":
        await _upload(scope, receive, send)
    elif path == "/redirect":
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        await _drain(receive)
        status = int(query.get("status", "307"))
        await _respond(send, status, b"", [(b"location", b"/upload")])
    elif path == "/unavailable-once":
        key = dict(parse_qsl(scope["query_string"].decode("latin-1"))).get("key", "")
        if key in _SEEN_KEYS:
            await _upload(scope, receive, send)
        else:
            _SEEN_KEYS.add(key)
            await _drain(receive)
            await _respond(send, 503, b"", [(b"retry-after", b"0")])
    elif path == "/reject":
        await _respond(send, 413, b"too large", [(b"connection", b"close")])
    else:
        await _drain(receive)
        await _respond(send, 404, b"", [])

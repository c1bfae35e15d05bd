"""A framework-free ASGI 3 application used as the test server.

Theory of operation: every request body is read in full first (``/echo`` reports it, every
other route drains it). The route handler then runs in a nursery next to a watcher task that
waits for ``http.disconnect`` and sets ``request.disconnected``; ``/hold``, ``/drip`` and
``/slow-headers`` wait on that event instead of sleeping blindly, so they end as soon as the
client goes away instead of lingering until server shutdown. Handlers parse and validate their
parameters before sending anything, so a bad parameter becomes a 400 response.

Rejected alternative: cancelling the handler on disconnect. Hypercorn runs its own connection
bookkeeping (including closing the socket for ``connection: close``) *inside* the app's
``send()`` call, and that very call is what queues ``http.disconnect`` when a response ends.
Cancelling there interrupted hypercorn half-way through closing, and ``connection: close``
responses left the socket open. The handler is therefore never cancelled while it sends.

Routes (all deterministic):

==============================  ==========================================================
``/``                           200 ``Hello, world!``
``/echo``                       200 JSON: method, path, raw_path, query, headers, body, ...
``/status/{code}``              that status, empty body (none at all for 204 and 304)
``/bytes/{n}?chunk=K``          :func:`pattern_bytes` ``(n)`` in chunks of K, Content-Length
``/stream/{n}?chunk=K``         the same bytes without Content-Length (chunked on HTTP/1.1)
``/drip?chunks&delay&size``     ``chunks`` chunks of ``size`` ``*`` bytes, ``delay`` apart
``/slow-headers?delay=S``       sleeps S seconds, then ``ok``
``/gzip``, ``/deflate``         :data:`PAYLOAD_BYTES` compressed (deflate = zlib-wrapped)
``/gzip-deflate``               ``Content-Encoding: deflate, gzip`` (deflate applied first)
``/bad-gzip``                   ``Content-Encoding: gzip`` over garbage
``/charset/{name}``             :data:`CHARSET_TEXT` encoded with ``name``
``/no-charset``                 :data:`CHARSET_TEXT` as UTF-8, ``text/plain`` without charset
``/json``                       ``{"hello": "world", "n": 1}``
``/redirect/{n}``               302 to ``/redirect/{n-1}``; ``/redirect/0`` is 200 ``done``
``/redirect-to?url=U&status=S`` S (default 302) with ``Location: U``
``/relative-redirect``          302 with ``Location: echo``
``/basic-auth/{user}/{pw}``     200 JSON when the Basic credentials match, else 401
``/headers``                    JSON ``{"headers": [[name, value], ...]}``
``/response-headers?N=V&...``   each pair becomes a response header (repeats allowed)
``/cookies/set?name=value``     one ``Set-Cookie`` per pair
``/cookies/redirect?to=U&n=v``  302 to U, one ``Set-Cookie: n=v; Path=/`` per other pair
``/cookies``                    JSON ``{"cookies": {...}}`` of the ``Cookie`` header(s)
``/close``                      200 ``bye`` with ``connection: close`` (HTTP/1.x only)
``/hold``                       never responds; returns when the client disconnects
``/big-headers?n=N``            a response header ``x-big`` of N bytes
``/conn-id``                    ``host:port`` of the client socket (detects reuse)
anything else                   404
==============================  ==========================================================
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import trio

__all__ = [
    "BAD_GZIP_BODY",
    "CHARSET_TEXT",
    "DEFLATE_BODY",
    "GZIP_BODY",
    "GZIP_DEFLATE_BODY",
    "JSON_BODY",
    "PAYLOAD",
    "PAYLOAD_BYTES",
    "app",
    "pattern_bytes",
]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]

# --- deterministic payloads, importable by tests -------------------------------------------

_PATTERN = bytes(range(251))


def pattern_bytes(n: int, offset: int = 0) -> bytes:
    """Return ``bytes(i % 251 for i in range(offset, offset + n))``, computed quickly."""
    start = offset % 251
    repeats = (start + n) // 251 + 1
    return (_PATTERN * repeats)[start : start + n]


PAYLOAD: dict[str, Any] = {
    "compressed": True,
    "data": "The quick brown fox jumps over the lazy dog. " * 40,
}
PAYLOAD_BYTES = json.dumps(PAYLOAD).encode("utf-8")
GZIP_BODY = gzip.compress(PAYLOAD_BYTES, mtime=0)
DEFLATE_BODY = zlib.compress(PAYLOAD_BYTES)
# "Content-Encoding: deflate, gzip": deflate was applied first, then gzip.
GZIP_DEFLATE_BODY = gzip.compress(zlib.compress(PAYLOAD_BYTES), mtime=0)
BAD_GZIP_BODY = b"\x1f\x8b this is definitely not a gzip stream \x00\xff"
CHARSET_TEXT = "héllo wörld"
JSON_BODY: dict[str, Any] = {"hello": "world", "n": 1}

DEFAULT_CHUNK = 65536


# --- request model ---------------------------------------------------------------------------


class _BadRequest(Exception):
    """A route parameter is missing or malformed; becomes a 400 response."""


@dataclass(frozen=True)
class _Request:
    scope: Scope
    body: bytes
    disconnected: trio.Event

    async def pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; return True early if the client disconnected meanwhile."""
        with trio.move_on_after(seconds):
            await self.disconnected.wait()
        return self.disconnected.is_set()

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    @property
    def query(self) -> str:
        return bytes(self.scope.get("query_string", b"")).decode("latin-1")

    @property
    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    @property
    def headers(self) -> RawHeaders:
        return [(bytes(name).lower(), bytes(value)) for name, value in self.scope["headers"]]

    @property
    def http_version(self) -> str:
        return str(self.scope["http_version"])

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode("latin-1")
        for key, value in self.headers:
            if key == wanted:
                return value.decode("latin-1")
        return None

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    def int_param(self, name: str, default: int, *, minimum: int = 0) -> int:
        raw = self.param(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _BadRequest(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise _BadRequest(f"{name} must be >= {minimum}, got {value}")
        return value

    def float_param(self, name: str, default: float) -> float:
        raw = self.param(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise _BadRequest(f"{name} must be a number, got {raw!r}") from None
        if not 0 <= value < 3600:
            raise _BadRequest(f"{name} out of range: {value}")
        return value


def _int_segment(text: str, *, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _BadRequest(f"not an integer: {text!r}") from None
    if value < minimum:
        raise _BadRequest(f"must be >= {minimum}: {value}")
    return value


# --- response helpers ------------------------------------------------------------------------


def _json_bytes(obj: object) -> bytes:
    return json.dumps(obj).encode("utf-8")


async def _respond(
    send: Send,
    status: int,
    body: bytes = b"",
    *,
    content_type: str | None = None,
    headers: Iterable[tuple[bytes, bytes]] = (),
    content_length: bool = True,
) -> None:
    raw: RawHeaders = []
    if content_type is not None:
        raw.append((b"content-type", content_type.encode("latin-1")))
    if content_length:
        raw.append((b"content-length", str(len(body)).encode("ascii")))
    raw.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _text(send: Send, status: int, text: str, **kwargs: Any) -> None:
    await _respond(
        send, status, text.encode("utf-8"), content_type="text/plain; charset=utf-8", **kwargs
    )


async def _json(send: Send, obj: object, *, status: int = 200, **kwargs: Any) -> None:
    await _respond(send, status, _json_bytes(obj), content_type="application/json", **kwargs)


async def _send_pattern(send: Send, n: int, chunk: int, headers: RawHeaders) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    offset = 0
    while offset < n:
        size = min(chunk, n - offset)
        await send(
            {"type": "http.response.body", "body": pattern_bytes(size, offset), "more_body": True}
        )
        offset += size
    await send({"type": "http.response.body", "body": b"", "more_body": False})


# --- routes ------------------------------------------------------------------------------------

Handler = Callable[[_Request, Send], Awaitable[None]]


async def _hello(request: _Request, send: Send) -> None:
    await _text(send, 200, "Hello, world!")


async def _echo(request: _Request, send: Send) -> None:
    await _json(
        send,
        {
            "method": request.method,
            "path": request.path,
            "raw_path": bytes(request.scope.get("raw_path") or b"").decode("latin-1"),
            "query": request.query,
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.headers],
            "body": request.body.decode("latin-1"),
            "http_version": request.http_version,
            "scheme": request.scope.get("scheme"),
        },
    )


def _status(code_text: str) -> Handler:
    code = _int_segment(code_text)
    if not 200 <= code <= 599:
        raise _BadRequest(f"status must be a final status (200-599), got {code}")

    async def handler(request: _Request, send: Send) -> None:
        if code in (204, 304):
            await send({"type": "http.response.start", "status": code, "headers": []})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            await _respond(send, code)

    return handler


def _bytes(n_text: str, *, with_length: bool) -> Handler:
    n = _int_segment(n_text)

    async def handler(request: _Request, send: Send) -> None:
        chunk = request.int_param("chunk", DEFAULT_CHUNK, minimum=1)
        headers: RawHeaders = [(b"content-type", b"application/octet-stream")]
        if with_length:
            headers.append((b"content-length", str(n).encode("ascii")))
        await _send_pattern(send, n, chunk, headers)

    return handler


async def _drip(request: _Request, send: Send) -> None:
    chunks = request.int_param("chunks", 10)
    delay = request.float_param("delay", 0.01)
    size = request.int_param("size", 1)
    headers: RawHeaders = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(chunks * size).encode("ascii")),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for index in range(chunks):
        if index and await request.pause(delay):
            return
        await send({"type": "http.response.body", "body": b"*" * size, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _slow_headers(request: _Request, send: Send) -> None:
    delay = request.float_param("delay", 1.0)
    if await request.pause(delay):
        return
    await _text(send, 200, "ok")


def _encoded(body: bytes, encoding: bytes) -> Handler:
    async def handler(request: _Request, send: Send) -> None:
        await _respond(
            send,
            200,
            body,
            content_type="application/json",
            headers=[(b"content-encoding", encoding)],
        )

    return handler


def _charset(name: str) -> Handler:
    try:
        body = CHARSET_TEXT.encode(name)
    except (LookupError, UnicodeEncodeError) as exc:
        raise _BadRequest(f"cannot encode with {name!r}: {exc}") from None

    async def handler(request: _Request, send: Send) -> None:
        await _respond(send, 200, body, content_type=f"text/plain; charset={name}")

    return handler


async def _no_charset(request: _Request, send: Send) -> None:
    await _respond(send, 200, CHARSET_TEXT.encode("utf-8"), content_type="text/plain")


async def _json_route(request: _Request, send: Send) -> None:
    await _json(send, JSON_BODY)


def _redirect(n_text: str) -> Handler:
    n = _int_segment(n_text)

    async def handler(request: _Request, send: Send) -> None:
        if n == 0:
            await _text(send, 200, "done")
        else:
            location = f"/redirect/{n - 1}".encode("ascii")
            await _respond(send, 302, headers=[(b"location", location)])

    return handler


async def _redirect_to(request: _Request, send: Send) -> None:
    url = request.param("url")
    if url is None:
        raise _BadRequest("url is required")
    status = request.int_param("status", 302)
    await _respond(send, status, headers=[(b"location", url.encode("utf-8"))])


async def _relative_redirect(request: _Request, send: Send) -> None:
    await _respond(send, 302, headers=[(b"location", b"echo")])


def _basic_auth(rest: str) -> Handler:
    user, sep, password = rest.partition("/")
    if not sep:
        raise _BadRequest("expected /basic-auth/{user}/{password}")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")

    async def handler(request: _Request, send: Send) -> None:
        if request.header("authorization") == f"Basic {token}":
            await _json(send, {"authenticated": True, "user": user})
        else:
            await _json(
                send,
                {"authenticated": False},
                status=401,
                headers=[(b"www-authenticate", b'Basic realm="test"')],
            )

    return handler


async def _headers(request: _Request, send: Send) -> None:
    pairs = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.headers]
    await _json(send, {"headers": pairs})


async def _response_headers(request: _Request, send: Send) -> None:
    pairs = request.params
    raw = [(k.encode("utf-8"), v.encode("utf-8")) for k, v in pairs]
    await _json(send, {"headers": [[k, v] for k, v in pairs]}, headers=raw)


async def _cookies_set(request: _Request, send: Send) -> None:
    pairs = request.params
    raw = [(b"set-cookie", f"{k}={v}; Path=/".encode()) for k, v in pairs]
    await _json(send, {"cookies": dict(pairs)}, headers=raw)


async def _cookies_redirect(request: _Request, send: Send) -> None:
    target = request.param("to")
    if target is None:
        raise _BadRequest("to is required")
    raw = [(b"location", target.encode("utf-8"))]
    raw += [(b"set-cookie", f"{k}={v}; Path=/".encode()) for k, v in request.params if k != "to"]
    await _respond(send, 302, headers=raw)


async def _cookies(request: _Request, send: Send) -> None:
    cookies: dict[str, str] = {}
    for name, value in request.headers:
        if name != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            key, _, val = part.strip().partition("=")
            if key:
                cookies[key] = val
    await _json(send, {"cookies": cookies})


async def _close(request: _Request, send: Send) -> None:
    # "connection" is a connection-specific header: HTTP/2 forbids it (the h2 library would
    # refuse to send it), so it is only added on HTTP/1.x.
    extra: RawHeaders = []
    if request.http_version in ("1.0", "1.1"):
        extra.append((b"connection", b"close"))
    await _text(send, 200, "bye", headers=extra)


async def _hold(request: _Request, send: Send) -> None:
    await request.disconnected.wait()  # "forever", for a client that stays connected


async def _big_headers(request: _Request, send: Send) -> None:
    n = request.int_param("n", 65536)
    await _text(send, 200, "ok", headers=[(b"x-big", b"x" * n)])


async def _conn_id(request: _Request, send: Send) -> None:
    client = request.scope.get("client")
    if client is None:
        await _text(send, 200, "unknown")
    else:
        host, port = client[0], client[1]
        await _text(send, 200, f"{host}:{port}")


async def _not_found(request: _Request, send: Send) -> None:
    await _text(send, 404, "Not Found")


_FIXED: dict[str, Handler] = {
    "/": _hello,
    "/echo": _echo,
    "/drip": _drip,
    "/slow-headers": _slow_headers,
    "/gzip": _encoded(GZIP_BODY, b"gzip"),
    "/deflate": _encoded(DEFLATE_BODY, b"deflate"),
    "/gzip-deflate": _encoded(GZIP_DEFLATE_BODY, b"deflate, gzip"),
    "/bad-gzip": _encoded(BAD_GZIP_BODY, b"gzip"),
    "/no-charset": _no_charset,
    "/json": _json_route,
    "/redirect-to": _redirect_to,
    "/relative-redirect": _relative_redirect,
    "/headers": _headers,
    "/response-headers": _response_headers,
    "/cookies/set": _cookies_set,
    "/cookies/redirect": _cookies_redirect,
    "/cookies": _cookies,
    "/close": _close,
    "/hold": _hold,
    "/big-headers": _big_headers,
    "/conn-id": _conn_id,
}

_PREFIXED: dict[str, Callable[[str], Handler]] = {
    "/status/": _status,
    "/bytes/": lambda rest: _bytes(rest, with_length=True),
    "/stream/": lambda rest: _bytes(rest, with_length=False),
    "/charset/": _charset,
    "/redirect/": _redirect,
    "/basic-auth/": _basic_auth,
}


def _dispatch(path: str) -> Handler:
    """Find the handler for ``path``; raises :class:`_BadRequest` for bad path parameters."""
    fixed = _FIXED.get(path)
    if fixed is not None:
        return fixed
    for prefix, factory in _PREFIXED.items():
        if path.startswith(prefix) and len(path) > len(prefix):
            return factory(path[len(prefix) :])
    return _not_found


# --- ASGI plumbing ---------------------------------------------------------------------------


async def _read_body(receive: Receive) -> bytes | None:
    """Read the whole request body; ``None`` if the client disconnected first."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            return b"".join(parts)


async def _watch_disconnect(receive: Receive, disconnected: trio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected.set()
            return


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Answer an ASGI lifespan scope: startup and shutdown both succeed."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI 3 entry point."""
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return  # no websockets here; hypercorn closes the connection
    body = await _read_body(receive)
    if body is None:
        return
    request = _Request(scope, body, trio.Event())
    try:
        handler = _dispatch(request.path)
    except _BadRequest as exc:
        await _text(send, 400, str(exc))
        return
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_disconnect, receive, request.disconnected)
        try:
            await handler(request, send)
        except _BadRequest as exc:
            await _text(send, 400, str(exc))
        nursery.cancel_scope.cancel()  # stops only the watcher, which is parked in receive()

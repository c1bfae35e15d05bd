"""`Request`: method, URL, headers and body of one HTTP request."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import trio

from ._config import describe
from ._content import METHODS_WITH_BODY, checked_chunk, close_abandoned, encode_request
from ._cookies import Cookies, CookieTypes, apply_cookies
from ._exceptions import RequestNotRead
from ._headers import Headers, check_header_safety
from ._logs import redact_url
from ._multipart import boundary_from_content_type
from ._types import HeaderTypes, QueryParamTypes, RequestContent, RequestData, RequestFiles
from ._urls import URL

__all__ = ["Request"]

_METHODS = {
    m: m.encode("ascii") for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
}

# RFC 9110 5.6.2 token characters: what a method may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# Each body-framing header, mapped to the one it must not be sent together with.
_FRAMING = {b"content-length": b"transfer-encoding", b"transfer-encoding": b"content-length"}


class Request:
    """An HTTP request, as built by `Client.build_request` or by hand.

    The body is bytes (sent with Content-Length) or an async iterable of bytes (sent
    chunked unless the headers give a Content-Length). Headers that would split the request
    (CR, LF or NUL in a name or value) are refused here, before anything is sent.
    """

    __slots__ = (
        "_auto_cookie",
        "_body",
        "_cookies",
        "_method_bytes",
        "extensions",
        "headers",
        "method",
        "url",
    )

    _cookies: Cookies | None  # per-request cookies= (see _cookies.py)
    _auto_cookie: str | None  # the Cookie header the client set last (see _cookies.py)

    def __init__(
        self,
        method: str | bytes,
        url: URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any = None,
        cookies: CookieTypes | None = None,
        stream: bytes | AsyncIterable[bytes] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        url = url if isinstance(url, URL) else URL(url)
        if params is not None:
            url = url.copy_merge_params(params)
        own_headers = headers.copy() if isinstance(headers, Headers) else Headers(headers)
        check_header_safety(own_headers.raw)
        self._setup(method, url, own_headers, {} if extensions is None else extensions)
        if stream is not None:
            self._body = stream
            self._frame_headers()
        else:
            self._set_body(content, data, json, files)
        if cookies is not None:
            self._set_cookies(cookies)

    def _set_cookies(self, cookies: CookieTypes) -> None:
        """Per-request cookies: shown in the Cookie header now, merged over the client's
        (and re-chosen by the jar) on each hop of the send, same-origin redirects included."""
        self._cookies = Cookies(cookies)
        apply_cookies(Cookies(), self)

    @classmethod
    def _build(
        cls,
        method: str,
        url: URL,
        headers: Headers,
        content: RequestContent | None,
        data: RequestData | None,
        json: Any,
        extensions: dict[str, Any],
        files: RequestFiles | None = None,
    ) -> Request:
        """The client's constructor: adopts `headers`, already merged and checked.

        The same steps as `__init__` minus the conversions and the copy of the headers.
        """
        self = cls.__new__(cls)
        self._setup(method, url, headers, extensions)
        self._set_body(content, data, json, files)
        return self

    def _setup(
        self, method: str | bytes, url: URL, headers: Headers, extensions: dict[str, Any]
    ) -> None:
        method_bytes: bytes | None
        if type(method) is str and (method_bytes := _METHODS.get(method)) is not None:
            self.method = method
        else:
            self.method, method_bytes = _check_method(method)
        self._method_bytes = method_bytes
        self._cookies = None
        self._auto_cookie = None
        self.url = url
        self.headers = headers
        self.extensions = extensions

    def _set_body(
        self,
        content: RequestContent | None,
        data: RequestData | None,
        json: Any,
        files: RequestFiles | None = None,
    ) -> None:
        """Encode the body and add the headers it implies (never over the caller's framing).

        With `files`, a multipart boundary the caller gave in Content-Type is used.
        """
        headers = self.headers
        if content is None and data is None and json is None and not files:
            self._body = b""
        else:
            boundary = None
            if files:
                content_type = headers._get_raw(b"content-type")
                boundary = boundary_from_content_type(content_type[0] if content_type else None)
            body_headers, self._body = encode_request(
                content=content, data=data, json=json, files=files, boundary=boundary
            )
            for name, value in body_headers.items():
                # Framing the user chose wins: never send Content-Length together with
                # Transfer-Encoding (RFC 9112 6.2), whichever of the two was given.
                lower = name.lower()
                if lower in _FRAMING and headers._has(_FRAMING[lower]):
                    continue
                headers._setdefault_raw(name, value)
        self._frame_headers()

    def _frame_headers(self) -> None:
        """Host first, and `Content-Length: 0` for an empty body that needs one."""
        headers = self.headers
        if not headers._has(b"host"):
            headers._prepend(b"Host", self.url.netloc)
        if (
            not self._body
            and self._method_bytes in METHODS_WITH_BODY  # the rule of needs_zero_length()
            and not headers._has(b"content-length")
            and not headers._has(b"transfer-encoding")
        ):
            headers._setdefault_raw(b"Content-Length", b"0")

    @property
    def content(self) -> bytes:
        """The body as bytes; raises RequestNotRead for an unread streaming body."""
        if not isinstance(self._body, bytes):
            raise RequestNotRead()
        return self._body

    @property
    def stream(self) -> bytes | AsyncIterable[bytes]:
        """The body as given: bytes, or the async iterable that will be sent."""
        return self._body

    def read(self) -> bytes:
        """The body when it is bytes (httpx's sync read); RequestNotRead for an async body,
        which only `await request.aread()` can read."""
        if not isinstance(self._body, bytes):
            raise RequestNotRead()
        return self._body

    async def aread(self) -> bytes:
        """Read a streaming body into memory (so it can be resent) and return it."""
        body = self._body
        if isinstance(body, bytes):
            await trio.lowlevel.checkpoint()
            return body
        iterator = aiter(body)
        try:
            parts = [bytes(checked_chunk(chunk)) async for chunk in iterator]
        except BaseException:
            await close_abandoned(iterator)  # now, not whenever the garbage collector runs
            raise
        self._body = b"".join(parts)
        # The iterable is the caller's and may never await: checkpoint regardless.
        await trio.lowlevel.checkpoint()
        return self._body

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Iterate the body (used by transports)."""
        body = self._body
        if isinstance(body, bytes):
            return _OneChunk(body)
        return body.__aiter__()

    def __repr__(self) -> str:
        # Reprs reach tracebacks and log lines: a password in the URL must not.
        return f"<Request({self.method!r}, {redact_url(self.url)!r})>"


def _check_method(method: object) -> tuple[str, bytes]:
    """A method other than the common ones: uppercased, and refused unless a token."""
    if isinstance(method, bytes):
        method = method.decode("latin-1")
    if not isinstance(method, str):
        raise TypeError(f"method must be a str or bytes, not {describe(method)}")
    upper = method.upper()
    if _TOKEN.fullmatch(upper) is None:
        raise ValueError(
            f"method must be an HTTP token such as 'GET' or 'PROPFIND', not {method!r}"
        )
    return upper, upper.encode("ascii")


class _OneChunk:
    __slots__ = ("_chunk",)

    def __init__(self, chunk: bytes) -> None:
        self._chunk: bytes | None = chunk

    def __aiter__(self) -> _OneChunk:
        return self

    async def __anext__(self) -> bytes:
        await trio.lowlevel.checkpoint()
        chunk = self._chunk
        if chunk is None:
            raise StopAsyncIteration
        self._chunk = None
        return chunk

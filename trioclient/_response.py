"""`Response`: status, headers and a body that is either in memory or still on the wire.

The body is read through the iterators of `_response_body.py` (bounded decoding, the size
cap, the raw-stream protocol transports hand bodies over in).
"""

from __future__ import annotations

import datetime
import json as jsonlib
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import trio

from ._config import check_count
from ._cookies import Cookies
from ._exceptions import (
    HTTPStatusError,
    ResponseNotRead,
    ResponseTooLarge,
    StreamClosed,
)
from ._headers import Headers
from ._links import links_by_relation
from ._response_body import (
    RawStream,
    _BodyIterator,
    _IterableStream,
    _line_iterator,
    _text_iterator,
)
from ._status_codes import codes
from ._text_decoders import TextDecoder
from ._types import HeaderTypes

if TYPE_CHECKING:
    from ._request import Request
    from ._retry import RetryAttempt
    from ._urls import URL

__all__ = ["MAX_LINE_SIZE", "RawStream", "Response"]

# aiter_lines' default bound on one line (characters): far above any line a person or a
# JSON-lines producer writes, far below what an endless line would grow to.
MAX_LINE_SIZE = 16 * 1024 * 1024


class Response:
    """An HTTP response. Attributes and methods follow `httpx.Response`.

    Beyond httpx: `attempts`, the earlier attempts of this request that were retried
    before this response (empty without retries; see docs/retries.md).
    """

    # A class default: set on an instance only when a retry happened (no cost otherwise).
    attempts: tuple[RetryAttempt, ...] = ()
    history: list[Response]
    _content: bytes | None
    _elapsed: datetime.timedelta | None
    _stream: RawStream | None

    def __init__(
        self,
        status_code: int,
        *,
        headers: HeaderTypes | None = None,
        content: bytes | str | None = None,
        text: str | None = None,
        html: str | None = None,
        json: Any = None,
        stream: AsyncIterable[bytes] | None = None,
        request: Request | None = None,
        extensions: dict[str, Any] | None = None,
        history: list[Response] | None = None,
        default_encoding: str | Callable[[bytes], str | None] = "utf-8",
    ) -> None:
        self._setup(
            status_code,
            headers if isinstance(headers, Headers) else Headers(headers),
            request,
            {} if extensions is None else extensions,
            default_encoding,
        )
        if history is not None:
            self.history = list(history)
        if text is not None:
            content = text
            self.headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        elif html is not None:
            content = html
            self.headers.setdefault("Content-Type", "text/html; charset=utf-8")
        elif json is not None:
            content = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"))
            self.headers.setdefault("Content-Type", "application/json")
        if content is not None:
            body = content.encode("utf-8") if isinstance(content, str) else bytes(content)
            self._content = body
            self.headers.setdefault("Content-Length", str(len(body)))
            self._closed = self.is_stream_consumed = True
            self._elapsed = datetime.timedelta(0)
        elif stream is not None:
            self._stream = _IterableStream(stream)
        else:
            self._content = b""
            self._closed = self.is_stream_consumed = True
            self._elapsed = datetime.timedelta(0)

    @classmethod
    def _from_transport(
        cls,
        status_code: int,
        reason: bytes,
        http_version: str,
        headers: Headers,
        stream: RawStream,
        request: Request,
        default_encoding: str | Callable[[bytes], str | None] = "utf-8",
    ) -> Response:
        """The transports' constructor: a body still on the wire, read through `stream`."""
        self = cls.__new__(cls)
        extensions = {"http_version": http_version, "reason_phrase": reason}
        self._setup(status_code, headers, request, extensions, default_encoding)
        self._stream = stream
        return self

    def _setup(
        self,
        status_code: int,
        headers: Headers,
        request: Request | None,
        extensions: dict[str, Any],
        default_encoding: str | Callable[[bytes], str | None],
    ) -> None:
        """Every attribute, in its state before any body arrives: the one list of them."""
        self.status_code = status_code
        self.headers = headers
        self._request = request
        self.extensions = extensions
        self.default_encoding = default_encoding
        self.history = []
        self.next_request: Request | None = None
        self._closed = False
        self.is_stream_consumed = False
        self.num_bytes_downloaded = 0
        self._encoding: str | None = None
        self._text: str | None = None
        self._started = time.perf_counter()
        self._ended: float | None = None
        self._elapsed = None
        self._stream = None
        self._content = None
        self._cookies: Cookies | None = None

    # -- metadata -------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        """True once the response was closed: by you, at its end, or by the client closing."""
        stream = self._stream
        return self._closed or (stream is not None and stream.closed_reason is not None)

    @property
    def trailers(self) -> Headers:
        """Headers sent after the body (HTTP/2, or chunked HTTP/1.1); empty until it is read."""
        stream = self._stream
        return Headers(stream.trailers if stream is not None else None)

    def _closed_error(self) -> StreamClosed:
        stream = self._stream
        reason = None if stream is None else stream.closed_reason
        if reason is None:
            return StreamClosed()
        return StreamClosed(f"The response stream was closed because {reason}.")

    def _size_limit(self) -> int | None:
        """The request's `max_response_size`, if it has one."""
        request = self._request
        if request is None:
            return None
        limit = request.extensions.get("max_response_size")
        return limit if isinstance(limit, int) else None

    def _too_large(self, limit: int, size: int, *, declared: bool) -> ResponseTooLarge:
        """Close this response and describe why: the body passed `limit`."""
        what = f"Content-Length: {size}" if declared else f"{size} bytes received so far"
        return self._refused(
            f"The response{self._source()} is larger than max_response_size={limit} bytes"
            f" ({what}).",
            limit,
            size,
            declared=declared,
        )

    def _line_too_long(self, limit: int, size: int) -> ResponseTooLarge:
        """Close this response and describe why: one line passed `limit` characters."""
        return self._refused(
            f"A line of the response{self._source()} is longer than max_line_size={limit}"
            f" characters ({size} without a line break so far); pass"
            " aiter_lines(max_line_size=...) a larger bound, or None for none.",
            limit,
            size,
            declared=False,
        )

    def _source(self) -> str:
        """ " from host:port" for messages, when the request is known."""
        request = self._request
        return f" from {request.url.netloc.decode('ascii', 'replace')}" if request else ""

    def _refused(self, message: str, limit: int, size: int, *, declared: bool) -> ResponseTooLarge:
        """Close this response: a bound was passed (`ResponseTooLarge` says which)."""
        self._close()
        return ResponseTooLarge(
            message,
            request=self._request,
            response=self,
            limit=limit,
            size=size,
            declared=declared,
        )

    @property
    def request(self) -> Request:
        """The request this response answers; RuntimeError if there is none."""
        if self._request is None:
            raise RuntimeError("The request instance has not been set on this response.")
        return self._request

    @request.setter
    def request(self, value: Request) -> None:
        self._request = value

    @property
    def url(self) -> URL:
        """The URL of the request that produced this response."""
        return self.request.url

    @property
    def http_version(self) -> str:
        """ "HTTP/1.1", "HTTP/1.0" or "HTTP/2"."""
        version: str = self.extensions.get("http_version", "HTTP/1.1")
        return version

    @property
    def cookies(self) -> Cookies:
        """The cookies this response's Set-Cookie headers set, by the jar's rules for its
        request's URL (the client's own jar, `client.cookies`, has them too)."""
        if self._cookies is None:
            self._cookies = Cookies()
            self._cookies.extract_cookies(self)
        return self._cookies

    @property
    def reason_phrase(self) -> str:
        """The reason phrase sent by the server, or the standard one for the status."""
        reason = self.extensions.get("reason_phrase")
        if reason:
            return bytes(reason).decode("ascii", errors="ignore")
        return codes.get_reason_phrase(self.status_code)

    @property
    def elapsed(self) -> datetime.timedelta:
        """Time from sending the request until the response was closed."""
        if self._elapsed is None:
            if self._ended is None:
                raise RuntimeError(
                    "'.elapsed' may only be accessed after the response has been read or closed."
                )
            self._elapsed = datetime.timedelta(seconds=self._ended - self._started)
        return self._elapsed

    @elapsed.setter
    def elapsed(self, value: datetime.timedelta) -> None:
        self._elapsed = value

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The `Link` header (RFC 8288): each link's parameters and "url", keyed by its
        relation type ("next", ...) or, without one, by its URL (as sent, not resolved)."""
        header = self.headers.get("link")
        return {} if header is None else links_by_relation(header)

    @property
    def is_informational(self) -> bool:
        """1xx status."""
        return 100 <= self.status_code < 200

    @property
    def is_success(self) -> bool:
        """2xx status."""
        return 200 <= self.status_code < 300

    @property
    def is_redirect(self) -> bool:
        """3xx status with a Location header."""
        return 300 <= self.status_code < 400 and "location" in self.headers

    @property
    def has_redirect_location(self) -> bool:
        """A redirect status we follow (301, 302, 303, 307, 308) with a Location."""
        return self.status_code in (301, 302, 303, 307, 308) and "location" in self.headers

    @property
    def is_client_error(self) -> bool:
        """4xx status."""
        return 400 <= self.status_code < 500

    @property
    def is_server_error(self) -> bool:
        """5xx status."""
        return 500 <= self.status_code < 600

    @property
    def is_error(self) -> bool:
        """4xx or 5xx status."""
        return 400 <= self.status_code < 600

    def raise_for_status(self) -> Response:
        """Raise HTTPStatusError for 4xx/5xx (and unfollowed 3xx); return self otherwise."""
        if 200 <= self.status_code < 300:
            return self
        kind = {1: "Informational response", 3: "Redirect response", 4: "Client error"}.get(
            self.status_code // 100, "Server error"
        )
        if kind == "Server error" and not self.is_server_error:
            kind = "Unexpected status"
        message = f"{kind} '{self.status_code} {self.reason_phrase}' for url '{self.url}'"
        if self.has_redirect_location:
            message += f"\nRedirect location: '{self.headers['location']}'"
        raise HTTPStatusError(message, request=self.request, response=self)

    # -- decoded content ------------------------------------------------------------------

    @property
    def content(self) -> bytes:
        """The whole (decoded) body; raises ResponseNotRead for an unread streamed body."""
        if self._content is None:
            raise ResponseNotRead()
        return self._content

    @property
    def charset_encoding(self) -> str | None:
        """The charset parameter of Content-Type, if any."""
        content_type = self.headers.get("content-type")
        if content_type is None:
            return None
        for param in content_type.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                return value.strip().strip("'\"") or None
        return None

    @property
    def encoding(self) -> str:
        """Text encoding: the charset, else `default_encoding` (a str or a guessing callable)."""
        if self._encoding is None:
            encoding = _usable(self.charset_encoding)
            if encoding is None:
                if callable(self.default_encoding):
                    encoding = _usable(self.default_encoding(self._content or b""))
                else:
                    encoding = _usable(self.default_encoding)
            self._encoding = encoding or "utf-8"
        return self._encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        if self._text is not None:
            raise ValueError("Setting encoding after `text` has been accessed is not allowed.")
        self._encoding = value

    @property
    def text(self) -> str:
        """The body decoded with `encoding` (undecodable bytes replaced)."""
        if self._text is None:
            content = self.content
            self._text = content.decode(self.encoding, errors="replace") if content else ""
        return self._text

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.content, **kwargs)

    # -- reading --------------------------------------------------------------------------

    def read(self) -> bytes:
        """The body when it is in memory (httpx's sync read): after `client.get()` or
        `aread()`; ResponseNotRead for a streamed body, which only `aread()` can read."""
        return self.content

    async def aread(self) -> bytes:
        """Read the rest of the body into memory and return it (a checkpoint)."""
        if self._content is None:
            return await self._read_all(checkpoint=True)
        await trio.lowlevel.checkpoint()
        return self._content

    async def _read_all(self, *, checkpoint: bool) -> bytes:
        """Read and decode the rest of the body: the same `_pull` steps as iteration, minus
        the per-chunk checkpoint (`checkpoint` asks for one at the start)."""
        iterator = _BodyIterator(self, decode=True, chunk_size=None, checkpoint=False)
        if checkpoint:
            await trio.lowlevel.checkpoint()
        stream = self._stream
        if iterator._step == sys.maxsize and stream is not None and not iterator._done:
            # No coding: `_pull`'s own steps without a coroutine per chunk (the hot path).
            while not iterator._done:
                try:
                    data = await stream.receive_some()
                except BaseException:
                    self._close()
                    raise
                iterator._take_plain(data)
        while not iterator._done:
            await iterator._pull()
        parts = iterator._pending
        self._content = parts[0] if len(parts) == 1 else b"".join(parts)
        return self._content

    def aiter_raw(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Iterate the body as sent (not content-decoded); StreamConsumed once it was read."""
        return _BodyIterator(self, decode=False, chunk_size=chunk_size, checkpoint=True)

    def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Iterate the content-decoded body, in chunks of `chunk_size` if given."""
        return _BodyIterator(self, decode=True, chunk_size=chunk_size, checkpoint=True)

    def aiter_text(self, chunk_size: int | None = None) -> AsyncIterator[str]:
        """Iterate the body as text, decoded incrementally with `encoding`."""
        return _text_iterator(self.aiter_bytes(), TextDecoder(self.encoding), chunk_size)

    def aiter_lines(self, *, max_line_size: int | None = MAX_LINE_SIZE) -> AsyncIterator[str]:
        """Iterate the body as lines of text, without their line endings.

        A line longer than `max_line_size` characters (default 16 MiB; None: no bound)
        closes the response and raises `ResponseTooLarge`.
        """
        if max_line_size is not None:
            check_count("max_line_size", max_line_size)
        return _line_iterator(
            self.aiter_text(),
            max_line_size,
            lambda size: self._line_too_long(max_line_size or 0, size),
        )

    async def aclose(self) -> None:
        """Close the response and give its connection back (a checkpoint)."""
        await self._finalize()
        await trio.lowlevel.checkpoint()

    async def _finalize(self) -> None:
        """`_close`, then close a user's body iterator abandoned part-way (bounded, never
        raises, not interrupted by an outer cancellation)."""
        self._close()
        stream = self._stream
        if isinstance(stream, _IterableStream):
            await stream.finalize()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._elapsed is None:
                self._ended = time.perf_counter()
            if self._stream is not None:
                self._stream.close()

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _usable(encoding: str | None) -> str | None:
    if not encoding:
        return None
    try:
        import codecs

        codecs.lookup(encoding)
    except LookupError:
        return None
    return encoding

"""Request bodies: turn `content=`, `data=`, `files=` or `json=` into framing headers and a body.

`encode_request()` returns the headers the body needs and the body itself, either bytes
(sent with Content-Length) or an async iterable of bytes (sent with
Transfer-Encoding: chunked). It does not touch the request's headers: the caller adds the
returned ones unless the user already set them.

Decisions:

* An async client cannot read a sync iterable or a file object without blocking the event
  loop, so those are refused here, when the request is built, with a TypeError that says
  what to pass instead (httpx accepts them and raises RuntimeError only when sending).
* Chunks of an async iterable are not checked here, since that would mean wrapping every
  stream: whoever sends the body must refuse a chunk that is not bytes.
* `data=` given bytes or str is treated as `content=`, silently (httpx warns that this
  use is deprecated but does the same).
* `files=` (with or without `data=`) gives a multipart body (`_multipart.py`), streamed
  and, when its files are seekable, replayable; an empty `files=` is ignored, like httpx.
* An empty body gives no headers. Whether it still needs `Content-Length: 0`
  depends on the method; `needs_zero_length()` answers that for the caller.
"""

from __future__ import annotations

import json as jsonlib
import math
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any, Final, TypeAlias
from urllib.parse import urlencode

import trio

from ._config import describe
from ._multipart import MultipartStream, encode_multipart
from ._types import RequestContent, RequestData, RequestFiles

__all__ = [
    "METHODS_WITH_BODY",
    "checked_chunk",
    "close_abandoned",
    "encode_request",
    "is_replayable",
    "needs_zero_length",
]

_JSON: Final = b"application/json"
_FORM: Final = b"application/x-www-form-urlencoded"
METHODS_WITH_BODY: Final = frozenset({b"POST", b"PUT", b"PATCH"})

_Body: TypeAlias = "bytes | AsyncIterable[bytes]"


def needs_zero_length(method: bytes) -> bool:
    """Whether an empty request body should still be sent with `Content-Length: 0`.

    True for the methods that are expected to carry a body (POST, PUT, PATCH), so servers
    that insist on a length (411 Length Required) accept them.
    """
    return method in METHODS_WITH_BODY


def is_replayable(body: object) -> bool:
    """Whether a request body can be sent again (a redirect, an auth round, a retry).

    Bytes can; so can a multipart body whose files are all seekable (each send rewinds
    them). Any other stream is sent once.
    """
    return isinstance(body, bytes) or (isinstance(body, MultipartStream) and body.replayable)


def encode_request(
    content: RequestContent | None = None,
    data: RequestData | None = None,
    json: Any = None,
    files: RequestFiles | None = None,
    boundary: bytes | None = None,
) -> tuple[dict[bytes, bytes], _Body]:
    """Encode one of `content`, `data` (with or without `files`) or `json` into (headers
    to add, body).

    Raises TypeError if more than one is given, or if `content` is of a type an async
    client cannot send. `json` is serialised compactly as UTF-8, refusing NaN and infinity.
    `boundary` is the multipart boundary the caller chose in its Content-Type, if any.
    """
    given = [
        name
        for name, value in (("content", content), ("data", data), ("json", json))
        if value is not None
    ]
    if files:
        if content is not None or json is not None:
            raise TypeError("files= goes with data= only, not with content= or json=")
        return _encode_multipart(data, files, boundary)
    if len(given) > 1:
        raise TypeError(f"Pass only one of content=, data= or json=, not {' and '.join(given)}")
    if content is not None:
        return _encode_content(content)
    if data is not None:
        if isinstance(data, (bytes, str)):
            return _encode_content(data)
        return _encode_form(data)
    if json is not None:
        return _encode_json(json)
    return {}, b""


def _sized(body: bytes) -> dict[bytes, bytes]:
    # An empty body gets no Content-Length here; see needs_zero_length().
    return {b"Content-Length": str(len(body)).encode("ascii")} if body else {}


def _encode_content(content: object) -> tuple[dict[bytes, bytes], _Body]:
    if isinstance(content, str):
        content = content.encode("utf-8")
    elif isinstance(content, (bytearray, memoryview)):
        content = bytes(content)
    if isinstance(content, bytes):
        return _sized(content), content
    if isinstance(content, AsyncIterable):
        return {b"Transfer-Encoding": b"chunked"}, content
    if isinstance(content, Iterable) or hasattr(content, "read"):
        raise TypeError(
            f"{_CONTENT_TYPES}, not {describe(content)}: an async client needs bytes, str "
            "or an async iterable of bytes (read a file into bytes first, or yield its "
            "chunks from an async generator)"
        )
    raise TypeError(f"{_CONTENT_TYPES}, not {describe(content)}")


_CONTENT_TYPES = "content must be bytes, str or an async iterable of bytes"


def _form_value(key: str, value: object) -> str | bytes:
    """One form value as text, converted like a query parameter."""
    if isinstance(value, (str, bytes)):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError(
        f"Form field {key!r} must be str, bytes, int, float, bool or None "
        f"(or a list of those) in data=, not {describe(value)}"
    )


def _form_pairs(data: RequestData) -> list[tuple[str, str | bytes]]:
    pairs: list[tuple[str, str | bytes]] = []
    for key, value in data.items():
        if isinstance(value, (list, tuple)):
            pairs.extend((key, _form_value(key, item)) for item in value)
        else:
            pairs.append((key, _form_value(key, value)))
    return pairs


def _encode_form(data: RequestData) -> tuple[dict[bytes, bytes], _Body]:
    if not isinstance(data, Mapping):
        raise TypeError(
            f"data= must be a mapping of form fields (or bytes or str), not {describe(data)}"
        )
    if not data:
        return {}, b""
    body = urlencode(_form_pairs(data)).encode("ascii")
    return {**_sized(body), b"Content-Type": _FORM}, body


def _encode_multipart(
    data: RequestData | None, files: RequestFiles, boundary: bytes | None
) -> tuple[dict[bytes, bytes], _Body]:
    if data is not None and not isinstance(data, Mapping):
        raise TypeError(
            f"data= given with files= must be a mapping of form fields, not {describe(data)}"
        )
    for key in data or ():
        if not isinstance(key, str):
            raise TypeError(f"Form field names in data= must be str, not {describe(key)}")
    stream = encode_multipart(_form_pairs(data or {}), files, boundary)
    headers = {b"Content-Type": stream.content_type}
    if stream.content_length is None:
        headers[b"Transfer-Encoding"] = b"chunked"
    else:
        headers[b"Content-Length"] = str(stream.content_length).encode("ascii")
    return headers, stream


def _encode_json(json: Any) -> tuple[dict[bytes, bytes], _Body]:
    try:
        text = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except TypeError as exc:
        raise TypeError(f"json must be JSON serializable: {exc}") from exc
    except ValueError as exc:  # NaN or infinity, or a circular reference
        raise ValueError(f"json cannot be sent: {exc}") from exc
    body = text.encode("utf-8")
    return {**_sized(body), b"Content-Type": _JSON}, body


def checked_chunk(chunk: object, what: str = "request") -> bytes | bytearray | memoryview:
    """`chunk` if it is bytes-like; a TypeError naming what the body yielded otherwise.

    (`bytes(chunk)` would turn an int into that many zero bytes, and a str into an error
    that names nothing.)
    """
    if not isinstance(chunk, (bytes, bytearray, memoryview)):
        raise TypeError(f"A {what} body stream must yield bytes, got {type(chunk).__name__}")
    return chunk


async def close_abandoned(iterator: AsyncIterator[bytes]) -> None:
    """Finalize an abandoned body iterator, bounded and without raising.

    Under an already expired shield: a `finally` that awaits is cut short instead of
    blocking, and nothing it raises can replace the exception on its way out.
    """
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    with trio.CancelScope(shield=True, deadline=-math.inf):
        try:
            await aclose()
        except Exception:
            pass

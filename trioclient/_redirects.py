"""Redirects as a pure step: the next `Request` from a request and its redirect response.

No I/O happens here; the client loop sends what this returns, so the rules (method rewrite,
body dropping, credentials and cookies stripped across origins, relative Location) are
unit-testable. The Cookie header the client set is dropped on every hop: the client's jar
sets it again for the next URL (`_cookies.apply_cookies`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._content import is_replayable
from ._exceptions import InvalidURL, RemoteProtocolError, UnsupportedProtocol
from ._request import Request
from ._urls import URL

if TYPE_CHECKING:
    from ._response import Response

__all__ = ["redirect_request"]

_BODY_HEADERS = ("content-length", "content-type", "transfer-encoding")


def _redirect_method(method: str, status: int) -> str:
    if status == 303 and method != "HEAD":
        return "GET"
    # Browsers turn a POST into a GET on 301 and 302, and servers rely on it.
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def _redirect_url(request: Request, response: Response) -> URL:
    location = response.headers["location"]
    try:
        url = URL(location)
        if url.scheme and url.scheme not in ("http", "https"):
            raise UnsupportedProtocol(
                f"Redirect to unsupported scheme {url.scheme!r} refused", request=request
            )
        if url.is_relative_url:  # may still be unusable: "//" resolves to a URL with no host
            url = request.url.join(url)
    except InvalidURL as exc:
        raise RemoteProtocolError(
            f"Invalid URL in Location header: {exc}", request=request
        ) from None
    if request.url.fragment and not url.fragment:
        url = url.copy_with(fragment=request.url.fragment)
    return url


def _same_origin(a: URL, b: URL) -> bool:
    return a._origin_key == b._origin_key


def redirect_request(request: Request, response: Response) -> Request:
    """The request to send next for a redirect `response` (it must have a Location)."""
    method = _redirect_method(request.method, response.status_code)
    url = _redirect_url(request, response)
    headers = request.headers.copy()
    same_origin = _same_origin(url, request.url)
    if request._auto_cookie is not None and headers.get("cookie") == request._auto_cookie:
        # The client chose these cookies for the last URL: the jar chooses again for the
        # next one, with whatever this response's Set-Cookie changed.
        headers.pop("cookie", None)
    if not same_origin:
        # Credentials go only to the origin they were given for, except for the safe
        # upgrade of the same host from http on its default port to https on its default
        # port (another port may be another service).
        upgrade = (
            request.url.scheme == "http"
            and url.scheme == "https"
            and request.url.raw_host == url.raw_host
            and request.url.port is None
            and url.port is None
        )
        if not upgrade:
            headers.pop("authorization", None)
            headers.pop("proxy-authorization", None)
        headers.pop("host", None)
        headers.pop("cookie", None)
    body = request.stream
    if method != request.method and method == "GET":
        for name in _BODY_HEADERS:
            headers.pop(name, None)
        body = b""
    elif not is_replayable(body):
        # A streamed body cannot be sent twice; 307/308 need it resent. (A multipart body
        # of seekable files can: it rewinds them.)
        raise RemoteProtocolError(
            f"Cannot follow a {response.status_code} redirect: the request body was a "
            "stream that has already been sent. Read it into bytes first to allow this "
            "(or, for files=, pass seekable files).",
            request=request,
        )
    next_request = Request(
        method, url, headers=headers, stream=body, extensions=dict(request.extensions)
    )
    if same_origin:
        # Per-request cookies were given for one origin, like credentials.
        next_request._cookies = request._cookies
    return next_request

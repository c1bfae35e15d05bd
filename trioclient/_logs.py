"""Logging, as httpx does it: one INFO line per request on `trioclient`, DEBUG lines for
connection events on `trioclient.pool` and `trioclient.http2`.

Two rules. Credentials never reach a log line: URLs are logged through `redact_url` (the
userinfo becomes `[secure]`), and no line carries a header value. And logging that is off
costs next to nothing: every call site asks `isEnabledFor` first (a dict lookup in the
logger's cache), so no argument is formatted, no URL rendered, for a level nobody listens to.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._request import Request
    from ._response import Response
    from ._urls import URL

__all__ = ["DEBUG", "INFO", "http2_logger", "log_request", "logger", "pool_logger", "redact_url"]

logger = logging.getLogger("trioclient")
pool_logger = logging.getLogger("trioclient.pool")  # connect, TLS, reuse, close
http2_logger = logging.getLogger("trioclient.http2")  # streams opened and reset, GOAWAY

INFO = logging.INFO
DEBUG = logging.DEBUG


def redact_url(url: URL) -> str:
    """The URL as text, with any `user:password@` replaced by `[secure]@`."""
    if not url.userinfo:
        return str(url)
    scheme, sep, rest = str(url.copy_with(userinfo=b"")).partition("://")
    return f"{scheme}{sep}[secure]@{rest}"


def log_request(request: Request, response: Response) -> None:
    """httpx's line: `HTTP Request: GET http://... "HTTP/1.1 200 OK"` (caller checks INFO)."""
    logger.info(
        'HTTP Request: %s %s "%s %d %s"',
        request.method,
        redact_url(request.url),
        response.http_version,
        response.status_code,
        response.reason_phrase,
    )

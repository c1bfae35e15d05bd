"""What one crawl fetch may cost (`FetchLimits`) and what it produced (`FetchResult`).

Both are plain frozen values shared by every part of the toolkit: `Politeness.fetch`
takes the limits and returns a result, `fetch_all` streams results, the crawler's sinks
write them. A result never holds a `Response` (nor its connection): only the facts a
crawler keeps, so results can be buffered, queued and serialised freely.

Errors are data here, not exceptions: a crawl meets broken servers all the time, and one
of them must not end it. `error` is a short kind (the trioclient exception's class name,
or one of the toolkit's own kinds below) that a program can branch on and a summary can
count; `error_message` is the human-readable text.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from .._config import describe

__all__ = [
    "CONTENT_TYPE_NOT_ALLOWED",
    "DEFAULT_CONTENT_TYPES",
    "RESPONSE_TOO_LARGE",
    "ROBOTS_DISALLOWED",
    "FetchLimits",
    "FetchResult",
]

#: The toolkit's own error kinds (beside trioclient's exception class names).
ROBOTS_DISALLOWED = "RobotsDisallowed"
CONTENT_TYPE_NOT_ALLOWED = "ContentTypeNotAllowed"
RESPONSE_TOO_LARGE = "ResponseTooLarge"  # also trioclient.ResponseTooLarge's name, on purpose

#: What a crawler reads by default: pages and plain text.
DEFAULT_CONTENT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """What one fetch from a server nobody vouches for may cost.

    Args:
        max_body: the most body bytes (after content decoding) kept; a longer body is an
            error "ResponseTooLarge" (the client's `max_response_size`, so a
            `Content-Length` above it is refused before reading, and a compression bomb
            is stopped at the cap). None: no cap (only for servers you trust).
        content_types: the media types whose bodies are read (compared without
            parameters, case-insensitively); any other, or none, is an error
            "ContentTypeNotAllowed" and the body is not read (an empty body is never
            refused). None: any type.
        total_timeout: seconds for the whole fetch from its first attempt: every attempt,
            the waits between retries and redirect hops, the body. On Trio's clock. None:
            only the client's own timeouts bound it.
        max_redirects: redirect hops followed (each one checked against robots.txt and
            paced like any request); 0 returns a 3xx response as the result.

    The defaults suit crawling: 16 MiB (docs/limits.md says why), HTML and text only, a
    minute per fetch.
    """

    max_body: int | None = 16 * 1024 * 1024
    content_types: tuple[str, ...] | None = DEFAULT_CONTENT_TYPES
    total_timeout: float | None = 60.0
    max_redirects: int = 10

    def __post_init__(self) -> None:
        if self.max_body is not None and (
            isinstance(self.max_body, bool) or not isinstance(self.max_body, int)
        ):
            raise TypeError(
                f"FetchLimits max_body must be an int >= 0 or None, not {describe(self.max_body)}"
            )
        if self.max_body is not None and self.max_body < 0:
            raise ValueError(f"FetchLimits max_body must be >= 0, not {self.max_body}")
        types = self.content_types
        if types is not None:
            if isinstance(types, str) or not isinstance(types, tuple):
                raise TypeError(
                    "FetchLimits content_types must be a tuple of media types or None, not "
                    f"{describe(types)}"
                )
            for kind in types:
                if not isinstance(kind, str) or "/" not in kind:
                    raise ValueError(
                        f"FetchLimits content_types holds {kind!r}, not a media type like "
                        "'text/html'"
                    )
            object.__setattr__(self, "content_types", tuple(t.strip().lower() for t in types))
        total = self.total_timeout
        if total is not None:
            if isinstance(total, bool) or not isinstance(total, (int, float)):
                raise TypeError(
                    "FetchLimits total_timeout must be a number of seconds or None, not "
                    f"{describe(total)}"
                )
            if not (total > 0 and math.isfinite(total)):
                raise ValueError(
                    f"FetchLimits total_timeout must be a finite number of seconds > 0, not "
                    f"{total!r}"
                )
        redirects = self.max_redirects
        if isinstance(redirects, bool) or not isinstance(redirects, int) or redirects < 0:
            raise ValueError(f"FetchLimits max_redirects must be an int >= 0, not {redirects!r}")

    def allows(self, content_type: str | None) -> bool:
        """Whether a response with this Content-Type header value may be read."""
        if self.content_types is None:
            return True
        if not content_type:
            return False
        return content_type.split(";", 1)[0].strip().lower() in self.content_types


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one fetch: a response's facts, or an error's kind and message.

    A response with any status is a result without an error (a 404 is an answer, not a
    failure); `ok` says whether it was a 2xx page. When the error came after the response
    head (a body too large, a content type not allowed, a read timeout) `status` and
    `headers` are still there, `content` is None.
    """

    url: str
    final_url: str | None
    status: int | None
    headers: list[tuple[str, str]] | None
    content: bytes | None
    size: int
    sha256: str | None
    elapsed: float
    error: str | None
    error_message: str | None

    @property
    def ok(self) -> bool:
        """True for a 2xx response whose body was read."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @classmethod
    def success(
        cls,
        url: str,
        final_url: str,
        status: int,
        headers: list[tuple[str, str]],
        content: bytes,
        elapsed: float,
    ) -> FetchResult:
        """A response whose body was read (size and digest computed here)."""
        return cls(
            url=url,
            final_url=final_url,
            status=status,
            headers=headers,
            content=content,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            elapsed=elapsed,
            error=None,
            error_message=None,
        )

    @classmethod
    def failure(
        cls,
        url: str,
        error: str,
        message: str,
        *,
        final_url: str | None = None,
        status: int | None = None,
        headers: list[tuple[str, str]] | None = None,
        size: int = 0,
        elapsed: float = 0.0,
    ) -> FetchResult:
        """A fetch that ended in `error` (a kind), perhaps after a response head."""
        return cls(
            url=url,
            final_url=final_url,
            status=status,
            headers=headers,
            content=None,
            size=size,
            sha256=None,
            elapsed=elapsed,
            error=error,
            error_message=message,
        )

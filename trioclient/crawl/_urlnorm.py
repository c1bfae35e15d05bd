"""URL normalisation for de-duplication: one key per page, however a link spells it.

`normalize_url` applies the safe normalisations of RFC 3986 section 6.2.2 and the usual
crawler ones, on top of what `trioclient.URL` already does when it parses (lower-case
scheme and host, IDNA host to punycode, default port dropped, dot segments removed,
characters that may not appear raw percent-encoded):

* percent-encodings upper-cased (``%2f`` -> ``%2F``) and those of unreserved characters
  (letters, digits, ``-._~``) decoded (``%7E`` -> ``~``), then dot segments removed again
  (``/a/%2E%2E/b`` -> ``/b``);
* an empty path becomes ``/``; an empty query (a bare ``?``) and the fragment are dropped
  (the fragment never reaches the server);
* optionally (``sort_query=True``) the query's ``&``-separated parameters are sorted and
  empty ones dropped: ``?b=2&a=1`` -> ``?a=1&b=2``. Off by default, because a server may
  care about the order.

Only ``http`` and ``https`` URLs are crawlable; anything else is an `InvalidURL`, like a
URL `trioclient.URL` cannot parse. Everything else is kept as written: the case of the path
and query, ``+`` in the query (``+`` and ``%20`` differ outside form encoding), userinfo,
a trailing dot in the host, a trailing slash.

Rejected alternative: w3lib's ``canonicalize_url`` (Scrapy's): it also decodes and
re-encodes the query through ``urlencode``, which changes what the server receives for
legal but unusual queries, and it is another dependency for 80 lines.
"""

from __future__ import annotations

import re

from .._exceptions import InvalidURL
from .._urlparse import remove_dot_segments
from .._urls import URL

__all__ = ["normalize_url"]

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def _normalize_escape(match: re.Match[str]) -> str:
    byte = int(match.group(1), 16)
    return chr(byte) if byte in _UNRESERVED else "%" + match.group(1).upper()


def _normalize_escapes(text: str) -> str:
    return _ESCAPE.sub(_normalize_escape, text)


def normalize_url(
    url: str | URL, *, base: str | URL | None = None, sort_query: bool = False
) -> str:
    """The normalised absolute form of ``url`` (resolved against ``base`` if given).

    Equivalent spellings of one http(s) URL give the same string, and normalising a
    normalised URL changes nothing. Raises `trioclient.InvalidURL` for a URL that cannot be
    parsed, has no host, or is not http/https.
    """
    parsed = URL(base).join(url) if base is not None else URL(url)
    if parsed.scheme not in ("http", "https"):
        raise InvalidURL(f"Only http and https URLs can be crawled, not {str(parsed)!r}.")
    if not parsed.raw_host:  # pragma: no cover - URL() refuses an http(s) URL without a host
        raise InvalidURL(f"Missing host in URL {str(parsed)!r}.")
    raw = parsed.raw_path.decode("ascii")
    path, _, query = raw.partition("?")
    path = remove_dot_segments(_normalize_escapes(path)) or "/"
    if not path.startswith("/"):  # pragma: no cover - URL() always gives an absolute path
        path = "/" + path
    query = _normalize_escapes(query)
    if sort_query:
        query = "&".join(sorted(part for part in query.split("&") if part))
    userinfo = parsed.userinfo.decode("ascii")
    netloc = (userinfo + "@" if userinfo else "") + parsed.netloc.decode("ascii")
    return f"{parsed.scheme}://{netloc}{path}" + (f"?{query}" if query else "")

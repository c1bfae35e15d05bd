"""Links from HTML, for the crawler: ``<a href>`` resolved against the page (or its
``<base href>``), normalised (`_urlnorm.py`), de-duplicated, in document order.

The parser is selectolax's binding of lexbor (the ``[crawl]`` extra): a C HTML5 parser that
follows the WHATWG parsing algorithm, so it reads broken markup the way browsers do, parses
a typical page in well under a millisecond, and is maintained. Rejected: the stdlib's
``html.parser`` (not HTML5: unclosed or misnested tags and ``<base>`` handling differ from
browsers, and it is several times slower), BeautifulSoup (a wrapper whose fast backend is
lxml, a much larger dependency), lxml (libxml2's HTML parser is HTML4 and has had a steady
run of security fixes).

What is followed, and why:

* ``<a href>`` and ``<area href>``; the href is stripped of surrounding whitespace and of
  tabs and newlines inside (as browsers do); empty ones, ``#fragment``-only ones and
  non-http(s) schemes (mailto:, javascript:, data:) are dropped, as is anything
  `trioclient.URL` cannot parse.
* ``rel="nofollow"`` links, and every link of a page whose ``<meta name="robots">`` says
  ``nofollow``, are dropped unless ``follow_nofollow=True``.
* ``<link rel="canonical">`` is added when ``canonical=True``.
* the first ``<base href>`` in the document sets the base (HTML's rule), itself resolved
  against the page URL.

Bounded: at most ``max_links`` links per page (the rest are ignored); the page itself is
bounded by the fetch's ``max_body``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .._exceptions import InvalidURL
from ._urlnorm import normalize_url

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser

__all__ = ["extract_links"]

DEFAULT_MAX_LINKS = 10_000
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)


def _parser(html: str | bytes) -> LexborHTMLParser:
    try:
        from selectolax.lexbor import LexborHTMLParser
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise ImportError(
            "link extraction needs selectolax: pip install trioclient[crawl]"
        ) from exc
    return LexborHTMLParser(html)


def decode_html(content: bytes, content_type: str | None) -> str:
    """The page's text: the Content-Type charset if it names one Python knows, else UTF-8
    (the HTML default and a superset of ASCII, which is what URLs are), errors replaced."""
    match = _CHARSET.search(content_type or "")
    if match:
        try:
            return content.decode(match.group(1), errors="replace")
        except LookupError:
            pass
    return content.decode("utf-8", errors="replace")


def _rel(value: str | None) -> set[str]:
    return set((value or "").lower().split())


def _resolve(href: str | None, base: str, sort_query: bool) -> str | None:
    if not href:
        return None
    href = _TAB_OR_NEWLINE.sub("", href.strip())
    if not href or href.startswith("#"):
        return None
    try:
        return normalize_url(href, base=base, sort_query=sort_query)
    except InvalidURL:
        return None


def extract_links(
    html: str | bytes,
    page_url: str,
    *,
    content_type: str | None = None,
    follow_nofollow: bool = False,
    canonical: bool = False,
    sort_query: bool = False,
    max_links: int = DEFAULT_MAX_LINKS,
) -> list[str]:
    """The normalised http(s) URLs a page links to, each once, in document order.

    ``html`` is the page's body (bytes are decoded with ``content_type``'s charset, else
    UTF-8); ``page_url`` is the URL it was fetched from (after redirects). Needs the
    ``[crawl]`` extra (selectolax); see the module docstring for what is followed.
    """
    if max_links < 0:
        raise ValueError(f"max_links must be >= 0, not {max_links!r}")
    text = decode_html(html, content_type) if isinstance(html, bytes) else html
    tree = _parser(text)
    base = page_url
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        base = _resolve(base_node.attributes.get("href"), page_url, False) or page_url
    nofollow_page = False
    for meta in tree.css("meta[name]"):
        if (meta.attributes.get("name") or "").strip().lower() == "robots":
            tokens = {t.strip() for t in (meta.attributes.get("content") or "").lower().split(",")}
            nofollow_page |= bool(tokens & {"nofollow", "none"})
    links: dict[str, None] = {}
    skip_anchors = nofollow_page and not follow_nofollow
    nodes = [] if skip_anchors else tree.css("a[href], area[href]")
    if canonical:
        nodes += [
            node
            for node in tree.css("link[rel][href]")
            if "canonical" in _rel(node.attributes.get("rel"))
        ]
    for node in nodes:
        if len(links) >= max_links:
            break
        attributes = node.attributes
        if not follow_nofollow and "nofollow" in _rel(attributes.get("rel")) and node.tag != "link":
            continue
        url = _resolve(attributes.get("href"), base, sort_query)
        if url is not None:
            links[url] = None
    return list(links)

"""A generated website to crawl on loopback: what ``trioclient demo`` serves and what the
crawler's tests and benchmarks crawl. A plain ASGI app with no dependency beyond Trio.

The site is a pure function of its parameters (no randomness at serve time), so a crawl of
it can be checked exactly. Page ``i`` of ``pages`` lives at ``/page/{i}``; ``/`` is page 0.
Every page links to its children ``/page/{8i+1}`` ... ``/page/{8i+8}`` (a tree, so the
whole site is reachable within about log8(pages) links) and to three other pages chosen by
a hash of ``i`` (so most pages are linked many times: de-duplication matters). The links
are spelled in varied but equivalent ways (relative, ``../``, absolute, scheme-relative,
with a fragment, upper-case host) so URL normalisation matters too.

Some pages are special, by ``i`` modulo a few primes (see `DemoSite.kind`):

* slow: the response waits ``slow_seconds`` before its headers;
* broken: status 500; or a truncated body (the connection is closed mid-body);
* links to: ``/r/{i}`` (a 302 redirect to ``/moved/{i}``, reachable only that way),
  ``/missing/{i}`` (404), ``/private/{i}`` (forbidden by robots.txt's one ``Disallow``),
  ``/nofollow/{i}`` (with ``rel="nofollow"``), ``/data/{i}.json`` (not HTML), another host
  name of this server (``localhost``) and an off-site host (``example.invalid``).

``hits`` counts the requests per path (bounded: paths the site never links to are counted
under ``"<other>"``), so a test can check that every URL was fetched once.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from html import escape
from typing import Any

import trio

__all__ = ["DemoSite"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n"
FANOUT = 8
_LOREM = (
    "Trio crawls this page on loopback. Structured concurrency keeps every worker accounted "
    "for, and every lease comes back when a fetch is cancelled. "
)


class DemoSite:
    """The demo website as an ASGI application (see the module docstring).

    Args:
        pages: how many ``/page/{i}`` pages (>= 1).
        slow_seconds: how long a slow page waits before answering.
        seed: changes which pages the cross links point to.
        truncate: serve the truncated pages truncated (False: whole). An app that stops
            mid-body is an app bug to `trioclient.ASGITransport` (a RuntimeError, not a
            fetch error), so crawl the site in-process with ``truncate=False``.
    """

    def __init__(
        self, pages: int = 2000, *, slow_seconds: float = 0.5, seed: int = 0, truncate: bool = True
    ) -> None:
        if pages < 1:
            raise ValueError(f"a demo site needs at least one page, not {pages!r}")
        self.pages = pages
        self.slow_seconds = slow_seconds
        self.seed = seed
        self.truncate = truncate
        self.hits: Counter[str] = Counter()

    # --- the site's shape (pure) -------------------------------------------------------

    @staticmethod
    def kind(i: int) -> str:
        """What page ``i`` does: "slow", "error" (500), "truncated" or "ok"."""
        if i % 101 == 7:
            return "error"
        if i % 103 == 11:
            return "truncated"
        if i % 97 == 13:
            return "slow"
        return "ok"

    def _hash(self, *parts: int) -> int:
        data = ",".join(map(str, (self.seed, *parts))).encode()
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")

    def children(self, i: int) -> list[int]:
        """The tree links of page ``i``."""
        return [c for c in range(FANOUT * i + 1, FANOUT * i + FANOUT + 1) if c < self.pages]

    def cross_links(self, i: int) -> list[int]:
        """The three hashed links of page ``i`` (may repeat, or point at ``i`` itself)."""
        return [self._hash(i, k) % self.pages for k in range(3)]

    def page_links(self, i: int) -> list[str]:
        """Every page ``/page/{j}`` that page ``i`` links to (paths, normalised)."""
        return [f"/page/{j}" for j in self.children(i) + self.cross_links(i)]

    def extra_links(self, i: int) -> dict[str, str]:
        """Page ``i``'s special links: path (or absolute URL) -> what it is."""
        extra: dict[str, str] = {}
        if i % 50 == 3:
            extra[f"/r/{i}"] = "redirect"
        if i % 60 == 5:
            extra[f"/private/{i}"] = "robots"
        if i % 70 == 9:
            extra[f"/missing/{i}"] = "missing"
        if i % 40 == 1:
            extra[f"/nofollow/{i}"] = "nofollow"
        if i % 90 == 4:
            extra[f"/data/{i}.json"] = "data"
        if i % 80 == 2:
            extra["//localhost:{port}/page/" + str(i)] = "other-host"
            extra[f"http://example.invalid/page/{i}"] = "off-site"
        return extra

    # --- rendering ---------------------------------------------------------------------

    def _spell(self, i: int, j: int, host: str) -> str:
        """Link to ``/page/{j}`` from page ``i``, in one of several equivalent spellings."""
        style = self._hash(i, j, 99) % 6
        if style == 0:
            return f"/page/{j}"
        if style == 1:
            return f"{j}"  # relative to /page/{i}
        if style == 2:
            return f"../page/./{j}#top"
        if style == 3:
            return f"http://{host.upper()}/page/{j}"
        if style == 4:
            return f"//{host}/page/{j}?"
        return f"/page/%{ord(str(j)[0]):X}{str(j)[1:]}"  # a percent-encoded digit

    def render_page(self, i: int, host: str) -> bytes:
        """The HTML of page ``i`` as served to a request for ``host``."""
        port = host.rpartition(":")[2] if ":" in host else "80"
        items = [
            f'<li><a href="{escape(self._spell(i, j, host))}">page {j}</a></li>'
            for j in self.children(i) + self.cross_links(i)
        ]
        for target, what in self.extra_links(i).items():
            rel = ' rel="nofollow"' if what == "nofollow" else ""
            href = target.replace("{port}", port)
            items.append(f'<li><a href="{escape(href)}"{rel}>{what}</a></li>')
        if i == 0:
            items.append('<li><a href="mailto:demo@example.invalid">mail</a></li>')
            items.append('<li><a href="javascript:void(0)">script</a></li>')
            items.append('<li><a href="/about.txt">about</a></li>')
        text = _LOREM * (1 + self._hash(i, 7) % 20)
        html = (
            "<!doctype html>\n<html><head><meta charset='utf-8'>"
            f"<title>Demo page {i}</title>"
            f'<link rel="canonical" href="/page/{i}">'
            # Page 0 is also served at "/": the base makes its relative links resolve the same.
            + ('<base href="/page/">' if i == 0 else "")
            + "</head>\n"
            f"<body><h1>Demo page {i}</h1><p>{text}</p>\n<ul>\n" + "\n".join(items) + "\n</ul>"
            "</body></html>\n"
        )
        return html.encode()

    # --- ASGI --------------------------------------------------------------------------

    def _count(self, path: str) -> None:
        head, _, rest = path[1:].partition("/")
        known = path in ("/", "/robots.txt", "/about.txt") or (
            head in ("page", "r", "moved", "missing", "private", "nofollow", "data")
            and rest.isascii()
            and rest.removesuffix(".json").isdigit()
        )
        self.hits[path if known else "<other>"] += 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope (``http``, or ``lifespan``)."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        self._count(path)
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
        await self._respond(path, host, send)

    async def _respond(self, path: str, host: str, send: Send) -> None:
        head, _, rest = path[1:].partition("/")
        number = int(rest) if rest.isascii() and rest.isdigit() and len(rest) < 10 else -1
        if path == "/":
            head, number = "page", 0
        if path == "/robots.txt":
            await _send(send, 200, ROBOTS_TXT, "text/plain")
        elif path == "/about.txt":
            await _send(send, 200, b"The trioclient demo site.\n", "text/plain; charset=utf-8")
        elif head == "page" and 0 <= number < self.pages:
            await self._page(number, host, send)
        elif head == "r" and number >= 0:
            await _send(send, 302, b"", "text/plain", [(b"location", f"/moved/{number}")])
        elif head in ("moved", "private", "nofollow") and number >= 0:
            body = f"<!doctype html><title>{head} {number}</title><p>{head}".encode()
            await _send(send, 200, body, "text/html; charset=utf-8")
        elif head == "data" and rest.endswith(".json"):
            await _send(send, 200, b'{"demo": true}', "application/json")
        else:
            await _send(send, 404, b"<!doctype html><title>Not found</title>", "text/html")

    async def _page(self, i: int, host: str, send: Send) -> None:
        kind = self.kind(i)
        if kind == "slow":
            await trio.sleep(self.slow_seconds)
        if kind == "error":
            await _send(send, 500, b"<!doctype html><title>Server error</title>", "text/html")
            return
        body = self.render_page(i, host)
        if kind == "truncated" and self.truncate:
            await send(_start(200, len(body), "text/html; charset=utf-8"))
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            # Returning before the end of a body with a Content-Length: the server closes
            # the connection (quietly, unlike raising, which logs a traceback).
            return
        await _send(send, 200, body, "text/html; charset=utf-8")


def _start(
    status: int, length: int, content_type: str, extra: Sequence[tuple[bytes, str]] = ()
) -> dict[str, Any]:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(length).encode())]
    headers += [(name, value.encode()) for name, value in extra]
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _send(
    send: Send, status: int, body: bytes, content_type: str, extra: Sequence[tuple[bytes, str]] = ()
) -> None:
    await send(_start(status, len(body), content_type, extra))
    await send({"type": "http.response.body", "body": body})

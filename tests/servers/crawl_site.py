"""A raw HTTP/1.1 "site" for the crawl toolkit's tests, run inside the test's own Trio run.

Theory of operation: :class:`Site` is a :func:`servers.raw.serve_raw` handler that answers
each request by its path from a routes table and records what it saw: the Trio time of
every request (so rate limits are asserted on ``MockClock``, in virtual time), its path and
headers, and how many requests it was answering at once (so per-host caps are counted, not
timed). A route is

* ``bytes``: that response every time;
* a list of ``bytes``: the n-th request gets the n-th item (the last one repeated);
* :class:`Slow`: a response sent after a delay (Trio clock), to keep requests in flight;
* :data:`STALL`: read the request, answer nothing until the client goes away.

Unknown paths are 404 (so a missing robots.txt is "no rules"). Every response is
keep-alive; answering at once and in the test's own run keeps MockClock's autojump honest
(the clock only jumps when every task waits, and then to a deadline the test chose).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from .raw import BufferedStream, read_request, response_bytes

__all__ = ["STALL", "Seen", "Site", "Slow", "page", "robots", "status"]

STALL = "stall"


@dataclass(frozen=True)
class Slow:
    """A response sent `delay` seconds (Trio clock) after the request arrived."""

    delay: float
    response: bytes


Route = bytes | Sequence[bytes] | Slow | str


@dataclass(frozen=True)
class Seen:
    """One request the site read."""

    time: float
    path: str
    headers: dict[str, str]


def page(body: bytes = b"<html>ok</html>", content_type: str = "text/html") -> bytes:
    """A 200 response with that body and Content-Type."""
    return response_bytes(200, [("Content-Type", content_type)], body)


def robots(text: str) -> bytes:
    """A robots.txt response."""
    return response_bytes(200, [("Content-Type", "text/plain")], text.encode())


def status(code: int, *headers: tuple[str, str], body: bytes = b"") -> bytes:
    """A response with that status and headers."""
    return response_bytes(code, list(headers), body)


@dataclass
class Site:
    """The handler; see the module docstring."""

    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    connections: int = 0

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def times(self, path: str | None = None) -> list[float]:
        return [s.time for s in self.seen if path is None or s.path == path]

    async def __call__(self, stream: BufferedStream) -> None:
        self.connections += 1
        while True:
            try:
                head, _ = await read_request(stream)
            except trio.BrokenResourceError:
                return  # the client closed an idle connection
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            count = sum(1 for s in self.seen if s.path == path)
            self.seen.append(Seen(trio.current_time(), path, headers))
            route = self.routes.get(path.split("?")[0])
            if route is None:
                route = status(404, ("Content-Type", "text/plain"), body=b"not found")
            if isinstance(route, list | tuple):
                route = route[min(count, len(route) - 1)]
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            try:
                if route == STALL:
                    try:
                        while await stream.receive_some():
                            pass
                    except trio.BrokenResourceError:
                        pass
                    return
                if isinstance(route, Slow):
                    await trio.sleep(route.delay)
                    route = route.response
                assert isinstance(route, bytes)
                await stream.send_all(route)
            finally:
                self.active -= 1

"""The crawler: workers that lease URLs from a frontier, fetch them politely, follow links.

Theory of operation
-------------------
`Crawler.run` adds the seeds to the frontier, then runs ``workers`` tasks in a nursery.
Each worker loops:

1. take one lease from the frontier (a slot of ``max_pages`` is reserved first, so the
   workers together never start more than ``max_pages`` fetches);
2. fetch its URL through `Politeness.fetch` (robots.txt, per-host slots and rate, retries,
   bounded body) while a sibling task renews the lease every third of ``lease_seconds``;
   a renewal that fails means the lease expired and the URL may be another worker's now,
   so the fetch is cancelled and its result dropped (``stats.leases_lost``);
3. from a 2xx HTML page at depth < ``max_depth`` on an allowed host, extract the links
   (`extract_links`), keep those that pass the filters (allowed domains, ``include`` and
   ``exclude`` regexes) and add them to the frontier at depth + 1;
4. write the result to every sink, count it in ``stats``, and mark the lease done, all
   shielded from cancellation (for at most 30 s, else `trio.TooSlowError`), so that a
   cancel never separates a written result from its ``done``.

The order of 3 and 4 matters for a crawl shared by several processes: the links are in
the frontier before the URL is done, so a crash at any point loses nothing (it may
re-fetch a URL and write its result twice: output is at-least-once when a worker dies,
exactly-once among live workers).

When the frontier has nothing to hand out, a worker waits for another worker of this
process to add links or finish a page (an event), or at most a poll interval (10 ms
doubling to 1 s) for other processes sharing the frontier. It stops when the frontier is
finished (nothing queued, nothing leased: every leased page's links are in by then) or
``max_pages`` fetches have been started.

Cancellation: a worker holding a lease when it is cancelled (the caller's cancel scope,
Ctrl-C, an error in a sibling) releases it back to the frontier, shielded and bounded by
5 s, before the cancellation goes on; so a cancelled crawl leaves every URL either done or
queued, never leased, and can be resumed with the same frontier.

Bounds: ``workers`` fetches at once; links per page (``max_links_per_page``); the
frontier's seen set grows with the discovered URLs (see `_frontier.py`), which depth,
domain and ``max_pages`` bound; `CrawlStats` keeps at most 10,000 hosts.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Sequence

import trio

from .._client import Client
from .._exceptions import InvalidURL
from .._urls import URL
from ._extract import DEFAULT_MAX_LINKS, extract_links
from ._fetch import FetchLimits, FetchResult
from ._frontier import CrawlItem, Frontier, Lease, MemoryFrontier, check_lease_seconds
from ._output import ResultSink
from ._polite import Politeness
from ._stats import CrawlStats
from ._urlnorm import normalize_url

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["Crawler"]

_MIN_POLL = 0.01
_MAX_POLL = 1.0
_RELEASE_TIMEOUT = 5.0
_FINISH_SECONDS = 30.0
_MONITOR_INTERVAL = 0.5
_HTML_TYPES = ("text/html", "application/xhtml+xml")


def _host(url: str) -> str:
    return URL(url).host


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _domain(text: str) -> str:
    """A domain as `URL.host` spells hosts (lower case, IDNA decoded), without a dot."""
    text = text.strip().lstrip(".")
    try:
        return URL(f"http://{text}/").host
    except InvalidURL:
        raise ValueError(f"allowed_domains holds {text!r}, which is not a host name") from None


class Crawler:
    """Crawl from ``seeds``, following links, with ``workers`` tasks sharing one frontier.

    Args:
        client: the client every fetch goes through (the caller opens and closes it).
        seeds: the start URLs (normalised; an unparseable one is an InvalidURL here).
        frontier: the queue of URLs (default: a new `MemoryFrontier`); a shared
            `RedisFrontier` lets several processes crawl together. The caller closes it.
        politeness: robots.txt, per-host concurrency and rate (default: `Politeness()`,
            one request a second per host).
        limits: per-fetch limits (`FetchLimits`).
        max_depth: links followed from a seed (0: the seeds only).
        allowed_domains: hosts whose links are followed, subdomains included (default:
            the seeds' hosts; an empty iterable: any host).
        include: regexes searched in each link's URL; if any are given, a link must match
            one of them.
        exclude: regexes searched in each link's URL; a link must match none of them.
        max_pages: stop after starting this many fetches (in this process); None: no cap.
        workers: fetches at once.
        sinks: where each result is written (the caller closes them).
        lease_seconds: how long a lease lasts between renewals.
        follow_nofollow: follow ``rel="nofollow"`` links (`extract_links`).
        canonical: also follow ``<link rel="canonical">`` (`extract_links`).
        sort_query: sort query parameters when normalising (`normalize_url`).
        max_links_per_page: links taken from one page, at most (`extract_links`).

    ``stats`` is live (`CrawlStats`); `run` returns it too.
    """

    def __init__(
        self,
        client: Client,
        seeds: Iterable[str],
        *,
        frontier: Frontier | None = None,
        politeness: Politeness | None = None,
        limits: FetchLimits = FetchLimits(),  # noqa: B008 (immutable)
        max_depth: int = 2,
        allowed_domains: Iterable[str] | None = None,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        max_pages: int | None = None,
        workers: int = 16,
        sinks: Sequence[ResultSink] = (),
        lease_seconds: float = 60.0,
        follow_nofollow: bool = False,
        canonical: bool = False,
        sort_query: bool = False,
        max_links_per_page: int = DEFAULT_MAX_LINKS,
    ) -> None:
        if isinstance(seeds, str):
            raise TypeError("seeds must be an iterable of URLs, not one str (wrap it in a list)")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, not {workers!r}")
        if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0:
            raise ValueError(f"max_depth must be an int >= 0, not {max_depth!r}")
        if max_pages is not None and (
            isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 0
        ):
            raise ValueError(f"max_pages must be an int >= 0 or None, not {max_pages!r}")
        check_lease_seconds(lease_seconds)
        self.client = client
        self.sort_query = sort_query
        self.seeds = [normalize_url(seed, sort_query=sort_query) for seed in seeds]
        if allowed_domains is None:
            if not self.seeds:
                raise ValueError(
                    "a Crawler without seeds (joining a shared frontier) needs allowed_domains="
                )
            self.allowed_domains = frozenset(_host(seed) for seed in self.seeds)
        else:
            self.allowed_domains = frozenset(_domain(d) for d in allowed_domains)
        self.include = [re.compile(pattern) for pattern in include]
        self.exclude = [re.compile(pattern) for pattern in exclude]
        self.frontier: Frontier = frontier if frontier is not None else MemoryFrontier()
        self.politeness = politeness if politeness is not None else Politeness()
        self.limits = limits
        self.max_depth = max_depth
        self.max_pages = max_pages
        self.workers = workers
        self.sinks = tuple(sinks)
        self.lease_seconds = float(lease_seconds)
        self.follow_nofollow = follow_nofollow
        self.canonical = canonical
        self.max_links_per_page = max_links_per_page
        self.stats = CrawlStats()
        self._started = False
        self._reserved = 0  # fetches started or about to be (max_pages)
        self._changed = trio.Event()

    # --- filters -------------------------------------------------------------------------

    def _domain_allowed(self, url: str) -> bool:
        if not self.allowed_domains:
            return True
        try:
            host = _host(url)
        except InvalidURL:  # pragma: no cover - links are normalised URLs already
            return False
        return any(host == d or host.endswith("." + d) for d in self.allowed_domains)

    def allowed(self, url: str) -> bool:
        """Whether a (normalised) link passes the domain and pattern filters."""
        if not self._domain_allowed(url):
            return False
        if self.include and not any(p.search(url) for p in self.include):
            return False
        return not any(p.search(url) for p in self.exclude)

    def _links(self, item: CrawlItem, result: FetchResult) -> list[CrawlItem]:
        if not result.ok or result.content is None or item.depth >= self.max_depth:
            return []
        content_type = None
        for name, value in result.headers or ():
            if name.lower() == "content-type":
                content_type = value
        if content_type is None or not content_type.split(";")[0].strip().lower().startswith(
            _HTML_TYPES
        ):
            return []
        page_url = result.final_url or result.url
        if page_url != result.url and not self._domain_allowed(page_url):
            return []  # redirected off the allowed domains: do not crawl from there
        urls = extract_links(
            result.content,
            page_url,
            content_type=content_type,
            follow_nofollow=self.follow_nofollow,
            canonical=self.canonical,
            sort_query=self.sort_query,
            max_links=self.max_links_per_page,
        )
        self.stats.links_found += len(urls)
        items = [CrawlItem(url, item.depth + 1, item.url) for url in urls if self.allowed(url)]
        self.stats.links_filtered += len(urls) - len(items)
        return items

    # --- the run -------------------------------------------------------------------------

    async def run(self) -> CrawlStats:
        """Crawl until the frontier is finished or ``max_pages`` fetches have started;
        return the stats. Cancelling it releases every lease it holds. Runs once."""
        if self._started:
            raise RuntimeError("Crawler.run() can be called only once; make a new Crawler")
        self._started = True
        self.stats.start()
        try:
            if self.seeds:
                await self.frontier.add([CrawlItem(seed) for seed in self.seeds])
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._monitor)
                    async with trio.open_nursery() as workers:
                        for _ in range(self.workers):
                            workers.start_soon(self._worker)
                    nursery.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                # One worker's error (a sink's, the frontier's) comes out as itself, not
                # wrapped in two nurseries' groups; several different ones stay a group.
                errors = [e for e in _leaves(group) if not isinstance(e, trio.Cancelled)]
                if len(errors) == 1:
                    raise errors[0] from None
                raise
            self.stats.frontier = await self.frontier.counts()
        finally:
            self.stats.finish()
        return self.stats

    async def _monitor(self) -> None:
        while True:
            self.stats.frontier = await self.frontier.counts()
            await trio.sleep(_MONITOR_INTERVAL)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _worker(self) -> None:
        poll = _MIN_POLL
        while True:
            if self.max_pages is not None and self._reserved >= self.max_pages:
                return
            self._reserved += 1
            try:
                leases = await self.frontier.take(1, lease_seconds=self.lease_seconds)
            except BaseException:
                self._reserved -= 1
                raise
            if leases:
                poll = _MIN_POLL
                for lease in leases:  # one; a loop so that no lease can go unhandled
                    await self._process(lease)
                continue
            self._reserved -= 1
            counts = await self.frontier.counts()
            self.stats.frontier = counts
            if counts.finished:
                self._notify()  # wake the other idle workers: they finish too
                return
            with trio.move_on_after(poll):
                await self._changed.wait()
            poll = min(poll * 2, _MAX_POLL)

    async def _process(self, lease: Lease) -> None:
        try:
            result = await self._fetch_renewing(lease)
            if result is None:
                self.stats.leases_lost += 1
                return
            links = self._links(lease.item, result)
            if links:
                # Not `stats.links_new += await ...`: that reads the counter before the
                # await and so loses the other workers' additions made meanwhile.
                new = await self.frontier.add(links)
                self.stats.links_new += new
            # Shielded, so that a cancel never falls between a result's writes and its
            # `done` (the URL would be fetched and written again on resume); bounded, so
            # that a stalled sink cannot make the crawl uncancellable.
            with trio.move_on_after(_FINISH_SECONDS, shield=True) as finishing:
                for sink in self.sinks:
                    await sink.write(result)
                self.stats.record(result)
                if not await self.frontier.done(lease):
                    self.stats.leases_lost += 1
            if finishing.cancelled_caught:
                raise trio.TooSlowError(
                    f"writing the result of {lease.item.url} to the sinks and marking it done "
                    f"took more than {_FINISH_SECONDS:g} s"
                )
        except BaseException:
            with trio.move_on_after(_RELEASE_TIMEOUT, shield=True):
                await self.frontier.release(lease)
            raise
        finally:
            self._notify()

    async def _fetch_renewing(self, lease: Lease) -> FetchResult | None:
        """The fetch, with the lease renewed meanwhile; None if the lease was lost."""
        lost = False
        result: FetchResult | None = None

        async def renew(scope: trio.CancelScope) -> None:
            nonlocal lost
            while True:
                await trio.sleep(self.lease_seconds / 3)
                if not await self.frontier.renew(lease, lease_seconds=self.lease_seconds):
                    lost = True
                    scope.cancel()
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(renew, nursery.cancel_scope)
            result = await self.politeness.fetch(self.client, lease.item.url, limits=self.limits)
            nursery.cancel_scope.cancel()
        return None if lost else result

    def __repr__(self) -> str:
        return f"<Crawler seeds={len(self.seeds)} workers={self.workers} stats={self.stats!r}>"

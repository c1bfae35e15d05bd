"""The crawler against the demo site served by hypercorn on 127.0.0.1: every reachable URL
fetched once, robots.txt obeyed, depth/domain/pattern filters, sinks, cancellation."""

from __future__ import annotations

import json
import random
from collections import deque
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from servers.hypercorn_server import HypercornServer

import trioclient
from trioclient.crawl import (
    Crawler,
    CrawlItem,
    FetchLimits,
    FetchResult,
    FrontierCounts,
    JsonLinesSink,
    Lease,
    MemoryFrontier,
    Politeness,
)
from trioclient.crawl._demo_site import DemoSite

FOLLOWED = ("redirect", "missing", "data", "robots")
LIMITS = FetchLimits()


def reachable(site: DemoSite, max_depth: int = 1000) -> dict[str, int]:
    """Path -> depth of every URL a breadth-first crawl from "/" asks for (the model)."""
    depths = {"/": 0}
    queue = deque(["/"])
    while queue:
        path = queue.popleft()
        depth = depths[path]
        if depth >= max_depth:
            continue
        number = 0 if path == "/" else int(path[6:]) if path.startswith("/page/") else None
        if number is None or site.kind(number) not in ("ok", "slow"):
            continue
        links = site.page_links(number)
        links += [p for p, what in site.extra_links(number).items() if what in FOLLOWED]
        if number == 0:
            links.append("/about.txt")
        for link in links:
            if link not in depths:
                depths[link] = depth + 1
                queue.append(link)
    return depths


def requested(paths: set[str]) -> set[str]:
    """What the server sees for a set of crawled paths (robots.txt, redirects followed,
    robots-disallowed ones never asked for)."""
    seen = {p for p in paths if not p.startswith("/private/")} | {"/robots.txt"}
    seen |= {"/moved/" + p[3:] for p in paths if p.startswith("/r/")}
    return seen


def fast_politeness() -> Politeness:
    # No rate limit (the demo is ours), no retries so every request is counted once.
    return Politeness(rate=None, per_host=8, retry=None)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_full_crawl_fetches_every_url_once(
    demo_server: HypercornServer, demo_site: DemoSite, tmp_path: Path
) -> None:
    base = demo_server.http_url
    model = reachable(demo_site)
    async with trioclient.AsyncClient() as client, JsonLinesSink(tmp_path / "out.jsonl") as sink:
        crawler = Crawler(
            client,
            [base + "/"],
            politeness=fast_politeness(),
            max_depth=100,
            workers=8,
            sinks=[sink],
        )
        stats = await crawler.run()
    # The server saw each URL once, and exactly the model's URLs.
    assert set(demo_site.hits) == requested(set(model))
    assert all(count == 1 for count in demo_site.hits.values()), demo_site.hits.most_common(3)
    # robots.txt obeyed: no /private/ request, each one a RobotsDisallowed result.
    private = [p for p in model if p.startswith("/private/")]
    assert private
    assert stats.errors["RobotsDisallowed"] == len(private)
    # The results, one per URL.
    records = read_jsonl(tmp_path / "out.jsonl")
    urls = [r["url"] for r in records]
    assert len(urls) == len(set(urls)) == stats.pages == len(model)
    assert set(urls) == {base + p for p in model}
    by_path = {r["url"][len(base) :]: r for r in records}
    assert by_path["/page/7"]["status"] == 500
    assert by_path["/page/11"]["error"] == "RemoteProtocolError"
    assert by_path["/missing/9"]["status"] == 404
    assert by_path["/data/4.json"]["error"] == "ContentTypeNotAllowed"
    redirect = by_path["/r/3"]
    assert (redirect["status"], redirect["final_url"]) == (200, base + "/moved/3")
    ok = by_path["/page/1"]
    assert ok["status"] == 200
    assert ok["size"] > 0
    assert len(ok["sha256"]) == 64
    assert ["content-type", "text/html; charset=utf-8"] in ok["headers"]
    assert ok["elapsed"] >= 0
    # The stats agree.
    assert stats.frontier == FrontierCounts(0, 0, len(model), len(model))
    assert stats.links_new == len(model) - 1
    assert stats.links_filtered > 0  # localhost and example.invalid
    assert list(stats.hosts) == ["127.0.0.1"]
    assert stats.hosts["127.0.0.1"].pages == stats.pages
    assert stats.statuses[500] == len(
        [p for p in model if p.startswith("/page/") and DemoSite.kind(int(p[6:])) == "error"]
    )
    assert stats.pages_per_second > 0


async def test_depth_limit(demo_server: HypercornServer, demo_site: DemoSite) -> None:
    base = demo_server.http_url
    async with trioclient.AsyncClient() as client:
        # One worker: breadth-first order is exact, so depths match the model's.
        crawler = Crawler(
            client, [base + "/"], politeness=fast_politeness(), max_depth=2, workers=1
        )
        stats = await crawler.run()
    model = reachable(demo_site, max_depth=2)
    assert max(model.values()) == 2
    assert set(demo_site.hits) == requested(set(model))
    assert stats.pages == len(model)

    demo_site.hits.clear()
    async with trioclient.AsyncClient() as client:
        stats = await Crawler(
            client, [base + "/page/3"], politeness=fast_politeness(), max_depth=0
        ).run()
    assert stats.pages == 1
    assert set(demo_site.hits) == {"/robots.txt", "/page/3"}


async def test_pattern_filters(demo_server: HypercornServer, demo_site: DemoSite) -> None:
    base = demo_server.http_url
    async with trioclient.AsyncClient() as client:
        crawler = Crawler(
            client,
            [base + "/"],
            politeness=fast_politeness(),
            max_depth=3,
            include=[r"/page/\d+$"],
            exclude=[r"[13579]$"],
        )
        await crawler.run()
    fetched = set(demo_site.hits) - {"/robots.txt", "/"}
    assert fetched
    assert all(p.startswith("/page/") and int(p[6:]) % 2 == 0 for p in fetched), fetched
    assert crawler.allowed(base + "/page/2")
    assert not crawler.allowed(base + "/page/3")
    assert not crawler.allowed(base + "/r/4")


async def test_domain_filter(demo_server: HypercornServer, demo_site: DemoSite) -> None:
    base = demo_server.http_url
    port = base.rpartition(":")[2]
    async with trioclient.AsyncClient() as client:
        # The seed's host only by default: the localhost links are never followed.
        crawler = Crawler(client, [base + "/page/2"], politeness=fast_politeness(), max_depth=1)
        stats = await crawler.run()
        assert not crawler.allowed(f"http://localhost:{port}/page/2")
        assert not crawler.allowed("http://example.invalid/")
        assert crawler.allowed(base + "/page/5")
        assert list(stats.hosts) == ["127.0.0.1"]
        assert stats.links_filtered == 2
        # Another allowed domain: the seed is still fetched, nothing of its links.
        demo_site.hits.clear()
        other = Crawler(
            client,
            [base + "/page/2"],
            politeness=fast_politeness(),
            allowed_domains=["example.test"],
        )
        assert (await other.run()).pages == 1
        assert other.allowed("http://www.example.test/x")
        assert not other.allowed("http://notexample.test/x")
        # An empty list allows any host.
        anywhere = Crawler(client, [base + "/"], allowed_domains=[])
        assert anywhere.allowed("http://example.invalid/")


async def test_max_pages(demo_server: HypercornServer, demo_site: DemoSite) -> None:
    async with trioclient.AsyncClient() as client:
        crawler = Crawler(
            client, [demo_server.http_url + "/"], politeness=fast_politeness(), max_pages=10
        )
        stats = await crawler.run()
    assert stats.pages == 10
    assert sum(demo_site.hits.values()) - demo_site.hits["/robots.txt"] <= 10
    counts = await crawler.frontier.counts()
    assert (counts.done, counts.leased) == (10, 0)
    assert counts.queued > 0  # left for a later run


async def test_cancelled_at_random_points_releases_leases(
    demo_server: HypercornServer, demo_site: DemoSite, tmp_path: Path
) -> None:
    """Cancel the crawl after a random number of results; every lease comes back, nothing
    leaks (the socket checker), and a second crawler on the same frontier finishes it."""
    base = demo_server.http_url
    model = reachable(demo_site)
    rng = random.Random(14)
    for round_ in range(6):
        demo_site.hits.clear()
        frontier = MemoryFrontier()
        # Even rounds cancel from a sink after the n-th result (inside the shielded
        # write-and-done step); odd rounds from outside after a random delay (anywhere:
        # taking, fetching, adding links, waiting for work).
        stop_after = rng.randrange(1, 60) if round_ % 2 == 0 else None
        delay = rng.uniform(0.0, 0.5)
        out = tmp_path / f"round{round_}.jsonl"

        class CancellingSink(JsonLinesSink):
            threshold = stop_after

            async def write(self, result: FetchResult) -> None:
                await super().write(result)
                if self.written == self.threshold:
                    scope.cancel()

        async def cancel_later(seconds: float) -> None:
            await trio.sleep(seconds)
            scope.cancel()

        async with trioclient.AsyncClient() as client:
            async with CancellingSink(out) as sink, trio.open_nursery() as nursery:
                with trio.CancelScope() as scope:
                    if stop_after is None:
                        nursery.start_soon(cancel_later, delay)
                    await Crawler(
                        client,
                        [base + "/"],
                        frontier=frontier,
                        politeness=fast_politeness(),
                        max_depth=100,
                        workers=8,
                        sinks=[sink],
                    ).run()
                nursery.cancel_scope.cancel()
            assert scope.cancelled_caught or stop_after is None
            counts = await frontier.counts()
            assert counts.leased == 0
            assert counts.queued + counts.done == counts.seen
            # Every result written is done (the write and the done are one step for a
            # cancel), and only those.
            assert counts.done == len(read_jsonl(out)) >= (stop_after or 0)
            async with JsonLinesSink(out, append=True) as sink:
                resumed = Crawler(
                    client,
                    [],
                    frontier=frontier,
                    allowed_domains=["127.0.0.1"],
                    politeness=fast_politeness(),
                    max_depth=100,
                    workers=8,
                    sinks=[sink],
                )
                await resumed.run()
        urls = [r["url"] for r in read_jsonl(out)]
        assert len(urls) == len(set(urls))  # cancelled fetches were not written
        assert set(urls) == {base + p for p in model}
        # Requests in flight at the cancel were made again by the second crawler.
        assert sum(demo_site.hits.values()) - len(demo_site.hits) <= 8 + 1


async def test_cancel_in_fetch_and_run_once() -> None:
    started = trio.Event()

    class Started(Politeness):
        async def fetch(
            self, client: Any, request: Any, *, limits: FetchLimits = LIMITS
        ) -> FetchResult:
            started.set()
            await trio.sleep_forever()
            raise AssertionError  # pragma: no cover

    async with trioclient.AsyncClient() as client:
        crawler = Crawler(client, ["http://127.0.0.1:9/"], politeness=Started(robots=False))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(crawler.run)
            await started.wait()
            nursery.cancel_scope.cancel()
        assert await crawler.frontier.counts() == FrontierCounts(1, 0, 0, 1)
        with pytest.raises(RuntimeError, match="only once"):
            await crawler.run()


async def test_stalled_sink_is_too_slow(autojump_clock: trio.testing.MockClock) -> None:
    class Stalled:
        async def write(self, result: FetchResult) -> None:
            await trio.sleep_forever()

        async def aclose(self) -> None:
            await trio.lowlevel.checkpoint()

    class Instant(Politeness):
        async def fetch(
            self, client: Any, request: Any, *, limits: FetchLimits = LIMITS
        ) -> FetchResult:
            await trio.lowlevel.checkpoint()
            return FetchResult.failure(str(request), "ConnectError", "no")

    async with trioclient.AsyncClient() as client:
        crawler = Crawler(
            client, ["http://127.0.0.1:9/"], politeness=Instant(robots=False), sinks=[Stalled()]
        )
        with pytest.raises(trio.TooSlowError, match="took more than 30 s"):
            await crawler.run()
    assert await crawler.frontier.counts() == FrontierCounts(1, 0, 0, 1)


class _StuckPoliteness(Politeness):
    async def fetch(
        self, client: Any, request: Any, *, limits: FetchLimits = LIMITS
    ) -> FetchResult:
        await trio.sleep_forever()
        raise AssertionError  # pragma: no cover


class _ForgetfulFrontier(MemoryFrontier):
    async def renew(self, lease: Lease, *, lease_seconds: float) -> bool:
        await super().renew(lease, lease_seconds=lease_seconds)
        return False


async def test_lost_lease_drops_the_fetch(autojump_clock: trio.testing.MockClock) -> None:
    frontier = _ForgetfulFrontier()
    async with trioclient.AsyncClient() as client:
        crawler = Crawler(
            client,
            ["http://127.0.0.1:9/"],
            frontier=frontier,
            politeness=_StuckPoliteness(robots=False),
            lease_seconds=30,
            max_pages=1,
        )
        start = trio.current_time()
        stats = await crawler.run()
    assert trio.current_time() - start == pytest.approx(10)
    assert (stats.leases_lost, stats.pages) == (1, 0)


async def test_renewal_keeps_a_long_fetch(autojump_clock: trio.testing.MockClock) -> None:
    frontier = MemoryFrontier()

    class SlowPoliteness(Politeness):
        async def fetch(
            self, client: Any, request: Any, *, limits: FetchLimits = LIMITS
        ) -> FetchResult:
            await trio.sleep(100)  # ten times the lease
            return FetchResult.failure(str(request), "ReadTimeout", "slow")

    async with trioclient.AsyncClient() as client:
        stats = await Crawler(
            client,
            ["http://127.0.0.1:9/"],
            frontier=frontier,
            politeness=SlowPoliteness(robots=False),
            lease_seconds=10,
        ).run()
    assert (stats.pages, stats.leases_lost, stats.errors["ReadTimeout"]) == (1, 0, 1)
    assert await frontier.counts() == FrontierCounts(0, 0, 1, 1)


async def test_frontier_shared_by_another_process_is_polled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With a lease held elsewhere (another process), idle workers wait, then finish when
    that lease's links arrive and it is done."""
    frontier = MemoryFrontier()
    await frontier.add([CrawlItem("http://127.0.0.1:9/a")])
    [elsewhere] = await frontier.take(1, lease_seconds=600)

    class Instant(Politeness):
        async def fetch(
            self, client: Any, request: Any, *, limits: FetchLimits = LIMITS
        ) -> FetchResult:
            await trio.lowlevel.checkpoint()
            return FetchResult.failure(str(request), "ConnectError", "no")

    async def other_process() -> None:
        await trio.sleep(5)
        await frontier.add([CrawlItem("http://127.0.0.1:9/b", 1)])
        await frontier.done(elsewhere)

    async with trioclient.AsyncClient() as client, trio.open_nursery() as nursery:
        nursery.start_soon(other_process)
        crawler = Crawler(
            client,
            [],
            frontier=frontier,
            allowed_domains=["127.0.0.1"],
            politeness=Instant(robots=False),
            workers=3,
        )
        stats = await crawler.run()
    assert stats.pages == 1
    assert 5 <= trio.current_time() <= 7


async def test_redirect_off_domain_and_a_done_refused() -> None:
    """A page that redirected to a host outside allowed_domains is not crawled from; a
    `done` the frontier refuses counts as a lost lease."""

    class Redirected(Politeness):
        async def fetch(
            self, client: Any, request: Any, *, limits: FetchLimits = LIMITS
        ) -> FetchResult:
            await trio.lowlevel.checkpoint()
            return FetchResult.success(
                str(request),
                "http://elsewhere.test/",
                200,
                [("Content-Type", "text/html")],
                b"<a href='/next'>next</a>",
                0.0,
            )

    class Refusing(MemoryFrontier):
        async def done(self, lease: Lease) -> bool:
            await super().done(lease)
            return False

    async with trioclient.AsyncClient() as client:
        stats = await Crawler(
            client,
            ["http://127.0.0.1:9/"],
            frontier=Refusing(),
            politeness=Redirected(robots=False),
        ).run()
    assert (stats.pages, stats.links_found, stats.leases_lost) == (1, 0, 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"workers": 0}, "workers"),
        ({"max_depth": -1}, "max_depth"),
        ({"max_pages": -1}, "max_pages"),
        ({"lease_seconds": 0}, "lease_seconds"),
        ({"allowed_domains": ["bad host"]}, "allowed_domains"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    client = trioclient.AsyncClient()
    with pytest.raises(ValueError, match=match):
        Crawler(client, ["http://a/"], politeness=Politeness(robots=False), **kwargs)


def test_bad_seeds() -> None:
    client = trioclient.AsyncClient()
    polite = Politeness(robots=False)
    with pytest.raises(TypeError, match="one str"):
        Crawler(client, "http://a/", politeness=polite)
    with pytest.raises(trioclient.InvalidURL):
        Crawler(client, ["mailto:x@y"], politeness=polite)
    with pytest.raises(ValueError, match="allowed_domains"):
        Crawler(client, [], politeness=polite)
    crawler = Crawler(client, ["HTTP://A:80/x#y"], politeness=polite)
    assert crawler.seeds == ["http://a/x"]
    assert "seeds=1" in repr(crawler)

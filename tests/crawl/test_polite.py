"""Politeness.fetch against raw Trio servers in the test's own run, on MockClock (autojump):
robots.txt, per-host slots, the token bucket, Crawl-delay, 429/503 slow-downs, retries,
redirects hop by hop, content types, body and time limits. Every timing assertion is in
virtual time, so it is exact and independent of the machine's load."""

from __future__ import annotations

import itertools
import sys

import pytest
import trio
import trio.testing
from helpers import assert_quiet
from servers.crawl_site import STALL, Site, Slow, page, robots, status
from servers.raw import response_bytes, response_head, serve_raw

import trioclient
from trioclient import Retry
from trioclient.crawl import DEFAULT_USER_AGENT, FetchLimits, Politeness

EXACT = Retry(3, backoff_factor=1.0, backoff_jitter=0.0)


async def serve(nursery: trio.Nursery, site: Site) -> str:
    return await serve_raw(nursery, site)


async def fetch_many(polite: Politeness, client: trioclient.Client, urls: list[str]) -> list:
    results: list = [None] * len(urls)

    async def one(i: int, url: str) -> None:
        results[i] = await polite.fetch(client, url)

    async with trio.open_nursery() as nursery:
        for i, url in enumerate(urls):
            nursery.start_soon(one, i, url)
    return results


# --- a plain fetch ---------------------------------------------------------------------------


async def test_a_page_is_fetched_with_its_facts(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/a": page(b"<p>hello</p>")})
    url = await serve(nursery, site)
    polite = Politeness()
    async with trioclient.Client() as client:
        result = await polite.fetch(client, f"{url}/a")
        assert result.ok
        assert result.error is None
        assert result.error_message is None
        assert result.url == result.final_url == f"{url}/a"
        assert result.status == 200
        assert result.content == b"<p>hello</p>"
        assert result.size == 12
        import hashlib

        assert result.sha256 == hashlib.sha256(b"<p>hello</p>").hexdigest()
        assert ("content-type", "text/html") in (result.headers or [])
        assert site.paths() == ["/robots.txt", "/a"]
        assert all(s.headers["user-agent"] == DEFAULT_USER_AGENT for s in site.seen)
        assert polite.robots_fetches == 1
        assert_quiet(client)


async def test_a_request_object_gets_the_user_agent_and_the_body_cap(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/a": page(b"x" * 100)})
    url = await serve(nursery, site)
    polite = Politeness(robots=False, user_agent="testbot/1.0")
    async with trioclient.Client() as client:
        request = client.build_request("GET", f"{url}/a", headers={"User-Agent": "other"})
        result = await polite.fetch(client, request, limits=FetchLimits(max_body=10))
        assert result.error == "ResponseTooLarge"
        assert site.seen[0].headers["user-agent"] == "testbot/1.0"
        assert_quiet(client)


async def test_a_404_is_an_answer_not_an_error(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    url = await serve(nursery, Site())
    async with trioclient.Client() as client:
        limits = FetchLimits(total_timeout=None)
        result = await Politeness(robots=False).fetch(client, f"{url}/missing", limits=limits)
        assert result.error is None
        assert result.status == 404
        assert result.content == b"not found"
        assert not result.ok


# --- robots.txt ------------------------------------------------------------------------------


async def test_robots_disallow_sends_no_request(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/robots.txt": robots("User-agent: *\nDisallow: /private\n"), "/ok": page()})
    url = await serve(nursery, site)
    polite = Politeness()
    async with trioclient.Client() as client:
        blocked = await polite.fetch(client, f"{url}/private/x")
        allowed = await polite.fetch(client, f"{url}/ok")
    assert blocked.error == "RobotsDisallowed"
    assert "disallows" in (blocked.error_message or "")
    assert blocked.status is None
    assert blocked.content is None
    assert allowed.ok
    assert site.paths() == ["/robots.txt", "/ok"]


async def test_robots_groups_match_the_user_agents_product_token(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    text = "User-agent: testbot\nDisallow: /\n\nUser-agent: *\nAllow: /\n"
    site = Site({"/robots.txt": robots(text), "/a": page()})
    url = await serve(nursery, site)
    async with trioclient.Client() as client:
        mine = await Politeness(user_agent="TestBot/2.0 (+https://example.invalid)").fetch(
            client, f"{url}/a"
        )
        other = await Politeness(user_agent="otherbot/1.0").fetch(client, f"{url}/a")
    assert mine.error == "RobotsDisallowed"
    assert other.ok


async def test_robots_is_fetched_once_for_concurrent_fetches(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    routes = {f"/p{i}": page() for i in range(6)}
    routes["/robots.txt"] = Slow(2.0, robots("User-agent: *\nAllow: /\n"))
    site = Site(routes)
    url = await serve(nursery, site)
    polite = Politeness(per_host=3, rate=None)
    async with trioclient.Client() as client:
        results = await fetch_many(polite, client, [f"{url}/p{i}" for i in range(6)])
        assert all(r.ok for r in results)
        assert site.paths().count("/robots.txt") == 1
        assert polite.robots_fetches == 1
        assert_quiet(client)


@pytest.mark.parametrize("code", [401, 403, 404, 410])
async def test_robots_4xx_means_no_rules(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, code: int
) -> None:
    site = Site({"/robots.txt": status(code), "/a": page()})
    url = await serve(nursery, site)
    async with trioclient.Client() as client:
        assert (await Politeness().fetch(client, f"{url}/a")).ok


@pytest.mark.parametrize("code", [429, 500, 503])
async def test_robots_unreachable_means_disallow_all_for_a_while(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, code: int
) -> None:
    site = Site({"/robots.txt": [status(code), robots("User-agent: *\nAllow: /\n")], "/a": page()})
    url = await serve(nursery, site)
    polite = Politeness(retry=None, robots_error_ttl=300)
    async with trioclient.Client() as client:
        first = await polite.fetch(client, f"{url}/a")
        assert first.error == "RobotsDisallowed"
        assert "unreachable" in (first.error_message or "")
        assert f"status {code}" in (first.error_message or "")
        await trio.sleep(299)
        assert (await polite.fetch(client, f"{url}/a")).error == "RobotsDisallowed"
        await trio.sleep(2)
        assert (await polite.fetch(client, f"{url}/a")).ok
    assert site.paths().count("/robots.txt") == 2


async def test_robots_unreachable_when_the_connection_fails(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/robots.txt": STALL})
    url = await serve(nursery, site)
    polite = Politeness(retry=None)
    async with trioclient.Client(timeout=5) as client:
        result = await polite.fetch(client, f"{url}/a")
        assert result.error == "RobotsDisallowed"
        assert "ReadTimeout" in (result.error_message or "")
        assert_quiet(client)


async def test_robots_redirects_are_followed(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site(
        {
            "/robots.txt": status(301, ("Location", "/real-robots.txt")),
            "/real-robots.txt": robots("User-agent: *\nDisallow: /no\n"),
            "/no": page(),
        }
    )
    url = await serve(nursery, site)
    async with trioclient.Client() as client:
        result = await Politeness().fetch(client, f"{url}/no")
    assert result.error == "RobotsDisallowed"


async def test_robots_expires_after_its_ttl(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/a": page()})
    url = await serve(nursery, site)
    polite = Politeness(robots_ttl=100)
    async with trioclient.Client() as client:
        await polite.fetch(client, f"{url}/a")
        await trio.sleep(99)
        await polite.fetch(client, f"{url}/a")
        await trio.sleep(2)
        await polite.fetch(client, f"{url}/a")
    assert site.paths().count("/robots.txt") == 2


async def test_a_cancelled_robots_fetch_lets_a_waiter_fetch_it(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/robots.txt": [STALL, robots("")], "/a": page()})
    url = await serve(nursery, site)
    polite = Politeness(rate=None)
    async with trioclient.Client() as client:
        results = []

        async def first() -> None:
            with trio.move_on_after(1):
                await polite.fetch(client, f"{url}/a")

        async def second() -> None:
            await trio.sleep(0.5)
            results.append(await polite.fetch(client, f"{url}/a"))

        async with trio.open_nursery() as inner:
            inner.start_soon(first)
            inner.start_soon(second)
        assert results[0].ok
        assert site.paths().count("/robots.txt") == 2
        assert_quiet(client)


def test_robots_without_protego_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "protego", None)
    with pytest.raises(ImportError, match=r"pip install trioclient\[crawl\]"):
        Politeness()
    Politeness(robots=False)  # works without it


# --- Crawl-delay, rate, concurrency ------------------------------------------------------------


async def test_crawl_delay_spaces_requests(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    routes = {f"/p{i}": page() for i in range(4)}
    routes["/robots.txt"] = robots("User-agent: *\nCrawl-delay: 5\n")
    site = Site(routes)
    url = await serve(nursery, site)
    polite = Politeness(per_host=4, rate=10, burst=4)
    async with trioclient.Client() as client:
        await fetch_many(polite, client, [f"{url}/p{i}" for i in range(4)])
    times = sorted(s.time for s in site.seen if s.path != "/robots.txt")
    assert [b - a for a, b in itertools.pairwise(times)] == [5.0, 5.0, 5.0]


async def test_crawl_delay_is_capped(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    routes = {f"/p{i}": page() for i in range(3)}
    routes["/robots.txt"] = robots("User-agent: *\nCrawl-delay: 3600\n")
    site = Site(routes)
    url = await serve(nursery, site)
    polite = Politeness(max_crawl_delay=7)
    async with trioclient.Client() as client:
        await fetch_many(polite, client, [f"{url}/p{i}" for i in range(3)])
    times = sorted(s.time for s in site.seen if s.path != "/robots.txt")
    assert [b - a for a, b in itertools.pairwise(times)] == [7.0, 7.0]


async def test_request_rate_is_honoured_like_a_crawl_delay(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    routes = {f"/p{i}": page() for i in range(3)}
    routes["/robots.txt"] = robots("User-agent: *\nRequest-rate: 1/4\n")
    site = Site(routes)
    url = await serve(nursery, site)
    async with trioclient.Client() as client:
        await fetch_many(Politeness(rate=None), client, [f"{url}/p{i}" for i in range(3)])
    times = sorted(s.time for s in site.seen if s.path != "/robots.txt")
    assert [b - a for a, b in itertools.pairwise(times)] == [4.0, 4.0]


async def test_rate_and_burst(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    routes = {f"/p{i}": page() for i in range(7)}
    site = Site(routes)
    url = await serve(nursery, site)
    polite = Politeness(robots=False, per_host=10, rate=2, burst=3)
    async with trioclient.Client() as client:
        start = trio.current_time()
        await fetch_many(polite, client, [f"{url}/p{i}" for i in range(7)])
    times = sorted(s.time - start for s in site.seen)
    assert times == [0, 0, 0, 0.5, 1.0, 1.5, 2.0]


async def test_per_host_cap_counts_requests_in_flight(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    one = Site({f"/p{i}": Slow(1.0, page()) for i in range(6)})
    two = Site({f"/p{i}": Slow(1.0, page()) for i in range(6)})
    url_one = await serve(nursery, one)
    url_two = await serve(nursery, two)
    polite = Politeness(robots=False, per_host=2, rate=None)
    urls = [f"{url}/p{i}" for i in range(6) for url in (url_one, url_two)]
    async with trioclient.Client() as client:
        start = trio.current_time()
        results = await fetch_many(polite, client, urls)
        assert trio.current_time() - start == 3.0  # 6 requests, 2 at a time, 1 s each
        assert all(r.ok for r in results)
        assert_quiet(client)
    assert one.max_active == two.max_active == 2


# --- 429/503, Retry-After, retries --------------------------------------------------------------


async def test_429_retry_after_pauses_the_whole_host(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site(
        {
            "/a": [status(429, ("Retry-After", "7")), page()],
            "/b": Slow(1.0, page()),
        }
    )
    url = await serve(nursery, site)
    polite = Politeness(robots=False, rate=None, retry=EXACT)
    async with trioclient.Client() as client:
        start = trio.current_time()
        results = []

        async def later_b() -> None:
            await trio.sleep(0.5)  # after the 429 arrived
            results.append(await polite.fetch(client, f"{url}/b"))

        async with trio.open_nursery() as inner:
            inner.start_soon(later_b)
            results.append(await polite.fetch(client, f"{url}/a"))
        assert all(r.ok for r in results)
    # Both waited out the host's 7 s pause; then the slowed host (no rate limit, but a
    # 429 seen: one request a second) let one go at 7 and the other at 8.
    (a_first, a_retry), (b,) = site.times("/a"), site.times("/b")
    assert a_first == start
    assert sorted([a_retry - start, b - start]) == [7, 8]


async def test_503_without_retry_after_backs_off_and_slows_the_host(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/a": [status(503), status(503), page()], "/b": page(), "/c": page()})
    url = await serve(nursery, site)
    polite = Politeness(robots=False, rate=1, retry=EXACT)
    async with trioclient.Client() as client:
        start = trio.current_time()
        assert (await polite.fetch(client, f"{url}/a")).ok
        # pause 1 s then 2 s (and the retry's own 1 s, 2 s backoff, which coincide); the
        # interval doubled twice (4 s after the third attempt), then halved by the
        # success: 2 s between requests now.
        assert [t - start for t in site.times("/a")] == [0, 1, 3]
        await polite.fetch(client, f"{url}/b")
        await polite.fetch(client, f"{url}/c")
    assert site.times("/b")[0] - start == 3 + 4
    assert site.times("/c")[0] - site.times("/b")[0] == 2


async def test_retries_exhausted_return_the_last_answer(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/a": status(503, body=b"down")})
    url = await serve(nursery, site)
    polite = Politeness(robots=False, retry=Retry(2, backoff_jitter=0.0), max_pause=1)
    async with trioclient.Client() as client:
        result = await polite.fetch(client, f"{url}/a", limits=FetchLimits(content_types=None))
        assert result.error is None
        assert result.status == 503
        assert not result.ok
        assert len(site.seen) == 3
        assert_quiet(client)


async def test_a_connect_error_is_retried_then_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    polite = Politeness(robots=False, rate=None, retry=Retry(2, backoff_jitter=0.0))
    async with trioclient.Client() as client:
        start = trio.current_time()
        result = await polite.fetch(client, f"http://127.0.0.1:{port}/x")
        assert trio.current_time() - start == 0.5 + 1.0
        assert result.error == "ConnectError"
        assert result.status is None
        assert result.content is None
        assert_quiet(client)


# --- limits -----------------------------------------------------------------------------------


async def test_a_disallowed_content_type_is_not_read(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    big = response_head(200, [("Content-Type", "image/png"), ("Content-Length", "100000000")])
    site = Site({"/img": big, "/none": response_bytes(200, [], b"x")})
    url = await serve(nursery, site)
    polite = Politeness(robots=False)
    async with trioclient.Client() as client:
        result = await polite.fetch(client, f"{url}/img")
        assert result.error == "ContentTypeNotAllowed"
        assert "image/png" in (result.error_message or "")
        assert result.status == 200
        assert result.content is None
        assert result.size == 0
        untyped = await polite.fetch(client, f"{url}/none")
        assert untyped.error == "ContentTypeNotAllowed"
        anything = await polite.fetch(client, f"{url}/none", limits=FetchLimits(content_types=None))
        assert anything.ok
        assert_quiet(client)


async def test_content_type_parameters_and_case_are_ignored(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/a": page(content_type="Text/HTML; charset=utf-8")})
    url = await serve(nursery, site)
    async with trioclient.Client() as client:
        assert (await Politeness(robots=False).fetch(client, f"{url}/a")).ok


async def test_a_body_over_max_body(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    chunked = (
        response_head(200, [("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked")])
        + b"".join(b"400\r\n" + b"x" * 1024 + b"\r\n" for _ in range(8))
        + b"0\r\n\r\n"
    )
    site = Site({"/declared": page(b"x" * 5000), "/chunked": chunked})
    url = await serve(nursery, site)
    polite = Politeness(robots=False)
    limits = FetchLimits(max_body=4096)
    async with trioclient.Client() as client:
        declared = await polite.fetch(client, f"{url}/declared", limits=limits)
        assert declared.error == "ResponseTooLarge"
        assert declared.status == 200
        assert declared.content is None
        streamed = await polite.fetch(client, f"{url}/chunked", limits=limits)
        assert streamed.error == "ResponseTooLarge"
        assert streamed.size > 4096
        assert_quiet(client)


async def test_total_timeout_bounds_a_stalled_fetch(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/stall": STALL})
    url = await serve(nursery, site)
    polite = Politeness(robots=False)
    async with trioclient.Client(timeout=None) as client:
        start = trio.current_time()
        result = await polite.fetch(client, f"{url}/stall", limits=FetchLimits(total_timeout=10))
        assert trio.current_time() - start == 10
        assert result.error == "ReadTimeout"
        assert result.elapsed == 10
        assert_quiet(client)


async def test_total_timeout_spans_retries(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/a": status(503, ("Retry-After", "4"))})
    url = await serve(nursery, site)
    polite = Politeness(robots=False, retry=Retry(10))
    async with trioclient.Client() as client:
        result = await polite.fetch(
            client, f"{url}/a", limits=FetchLimits(total_timeout=10, content_types=None)
        )
    # at 0, 4 and 8; a fourth attempt at 12 would pass the 10 s total: the 503 is returned.
    assert len(site.seen) == 3
    assert result.status == 503


# --- redirects ----------------------------------------------------------------------------------


async def test_a_redirect_to_another_host_obeys_that_hosts_robots(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    other = Site({"/robots.txt": robots("User-agent: *\nDisallow: /secret\n"), "/ok": page()})
    other_url = await serve(nursery, other)
    site = Site(
        {
            "/to-secret": status(302, ("Location", f"{other_url}/secret")),
            "/to-ok": status(301, ("Location", f"{other_url}/ok")),
        }
    )
    url = await serve(nursery, site)
    polite = Politeness()
    async with trioclient.Client() as client:
        blocked = await polite.fetch(client, f"{url}/to-secret")
        followed = await polite.fetch(client, f"{url}/to-ok")
        assert_quiet(client)
    assert blocked.error == "RobotsDisallowed"
    assert blocked.url == f"{url}/to-secret"
    assert blocked.final_url == f"{other_url}/secret"
    assert followed.ok
    assert followed.final_url == f"{other_url}/ok"
    assert other.paths() == ["/robots.txt", "/ok"]


async def test_redirect_limits(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/loop": status(302, ("Location", "/loop"))})
    url = await serve(nursery, site)
    polite = Politeness(robots=False, rate=None)
    async with trioclient.Client() as client:
        looped = await polite.fetch(client, f"{url}/loop", limits=FetchLimits(max_redirects=3))
        assert looped.error == "TooManyRedirects"
        assert len(site.seen) == 4
        unfollowed = await polite.fetch(
            client, f"{url}/loop", limits=FetchLimits(max_redirects=0, content_types=None)
        )
        assert unfollowed.error is None
        assert unfollowed.status == 302
        assert_quiet(client)


# --- bad input, bounded state ---------------------------------------------------------------------


async def test_bad_urls_are_results_not_exceptions() -> None:
    polite = Politeness(robots=False)
    async with trioclient.Client() as client:
        bad = await polite.fetch(client, "http://exa mple.org:99999/")
        assert bad.error == "InvalidURL"
        ftp = await polite.fetch(client, "ftp://example.org/file")
        assert ftp.error == "UnsupportedProtocol"
        relative = await polite.fetch(client, "/just/a/path")
        assert relative.error == "UnsupportedProtocol"
        with pytest.raises(TypeError, match="takes a URL"):
            await polite.fetch(client, 42)  # type: ignore[arg-type]


async def test_hosts_are_evicted_least_recently_used(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sites = [Site({"/a": page()}) for _ in range(3)]
    urls = [await serve(nursery, site) for site in sites]
    polite = Politeness(max_hosts=2)
    async with trioclient.Client() as client:
        for url in [urls[0], urls[1], urls[0], urls[2], urls[0], urls[1]]:
            assert (await polite.fetch(client, f"{url}/a")).ok
            assert polite.hosts <= 2
    # urls[1] was the least recently used when urls[2] came: forgotten, robots.txt again.
    assert [site.paths().count("/robots.txt") for site in sites] == [1, 2, 1]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"per_host": 0}, ValueError),
        ({"per_host": 1.5}, TypeError),
        ({"rate": 0}, ValueError),
        ({"rate": "1"}, TypeError),
        ({"burst": 0}, ValueError),
        ({"robots": 1}, TypeError),
        ({"user_agent": ""}, TypeError),
        ({"max_crawl_delay": -1}, ValueError),
        ({"max_crawl_delay": True}, TypeError),
        ({"retry": 3}, TypeError),
        ({"max_hosts": 0}, ValueError),
    ],
)
def test_politeness_rejects_bad_settings(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error, match="Politeness"):
        Politeness(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_body": -1}, ValueError),
        ({"max_body": 1.5}, TypeError),
        ({"content_types": "text/html"}, TypeError),
        ({"content_types": ("html",)}, ValueError),
        ({"total_timeout": 0}, ValueError),
        ({"total_timeout": "1"}, TypeError),
        ({"max_redirects": -1}, ValueError),
    ],
)
def test_fetch_limits_reject_bad_settings(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error, match="FetchLimits"):
        FetchLimits(**kwargs)


def test_politeness_repr() -> None:
    assert "per_host=2" in repr(Politeness(robots=False))


async def test_busy_hosts_are_never_evicted(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sites = [Site({"/a": Slow(1.0, page())}) for _ in range(3)]
    urls = [await serve(nursery, site) for site in sites]
    polite = Politeness(max_hosts=1, robots=False)
    async with trioclient.Client() as client:
        seen_hosts = []

        async def watch() -> None:
            await trio.sleep(0.5)
            seen_hosts.append(polite.hosts)

        async with trio.open_nursery() as inner:
            inner.start_soon(watch)
            for url in urls:
                inner.start_soon(polite.fetch, client, f"{url}/a")
        assert seen_hosts == [3]  # all three in use: none could go
        assert polite.hosts == 1  # then back under the bound


async def test_robots_is_cut_at_512_kib_and_ignores_the_clients_body_cap(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    padding = "# padding\n" * (600 * 1024 // 10)
    text = "User-agent: *\nDisallow: /early\n" + padding + "Disallow: /late\n"
    site = Site({"/robots.txt": robots(text), "/early": page(), "/late": page()})
    url = await serve(nursery, site)
    polite = Politeness(rate=None)
    async with trioclient.Client(max_response_size=1000) as client:
        early = await polite.fetch(client, f"{url}/early")
        late = await polite.fetch(client, f"{url}/late")
        assert_quiet(client)
    assert early.error == "RobotsDisallowed"
    assert late.ok  # the rule past 512 KiB was never read


async def test_fetch_checks_its_limits_argument() -> None:
    async with trioclient.Client() as client:
        with pytest.raises(TypeError, match="FetchLimits"):
            await Politeness(robots=False).fetch(client, "http://a.test/", limits=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(30))
async def test_cancelled_fetches_leave_the_host_state_balanced(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    """Cancel fetches at arbitrary points (waiting for robots.txt, a slot, a turn, a
    pause, a retry, a body): afterwards no host is held, every slot is free, nothing is
    in flight, and the next fetch works."""
    import random

    rng = random.Random(seed)
    routes: dict = {
        "/robots.txt": Slow(rng.choice([0, 0.5, 2]), robots("User-agent: *\nCrawl-delay: 1\n"))
    }
    for i in range(8):
        routes[f"/p{i}"] = rng.choice(
            [
                page(),
                Slow(1.5, page()),
                [status(503, ("Retry-After", "2")), page()],
                [status(429), page()],
                STALL,
            ]
        )
    site = Site(routes)
    url = await serve(nursery, site)
    polite = Politeness(per_host=2, retry=Retry(2, backoff_jitter=0.0))
    async with trioclient.Client(timeout=30) as client:
        async with trio.open_nursery() as inner:
            for i in range(8):

                async def one(i: int = i) -> None:
                    with trio.move_on_after(rng.uniform(0, 6)):
                        await polite.fetch(client, f"{url}/p{i}")

                inner.start_soon(one)
        for host in polite._hosts.values():
            assert host.users == 0
            assert host.slots.value == 2
            assert host.robots_fetching is None
        assert_quiet(client)
        site.routes["/after"] = page()
        assert (await polite.fetch(client, f"{url}/after")).ok


async def test_the_total_timeout_can_pass_while_waiting_for_the_hosts_turn(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/a": [status(503, ("Retry-After", "1")), page()], "/slow": Slow(10, page())})
    url = await serve(nursery, site)
    polite = Politeness(robots=False, per_host=1, rate=None, retry=EXACT)
    async with trioclient.Client() as client:
        results = {}

        async def slow() -> None:
            await trio.sleep(0.5)  # takes the only slot while /a waits to retry
            results["slow"] = await polite.fetch(client, f"{url}/slow")

        async with trio.open_nursery() as inner:
            inner.start_soon(slow)
            results["a"] = await polite.fetch(
                client, f"{url}/a", limits=FetchLimits(total_timeout=5)
            )
        assert results["slow"].ok
        assert results["a"].error == "PoolTimeout"
        assert "waiting for the host's turn" in (results["a"].error_message or "")
        assert_quiet(client)


async def test_a_hand_built_request_without_a_timeout_and_bodyless_answers(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/head": page(b"x" * 50), "/empty": status(204)})
    url = await serve(nursery, site)
    polite = Politeness(robots=False)
    async with trioclient.Client() as client:
        head = await polite.fetch(client, trioclient.Request("HEAD", f"{url}/head"))
        assert head.ok
        assert head.content == b""
        assert head.size == 0
        empty = await polite.fetch(client, trioclient.Request("GET", f"{url}/empty"))
        assert empty.ok
        assert empty.status == 204
        ftp = await polite.fetch(client, trioclient.Request("GET", "ftp://a.test/x"))
        assert ftp.error == "UnsupportedProtocol"
        assert_quiet(client)


async def test_robots_with_a_bom_and_a_parser_failure(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    bom = response_bytes(
        200, [("Content-Type", "text/plain")], b"\xef\xbb\xbfUser-agent: *\nDisallow: /x\n"
    )
    site = Site({"/robots.txt": bom, "/x": page()})
    url = await serve(nursery, site)
    async with trioclient.Client() as client:
        assert (await Politeness().fetch(client, f"{url}/x")).error == "RobotsDisallowed"
        polite = Politeness()

        def broken(text: str) -> None:
            raise ValueError("parser bug")

        monkeypatch.setattr(polite, "_protego", broken)
        result = await polite.fetch(client, f"{url}/y")
        assert result.error == "RobotsDisallowed"
        assert "could not be parsed" in (result.error_message or "")


async def test_a_crawl_delay_that_goes_away_restores_the_burst(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site(
        {
            "/robots.txt": [robots("User-agent: *\nCrawl-delay: 2\n"), robots("")],
            **{f"/p{i}": page() for i in range(6)},
        }
    )
    url = await serve(nursery, site)
    polite = Politeness(rate=1, burst=3, per_host=3, robots_ttl=10)
    async with trioclient.Client() as client:
        await fetch_many(polite, client, [f"{url}/p{i}" for i in range(3)])
        first = sorted(site.times("/p0") + site.times("/p1") + site.times("/p2"))
        assert [b - a for a, b in itertools.pairwise(first)] == [2, 2]
        await trio.sleep(100)  # robots.txt expired; the new one has no Crawl-delay
        start = trio.current_time()
        await fetch_many(polite, client, [f"{url}/p{i}" for i in range(3, 6)])
    later = sorted(t - start for i in range(3, 6) for t in site.times(f"/p{i}"))
    # The robots.txt request was booked at the old 2 s interval; the burst of 3 is back
    # (with a burst of 1 these would be at 2, 3 and 4).
    assert later == [0, 1, 2]


async def test_retry_after_as_an_http_date_pauses_the_host(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    import time
    from email.utils import formatdate

    when = formatdate(time.time() + 30, usegmt=True)  # whole seconds: 29 to 30 s from now
    site = Site({"/a": status(503, ("Retry-After", when)), "/b": page()})
    url = await serve(nursery, site)
    polite = Politeness(robots=False, rate=None, retry=None)
    async with trioclient.Client() as client:
        first = await polite.fetch(client, f"{url}/a", limits=FetchLimits(content_types=None))
        assert first.status == 503
        await polite.fetch(client, f"{url}/b")
    gap = site.times("/b")[0] - site.times("/a")[0]
    # The date is measured on the wall clock: whatever real time the test took (a loaded
    # machine) comes off the pause, so only a generous lower bound.
    assert 15 <= gap <= 30


async def test_a_long_retry_after_is_capped_by_max_pause(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site({"/a": status(429, ("Retry-After", "1000")), "/b": page()})
    url = await serve(nursery, site)
    polite = Politeness(robots=False, rate=None, max_pause=10)
    async with trioclient.Client() as client:
        first = await polite.fetch(client, f"{url}/a", limits=FetchLimits(content_types=None))
        # more than the retry's retry_after_max (120 s): returned at once, not retried
        assert first.status == 429
        assert len(site.seen) == 1
        await polite.fetch(client, f"{url}/b")
    assert site.times("/b")[0] - site.times("/a")[0] == 10


async def test_redirect_hops_and_retried_answers_reuse_the_connection(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = Site(
        {
            "/r1": status(302, ("Location", "/r2"), body=b"moved"),
            "/r2": status(301, ("Location", "/busy"), body=b"moved too"),
            "/busy": [status(503, ("Retry-After", "1"), body=b"busy"), page()],
        }
    )
    url = await serve(nursery, site)
    polite = Politeness(robots=False, rate=None, per_host=1, retry=EXACT)
    async with trioclient.Client() as client:
        result = await polite.fetch(client, f"{url}/r1")
        assert result.ok
        assert result.final_url == f"{url}/busy"
        assert_quiet(client)
    assert site.paths() == ["/r1", "/r2", "/busy", "/busy"]
    assert site.connections == 1  # each body read, so the connection was kept

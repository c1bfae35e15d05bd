"""The demo site: deterministic, every kind of page it promises, served by hypercorn."""

from __future__ import annotations

import pytest
import trio
from servers.hypercorn_server import HypercornServer

import trioclient
from trioclient.crawl._demo_site import ROBOTS_TXT, DemoSite


def test_site_is_deterministic() -> None:
    a, b = DemoSite(500), DemoSite(500)
    assert [a.render_page(i, "h:1") for i in range(50)] == [
        b.render_page(i, "h:1") for i in range(50)
    ]
    assert DemoSite(500, seed=1).cross_links(5) != a.cross_links(5) or (
        DemoSite(500, seed=1).cross_links(6) != a.cross_links(6)
    )


def test_every_page_is_reachable_from_the_tree() -> None:
    site = DemoSite(3000)
    reached = {0}
    frontier = [0]
    while frontier:
        frontier = [c for i in frontier for c in site.children(i)]
        reached.update(frontier)
    assert reached == set(range(3000))


def test_kinds_present() -> None:
    kinds = {DemoSite.kind(i) for i in range(2000)}
    assert kinds == {"ok", "slow", "error", "truncated"}


def test_needs_a_page() -> None:
    with pytest.raises(ValueError, match="at least one page"):
        DemoSite(0)


async def test_served(demo_server: HypercornServer, demo_site: DemoSite) -> None:
    base = demo_server.http_url
    async with trioclient.AsyncClient() as client:

        async def get(path: str) -> trioclient.Response:
            return await client.get(base + path)

        home = await get("/")
        assert home.status_code == 200
        assert '<base href="/page/">' in home.text
        assert "mailto:" in home.text
        assert (await get("/page/0")).text == home.text
        assert (await get("/robots.txt")).content == ROBOTS_TXT
        assert (await get("/about.txt")).headers["content-type"].startswith("text/plain")
        assert (await get("/page/7")).status_code == 500
        assert (await get(f"/page/{demo_site.pages}")).status_code == 404
        assert (await get("/missing/9")).status_code == 404
        assert (await get("/nothing/here")).status_code == 404
        redirect = await get("/r/3")
        assert (redirect.status_code, redirect.headers["location"]) == (302, "/moved/3")
        assert (await get("/moved/3")).status_code == 200
        assert (await get("/private/5")).status_code == 200
        assert (await get("/nofollow/1")).status_code == 200
        data = await get("/data/4.json")
        assert data.headers["content-type"] == "application/json"
        with pytest.raises(trioclient.RemoteProtocolError, match="complete message body"):
            await get("/page/11")
        with trio.fail_after(10):
            slow = await get("/page/13")
        assert slow.status_code == 200
        page = await get("/page/2")
        assert "//localhost:" in page.text
        assert "example.invalid" in page.text
        assert 'rel="canonical"' in page.text
    assert demo_site.hits["/page/2"] == 1
    assert demo_site.hits["/"] == 1
    assert demo_site.hits["<other>"] == 1


async def test_in_process_without_truncation() -> None:
    site = DemoSite(200, truncate=False)
    async with trioclient.AsyncClient(transport=trioclient.ASGITransport(app=site)) as client:
        page = await client.get("http://demo.test/page/11")
    assert page.content == site.render_page(11, "demo.test")


async def test_a_non_ascii_digit_page_number_is_not_found() -> None:
    # str.isdigit() accepts "\u00b2" (superscript two); int() does not.
    site = DemoSite(200, truncate=False)
    async with trioclient.AsyncClient(transport=trioclient.ASGITransport(app=site)) as client:
        response = await client.get("http://demo.test/page/%C2%B2")
    assert response.status_code == 404

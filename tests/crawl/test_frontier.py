"""MemoryFrontier beyond the shared contract: Trio's clock, bounds, argument checks."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trioclient.crawl import CrawlItem, FrontierCounts, MemoryFrontier


async def test_leases_run_on_trios_clock(autojump_clock: trio.testing.MockClock) -> None:
    frontier = MemoryFrontier()
    await frontier.add([CrawlItem("http://a/1")])
    [lease] = await frontier.take(1, lease_seconds=30)
    await trio.sleep(29)
    assert await frontier.take(1, lease_seconds=30) == []
    await trio.sleep(2)
    [again] = await frontier.take(1, lease_seconds=30)
    assert again.item == lease.item
    assert not await frontier.done(lease)
    assert await frontier.done(again)


async def test_renewals_do_not_grow_the_expiry_heap() -> None:
    frontier = MemoryFrontier()
    await frontier.add([CrawlItem(f"http://a/{i}") for i in range(10)])
    leases = await frontier.take(10, lease_seconds=60)
    for _ in range(1000):
        for lease in leases:
            assert await frontier.renew(lease, lease_seconds=60)
    assert len(frontier._expiries) <= 2 * 10 + 64 + 1
    for lease in leases:
        assert await frontier.done(lease)
    assert await frontier.counts() == FrontierCounts(queued=0, leased=0, done=10, seen=10)


async def test_closed_frontier_refuses_use() -> None:
    frontier = MemoryFrontier()
    await frontier.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await frontier.add([CrawlItem("http://a/")])
    with pytest.raises(RuntimeError, match="closed"):
        await frontier.take(1, lease_seconds=1)


async def test_add_rejects_non_items() -> None:
    frontier = MemoryFrontier()
    with pytest.raises(TypeError, match="CrawlItem"):
        await frontier.add(["http://a/"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("url", "depth"), [("", 0), (None, 0), ("http://a/", -1), ("http://a/", True)]
)
def test_crawl_item_validates(url: object, depth: object) -> None:
    with pytest.raises(ValueError, match=r"CrawlItem\.(url|depth)"):
        CrawlItem(url, depth)  # type: ignore[arg-type]


async def test_every_method_is_a_checkpoint() -> None:
    frontier = MemoryFrontier()
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await frontier.add([CrawlItem("http://a/")])
    assert (await frontier.counts()).seen == 0

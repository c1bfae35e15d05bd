"""The contract every `Frontier` implementation passes (trioclient/crawl/_frontier.py).

How it runs: tests/crawl/test_frontier_contract.py imports this module's tests and its
``frontier`` fixture; the fixture is parametrised over `FACTORIES`, so every test runs once
per implementation ("memory", "redis", ...).

Adding an implementation is one line in `FACTORIES`: a name, and a factory taking the
pytest request (to reach sync, e.g. session-scoped server, fixtures with
``request.getfixturevalue``) and returning an async context manager that yields a fresh,
empty `FrontierUnderTest`::

    FACTORIES["redis"] = redis_frontier_under_test   # e.g. defined in servers/redis_peer.py

``FrontierUnderTest.advance(seconds)`` must make at least that much *lease* time pass: the
memory frontier gets a manual clock (instant), an implementation timed on the wall clock
passes ``trio.sleep``. The tests only ever wait for a lease to run out, never race one (a
lease that must survive is far longer than anything the test does before checking it), so
they cannot flake on a loaded machine.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest
import trio

from trioclient.crawl import CrawlItem, Frontier, FrontierCounts, Lease, MemoryFrontier

LONG = 600.0  # a lease that outlives any test
SHORT = 1.0  # a lease a test lets expire with advance(SHORT + 0.5)


@dataclass
class FrontierUnderTest:
    """A fresh, empty frontier and a way to make lease time pass."""

    frontier: Frontier
    advance: Callable[[float], Awaitable[None]]


class ManualClock:
    """A clock for MemoryFrontier(clock=...) that only moves when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def advance(self, seconds: float) -> None:
        await trio.lowlevel.checkpoint()
        self.now += seconds


@asynccontextmanager
async def memory_frontier_under_test(
    request: pytest.FixtureRequest,
) -> AsyncIterator[FrontierUnderTest]:
    clock = ManualClock()
    frontier = MemoryFrontier(clock=clock)
    try:
        yield FrontierUnderTest(frontier, clock.advance)
    finally:
        await frontier.aclose()


class LongerLeases:
    """A frontier whose every lease lasts `scale` times what the test asks.

    For an implementation timed on the wall clock: `test_contract_renew_keeps_lease` takes
    a SHORT lease and renews it at once, so the lease must outlast whatever stall a loaded
    machine puts between two awaits; ``advance`` is scaled alike, so the tests mean the same.
    """

    def __init__(self, frontier: Frontier, scale: float) -> None:
        self.frontier = frontier
        self.scale = scale

    async def advance(self, seconds: float) -> None:
        await trio.sleep(seconds * self.scale)

    async def add(self, items: Sequence[CrawlItem]) -> int:
        return await self.frontier.add(items)

    async def take(self, n: int, *, lease_seconds: float) -> list[Lease]:
        return await self.frontier.take(n, lease_seconds=lease_seconds * self.scale)

    async def renew(self, lease: Lease, *, lease_seconds: float) -> bool:
        return await self.frontier.renew(lease, lease_seconds=lease_seconds * self.scale)

    async def done(self, lease: Lease) -> bool:
        return await self.frontier.done(lease)

    async def release(self, lease: Lease) -> None:
        await self.frontier.release(lease)

    async def counts(self) -> FrontierCounts:
        return await self.frontier.counts()

    async def aclose(self) -> None:
        await self.frontier.aclose()


@asynccontextmanager
async def redis_frontier_under_test(
    request: pytest.FixtureRequest,
) -> AsyncIterator[FrontierUnderTest]:
    # A crawl of its own on the session's redis-server (tests/conftest.py); leases run on
    # Redis's clock, so lease time passes by waiting, and SHORT is 4 s there (LongerLeases).
    from trioclient.crawl import RedisFrontier

    server = request.getfixturevalue("redis_server")
    async with RedisFrontier(server.url, crawl=f"contract-{uuid.uuid4().hex}") as frontier:
        try:
            longer = LongerLeases(frontier, scale=4.0)
            yield FrontierUnderTest(longer, longer.advance)
        finally:
            if not frontier.closed:
                await frontier.clear()


Factory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[FrontierUnderTest]]

FACTORIES: dict[str, Factory] = {
    "memory": memory_frontier_under_test,
    "redis": redis_frontier_under_test,
}


@pytest.fixture(params=sorted(FACTORIES))
async def frontier(request: pytest.FixtureRequest) -> AsyncIterator[FrontierUnderTest]:
    """A fresh frontier of each implementation in FACTORIES."""
    async with FACTORIES[request.param](request) as under_test:
        yield under_test


def items(*urls: str, depth: int = 0) -> list[CrawlItem]:
    return [CrawlItem(url, depth) for url in urls]


async def counts(f: FrontierUnderTest) -> FrontierCounts:
    return await f.frontier.counts()


# --- add ---------------------------------------------------------------------------------------


async def test_contract_empty(frontier: FrontierUnderTest) -> None:
    assert await counts(frontier) == FrontierCounts(queued=0, leased=0, done=0, seen=0)
    assert (await counts(frontier)).finished
    assert await frontier.frontier.take(5, lease_seconds=LONG) == []


async def test_contract_add_deduplicates(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    assert await f.add(items("http://a/1", "http://a/2", "http://a/1")) == 2
    assert await f.add(items("http://a/2", "http://a/3")) == 1
    assert await f.add([]) == 0
    assert await counts(frontier) == FrontierCounts(queued=3, leased=0, done=0, seen=3)


async def test_contract_add_keeps_item_fields(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    item = CrawlItem("http://a/x?q=1", depth=3, referrer="http://a/")
    await f.add([item])
    [lease] = await f.take(1, lease_seconds=LONG)
    assert lease.item == item


async def test_contract_seen_after_done_is_not_requeued(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    await f.add(items("http://a/1"))
    [lease] = await f.take(1, lease_seconds=LONG)
    assert await f.add(items("http://a/1")) == 0  # leased
    assert await f.done(lease)
    assert await f.add(items("http://a/1")) == 0  # done
    assert await counts(frontier) == FrontierCounts(queued=0, leased=0, done=1, seen=1)


# --- take --------------------------------------------------------------------------------------


async def test_contract_take_fifo_and_bounded(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    urls = [f"http://a/{i}" for i in range(5)]
    await f.add(items(*urls))
    first = await f.take(2, lease_seconds=LONG)
    rest = await f.take(10, lease_seconds=LONG)
    assert [lease.item.url for lease in first + rest] == urls
    assert await f.take(1, lease_seconds=LONG) == []
    assert await f.take(0, lease_seconds=LONG) == []
    assert await counts(frontier) == FrontierCounts(queued=0, leased=5, done=0, seen=5)
    assert not (await counts(frontier)).finished


async def test_contract_tokens_unique(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    await f.add(items(*(f"http://a/{i}" for i in range(20))))
    leases = await f.take(20, lease_seconds=LONG)
    assert len({lease.token for lease in leases}) == 20


async def test_contract_bad_arguments(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    await f.add(items("http://a/1"))
    with pytest.raises(ValueError, match="lease_seconds"):
        await f.take(1, lease_seconds=0)
    with pytest.raises(ValueError, match="lease_seconds"):
        await f.take(1, lease_seconds=float("inf"))
    with pytest.raises(ValueError, match="take"):
        await f.take(-1, lease_seconds=LONG)
    [lease] = await f.take(1, lease_seconds=LONG)
    with pytest.raises(ValueError, match="lease_seconds"):
        await f.renew(lease, lease_seconds=-1)


# --- done / release ----------------------------------------------------------------------------


async def test_contract_done_finishes(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    await f.add(items("http://a/1", "http://a/2"))
    leases = await f.take(2, lease_seconds=LONG)
    for lease in leases:
        assert await f.done(lease)
    assert await f.done(leases[0]) is False  # twice: the second does nothing
    assert await counts(frontier) == FrontierCounts(queued=0, leased=0, done=2, seen=2)
    assert (await counts(frontier)).finished


async def test_contract_release_requeues_first(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    await f.add(items("http://a/1", "http://a/2", "http://a/3"))
    [lease] = await f.take(1, lease_seconds=LONG)
    await f.release(lease)
    assert await counts(frontier) == FrontierCounts(queued=3, leased=0, done=0, seen=3)
    again = await f.take(1, lease_seconds=LONG)
    assert [x.item.url for x in again] == ["http://a/1"]
    assert again[0].token != lease.token
    # The old lease is stale now: it can neither finish nor release the new hand-out.
    assert await f.done(lease) is False
    await f.release(lease)
    assert await counts(frontier) == FrontierCounts(queued=2, leased=1, done=0, seen=3)
    assert await f.done(again[0])


async def test_contract_unknown_lease(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    ghost = Lease(CrawlItem("http://a/never"), "no-such-token")
    assert await f.done(ghost) is False
    assert await f.renew(ghost, lease_seconds=LONG) is False
    await f.release(ghost)
    assert await counts(frontier) == FrontierCounts(queued=0, leased=0, done=0, seen=0)


# --- expiry and renewal ------------------------------------------------------------------------


async def test_contract_expired_lease_is_handed_out_again(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    await f.add(items("http://a/1", "http://a/2"))
    [dead] = await f.take(1, lease_seconds=SHORT)
    await frontier.advance(SHORT + 0.5)
    assert await counts(frontier) == FrontierCounts(queued=2, leased=0, done=0, seen=2)
    # The expired item comes back first, under a new token.
    [again] = await f.take(1, lease_seconds=LONG)
    assert again.item == dead.item
    assert again.token != dead.token
    assert await f.renew(dead, lease_seconds=LONG) is False
    assert await f.done(dead) is False
    await f.release(dead)
    assert await counts(frontier) == FrontierCounts(queued=1, leased=1, done=0, seen=2)
    assert await f.done(again)


async def test_contract_expired_lease_cannot_be_done(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    await f.add(items("http://a/1"))
    [lease] = await f.take(1, lease_seconds=SHORT)
    await frontier.advance(SHORT + 0.5)
    # Not taken by anyone yet, but expired all the same: done says so and requeues it.
    assert await f.done(lease) is False
    assert await counts(frontier) == FrontierCounts(queued=1, leased=0, done=0, seen=1)


async def test_contract_renew_keeps_lease(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    await f.add(items("http://a/1"))
    [lease] = await f.take(1, lease_seconds=SHORT)
    assert await f.renew(lease, lease_seconds=LONG)
    await frontier.advance(SHORT + 0.5)
    assert await f.take(1, lease_seconds=LONG) == []
    assert await counts(frontier) == FrontierCounts(queued=0, leased=1, done=0, seen=1)
    assert await f.renew(lease, lease_seconds=LONG)
    assert await f.done(lease)


async def test_contract_renew_many_times(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    await f.add(items("http://a/1", "http://a/2"))
    leases = await f.take(2, lease_seconds=LONG)
    for _ in range(50):
        for lease in leases:
            assert await f.renew(lease, lease_seconds=LONG)
    assert await counts(frontier) == FrontierCounts(queued=0, leased=2, done=0, seen=2)


async def test_contract_aclose_idempotent(frontier: FrontierUnderTest) -> None:
    await frontier.frontier.aclose()
    await frontier.frontier.aclose()


async def test_contract_is_a_frontier(frontier: FrontierUnderTest) -> None:
    assert isinstance(frontier.frontier, Frontier)


async def test_contract_concurrent_takers_never_share(frontier: FrontierUnderTest) -> None:
    f = frontier.frontier
    await f.add(items(*(f"http://a/{i}" for i in range(60))))
    taken: list[str] = []

    async def worker() -> None:
        while batch := await f.take(3, lease_seconds=LONG):
            for lease in batch:
                taken.append(lease.item.url)
                assert await f.done(lease)

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(worker)
    assert sorted(taken) == sorted(f"http://a/{i}" for i in range(60))
    assert await counts(frontier) == FrontierCounts(queued=0, leased=0, done=60, seen=60)

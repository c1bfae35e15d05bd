"""fetch_all: bounded fan-out against a raw Trio site in the test's own run, on MockClock
(autojump). Counts, never wall-clock: how many requests are pulled ahead of the consumer,
how many are in flight, and where every pulled request ends up when the fan-out stops at
an arbitrary point (delivered, undelivered or unfetched: exactly one of them)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
import trio
import trio.testing
from helpers import assert_quiet
from servers.crawl_site import Site, Slow, page
from servers.raw import serve_raw

import trioclient
from trioclient.crawl import FetchLimits, FetchResult, FetchResults, Politeness, fetch_all

N = 30


def slow_site(n: int = N, delay: float = 1.0) -> Site:
    return Site({f"/p{i}": Slow(delay, page(f"page {i}".encode())) for i in range(n)})


async def serve(nursery: trio.Nursery, site: Site) -> str:
    return await serve_raw(nursery, site)


def accounted(pulled: list[str], delivered: list[FetchResult], results: FetchResults) -> None:
    """Every pulled request ends in exactly one place."""
    ends = [r.url for r in delivered] + [r.url for r in results.undelivered]
    ends += [str(u) for u in results.unfetched]
    assert Counter(ends) == Counter(pulled)


class Source:
    """An iterable of URLs that records what was pulled from it."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.pulled: list[str] = []

    def __iter__(self) -> Iterator[str]:
        for url in self.urls:
            self.pulled.append(url)
            yield url


# --- the happy path -------------------------------------------------------------------------


async def test_every_request_is_fetched_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = slow_site()
    url = await serve(nursery, site)
    urls = [f"{url}/p{i}" for i in range(N)]
    async with trioclient.Client() as client:
        start = trio.current_time()
        async with fetch_all(client, urls, workers=5) as results:
            got = [result async for result in results]
        assert trio.current_time() - start == N / 5  # 1 s each, 5 at a time
        assert sorted(r.url for r in got) == sorted(urls)
        assert all(r.ok for r in got)
        assert {r.content for r in got} == {f"page {i}".encode() for i in range(N)}
        assert results.unfetched == []
        assert results.undelivered == []
        assert site.max_active == 5
        assert_quiet(client)


async def test_an_async_source_and_request_objects(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = slow_site(10, delay=0.1)
    url = await serve(nursery, site)
    async with trioclient.Client() as client:

        async def source() -> AsyncIterator[trioclient.Request | str]:
            for i in range(10):
                await trio.sleep(0.01)
                yield client.build_request("GET", f"{url}/p{i}") if i % 2 else f"{url}/p{i}"

        async with fetch_all(client, source(), workers=3) as results:
            got = [result async for result in results]
        assert len(got) == 10
        assert all(r.ok for r in got)


async def test_receive_ends_with_end_of_channel(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    url = await serve(nursery, slow_site(2))
    async with trioclient.Client() as client:
        async with fetch_all(client, [f"{url}/p0", f"{url}/p1"]) as results:
            assert (await results.receive()).ok
            assert (await results.receive()).ok
            with pytest.raises(trio.EndOfChannel):
                await results.receive()
        assert "closed" in repr(results)


async def test_failures_are_results(autojump_clock: trio.testing.MockClock) -> None:
    async with (
        trioclient.Client() as client,
        fetch_all(client, ["not a url", "ftp://x.test/"]) as results,
    ):
        got = [result async for result in results]
    assert sorted(r.error or "" for r in got) == ["UnsupportedProtocol", "UnsupportedProtocol"]


async def test_politeness_is_applied(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = slow_site(6, delay=0.0)
    url = await serve(nursery, site)
    polite = Politeness(per_host=1, rate=2, robots=False)
    async with trioclient.Client() as client:
        start = trio.current_time()
        async with fetch_all(
            client, [f"{url}/p{i}" for i in range(6)], workers=6, politeness=polite
        ) as results:
            assert len([r async for r in results]) == 6
    assert [t - start for t in site.times()] == [0, 0.5, 1.0, 1.5, 2.0, 2.5]


async def test_limits_are_applied(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    url = await serve(nursery, slow_site(1, delay=0))
    async with (
        trioclient.Client() as client,
        fetch_all(
            client, [f"{url}/p0"], limits=FetchLimits(content_types=("text/plain",))
        ) as results,
    ):
        (result,) = [r async for r in results]
    assert result.error == "ContentTypeNotAllowed"


# --- backpressure ---------------------------------------------------------------------------


@pytest.mark.parametrize(("workers", "buffer"), [(1, 0), (4, 0), (4, 3)])
async def test_an_endless_source_is_pulled_only_as_results_are_read(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, workers: int, buffer: int
) -> None:
    url = await serve(nursery, Site({"/": page()}))
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        while True:
            pulled += 1
            yield f"{url}/"

    async with trioclient.Client() as client:
        async with fetch_all(client, endless(), workers=workers, buffer=buffer) as results:
            read = 0
            async for _ in results:
                read += 1
                await trio.sleep(1)  # a slow consumer: the workers wait for it
                # in flight + waiting to send + buffered + one pulled not handed over
                assert pulled - read <= workers + workers + buffer + 1
                if read == 50:
                    break
        stats = results.statistics()
        assert stats.pulled == pulled
        assert stats.fetching == 0  # all stopped
        assert stats.fetched == 50 + len(results.undelivered)
        assert stats.buffered == 0  # after the block: moved to undelivered
        assert len(results.unfetched) + len(results.undelivered) == pulled - 50
        assert_quiet(client)


# --- stopping ---------------------------------------------------------------------------------


async def test_stop_delivers_what_was_fetched_and_lists_the_rest(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    site = slow_site()
    url = await serve(nursery, site)
    source = Source([f"{url}/p{i}" for i in range(N)])
    async with trioclient.Client() as client:
        delivered = []
        async with fetch_all(client, source, workers=4, buffer=2) as results:
            async for result in results:
                delivered.append(result)
                if len(delivered) == 6:
                    results.stop()
                    stopped_at = trio.current_time()
                    await trio.sleep(0.5)  # fetches in flight would end at 1 s: they do not
        assert trio.current_time() - stopped_at == 0.5  # the iteration ended at once
        assert results.undelivered == []
        assert results.unfetched  # fetches in flight, and the one the feeder held
        accounted(source.pulled, delivered, results)
        assert len(source.pulled) < N
        assert_quiet(client)


async def test_leaving_the_block_early_stops_and_accounts(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    url = await serve(nursery, slow_site())
    source = Source([f"{url}/p{i}" for i in range(N)])
    async with trioclient.Client() as client:
        delivered = []
        async with fetch_all(client, source, workers=4, buffer=5) as results:
            async for result in results:
                delivered.append(result)
                await trio.sleep(3)  # the buffer fills up meanwhile
                if len(delivered) == 2:
                    break
        assert results.undelivered  # fetched, buffered, never read
        accounted(source.pulled, delivered, results)
        assert_quiet(client)


@pytest.mark.parametrize("seed", range(40))
async def test_cancelling_at_any_point_loses_nothing_and_leaks_nothing(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    rng = random.Random(seed)
    n = 20
    routes = {f"/p{i}": Slow(rng.choice([0, 0.3, 1.0, 2.5]), page()) for i in range(n)}
    url = await serve(nursery, Site(routes))
    source = Source([f"{url}/p{i}" for i in range(n)])
    workers, buffer = rng.randint(1, 5), rng.randint(0, 3)
    cancel_at = rng.uniform(0, 8)
    consumer_delay = rng.choice([0, 0.2, 1.0])
    async with trioclient.Client() as client:
        delivered: list[FetchResult] = []
        with trio.move_on_after(cancel_at) as scope:
            async with fetch_all(client, source, workers=workers, buffer=buffer) as results:
                async for result in results:
                    delivered.append(result)
                    await trio.sleep(consumer_delay)
        if scope.cancelled_caught:
            assert trio.current_time() == pytest.approx(cancel_at)  # promptly
        accounted(source.pulled, delivered, results)
        assert all(r.ok for r in delivered + results.undelivered)
        assert_quiet(client)


async def test_an_async_source_is_closed_when_stopped(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    url = await serve(nursery, Site({"/": page()}))
    closed = trio.Event()

    async def endless() -> AsyncIterator[str]:
        try:
            while True:
                yield f"{url}/"
        finally:
            closed.set()

    async with trioclient.Client() as client, fetch_all(client, endless(), workers=2) as results:
        async for _ in results:
            break
    assert closed.is_set()


# --- errors and misuse --------------------------------------------------------------------------


async def test_an_error_in_the_source_is_raised_from_the_iteration(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    url = await serve(nursery, Site({"/": page()}))

    def broken() -> Iterator[str]:
        yield f"{url}/"
        yield f"{url}/"
        raise LookupError("the source broke")

    async with trioclient.Client() as client:
        got = []
        with pytest.raises(LookupError, match="the source broke"):
            async with fetch_all(client, broken(), workers=1) as results:
                async for result in results:
                    got.append(result)
        assert 1 <= len(got) <= 2
        assert_quiet(client)


async def test_an_error_not_iterated_is_raised_on_exit(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    async with trioclient.Client() as client:
        with pytest.raises(TypeError, match="must yield URLs"):
            async with fetch_all(client, [42], workers=1):  # type: ignore[list-item]
                await trio.sleep(1)


async def test_a_client_not_entered_stops_the_fan_out_with_its_error(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    url = await serve(nursery, Site({"/": page()}))
    client = trioclient.Client()
    with pytest.raises(trioclient.ClientStateError, match="never entered"):
        async with fetch_all(client, [f"{url}/"]) as results:
            async for _ in results:
                pass
    assert [str(u) for u in results.unfetched] == [f"{url}/"]


async def test_iterating_outside_the_block_says_what_to_do() -> None:
    async with trioclient.Client() as client:
        fan_out = fetch_all(client, [])
        async with fan_out as results:
            with pytest.raises(trioclient.ClientStateError, match="block has ended"):
                results.unfetched  # noqa: B018
            async for _ in results:
                pass
        with pytest.raises(trioclient.ClientStateError, match="inside the block"):
            async for _ in results:
                pass
        with pytest.raises(trioclient.ClientStateError, match="single use"):
            async with fan_out:
                pass
        with pytest.raises(trioclient.ClientStateError, match="not entered"):
            await fetch_all(client, []).__aexit__(None, None, None)


async def test_exit_from_another_task_is_refused(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """What a `yield` inside the block of an async generator amounts to."""
    url = await serve(nursery, Site({"/": page()}))
    async with trioclient.Client() as client:
        fan_out = fetch_all(client, [f"{url}/"] * 3)
        await fan_out.__aenter__()
        errors: list[BaseException] = []

        async def exit_elsewhere() -> None:
            try:
                await fan_out.__aexit__(None, None, None)
            except trioclient.ClientStateError as exc:
                errors.append(exc)

        async with trio.open_nursery() as inner:
            inner.start_soon(exit_elsewhere, name="intruder")
        (error,) = errors
        assert "intruder" in str(error)
        assert "trio.as_safe_channel" in str(error)
        await fan_out.__aexit__(None, None, None)  # the owner still leaves properly
        assert_quiet(client)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"workers": 0}, ValueError, "workers"),
        ({"workers": 1.5}, TypeError, "workers"),
        ({"buffer": -1}, ValueError, "buffer"),
        ({"buffer": None}, TypeError, "buffer"),
        ({"limits": {}}, TypeError, "limits"),
        ({"politeness": 3}, TypeError, "politeness"),
        ({"requests": "http://a.test/"}, TypeError, "iterable"),
        ({"requests": 5}, TypeError, "iterable"),
    ],
)
async def test_fetch_all_rejects_bad_arguments(
    kwargs: dict, error: type[Exception], match: str
) -> None:
    async with trioclient.Client() as client:
        requests = kwargs.pop("requests", [])
        with pytest.raises(error, match=match):
            fetch_all(client, requests, **kwargs)


async def test_a_kept_iterator_is_refused_after_the_block() -> None:
    async with trioclient.Client() as client:
        async with fetch_all(client, []) as results:
            iterator = aiter(results)
            with pytest.raises(trioclient.ClientStateError, match="block has ended"):
                results.undelivered  # noqa: B018
        with pytest.raises(trioclient.ClientStateError, match="inside the block"):
            await anext(iterator)


class NoAclose:
    """An async iterator without aclose(): abandoned as it is."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __aiter__(self) -> NoAclose:
        return self

    async def __anext__(self) -> str:
        await trio.lowlevel.checkpoint()
        return self.url


async def test_an_async_source_without_aclose_and_two_errors(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    url = await serve(nursery, Site({"/": page()}))
    async with trioclient.Client() as client:
        async with fetch_all(client, NoAclose(f"{url}/"), workers=2) as results:
            async for _ in results:
                break
        # Two failures at once (the workers see a closed client): the first is raised.
        client_two = trioclient.Client()
        with pytest.raises(trioclient.ClientStateError, match="never entered"):
            async with fetch_all(client_two, [f"{url}/"] * 4, workers=4) as results:
                async for _ in results:
                    pass
        # Every request pulled is unfetched; the scheduling decides how many the feeder
        # pulled before the first failure stopped it.
        assert 1 <= len(results.unfetched) == results.statistics().pulled <= 4


async def test_statistics_count_what_waits_for_the_consumer(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    url = await serve(nursery, Site({"/": page()}))
    async with trioclient.Client() as client:
        async with fetch_all(client, [f"{url}/"] * 10, workers=3, buffer=2) as results:
            await trio.sleep(5)  # everything that can be fetched without a reader, is
            stats = results.statistics()
            assert stats.fetching == 0
            assert stats.fetched == stats.buffered == 3 + 2  # held by workers + buffered
            assert stats.pulled == 3 + 2 + 1  # and the feeder holds one more
            assert "fetched=5" in repr(results)
            assert len([r async for r in results]) == 10
        assert results.statistics().buffered == 0

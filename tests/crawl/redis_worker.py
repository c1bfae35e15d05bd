"""A worker process for the Redis frontier's multi-process tests (not collected by pytest).

    python tests/crawl/redis_worker.py take REDIS_URL CRAWL BATCH
    python tests/crawl/redis_worker.py crawl REDIS_URL CRAWL SITE_URL NAME WORKERS OUT LEASE

``take``: waits until two workers have arrived (a counter in Redis), takes BATCH at a time
and marks each done until the queue is empty, then prints the URLs it took as one JSON
list. After its first batch it waits again until both workers hold one, so the two
provably take at the same time, whatever the machine's load.

``crawl``: one crawler process: a `Crawler` with WORKERS workers on the shared
`RedisFrontier`, seeded with SITE_URL's home page, writing JSON lines to OUT; every
request carries ``X-Test-Worker: NAME`` so the server's access log knows who asked. No
retries and no robots.txt, so that one fetch is one request; no timeouts, so a request the
test holds open stays in flight until the process is killed. Prints its stats as JSON.
"""

from __future__ import annotations

import json
import sys

import coredis
import trio

import trioclient
from trioclient.crawl import (
    Crawler,
    FetchLimits,
    JsonLinesSink,
    Politeness,
    RedisFrontier,
)

LONG = 600.0


async def _barrier(redis: coredis.Redis[bytes], key: str, parties: int) -> None:
    await redis.incr(key)
    with trio.fail_after(60):
        while int(await redis.get(key) or 0) < parties:
            await trio.sleep(0.005)


async def take(url: str, crawl: str, batch: int) -> None:
    taken: list[str] = []
    async with (
        coredis.Redis.from_url(url) as redis,
        RedisFrontier(url, crawl=crawl) as frontier,
    ):
        await _barrier(redis, f"test:{crawl}:arrived", 2)
        first = True
        while leases := await frontier.take(batch, lease_seconds=LONG):
            for lease in leases:
                taken.append(lease.item.url)
                assert await frontier.done(lease)
            if first:
                await _barrier(redis, f"test:{crawl}:holding", 2)
                first = False
    print(json.dumps(taken))


async def crawl(
    url: str, crawl: str, site: str, name: str, workers: int, out: str, lease_seconds: float
) -> None:
    politeness = Politeness(per_host=64, rate=None, robots=False, retry=None)
    async with (
        trioclient.Client(headers={"X-Test-Worker": name}, timeout=None) as client,
        RedisFrontier(url, crawl=crawl) as frontier,
        JsonLinesSink(out) as sink,
    ):
        crawler = Crawler(
            client,
            [f"{site}/"],
            frontier=frontier,
            politeness=politeness,
            limits=FetchLimits(total_timeout=None),
            max_depth=50,
            workers=workers,
            sinks=[sink],
            lease_seconds=lease_seconds,
        )
        stats = await crawler.run()
    print(json.dumps({"pages": stats.pages, "leases_lost": stats.leases_lost}))


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "take":
        url, crawl_name, batch = args
        trio.run(take, url, crawl_name, int(batch))
    elif mode == "crawl":
        url, crawl_name, site, name, workers, out, lease = args
        trio.run(crawl, url, crawl_name, site, name, int(workers), out, float(lease))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

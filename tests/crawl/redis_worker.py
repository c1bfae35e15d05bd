"""A worker process for the Redis frontier's multi-process tests (not collected by pytest).

    python tests/crawl/redis_worker.py take REDIS_URL CRAWL BATCH

``take``: waits until two workers have arrived (a counter in Redis), takes BATCH at a time
and marks each done until the queue is empty, then prints the URLs it took as one JSON
list. After its first batch it waits again until both workers hold one, so the two
provably take at the same time, whatever the machine's load.
"""

from __future__ import annotations

import json
import sys

import coredis
import trio

from trioclient.crawl import RedisFrontier

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


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "take":
        url, crawl, batch = args
        trio.run(take, url, crawl, int(batch))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

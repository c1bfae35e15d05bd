"""RedisFrontier beyond the shared contract (frontier_contract.py runs that for it too).

Against a real redis-server on loopback (the session's `redis_server`; tests that stop or
reconfigure a server start their own). Each test works in a crawl of its own name.
Lease expiry runs on Redis's clock, so the tests that need a lease to run out wait longer
than the lease, and none races a lease that must survive (those last 600 s).
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import coredis
import pytest
import trio
from servers.peers import free_port, unavailable
from servers.redis_peer import REDIS_APT_PACKAGES, RedisServer

from trioclient.crawl import CrawlItem, Frontier, FrontierCounts, RedisFrontier, RedisFrontierError

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("redis_worker.py")
LONG = 600.0
T = TypeVar("T")


def urls(n: int, prefix: str = "http://a.test/") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def items(*names: str) -> list[CrawlItem]:
    return [CrawlItem(name) for name in names]


@pytest.fixture
def crawl() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
async def frontier(redis_server: RedisServer, crawl: str) -> AsyncIterator[RedisFrontier]:
    async with RedisFrontier(redis_server.url, crawl=crawl) as frontier:
        yield frontier
        if not frontier.closed:
            await frontier.clear()


async def collecting_coredis_leftovers(run: Callable[..., Awaitable[T]], *args: object) -> T:
    """``await run(*args)``, then collect what coredis (6.9) left unclosed, here where that
    is expected rather than in whichever later test the garbage collector happens to run
    (filterwarnings = error makes its ResourceWarning a failure there). Two known cases: a
    connection creates its anyio memory streams in its constructor and closes them only
    after connecting succeeded, so one that could not connect (or was cancelled connecting)
    warns when collected; and a cluster client's layout never closes its error stream.
    `run`'s frame, which holds the frontier, is gone by the time this collects."""
    try:
        return await run(*args)
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def _own_server(**options: bool) -> RedisServer:
    if not RedisServer.available():
        unavailable("redis-server is not installed", REDIS_APT_PACKAGES)
    return RedisServer(**options)


# --- keys and the hash tag ---------------------------------------------------------------------


async def test_keys_share_one_hash_tag(
    redis_server: RedisServer, frontier: RedisFrontier, crawl: str
) -> None:
    assert all(key.startswith(f"trioclient:crawl:{{{crawl}}}:") for key in frontier.keys)
    await frontier.add(items("http://a.test/1", "http://a.test/2"))
    [lease] = await frontier.take(1, lease_seconds=LONG)
    await frontier.done(lease)
    await frontier.take(1, lease_seconds=LONG)
    async with coredis.Redis.from_url(redis_server.url) as redis:
        stored = {key.decode() for key in await redis.keys(f"*{{{crawl}}}*")}
    assert stored == set(frontier.keys) - {frontier.keys[0]}  # the queue is empty: no key


async def test_one_node_cluster() -> None:
    async def crawl_on(server: RedisServer) -> None:
        async with RedisFrontier(server.url, crawl="clustered", cluster=True) as frontier:
            assert await frontier.add(items(*urls(30))) == 30
            leases = await frontier.take(30, lease_seconds=LONG)
            assert [lease.item.url for lease in leases] == urls(30)
            for lease in leases:
                assert await frontier.done(lease)
            assert await frontier.counts() == FrontierCounts(0, 0, 30, 30)
            slots = {server.command("CLUSTER", "KEYSLOT", key) for key in frontier.keys}
            assert len(slots) == 1  # the hash tag: the whole crawl in one slot
            await frontier.clear()

    with _own_server(cluster=True) as server:
        await collecting_coredis_leftovers(crawl_on, server)


# --- concurrency: every URL leased once --------------------------------------------------------


async def test_many_tasks_on_three_connections_lease_each_url_once(
    redis_server: RedisServer, crawl: str
) -> None:
    expected = urls(1500)
    taken: list[str] = []

    async def worker(frontier: RedisFrontier) -> None:
        while leases := await frontier.take(2, lease_seconds=LONG):
            for lease in leases:
                taken.append(lease.item.url)
                assert await frontier.done(lease)

    async with (
        RedisFrontier(redis_server.url, crawl=crawl) as a,
        RedisFrontier(redis_server.url, crawl=crawl) as b,
        RedisFrontier(redis_server.url, crawl=crawl) as c,
    ):
        assert await a.add(items(*expected)) == 1500
        async with trio.open_nursery() as nursery:
            for frontier in (a, b, c) * 10:
                nursery.start_soon(worker, frontier)
        assert len(taken) == 1500
        assert sorted(taken) == sorted(expected)
        assert await b.counts() == FrontierCounts(0, 0, 1500, 1500)
        await a.clear()


async def test_two_processes_taking_at_once_lease_each_url_once(
    redis_server: RedisServer, frontier: RedisFrontier, crawl: str
) -> None:
    expected = urls(3000)
    await frontier.add(items(*expected))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, str(WORKER), "take", redis_server.url, crawl, "3"]
    results: list[list[str]] = []

    async def run() -> None:
        with trio.fail_after(120):
            proc = await trio.run_process(
                command, capture_stdout=True, capture_stderr=True, env=env, check=False
            )
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        results.append(json.loads(proc.stdout))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        nursery.start_soon(run)
    first, second = results
    assert first  # both took (the worker waits until both hold a batch)
    assert second
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(expected)
    assert await frontier.counts() == FrontierCounts(0, 0, 3000, 3000)
    async with coredis.Redis.from_url(redis_server.url) as redis:
        await redis.delete([f"test:{crawl}:arrived", f"test:{crawl}:holding"])


# --- behaviour specific to Redis ---------------------------------------------------------------


async def test_add_in_batches_counts_new_items(frontier: RedisFrontier) -> None:
    many = urls(1234)
    assert await frontier.add(items(*many, *many[:100])) == 1234
    assert await frontier.add(items(*many[1000:], "http://a.test/new")) == 1
    assert (await frontier.counts()).queued == 1235


async def test_add_rejects_other_types(frontier: RedisFrontier) -> None:
    with pytest.raises(TypeError, match="CrawlItems, not str"):
        await frontier.add(["http://a.test/"])  # type: ignore[list-item]


async def test_unicode_and_fields_round_trip(frontier: RedisFrontier) -> None:
    item = CrawlItem("http://a.test/caf\u00e9?q=\u2603", depth=7, referrer="http://a.test/\u00e9")
    await frontier.add([item])
    [lease] = await frontier.take(1, lease_seconds=LONG)
    assert lease.item == item
    assert await frontier.renew(lease, lease_seconds=LONG)
    assert await frontier.done(lease)


async def test_lease_of_another_url_with_a_valid_token_is_refused(
    frontier: RedisFrontier,
) -> None:
    await frontier.add(items("http://a.test/1", "http://a.test/2"))
    one, two = await frontier.take(2, lease_seconds=LONG)
    forged = type(one)(two.item, one.token)
    assert await frontier.done(forged) is False
    assert await frontier.renew(forged, lease_seconds=LONG) is False
    await frontier.release(forged)
    assert await frontier.counts() == FrontierCounts(0, 2, 0, 2)


async def test_a_new_frontier_on_the_same_crawl_resumes_it(
    redis_server: RedisServer, crawl: str
) -> None:
    # The first "process" leases two items and goes away without finishing them.
    async with RedisFrontier(redis_server.url, crawl=crawl) as first:
        await first.add(items(*urls(3)))
        dead = await first.take(2, lease_seconds=0.3)
    async with RedisFrontier(redis_server.url, crawl=crawl) as second:
        assert await second.add(items(*urls(3))) == 0  # still seen
        # Whatever is free now (the third item, and the dead ones if they have already
        # expired: no test races a 0.3 s lease), then, after they surely expired, the rest.
        now = await second.take(5, lease_seconds=LONG)
        assert urls(3)[2] in [lease.item.url for lease in now]
        await trio.sleep(0.6)
        later = await second.take(5, lease_seconds=LONG)
        taken = [lease.item for lease in now + later]
        assert sorted(item.url for item in taken) == urls(3)  # each once, none lost
        assert {lease.item for lease in dead} <= set(taken)
        for lease in now + later:
            assert await second.done(lease)
        assert (await second.counts()).finished
        await second.clear()


async def test_malformed_item_in_redis_is_a_frontier_error(
    redis_server: RedisServer, frontier: RedisFrontier
) -> None:
    queue = frontier.keys[0]
    assert redis_server.command("RPUSH", queue, "not json") == b":1"
    with pytest.raises(RedisFrontierError, match=r"cannot read .*not json"):
        await frontier.take(1, lease_seconds=LONG)


async def test_cancelled_take_leases_nothing(frontier: RedisFrontier) -> None:
    await frontier.add(items("http://a.test/1"))
    with trio.CancelScope() as scope:
        scope.cancel()
        await frontier.take(1, lease_seconds=LONG)
    assert scope.cancelled_caught
    assert await frontier.counts() == FrontierCounts(1, 0, 0, 1)


async def test_is_a_frontier(frontier: RedisFrontier) -> None:
    assert isinstance(frontier, Frontier)
    assert repr(frontier).startswith(f"<RedisFrontier crawl={frontier.crawl!r} on redis://")


# --- lifecycle and errors ----------------------------------------------------------------------


async def test_use_outside_async_with_is_refused(redis_server: RedisServer) -> None:
    frontier = RedisFrontier(redis_server.url, crawl="never-entered")
    with pytest.raises(RuntimeError, match="async with"):
        await frontier.counts()
    async with frontier:
        await frontier.counts()
        with pytest.raises(RuntimeError, match="only once"):
            async with frontier:
                pass
    assert frontier.closed
    with pytest.raises(RuntimeError, match="closed"):
        await frontier.add(items("http://a.test/"))


async def test_aclose_stops_use_inside_the_block(frontier: RedisFrontier) -> None:
    await frontier.aclose()
    await frontier.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await frontier.take(1, lease_seconds=LONG)


async def test_the_blocks_own_exception_comes_out_unwrapped(redis_server: RedisServer) -> None:
    error = KeyError("mine")
    with pytest.raises(KeyError) as caught:
        async with RedisFrontier(redis_server.url, crawl="raises"):
            raise error
    assert caught.value is error


async def test_cancelled_inside_the_block(redis_server: RedisServer) -> None:
    with trio.CancelScope() as scope:
        async with RedisFrontier(redis_server.url, crawl="cancelled") as frontier:
            scope.cancel()
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert frontier.closed


async def test_cancelled_while_entering(redis_server: RedisServer) -> None:
    async def enter() -> None:
        with trio.CancelScope() as scope:
            scope.cancel()
            async with RedisFrontier(redis_server.url, crawl="cancelled"):
                raise AssertionError("not reached")  # pragma: no cover
        assert scope.cancelled_caught

    await collecting_coredis_leftovers(enter)


async def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="crawl must be a non-empty str"):
        RedisFrontier(crawl="")
    with pytest.raises(ValueError, match="braces"):
        RedisFrontier(crawl="x", key_prefix="a{b}:")
    with pytest.raises(ValueError, match="timeout"):
        RedisFrontier(crawl="x", timeout=0)


async def test_unreachable_server_names_it_without_the_password() -> None:
    url = f"redis://someone:s3cret@127.0.0.1:{free_port()}/0"

    async def connect() -> tuple[str, object]:
        try:
            async with RedisFrontier(url, crawl="x", timeout=5):
                raise AssertionError("not reached")  # pragma: no cover
        except RedisFrontierError as exc:
            return str(exc), type(exc.__cause__)

    message, cause = await collecting_coredis_leftovers(connect)
    assert re.match(r"connect on redis://127\.0\.0\.1:\d+/0 ", message), message
    assert "s3cret" not in message
    assert "someone" not in message
    assert cause is coredis.exceptions.ConnectionError


async def test_server_gone_mid_crawl_is_a_frontier_error() -> None:
    async def crawl_on(server: RedisServer) -> None:
        async with RedisFrontier(server.url, crawl="x", timeout=5) as frontier:
            await frontier.add(items("http://a.test/1"))
            server.stop()
            with pytest.raises(RedisFrontierError, match="take on redis://"):
                await frontier.take(1, lease_seconds=LONG)

    with _own_server() as server:
        await collecting_coredis_leftovers(crawl_on, server)


async def test_given_client_is_used_and_left_open(redis_server: RedisServer, crawl: str) -> None:
    async with coredis.Redis.from_url(redis_server.url) as redis:
        async with RedisFrontier(crawl=crawl, client=redis) as frontier:
            assert repr(frontier).endswith("on redis (the given client)>")
            await frontier.add(items("http://a.test/1"))
        assert await redis.llen(frontier.keys[0]) == 1
        await redis.delete(list(frontier.keys))


def test_without_coredis_the_toolkit_imports_and_the_frontier_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['coredis'] = None\n"
        "import trioclient.crawl as c\n"
        "try:\n"
        "    c.RedisFrontier(crawl='x')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "RedisFrontier needs `pip install trioclient[redis]`"


async def test_the_docs_example_runs_against_a_real_redis(redis_server: RedisServer) -> None:
    doc = (REPO / "docs" / "crawling.md").read_text()
    [example] = [b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "take(2" in b]
    code = example.replace("redis://127.0.0.1:6379/0", redis_server.url).replace(
        '"example"', f'"docs-{uuid.uuid4().hex}"'
    )
    code = code.replace("trio.run(main)", "")  # run under this test's trio.run instead
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/crawling.md", "exec"), namespace)
    printed: list[str] = []
    namespace["print"] = lambda *args: printed.append(" ".join(map(str, args)))
    await namespace["main"]()  # type: ignore[operator]
    assert printed == [
        "3 new",
        "0",
        "FrontierCounts(queued=0, leased=0, done=3, seen=3)",
    ]

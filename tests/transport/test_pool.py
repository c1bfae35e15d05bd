"""The connection pool against real servers: reuse, limits, fairness, expiry."""

from __future__ import annotations

import gc
import sys

import pytest
import trio
from helpers import assert_quiet
from servers.raw import ConnectionCounter, respond, serve_raw

import trioclient
from trioclient import Limits


async def test_keep_alive_reuses_one_connection(http_url: str, socket_leak_checker) -> None:
    async with trioclient.Client() as client:
        ids = {(await client.get(f"{http_url}/conn-id")).text for _ in range(5)}
        assert len(ids) == 1
        assert client.pool_statistics().idle == 1
        assert_quiet(client)
    assert socket_leak_checker.created == 1


async def test_concurrency_is_bounded_by_max_connections(
    http_url: str, socket_leak_checker
) -> None:
    results: list[int] = []
    async with trioclient.Client(limits=Limits(max_connections=3)) as client:

        async def fetch() -> None:
            response = await client.get(f"{http_url}/drip?chunks=2&delay=0.01&size=10")
            results.append(len(response.content))

        async with trio.open_nursery() as nursery:
            for _ in range(12):
                nursery.start_soon(fetch)
        assert results == [20] * 12
        assert client.pool_statistics().connections <= 3
        assert_quiet(client)
    assert socket_leak_checker.created <= 3


async def test_waiters_are_served_in_arrival_order(http_url: str) -> None:
    order: list[int] = []
    async with trioclient.Client(limits=Limits(max_connections=1)) as client:

        async def fetch(index: int, started: trio.Event) -> None:
            started.set()
            await client.get(f"{http_url}/drip?chunks=1&delay=0&size=1")
            order.append(index)

        async with trio.open_nursery() as nursery:
            for index in range(8):
                started = trio.Event()
                nursery.start_soon(fetch, index, started)
                await started.wait()
    assert order == list(range(8))


async def test_queueing_without_a_pool_timeout(http_url: str, socket_leak_checker) -> None:
    """`pool=None` waits without a deadline: a waiter is served when the slot frees, and a
    waiter cancelled in the queue leaves it, so the next one is still served."""
    timeout = trioclient.Timeout(10.0, pool=None)
    async with trioclient.Client(limits=Limits(max_connections=1), timeout=timeout) as client:
        async with client.stream("GET", f"{http_url}/drip?chunks=1&delay=0&size=1") as held:
            served: list[int] = []

            async def fetch(index: int) -> None:
                await client.get(f"{http_url}/drip?chunks=1&delay=0&size=1")
                served.append(index)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(fetch, 0)
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(fetch, 1)
                await trio.testing.wait_all_tasks_blocked()
                assert client.pool_statistics().waiting == 2
                await held.aread()
                await held.aclose()
            assert served == [0, 1]
        assert_quiet(client)

        # Cancelled while queued without a deadline: withdrawn, the next waiter is served.
        async with client.stream("GET", f"{http_url}/drip?chunks=1&delay=0&size=1") as held:
            async with trio.open_nursery() as nursery:
                cancelled = trio.CancelScope()
                done: list[str] = []

                async def doomed_fetch() -> None:
                    with cancelled:
                        await client.get(f"{http_url}/drip?chunks=1&delay=0&size=1")
                        done.append("doomed")  # pragma: no cover - must not happen

                async def patient_fetch() -> None:
                    await client.get(f"{http_url}/drip?chunks=1&delay=0&size=1")
                    done.append("patient")

                nursery.start_soon(doomed_fetch)
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(patient_fetch)
                await trio.testing.wait_all_tasks_blocked()
                assert client.pool_statistics().waiting == 2
                cancelled.cancel()
                await trio.testing.wait_all_tasks_blocked()
                assert client.pool_statistics().waiting == 1
                await held.aread()
                await held.aclose()
            assert done == ["patient"]
        assert_quiet(client)
    assert socket_leak_checker.created == 1


async def test_a_parked_request_is_few_objects_for_the_collector(http_url: str) -> None:
    """Each full collection walks every request parked in the pool (W6: 16,000), so what one
    holds is kept small: 20 tracked objects. Ours: six coroutines (get, request, send, the
    redirect loop, the single attempt, the pool), the Request, its Headers and their list,
    its extensions, the Deadlines and the pool's Waiter (also its own abort callback). The
    caller's coroutine, and Trio's Task, Context, child-nursery list, wait_task_rescheduled
    coroutine and generator, and WaitTaskRescheduled with its dict, make the rest."""
    parked = 200
    async with trioclient.Client(limits=Limits(max_connections=1), timeout=None) as client:
        url = f"{http_url}/drip?chunks=1&delay=0&size=1"
        async with client.stream("GET", url) as held, trio.open_nursery() as nursery:
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            before = len(gc.get_objects())
            for _ in range(parked):
                nursery.start_soon(client.get, url)
            await trio.testing.wait_all_tasks_blocked()
            assert client.pool_statistics().waiting == parked
            gc.collect()
            per_request = (len(gc.get_objects()) - before) / parked
            await held.aread()
        # 20 on CPython 3.11+ (25 before the pool's trim); 3.10 keeps each coroutine's
        # frame as a separate tracked object: 27 there (measured in CI's packaging step).
        bound = 20.5 if sys.version_info >= (3, 11) else 28.5
        assert per_request < bound, per_request


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
async def test_failure_while_adopting_a_new_connection_closes_it(
    http_url: str, monkeypatch: pytest.MonkeyPatch, socket_leak_checker, http2: bool
) -> None:
    """Anything raised between the socket opening and the pool owning it (building the
    protocol object) closes the socket and frees the slot. It once leaked the socket."""
    from trioclient._transport import _connection

    protocol = _connection.HTTP2Connection if http2 else _connection.HTTP11Connection

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("broken while adopting the stream")

    monkeypatch.setattr(protocol, "__init__", broken)
    async with trioclient.Client(http1=not http2, http2=http2) as client:
        with pytest.raises(RuntimeError, match="adopting"):
            await client.get(f"{http_url}/")
        assert client.pool_statistics().connections == 0
        monkeypatch.undo()
        assert (await client.get(f"{http_url}/")).status_code == 200
        assert_quiet(client)
    assert socket_leak_checker.created == 2


async def test_idle_connections_expire_in_the_background(
    http_url: str, socket_leak_checker
) -> None:
    async with trioclient.Client(limits=Limits(keepalive_expiry=0.05)) as client:
        await client.get(f"{http_url}/")
        assert client.pool_statistics().idle == 1
        with trio.fail_after(5):
            while client.pool_statistics().idle:
                await trio.sleep(0.02)
        assert client.pool_statistics().connections == 0
        # The housekeeping task still works after going back to sleep.
        await client.get(f"{http_url}/")
        with trio.fail_after(5):
            while client.pool_statistics().idle:
                await trio.sleep(0.02)
        open_sockets = socket_leak_checker.open_sockets()
        assert open_sockets == []


async def test_max_keepalive_connections_closes_surplus(http_url: str) -> None:
    limits = Limits(max_connections=5, max_keepalive_connections=2)
    async with trioclient.Client(limits=limits) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(client.get, f"{http_url}/drip?chunks=2&delay=0.02&size=1")
        stats = client.pool_statistics()
        assert stats.idle <= 2
        assert stats.connections == stats.idle


async def test_per_host_limit(nursery: trio.Nursery) -> None:
    counter = ConnectionCounter(respond(body=b"x"))
    url = await serve_raw(nursery, counter)
    limits = Limits(max_connections=10, max_connections_per_host=2)
    async with trioclient.Client(limits=limits) as client:
        async with trio.open_nursery() as inner:
            for _ in range(8):
                inner.start_soon(client.get, url)
        assert client.pool_statistics().connections <= 2
    assert counter.count <= 2


async def test_other_origin_waiter_takes_slot_from_idle_connection(http_url: str) -> None:
    other = http_url.replace("127.0.0.1", "localhost")
    async with trioclient.Client(limits=Limits(max_connections=1)) as client:
        await client.get(f"{http_url}/")
        response = await client.get(f"{other}/")
        assert response.status_code == 200
        assert client.pool_statistics().connections == 1


async def test_fully_read_stream_is_reused(http_url: str, socket_leak_checker) -> None:
    async with trioclient.Client() as client:
        async with client.stream("GET", f"{http_url}/bytes/200000") as response:
            total = sum([len(chunk) async for chunk in response.aiter_bytes()])
        assert total == 200000
        await client.get(f"{http_url}/")
    assert socket_leak_checker.created == 1


async def test_abandoned_stream_closes_its_connection(http_url: str, socket_leak_checker) -> None:
    async with trioclient.Client() as client:
        async with client.stream("GET", f"{http_url}/bytes/2000000?chunk=1000") as response:
            async for _chunk in response.aiter_bytes():
                break
        assert client.pool_statistics().connections == 0
        assert_quiet(client)
        assert (await client.get(f"{http_url}/")).status_code == 200
    assert socket_leak_checker.created == 2


async def test_response_left_open_at_client_exit_is_closed(http_url: str) -> None:
    async with trioclient.Client() as client:
        response = await client.send(
            client.build_request("GET", f"{http_url}/bytes/2000000?chunk=1000"), stream=True
        )
    with pytest.raises(trioclient.StreamClosed, match="client was closed"):
        await response.aread()


async def test_statistics_and_repr(http_url: str) -> None:
    async with trioclient.Client() as client:
        await client.get(f"{http_url}/")
        assert "idle=1" in repr(client)
    assert client.is_closed
    assert "closed" in repr(client)

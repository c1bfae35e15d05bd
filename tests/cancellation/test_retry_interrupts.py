"""Retries interrupted: a request cancelled during a retry's wait, while the retried
response's body is being drained, and during the next attempt.

Each run ends with the harness's checks: the Cancelled got out unchanged, the books are
quiet, the client's nursery runs only its housekeeping and pooled connections' tasks,
every socket the run opened is closed unless it belongs to a pooled (idle) connection, the
next request on the same client works, and after the client every socket is closed.

The servers run in the test's own Trio run, on pytest-trio's ``autojump_clock``: the clock
jumps only when every task waits, to the next deadline, so ``move_on_after`` lands exactly
where each test puts it (the retry waits are seconds long, the servers answer at once).
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from faults import FaultInjector
from harness import HARNESS_TIMEOUT, HTTP11, check_closed, check_connections
from servers.raw import BufferedStream, read_request, response_bytes, response_head, serve_raw

import trioclient
from trioclient import Limits, Retry

RETRY = Retry(3, backoff_jitter=0.0)
OK = response_bytes(200, [], b"ok")


class Server:
    """Answers every request with ``first`` until ``ok`` is set, then with 200 "ok";
    requests from the ``stall_from``-th on hang unanswered (until the client closes)."""

    def __init__(
        self, first: bytes, *, stall_body: bool = False, stall_from: int | None = None
    ) -> None:
        self.first = first
        self.stall_body = stall_body  # after `first`, hold the connection open: a slow body
        self.stall_from = stall_from
        self.ok = False
        self.requests = 0

    async def __call__(self, stream: BufferedStream) -> None:
        while True:
            try:
                await read_request(stream)
            except trio.BrokenResourceError:
                return
            self.requests += 1
            if self.stall_from is not None and self.requests >= self.stall_from:
                await _until_closed(stream)
                return
            if self.ok:
                await stream.send_all(OK)
                continue
            await stream.send_all(self.first)
            if self.stall_body:
                await _until_closed(stream)
                return


async def _until_closed(stream: BufferedStream) -> None:
    try:
        while await stream.receive_some():
            pass
    except trio.BrokenResourceError:
        pass


def make_client() -> trioclient.Client:
    limits = Limits(max_keepalive_connections=10, keepalive_expiry=1000.0)
    return trioclient.Client(timeout=HARNESS_TIMEOUT, limits=limits, retries=RETRY)


async def interrupted(
    client: trioclient.Client, injector: FaultInjector, url: str, after: float, where: str
) -> None:
    """GET `url`, cancelled `after` seconds in; then the harness's checks."""
    start = trio.current_time()
    with trio.move_on_after(after) as scope:
        await client.get(url)
    assert scope.cancelled_caught, f"{where}: the request was not interrupted"
    assert trio.current_time() == start + after
    check_connections(client, HTTP11, injector, where)


@pytest.mark.parametrize(
    ("status", "after"),
    [
        (response_bytes(503, [("Retry-After", "5")], b"busy"), 2.0),  # drained, then waiting
        (response_bytes(503, [], b"busy"), 0.25),  # backoff 0.5 s
    ],
    ids=["retry-after", "backoff"],
)
async def test_cancelled_during_the_retry_wait(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock, status: bytes, after: float
) -> None:
    server = Server(status)
    url = await serve_raw(nursery, server)
    with FaultInjector().installed() as injector:
        async with make_client() as client:
            await interrupted(client, injector, url, after, "cancelled while waiting to retry")
            assert server.requests == 1
            assert client.pool_statistics().idle == 1  # the 503 was drained: kept
            server.ok = True
            assert (await client.get(url)).text == "ok"
        check_closed(client, injector, "after the client")


async def test_cancelled_while_draining_the_retried_body(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """The 503 promises 100 bytes, sends 10 and stalls: the retry's drain is waiting."""
    partial = response_head(503, [("Retry-After", "5"), ("Content-Length", "100")]) + b"0" * 10
    server = Server(partial, stall_body=True)
    url = await serve_raw(nursery, server)
    with FaultInjector().installed() as injector:
        async with make_client() as client:
            await interrupted(client, injector, url, 1.0, "cancelled while draining")
            assert client.pool_statistics().connections == 0  # half-read: closed
            server.ok, server.stall_body = True, False
            assert (await client.get(url)).text == "ok"
        check_closed(client, injector, "after the client")


async def test_cancelled_during_the_next_attempt(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """The first attempt gets a 503 (retry after 1 s); the second hangs; cancelled at 2 s."""
    server = Server(response_bytes(503, [("Retry-After", "1")], b"busy"), stall_from=2)
    url = await serve_raw(nursery, server)
    with FaultInjector().installed() as injector:
        async with make_client() as client:
            await interrupted(client, injector, url, 2.0, "cancelled during the next attempt")
            assert server.requests == 2
            assert client.pool_statistics().connections == 0  # the hung one: closed
            server.ok, server.stall_from = True, None
            assert (await client.get(url)).text == "ok"
        check_closed(client, injector, "after the client")


async def test_a_timeout_during_the_next_attempt_is_retried_then_raised(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Not an interruption: the client's own read timeout is an error like any other."""
    server = Server(b"", stall_from=1)  # every request hangs
    url = await serve_raw(nursery, server)
    with FaultInjector().installed() as injector:
        async with make_client() as client:
            with pytest.raises(trioclient.ReadTimeout) as caught:
                await client.get(url, retries=Retry(1, backoff_jitter=0.0))
            assert len(caught.value.attempts) == 1
            check_connections(client, HTTP11, injector, "after a retried timeout")
        check_closed(client, injector, "after the client")

"""Cancellation and BaseException at each phase of a request, against real servers.

After every interruption: the exception is the one that was raised (never wrapped, never
converted), the pool's books balance, no socket is left open (the autouse leak checker), and
the next request on the same client works.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trio
from helpers import assert_quiet
from servers.raw import (
    BufferedStream,
    drip,
    read_request,
    respond,
    response_bytes,
    response_head,
    serve_raw,
    stall_after_head,
)

import trioclient
from trioclient import Limits, Timeout

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup


async def test_httpx_2139_cancel_while_body_drips(nursery: trio.Nursery, http_url: str) -> None:
    """httpx #2139: a cancelled read of a dripping body must not poison the pool or the exit."""
    url = await serve_raw(nursery, drip(chunks=50, delay=0.1, size=10))  # 5 s of body
    async with trioclient.Client() as client:
        with trio.move_on_after(1) as scope:
            await client.get(url)
        assert scope.cancelled_caught
        assert_quiet(client)
        assert client.pool_statistics().connections == 0  # half-read: discarded, not pooled
        assert (await client.get(f"{http_url}/")).status_code == 200
    # Leaving the client raised nothing; the leak checker verifies no socket is open.


async def test_cancel_while_waiting_for_the_pool(http_url: str) -> None:
    async with trioclient.Client(limits=Limits(max_connections=1)) as client:
        async with client.stream("GET", f"{http_url}/bytes/10") as held:
            with trio.move_on_after(0.05) as scope:
                await client.get(f"{http_url}/")
            assert scope.cancelled_caught
            assert client.pool_statistics().waiting == 0
            await held.aread()
        assert_quiet(client)
        assert (await client.get(f"{http_url}/")).status_code == 200


async def test_cancelled_waiter_does_not_lose_the_next_wakeup(http_url: str) -> None:
    """S3: a waiter cancelled while queued is skipped; the one behind it is still woken."""
    async with trioclient.Client(limits=Limits(max_connections=1)) as client:
        served: list[str] = []
        async with (
            client.stream("GET", f"{http_url}/bytes/10") as held,
            trio.open_nursery() as nursery,
        ):
            cancel_me = trio.CancelScope()

            async def doomed() -> None:
                with cancel_me:
                    await client.get(f"{http_url}/")
                    served.append("doomed")

            async def patient() -> None:
                await client.get(f"{http_url}/")
                served.append("patient")

            nursery.start_soon(doomed)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(patient)
            await trio.testing.wait_all_tasks_blocked()
            assert client.pool_statistics().waiting == 2
            cancel_me.cancel()
            await trio.testing.wait_all_tasks_blocked()
            await held.aread()
        assert served == ["patient"]
        assert_quiet(client)


async def test_cancel_during_connect_reclaims_the_slot(nursery: trio.Nursery) -> None:
    """S4: a slot reserved for a new connection is reclaimed if the connect is cancelled."""
    url = await serve_raw(nursery, stall_after_head())
    tls_url = url.replace("http://", "https://")  # the raw server never answers TLS
    async with trioclient.Client(limits=Limits(max_connections=1)) as client:
        with trio.move_on_after(0.1) as scope:
            await client.get(tls_url)
        assert scope.cancelled_caught
        assert client.pool_statistics().connections == 0
        assert_quiet(client)
        good = await serve_raw(nursery, respond(body=b"fine"))
        assert (await client.get(good)).text == "fine"


async def test_outer_cancel_wins_over_connect_timeout(nursery: trio.Nursery) -> None:
    """S5: when our connect timeout and the caller's cancel fire together, Cancelled wins."""
    url = (await serve_raw(nursery, stall_after_head())).replace("http://", "https://")
    async with trioclient.Client(timeout=Timeout(connect=0.1)) as client:
        with trio.move_on_after(0.1) as scope:
            await client.get(url)
        assert scope.cancelled_caught
        assert_quiet(client)


async def test_cancel_while_sending_a_large_body(nursery: trio.Nursery) -> None:
    async def never_reads(stream: BufferedStream) -> None:
        await trio.sleep_forever()

    url = await serve_raw(nursery, never_reads)
    async with trioclient.Client() as client:
        with trio.move_on_after(0.2) as scope:
            await client.post(url, content=b"x" * 20_000_000)
        assert scope.cancelled_caught
        assert_quiet(client)
        assert client.pool_statistics().connections == 0


async def test_cancel_while_streaming_a_request_body(nursery: trio.Nursery) -> None:
    url = await serve_raw(nursery, respond())

    async def body():  # type: ignore[no-untyped-def]
        yield b"first"
        await trio.sleep_forever()
        yield b"never"

    async with trioclient.Client() as client:
        with trio.move_on_after(0.1) as scope:
            await client.post(url, content=body())
        assert scope.cancelled_caught
        assert_quiet(client)
        assert (await client.get(url)).text == "ok"


async def test_cancel_while_waiting_for_headers(nursery: trio.Nursery, http_url: str) -> None:
    url = await serve_raw(nursery, stall_after_head())
    async with trioclient.Client() as client:
        with trio.move_on_after(0.1) as scope:
            await client.get(url)
        assert scope.cancelled_caught
        assert_quiet(client)
        assert (await client.get(f"{http_url}/")).status_code == 200


async def test_cancel_while_iterating_a_stream(http_url: str) -> None:
    async with trioclient.Client() as client:
        with trio.move_on_after(0.2) as scope:
            async with client.stream("GET", f"{http_url}/drip?chunks=100&delay=0.05&size=5") as r:
                async for _chunk in r.aiter_bytes():
                    pass
        assert scope.cancelled_caught
        assert r.is_closed
        assert_quiet(client)
        assert client.pool_statistics().connections == 0


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt, trio.TooSlowError])
async def test_exception_in_client_block_comes_out_unwrapped(
    http_url: str, error: type[BaseException]
) -> None:
    with pytest.raises(error) as info:
        async with trioclient.Client() as client:
            await client.get(f"{http_url}/")
            async with client.stream("GET", f"{http_url}/bytes/100000") as response:
                await response.aiter_bytes().__anext__()
                raise error()
    assert type(info.value) is error


async def test_keyboard_interrupt_mid_body_never_returns_connection(http_url: str) -> None:
    """S11: a BaseException during user code keeps the connection out of the pool."""
    async with trioclient.Client() as client:
        with pytest.raises(KeyboardInterrupt):
            async with client.stream("GET", f"{http_url}/bytes/100000?chunk=1000") as response:
                async for _chunk in response.aiter_bytes():
                    raise KeyboardInterrupt
        assert client.pool_statistics().connections == 0
        assert (await client.get(f"{http_url}/")).status_code == 200


async def test_outer_cancel_at_client_exit_is_not_wrapped(http_url: str) -> None:
    with trio.CancelScope() as outer:
        async with trioclient.Client() as client:
            await client.get(f"{http_url}/")
            outer.cancel()
            await trio.sleep(1)  # raises Cancelled
    assert outer.cancelled_caught


async def test_sibling_failure_cancels_requests_and_exits_cleanly(http_url: str) -> None:
    """S2: a sibling error cancels the nursery after the first of N responses."""
    async with trioclient.Client() as client:
        with pytest.raises(ExceptionGroup) as info:
            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(client.get, f"{http_url}/drip?chunks=20&delay=0.05&size=1")
                await client.get(f"{http_url}/")
                raise RuntimeError("sibling failed")
        assert info.value.subgroup(RuntimeError) is not None
        assert_quiet(client)
        assert (await client.get(f"{http_url}/")).status_code == 200


async def _redirect_then_stall(stream: BufferedStream) -> None:
    head, _ = await read_request(stream)
    assert not head.startswith(b"GET /next"), "a hop was sent on a closed client"
    await stream.send_all(response_head(302, [("Location", "/next"), ("Content-Length", "4")]))
    await trio.sleep_forever()


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(stall_after_head(), id="waiting-for-the-body"),
        # Closed between two hops, while the redirect's body is read: no next hop is sent.
        pytest.param(_redirect_then_stall, id="following-a-redirect"),
    ],
)
async def test_client_closed_from_another_task(
    nursery: trio.Nursery, handler: Callable[[BufferedStream], Awaitable[None]]
) -> None:
    url = await serve_raw(nursery, handler)
    outcome: list[BaseException] = []
    client = trioclient.Client(follow_redirects=True)
    async with client:

        async def request() -> None:
            try:
                await client.get(url)
            except trioclient.ClientStateError as exc:
                outcome.append(exc)

        async with trio.open_nursery() as inner:
            inner.start_soon(request)
            await trio.testing.wait_all_tasks_blocked()
            await client.aclose()
    assert len(outcome) == 1
    assert "client was closed" in str(outcome[0])


async def test_client_closed_while_a_request_waits_for_the_pool(http_url: str) -> None:
    errors: list[BaseException] = []
    client = trioclient.Client(limits=Limits(max_connections=1))
    async with client:
        held = await client.send(client.build_request("GET", f"{http_url}/bytes/10"), stream=True)

        async def queued() -> None:
            try:
                await client.get(f"{http_url}/")
            except trioclient.ClientStateError as exc:
                errors.append(exc)

        async with trio.open_nursery() as inner:
            inner.start_soon(queued)
            await trio.testing.wait_all_tasks_blocked()
            await client.aclose()
    assert len(errors) == 1
    with pytest.raises(trioclient.StreamClosed, match="client was closed"):
        await held.aread()


async def test_server_answers_then_keeps_reading(nursery: trio.Nursery) -> None:
    """A response after the request completes normally; framing stays correct on reuse."""

    async def handler(stream: BufferedStream) -> None:
        for _ in range(3):
            await read_request(stream)
            await stream.send_all(response_bytes(200, [], b"hello"))

    url = await serve_raw(nursery, handler)
    async with trioclient.Client() as client:
        for _ in range(3):
            assert (await client.get(url)).text == "hello"
        assert client.pool_statistics().idle == 1


async def test_cancel_while_following_a_redirect(http_url: str) -> None:
    """The first hop's response is read and released; the cancelled hop's connection goes."""
    async with trioclient.Client(follow_redirects=True) as client:
        with trio.move_on_after(0.2) as scope:
            await client.get(f"{http_url}/redirect-to?url=/hold")
        assert scope.cancelled_caught
        assert_quiet(client)
        assert client.pool_statistics().connections == 0
        response = await client.get(f"{http_url}/redirect/2")
        assert response.text == "done"
        assert len(response.history) == 2
        assert_quiet(client)


async def test_cancel_during_an_auth_flow_closes_the_flow(http_url: str) -> None:
    finished: list[str] = []

    class TwoStep(trioclient.Auth):
        def auth_flow(self, request):  # type: ignore[no-untyped-def]
            try:
                response = yield request
                assert response.status_code == 401
                yield trioclient.Request("GET", f"{http_url}/hold")
            finally:
                finished.append("closed")

    async with trioclient.Client() as client:
        with trio.move_on_after(0.2) as scope:
            await client.get(f"{http_url}/basic-auth/user/pass", auth=TwoStep())
        assert scope.cancelled_caught
        assert finished == ["closed"]
        assert_quiet(client)
        assert (await client.get(f"{http_url}/")).status_code == 200


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
async def test_request_path_is_ki_protected_but_the_body_is_not(
    http_url: str, monkeypatch: pytest.MonkeyPatch, http2: bool
) -> None:
    """A KeyboardInterrupt cannot land between two lines of the pool's bookkeeping (it waits
    for a checkpoint, where every path cleans up); the caller's body generator runs
    unprotected, so Ctrl-C interrupts it as it would anywhere else."""
    from trioclient._transport._http11 import RequestEvents

    seen: dict[str, bool] = {}
    real_event_for = RequestEvents.event_for

    def spying_event_for(self: RequestEvents, request: trioclient.Request) -> object:
        seen["pool"] = trio.lowlevel.currently_ki_protected()
        return real_event_for(self, request)

    monkeypatch.setattr(RequestEvents, "event_for", spying_event_for)

    async def body() -> AsyncIterator[bytes]:
        seen["body"] = trio.lowlevel.currently_ki_protected()
        yield b"x"

    async with trioclient.Client(http1=not http2, http2=http2) as client:
        response = await client.post(f"{http_url}/echo", content=body())
        assert response.status_code == 200
    assert seen == {"pool": True, "body": False}

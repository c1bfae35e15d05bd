"""The client's lifecycle through the transport seam: transports bound and closed with the
client, mounts against real servers, misuse from the wrong task, keep-alive off, `elapsed`."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import pytest
import trio
from helpers import assert_quiet

import trioclient


def _ok(request: trioclient.Request) -> trioclient.Response:
    return trioclient.Response(200, text=f"mock {request.url.path}")


async def test_elapsed_covers_the_servers_delay(http_url: str) -> None:
    """httpx's definition: from sending the request until the response is complete."""
    async with trioclient.Client() as client:
        response = await client.get(f"{http_url}/slow-headers?delay=0.3")
        assert response.elapsed >= datetime.timedelta(seconds=0.3)
        async with client.stream("GET", f"{http_url}/slow-headers?delay=0.2") as streamed:
            await streamed.aread()
        assert streamed.elapsed >= datetime.timedelta(seconds=0.2)


async def test_elapsed_of_a_mocked_response_is_set() -> None:
    async with trioclient.Client(transport=trioclient.MockTransport(_ok)) as client:
        response = await client.get("https://a.test/")
    assert response.elapsed >= datetime.timedelta(0)


async def test_keepalive_zero_opens_a_connection_per_request(http_url: str) -> None:
    limits = trioclient.Limits(max_keepalive_connections=0)
    async with trioclient.Client(limits=limits) as client:
        first = (await client.get(f"{http_url}/conn-id")).text
        assert client.pool_statistics().connections == 0  # closed after its response
        second = (await client.get(f"{http_url}/conn-id")).text
        assert first != second
        assert_quiet(client)


def test_limits_refuse_negative_and_non_int_values() -> None:
    with pytest.raises(ValueError, match="max_keepalive_connections must be an int >= 0"):
        trioclient.Limits(max_keepalive_connections=-1)
    with pytest.raises(ValueError, match="max_connections must be a positive int"):
        trioclient.Limits(max_connections=0)
    with pytest.raises(ValueError, match="max_connections must be a positive int"):
        trioclient.Limits(max_connections=True)


async def test_an_explicit_http_transport(http_url: str) -> None:
    transport = trioclient.HTTPTransport(http1=False, http2=True)  # h2c, prior knowledge
    async with trioclient.Client(transport=transport) as client:
        response = await client.get(f"{http_url}/")
        assert response.http_version == "HTTP/2"
        assert transport.statistics().connections == 1
    assert transport.is_closed


async def test_a_transport_serves_one_client_only(http_url: str) -> None:
    transport = trioclient.HTTPTransport()
    async with trioclient.Client(transport=transport) as owner:
        with pytest.raises(trioclient.ClientStateError, match="already belongs to a client"):
            async with trioclient.Client(transport=transport):
                pass  # pragma: no cover
        # The refused client must not have closed the transport it never owned.
        assert not transport.is_closed
        assert (await owner.get(f"{http_url}/")).status_code == 200


async def test_mounts_route_by_url_and_close_with_the_client(http_url: str) -> None:
    mocked = trioclient.MockTransport(_ok)
    mounts: dict[str, trioclient.Transport | None] = {
        "all://*.test": mocked,
        "http://exempt.test": None,  # falls back to the default transport
    }
    async with trioclient.Client(mounts=mounts) as client:
        assert (await client.get("https://api.test/x")).text == "mock /x"
        real = await client.get(f"{http_url}/")
        assert real.http_version == "HTTP/1.1"
        with pytest.raises(trioclient.ConnectError):
            await client.get("http://exempt.test/", timeout=2)
    assert mocked.is_closed


async def test_module_level_verbs_take_a_transport() -> None:
    response = await trioclient.get("https://a.test/p", transport=trioclient.MockTransport(_ok))
    assert response.text == "mock /p"
    async with trioclient.stream(
        "POST", "https://a.test/q", content=b"x", transport=trioclient.MockTransport(_ok)
    ) as streamed:
        assert await streamed.aread() == b"mock /q"


async def test_verbs_refuse_arguments_they_do_not_have() -> None:
    async with trioclient.Client(transport=trioclient.MockTransport(_ok)) as client:
        with pytest.raises(TypeError, match="files"):
            await client.get("https://a.test/", files={"a": b"b"})  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="content"):
            await client.get("https://a.test/", content=b"x")  # type: ignore[call-arg]


async def test_exit_from_another_task_is_a_client_state_error(http_url: str) -> None:
    """__aexit__ in a task other than the one that entered: a ClientStateError naming both,
    every connection closed, and Trio's nursery stack left alone."""
    client = trioclient.Client()
    await client.__aenter__()
    await client.get(f"{http_url}/")
    assert client.pool_statistics().connections == 1
    errors: list[BaseException] = []

    async def exit_elsewhere() -> None:
        try:
            await client.__aexit__(None, None, None)
        except trioclient.ClientStateError as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(exit_elsewhere, name="intruder")
    (error,) = errors
    assert "intruder" in str(error)
    assert "same task" in str(error)
    assert client.is_closed
    assert client.pool_statistics().connections == 0
    # The owner can still leave properly (nothing to close any more).
    await client.__aexit__(None, None, None)


async def test_a_client_held_across_an_async_generator_yield_names_trioclient(
    http_url: str,
) -> None:
    """The trap: a client opened inside a plain async generator whose consumer stops early.
    Closing the generator from the consumer's own task (`aclosing`) is fine; what trioclient
    can do for the other case is tested above (the exit from the wrong task)."""

    async def pages() -> AsyncIterator[int]:
        async with trioclient.Client() as client:
            for _ in range(3):
                yield (await client.get(f"{http_url}/")).status_code

    from contextlib import aclosing

    async with aclosing(pages()) as statuses:
        async for status in statuses:
            assert status == 200
            break


async def test_exiting_a_client_that_was_never_entered() -> None:
    client = trioclient.Client(transport=trioclient.MockTransport(_ok))
    with pytest.raises(trioclient.ClientStateError, match="not entered"):
        await client.__aexit__(None, None, None)


async def test_a_redirect_body_abandoned_by_an_error_is_closed_at_once() -> None:
    """A redirect hop whose streamed body fails part-way (here: over max_response_size) has
    its body generator closed before the error leaves `get`, not by the garbage collector."""
    closed: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x" * 10
        finally:
            closed.append("body")

    def handler(request: trioclient.Request) -> trioclient.Response:
        return trioclient.Response(302, headers={"Location": "/next"}, stream=body())

    async with trioclient.Client(transport=trioclient.MockTransport(handler)) as client:
        with pytest.raises(trioclient.ResponseTooLarge):
            await client.get("https://a.test/", follow_redirects=True, max_response_size=15)
        assert closed == ["body"]

"""Every public async method is a Trio checkpoint (a cancel point and a schedule point).

``trio.testing.assert_checkpoints()`` fails a block that returns without both. The fast paths
matter most, because they are where a checkpoint is easy to forget: a response already read,
``aclose()`` twice, a body already buffered, text or lines already decoded, a request body
that never awaits. An async context manager follows Trio's rule that entry or exit must be a
checkpoint: the exit is checked here (``__aexit__`` without an exception); ``Client.__aenter__``
and ``Response.__aenter__`` do not checkpoint, which that rule allows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio
from h1_driver import Servers
from trio.testing import assert_checkpoints

import trioclient

VERBS = ["get", "head", "options", "post", "put", "patch", "delete"]


async def test_client_lifecycle(servers: Servers) -> None:
    client = trioclient.Client()
    await client.__aenter__()
    with assert_checkpoints():
        await client.__aexit__(None, None, None)
    client = trioclient.Client()
    async with client:
        with assert_checkpoints():
            await client.aclose()
        with assert_checkpoints():
            await client.aclose()  # already closed: still a checkpoint


@pytest.mark.parametrize("verb", VERBS)
async def test_client_verbs(servers: Servers, verb: str) -> None:
    async with trioclient.Client() as client:
        for _ in range(2):  # a new connection, then a reused one
            with assert_checkpoints():
                response = await getattr(client, verb)(f"{servers.url}/ok")
            assert response.status_code == 200
        with assert_checkpoints():
            await client.request(verb.upper(), f"{servers.url}/ok")


async def test_client_send_and_stream(servers: Servers) -> None:
    async with trioclient.Client() as client:
        request = client.build_request("GET", f"{servers.url}/ok")
        with assert_checkpoints():
            response = await client.send(request)
        with assert_checkpoints():
            streamed = await client.send(request, stream=True)
        with assert_checkpoints():
            await streamed.aclose()
        context = client.stream("GET", f"{servers.url}/ok")
        with assert_checkpoints():
            streamed = await context.__aenter__()
        with assert_checkpoints():
            assert await streamed.aread() == b"ok"  # head and body came in one read
        with assert_checkpoints():
            await context.__aexit__(None, None, None)
        assert response.content == b"ok"


async def test_response_read_and_close(servers: Servers) -> None:
    async with trioclient.Client() as client:
        response = await client.get(f"{servers.url}/ok")
        with assert_checkpoints():
            assert await response.aread() == b"ok"  # already read
        with assert_checkpoints():
            await response.aclose()
        with assert_checkpoints():
            await response.aclose()  # twice
        with assert_checkpoints():
            await response.__aexit__(None, None, None)
    built = trioclient.Response(200, content=b"in memory")
    with assert_checkpoints():
        assert await built.aread() == b"in memory"
    with assert_checkpoints():
        await built.aclose()


async def _each_item_checkpoints(iterator: AsyncIterator[Any]) -> list[Any]:
    items = []
    while True:
        with assert_checkpoints():
            try:
                items.append(await iterator.__anext__())
            except StopAsyncIteration:
                return items


ITERATORS: dict[str, Callable[[trioclient.Response], AsyncIterator[Any]]] = {
    "aiter_bytes": lambda r: r.aiter_bytes(),
    "aiter_bytes(3)": lambda r: r.aiter_bytes(chunk_size=3),
    "aiter_raw": lambda r: r.aiter_raw(),
    "aiter_raw(3)": lambda r: r.aiter_raw(chunk_size=3),
    "aiter_text": lambda r: r.aiter_text(),
    "aiter_text(2)": lambda r: r.aiter_text(chunk_size=2),
    "aiter_lines": lambda r: r.aiter_lines(),
}


@pytest.mark.parametrize("name", list(ITERATORS))
async def test_body_iterators_streamed(servers: Servers, name: str) -> None:
    """Over the network: chunks of 1000 bytes, re-chunked or decoded into several items."""
    async with (
        trioclient.Client() as client,
        client.stream("GET", f"{servers.url}/chunks/3") as response,
    ):
        items = await _each_item_checkpoints(ITERATORS[name](response))
    assert len(items) >= 1


@pytest.mark.parametrize("name", [n for n in ITERATORS if not n.startswith("aiter_raw")])
async def test_body_iterators_buffered(name: str) -> None:
    """A body already in memory: every item still comes at a checkpoint."""
    response = trioclient.Response(200, content=b"one\ntwo\nthree\nfour")
    items = await _each_item_checkpoints(ITERATORS[name](response))
    assert len(items) >= 1


async def _never_awaits() -> AsyncIterator[bytes]:
    yield b"one"
    yield b"two"


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover


@pytest.mark.parametrize(
    "body",
    [lambda: b"bytes", lambda: b"", _never_awaits, _empty],
    ids=["bytes", "empty-bytes", "iterable-never-awaits", "empty-iterable"],
)
async def test_request_aread(body: Callable[[], Any]) -> None:
    request = trioclient.Request("POST", "http://example.invalid/", content=body())
    with assert_checkpoints():
        first = await request.aread()
    with assert_checkpoints():
        assert await request.aread() == first  # now bytes


async def test_request_iteration() -> None:
    request = trioclient.Request("POST", "http://example.invalid/", content=b"body")
    assert await _each_item_checkpoints(aiter(request)) == [b"body"]


def _module_calls(url: str) -> dict[str, Callable[[], Awaitable[trioclient.Response]]]:
    calls: dict[str, Callable[[], Awaitable[trioclient.Response]]] = {
        verb: (lambda verb=verb: getattr(trioclient, verb)(url)) for verb in VERBS
    }
    calls["request"] = lambda: trioclient.request("GET", url)
    return calls


@pytest.mark.parametrize("name", [*VERBS, "request"])
async def test_module_level_functions(servers: Servers, name: str) -> None:
    with assert_checkpoints():
        response = await _module_calls(f"{servers.url}/ok")[name]()
    assert response.status_code == 200


async def test_module_level_stream(servers: Servers) -> None:
    context = trioclient.stream("GET", f"{servers.url}/ok")
    with assert_checkpoints():
        response = await context.__aenter__()
    with assert_checkpoints():
        await response.aread()
    with assert_checkpoints():
        await context.__aexit__(None, None, None)


async def test_cancelled_caller_gets_cancelled_on_every_fast_path(servers: Servers) -> None:
    """The cancel-point half of the contract: an already-cancelled caller is never ignored."""
    async with trioclient.Client() as client:
        response = await client.get(f"{servers.url}/ok")
        calls: list[Callable[[], Awaitable[object]]] = [
            response.aread,
            response.aclose,
            lambda: client.get(f"{servers.url}/ok"),
            lambda: trioclient.Response(200, content=b"x").aiter_bytes().__anext__(),
            lambda: trioclient.Request("GET", "http://example.invalid/").aread(),
        ]
        for call in calls:
            with trio.CancelScope() as scope:
                scope.cancel()
                await call()
            assert scope.cancelled_caught, call

"""MockTransport (handlers, bodies, checkpoints, closing), and mounts= routing rules.

No test here opens a socket: every transport is a MockTransport and every host is `.test`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

import trioclient
from trioclient._transport._mock import MockTransport
from trioclient._transport._mounts import Mounts, URLPattern

API = "https://api.example.test"


def ok(request: trioclient.Request) -> trioclient.Response:
    return trioclient.Response(200, text=f"{request.method} {request.url}")


class _Chunks:
    """An async iterable of byte chunks that records how far it was read."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.sent = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        await trio.lowlevel.checkpoint()
        if self.sent == len(self.chunks):
            raise StopAsyncIteration
        self.sent += 1
        return self.chunks[self.sent - 1]


# --- handlers ------------------------------------------------------------------------------


async def test_sync_handler_answers_through_a_client() -> None:
    async with trioclient.Client(transport=MockTransport(ok)) as client:
        response = await client.get(f"{API}/users", params={"page": 2})
    assert response.status_code == 200
    assert response.text == f"GET {API}/users?page=2"
    assert response.request.url == f"{API}/users?page=2"
    assert response.http_version == "HTTP/1.1"


async def test_async_handler_answers_through_a_client() -> None:
    async def handler(request: trioclient.Request) -> trioclient.Response:
        await trio.lowlevel.checkpoint()
        return trioclient.Response(201, json={"path": request.url.path})

    async with trioclient.Client(transport=MockTransport(handler)) as client:
        response = await client.post(f"{API}/items")
    assert response.status_code == 201
    assert response.json() == {"path": "/items"}


async def test_async_callable_object_and_awaitable_results_are_awaited() -> None:
    class Handler:
        async def __call__(self, request: trioclient.Request) -> trioclient.Response:
            return ok(request)

    async def answer(request: trioclient.Request) -> trioclient.Response:
        return trioclient.Response(204)

    request = trioclient.Request("GET", f"{API}/")
    response = await MockTransport(Handler()).handle_request(request)
    assert response.text == f"GET {API}/"
    # A plain function returning a coroutine: the coroutine is awaited.
    response = await MockTransport(lambda request: answer(request)).handle_request(request)
    assert response.status_code == 204


async def test_handler_that_returns_no_response_is_a_type_error() -> None:
    transport = MockTransport(lambda request: "OK")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match=r"must return a trioclient\.Response, not str"):
        await transport.handle_request(trioclient.Request("GET", f"{API}/"))


def test_handler_must_be_callable() -> None:
    with pytest.raises(TypeError, match="callable handler, not int"):
        MockTransport(42)  # type: ignore[arg-type]


async def test_response_request_is_set_unless_the_handler_set_one() -> None:
    other = trioclient.Request("GET", f"{API}/other")
    request = trioclient.Request("GET", f"{API}/")
    response = await MockTransport(lambda r: trioclient.Response(200)).handle_request(request)
    assert response.request is request
    transport = MockTransport(lambda r: trioclient.Response(200, request=other))
    assert (await transport.handle_request(request)).request is other


@pytest.mark.parametrize(
    "error", [trioclient.ConnectError("refused"), ValueError("bug in the handler")]
)
async def test_handler_exceptions_propagate_unchanged(error: Exception) -> None:
    def handler(request: trioclient.Request) -> trioclient.Response:
        raise error

    async with trioclient.Client(transport=MockTransport(handler)) as client:
        with pytest.raises(type(error)) as caught:
            await client.get(f"{API}/")
    assert caught.value is error


# --- bodies --------------------------------------------------------------------------------


async def test_sync_handler_gets_a_streamed_request_body_read_into_memory() -> None:
    seen: list[bytes] = []

    def handler(request: trioclient.Request) -> trioclient.Response:
        seen.append(request.content)
        return trioclient.Response(200)

    async with trioclient.Client(transport=MockTransport(handler)) as client:
        await client.post(f"{API}/upload", content=_Chunks(b"hello ", b"world"))
    assert seen == [b"hello world"]


async def test_async_handler_gets_the_streamed_request_body_unread() -> None:
    body = _Chunks(b"a", b"b", b"c")

    async def handler(request: trioclient.Request) -> trioclient.Response:
        assert not isinstance(request.stream, bytes)
        with pytest.raises(trioclient.RequestNotRead):
            _ = request.content
        assert body.sent == 0
        return trioclient.Response(200, content=await request.aread())

    async with trioclient.Client(transport=MockTransport(handler)) as client:
        response = await client.put(f"{API}/upload", content=body)
    assert response.content == b"abc"


async def test_streamed_response_body_is_read_as_the_caller_iterates() -> None:
    body = _Chunks(b"one\n", b"two\n", b"three\n")
    transport = MockTransport(lambda request: trioclient.Response(200, stream=body))
    async with (
        trioclient.Client(transport=transport) as client,
        client.stream("GET", f"{API}/lines") as response,
    ):
        assert body.sent == 0
        lines = [line async for line in response.aiter_lines()]
    assert lines == ["one", "two", "three"]
    assert response.is_closed


async def test_aclose_closes_unread_streamed_responses() -> None:
    transport = MockTransport(lambda request: trioclient.Response(200, stream=_Chunks(b"x")))
    response = await transport.handle_request(trioclient.Request("GET", f"{API}/"))
    assert not response.is_closed
    await transport.aclose()
    assert response.is_closed
    with pytest.raises(trioclient.StreamClosed):
        await response.aread()


# --- Trio semantics ------------------------------------------------------------------------


async def test_handle_request_is_a_checkpoint_even_if_the_handler_never_awaits() -> None:
    transport = MockTransport(ok)
    with trio.testing.assert_checkpoints():
        await transport.handle_request(trioclient.Request("GET", f"{API}/"))


async def test_a_cancelled_caller_never_reaches_the_handler() -> None:
    calls: list[trioclient.Request] = []

    def handler(request: trioclient.Request) -> trioclient.Response:
        calls.append(request)
        return trioclient.Response(200)

    with trio.CancelScope() as scope:
        scope.cancel()
        await MockTransport(handler).handle_request(trioclient.Request("GET", f"{API}/"))
    assert scope.cancelled_caught
    assert calls == []


async def test_a_closed_transport_refuses_requests() -> None:
    transport = MockTransport(ok)
    async with trioclient.Client(transport=transport) as client:
        await client.get(f"{API}/")
    assert transport.is_closed
    assert repr(transport).startswith("<MockTransport [closed] handler=<function ok")
    with pytest.raises(trioclient.ClientStateError, match="MockTransport is closed"):
        await transport.handle_request(trioclient.Request("GET", f"{API}/"))
    # The closed transport in a second client: refused as well, never answered.
    async with trioclient.Client(transport=transport) as client:
        with pytest.raises(trioclient.ClientStateError, match="MockTransport is closed"):
            await client.get(f"{API}/")


async def test_closed_while_the_handler_runs_refuses_the_response() -> None:
    transport: MockTransport

    async def handler(request: trioclient.Request) -> trioclient.Response:
        await transport.aclose()
        return trioclient.Response(200, stream=_Chunks(b"late"))

    transport = MockTransport(handler)
    with pytest.raises(trioclient.ClientStateError, match="closed"):
        await transport.handle_request(trioclient.Request("GET", f"{API}/"))


async def test_redirects_are_followed_through_a_mock() -> None:
    def handler(request: trioclient.Request) -> trioclient.Response:
        if request.url.path == "/old":
            return trioclient.Response(302, headers={"Location": "/new"})
        return trioclient.Response(200, text=request.url.path)

    async with trioclient.Client(transport=MockTransport(handler)) as client:
        response = await client.get(f"{API}/old", follow_redirects=True)
        unfollowed = await client.get(f"{API}/old")
    assert response.text == "/new"
    assert [r.status_code for r in response.history] == [302]
    assert unfollowed.status_code == 302
    assert unfollowed.next_request is not None
    assert unfollowed.next_request.url == f"{API}/new"


async def test_transport_must_be_a_transport() -> None:
    with pytest.raises(TypeError, match=r"must be a trioclient\.Transport, not object"):
        trioclient.Client(transport=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"mounts\['all://'\] must be a trioclient\.Transport"):
        trioclient.Client(mounts={"all://": object()})  # type: ignore[dict-item]


# --- mounts --------------------------------------------------------------------------------


def _named(name: str) -> MockTransport:
    return MockTransport(lambda request: trioclient.Response(200, text=name))


async def test_mounted_transport_answers_its_urls_and_the_default_the_rest() -> None:
    mounts: dict[str, MockTransport | None] = {
        API: _named("api"),
        "https://cdn.example.test": None,
    }
    async with trioclient.Client(transport=_named("default"), mounts=mounts) as client:
        assert (await client.get(f"{API}/v1")).text == "api"
        assert (await client.get("https://cdn.example.test/x")).text == "default"
        assert (await client.get("http://api.example.test/v1")).text == "default"
        assert (await client.get("https://other.example.test/")).text == "default"
    assert all(transport.is_closed for transport in mounts.values() if transport is not None)


@pytest.mark.parametrize(
    ("pattern", "url", "expected"),
    [
        ("all://", "http://a.test/", True),
        ("all://", "https://a.test:8443/", True),
        ("http://", "http://a.test/", True),
        ("http://", "https://a.test/", False),
        ("HTTPS://", "https://a.test/", True),
        ("all://a.test", "https://a.test/x", True),
        ("all://a.test", "https://b.a.test/x", False),
        ("all://A.Test", "http://a.test/", True),
        ("all://*.a.test", "https://b.a.test/", True),
        ("all://*.a.test", "https://c.b.a.test/", True),
        ("all://*.a.test", "https://a.test/", False),
        ("all://*.a.test", "https://ba.test/", False),
        ("all://*a.test", "https://a.test/", True),
        ("all://*a.test", "https://b.a.test/", True),
        ("all://*a.test", "https://ba.test/", False),
        ("all://*", "https://anything.test/", True),
        ("all://a.test:8080", "http://a.test:8080/", True),
        ("all://a.test:8080", "http://a.test/", False),
        ("http://a.test:80", "http://a.test/", True),
        ("https://a.test:443", "https://a.test/", True),
        ("all://a.test:443", "http://a.test/", False),
        ("all://*:8080", "http://b.test:8080/", True),
        ("all://[::1]:8080", "http://[::1]:8080/", True),
        ("all://[::1]", "http://[::2]/", False),
        ("http://a.test/", "http://a.test/path", True),
    ],
)
def test_url_pattern_matching(pattern: str, url: str, expected: bool) -> None:
    assert URLPattern(pattern).matches(trioclient.URL(url)) is expected


@pytest.mark.parametrize(
    ("patterns", "url", "winner"),
    [
        # A port beats no port, then the longer host, then the longer scheme.
        (["all://a.test", "all://a.test:8080"], "http://a.test:8080/", "all://a.test:8080"),
        (["all://*a.test", "all://b.a.test"], "http://b.a.test/", "all://b.a.test"),
        (["all://", "all://*.a.test"], "http://b.a.test/", "all://*.a.test"),
        (["all://a.test", "http://a.test"], "http://a.test/", "http://a.test"),
        (["all://", "http://"], "http://a.test/", "http://"),
        (["all://", "http://"], "https://a.test/", "all://"),
        (["all://*:8080", "all://a.test"], "http://a.test:8080/", "all://*:8080"),
    ],
)
def test_mount_priority(patterns: list[str], url: str, winner: str) -> None:
    transports = {pattern: _named(pattern) for pattern in patterns}
    default = _named("default")
    mounts = Mounts(dict(reversed(list(transports.items()))))
    assert mounts.lookup(trioclient.URL(url), default) is transports[winner]
    assert Mounts(transports).lookup(trioclient.URL(url), default) is transports[winner]


def test_mount_none_falls_back_to_the_default_even_under_a_wider_pattern() -> None:
    default, proxy = _named("default"), _named("proxy")
    mounts = Mounts({"all://": proxy, "all://*.internal.test": None})
    assert mounts.lookup(trioclient.URL("https://a.internal.test/"), default) is default
    assert mounts.lookup(trioclient.URL("https://public.test/"), default) is proxy
    assert mounts.transports() == [proxy]
    assert not Mounts(None)


@pytest.mark.parametrize(
    "pattern",
    [
        "a.test",
        "",
        "http:/a.test",
        "http://a.test:99999",
        "http://a.test:port",
        "http://a.test:\u00b2",  # str.isdigit() says yes; int() says no
        "http://a.test:",
        "https://api.test/v1",
        "https://user@api.test",
    ],
)
def test_invalid_mount_patterns_are_value_errors(pattern: str) -> None:
    with pytest.raises(ValueError, match="mount pattern"):
        URLPattern(pattern)
    with pytest.raises(ValueError, match="mount pattern"):
        trioclient.Client(mounts={pattern: _named("x")})


# -- found reading the change again -----------------------------------------------------------


async def test_a_streamed_body_closed_while_read_is_not_a_short_complete_body() -> None:
    """Closing a response while another task reads it must not make the read return the bytes
    so far as if they were the whole body."""

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"part1-", b"part2-", b"part3"):
            yield part
            await trio.sleep(0.1)

    transport = trioclient.MockTransport(lambda request: trioclient.Response(200, stream=parts()))
    async with (
        trioclient.Client(transport=transport) as client,
        client.stream("GET", "https://a.test/") as response,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_close_after, response, 0.15)
        with pytest.raises(trioclient.StreamClosed):
            await response.aread()


async def _close_after(response: trioclient.Response, seconds: float) -> None:
    await trio.sleep(seconds)
    await response.aclose()


async def test_max_response_size_applies_to_a_body_given_as_content() -> None:
    transport = trioclient.MockTransport(lambda r: trioclient.Response(200, content=b"x" * 1000))
    async with trioclient.Client(transport=transport, max_response_size=10) as client:
        with pytest.raises(trioclient.ResponseTooLarge):
            await client.get("https://a.test/")


async def test_a_response_body_chunk_that_is_not_bytes_is_a_type_error() -> None:
    async def numbers() -> AsyncIterator[int]:
        yield 10_000_000  # bytes(10_000_000) would be ten million zero bytes

    transport = trioclient.MockTransport(
        lambda r: trioclient.Response(200, stream=numbers())  # type: ignore[arg-type]
    )
    async with trioclient.Client(transport=transport) as client:
        with pytest.raises(TypeError, match="must yield bytes"):
            await client.get("https://a.test/")
